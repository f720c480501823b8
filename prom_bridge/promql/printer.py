"""PromQL printer: Prometheus 2.42's canonical `String()` form of an AST (`promql/parser/printer.go`).

Used by `/api/v1/format_query` and in messages. Numbers print as Go's `fmt.Sprint(float64)` (`1e+06`,
`0.5`, `+Inf`), strings with Go quoting, durations in Prometheus' unit form (`1h30m`), label matchers
sorted, and the metric name outside the braces.
"""
from __future__ import annotations

import math
from decimal import Decimal

from prom_bridge.promql.ast import (AggregateExpr, BinaryExpr, Call, MatrixSelector, NumberLiteral, ParenExpr,
                                    StringLiteral, SubqueryExpr, UnaryExpr, VectorSelector)
from prom_bridge.promql.lexer import go_quote
from prom_bridge.promql.parser import format_duration


def go_float(v: float) -> str:
    """Go's fmt.Sprint of a float64 (strconv 'g', shortest): %e when the exponent is < -4 or >= 6."""
    if v != v:
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, exp = Decimal(repr(v)).as_tuple()   # repr() gives the shortest round-trip digits
    ds = "".join(map(str, digits))
    dp = len(ds) + exp                                # position of the decimal point in `ds`
    ds = ds.rstrip("0") or "0"
    neg = "-" if sign else ""
    x = dp - 1
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return f"{neg}{ds}{'0' * (dp - len(ds))}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def format_expr(node) -> str:
    """Prometheus' canonical text of an expression."""
    cls = type(node)
    if cls is VectorSelector:
        return _selector(node)
    if cls is MatrixSelector:
        vs = node.vector
        base = _selector(vs, with_modifiers=False)
        return f"{base}[{format_duration(node.range_ms)}]{_at(vs)}{_offset(vs)}"
    if cls is NumberLiteral:
        return go_float(node.value)
    if cls is StringLiteral:
        return go_quote(node.value)
    if cls is BinaryExpr:
        # Iterative over the left spine so that long `a or b or c ...` chains do not hit the recursion limit.
        chain = [node]
        while type(chain[-1].lhs) is BinaryExpr:
            chain.append(chain[-1].lhs)
        parts = [format_expr(chain[-1].lhs)]
        for n in reversed(chain):
            parts.append(f" {n.op}{' bool' if n.return_bool else ''}{_matching(n)} {format_expr(n.rhs)}")
        return "".join(parts)
    if cls is AggregateExpr:
        head = node.op
        if node.without:
            head += f" without ({', '.join(node.grouping)}) "
        elif node.grouping:
            head += f" by ({', '.join(node.grouping)}) "
        if node.param is not None:
            return f"{head}({format_expr(node.param)}, {format_expr(node.expr)})"
        return f"{head}({format_expr(node.expr)})"
    if cls is Call:
        return f"{node.func}({', '.join(format_expr(a) for a in node.args)})"
    if cls is ParenExpr:
        return f"({format_expr(node.expr)})"
    if cls is UnaryExpr:
        return f"{node.op}{format_expr(node.expr)}"
    if cls is SubqueryExpr:
        step = format_duration(node.step_ms) if node.step_ms else ""
        return f"{format_expr(node.expr)}[{format_duration(node.range_ms)}:{step}]{_at(node)}{_offset(node)}"
    raise TypeError(f"not a PromQL expression: {node!r}")


def _selector(vs: VectorSelector, with_modifiers: bool = True) -> str:
    parts = sorted(f"{m.name}{m.op}{go_quote(m.value)}" for m in vs.matchers
                   if not (m.name == "__name__" and m.op == "=" and m.value == vs.name))
    text = (vs.name or "") + ("{" + ",".join(parts) + "}" if parts else "")
    if with_modifiers:
        text += _at(vs) + _offset(vs)
    return text


def _at(node) -> str:
    if node.at_ms is not None:
        return f" @ {node.at_ms / 1000.0:.3f}"
    if node.at_modifier:
        return f" @ {node.at_modifier}()"
    return ""


def _offset(node) -> str:
    if node.offset_ms > 0:
        return f" offset {format_duration(node.offset_ms)}"
    if node.offset_ms < 0:
        return f" offset -{format_duration(-node.offset_ms)}"
    return ""


def _matching(node: BinaryExpr) -> str:
    vm = node.matching
    if vm is None or not (vm.labels or vm.on):
        return ""
    text = f" {'on' if vm.on else 'ignoring'} ({', '.join(vm.labels)})"
    if vm.card in ("many-to-one", "one-to-many"):
        side = "left" if vm.card == "many-to-one" else "right"
        text += f" group_{side} ({', '.join(vm.include)})"
    return text


_MAX_LINE = 100
_INDENT = "  "


def pretty_expr(node, level: int = 0) -> str:
    """Prometheus' `Pretty(0)` (prettier.go, 2.38+), what 2.42's /api/v1/format_query returns.

    An expression whose String() fits in 100 characters prints as format_expr(); longer aggregations, binary
    expressions, calls and parentheses are split over lines with two-space indentation.
    """
    ind = _INDENT * level
    cls = type(node)
    text = format_expr(node)
    split = len(text) > _MAX_LINE
    if cls is AggregateExpr:
        if not split:
            return ind + text
        head = node.op
        if node.without:
            head += f" without ({', '.join(node.grouping)}) "
        elif node.grouping:
            head += f" by ({', '.join(node.grouping)}) "
        out = ind + head + "(\n"
        if node.param is not None:
            out += pretty_expr(node.param, level + 1) + ",\n"
        return out + pretty_expr(node.expr, level + 1) + "\n" + ind + ")"
    if cls is BinaryExpr:
        if not split:
            return ind + text
        return (f"{pretty_expr(node.lhs, level + 1)}\n{ind}{node.op}{' bool' if node.return_bool else ''}"
                f"{_matching(node)}\n{pretty_expr(node.rhs, level + 1)}")
    if cls is Call:
        if not split:
            return ind + text
        args = ",\n".join(pretty_expr(a, level + 1) for a in node.args)
        return f"{ind}{node.func}(\n{args}\n{ind})"
    if cls is ParenExpr:
        if not split:
            return ind + text
        return f"{ind}(\n{pretty_expr(node.expr, level + 1)}\n{ind})"
    if cls is SubqueryExpr:
        if not split:
            return text   # Prometheus does not indent an unsplit subquery
        step = format_duration(node.step_ms) if node.step_ms else ""
        return (f"{pretty_expr(node.expr, level)}[{format_duration(node.range_ms)}:{step}]"
                f"{_at(node)}{_offset(node)}")
    if cls is UnaryExpr:
        return f"{ind}{node.op}{pretty_expr(node.expr, level).strip()}"
    return ind + text
