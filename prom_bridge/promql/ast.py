"""PromQL abstract syntax tree (the contract between the parser and the engine).

Mirrors Prometheus 2.42's `promql/parser/ast.go`. Times and durations are integer milliseconds. Value types are
"scalar", "vector", "matrix" and "string".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storage.matchers import Matcher

SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "matrix", "string"


@dataclass(frozen=True)
class NumberLiteral:
    value: float


@dataclass(frozen=True)
class StringLiteral:
    value: str


@dataclass(frozen=True)
class VectorSelector:
    name: str | None                       # metric name if written before the braces (also present in matchers)
    matchers: tuple[Matcher, ...]          # full-anchored matchers, `__name__` included
    offset_ms: int = 0                     # `offset 5m` -> 300000; negative offsets allowed
    at_ms: int | None = None               # `@ 1609746000` -> 1609746000000
    at_modifier: str | None = None         # "start" or "end" for `@ start()` / `@ end()`


@dataclass(frozen=True)
class MatrixSelector:
    vector: VectorSelector
    range_ms: int


@dataclass(frozen=True)
class SubqueryExpr:
    expr: object
    range_ms: int
    step_ms: int = 0                       # 0 = the default (global evaluation interval)
    offset_ms: int = 0
    at_ms: int | None = None
    at_modifier: str | None = None


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple


@dataclass(frozen=True)
class AggregateExpr:
    op: str                                # sum, avg, count, min, max, group, stddev, stdvar, topk, bottomk,
    expr: object                           # count_values, quantile
    param: object = None                   # topk/bottomk k, quantile q, count_values label (StringLiteral)
    grouping: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True)
class VectorMatching:
    card: str = "one-to-one"               # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool = False                       # on(...) rather than ignoring(...)
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()          # group_left/group_right extra labels


@dataclass(frozen=True)
class BinaryExpr:
    op: str                                # + - * / % ^ == != > < >= <= and or unless atan2
    lhs: object
    rhs: object
    return_bool: bool = False
    matching: VectorMatching | None = None  # None when either side is a scalar


@dataclass(frozen=True)
class UnaryExpr:
    op: str                                # "-" or "+"
    expr: object


@dataclass(frozen=True)
class ParenExpr:
    expr: object


Expr = (NumberLiteral | StringLiteral | VectorSelector | MatrixSelector | SubqueryExpr | Call | AggregateExpr
        | BinaryExpr | UnaryExpr | ParenExpr)
