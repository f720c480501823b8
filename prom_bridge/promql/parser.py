"""PromQL parser: a hand-written precedence-climbing parser for the grammar of Prometheus 2.42.

Prometheus uses a yacc grammar (`promql/parser/generated_parser.y`); this parser accepts the same language,
builds the AST of `ast.py`, and reproduces Prometheus' error messages, including the "in <context>,
expected ..." suffix that yacc's error productions add, and its type checks (`checkAST`), because API
clients and the conformance files see those messages. Only the first error is reported, as Prometheus does.

Positions are byte offsets into the query; they live in a side table while parsing (the AST nodes are frozen
and positionless) and are only used for messages.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import replace

from prom_bridge.promql import lexer as L
from prom_bridge.promql.ast import (MATRIX, SCALAR, STRING, VECTOR, AggregateExpr, BinaryExpr, Call,
                                    MatrixSelector, NumberLiteral, ParenExpr, StringLiteral, SubqueryExpr,
                                    UnaryExpr, VectorMatching, VectorSelector)
from prom_bridge.promql.functions_table import FUNCTIONS
from storage.matchers import BadRegex, Matcher

__all__ = ["ParseError", "parse_expr", "parse_duration", "expr_type", "format_duration"]


class ParseError(ValueError):
    """A PromQL syntax or type error; str() is Prometheus' `line:col: parse error: msg`."""

    def __init__(self, msg: str, pos: int = 0, query: str = ""):
        self.msg = msg
        self.pos = pos
        self.query = query
        data = query.encode("utf-8", "surrogatepass")
        if 0 <= pos <= len(data):
            before = data[:pos]
            line = before.count(b"\n") + 1
            col = pos - before.rfind(b"\n")
            where = f"{line}:{col}:"
        else:
            where = "invalid position:"
        super().__init__(f"{where} parse error: {msg}")


# --------------------------------------------------------------------------------------------- durations

_DURATION_RE = re.compile(r"^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
                          r"(?:([0-9]+)s)?(?:([0-9]+)ms)?$")
_UNIT_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
_MAX_DURATION_MS = (2**63 - 1) // 1_000_000   # Go's time.Duration is int64 nanoseconds


def parse_duration(text: str) -> int:
    """Prometheus' model.ParseDuration (`1h30m`, `5m`, `1y`, `500ms`, `0`) -> milliseconds.

    Raises ValueError with Prometheus' message on bad input ("1.5m", "1ns", "").
    """
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    m = _DURATION_RE.match(text)
    if m is None:
        raise ValueError(f"not a valid duration string: {L.go_quote(text)}")
    total = 0
    for group, mult in zip(m.groups(), _UNIT_MS):
        if group:
            n = int(group)
            if n > _MAX_DURATION_MS // mult:
                raise ValueError("duration out of range")
            total += n * mult
    if total > _MAX_DURATION_MS:
        raise ValueError("duration out of range")
    return total


def format_duration(ms: int) -> str:
    """model.Duration.String(): `1h30m`, `90d`, `0s`; years and weeks only when exact."""
    if ms == 0:
        return "0s"
    out = []
    for unit, mult, exact in (("y", 365 * 86400_000, True), ("w", 7 * 86400_000, True),
                              ("d", 86400_000, False), ("h", 3600_000, False), ("m", 60_000, False),
                              ("s", 1000, False), ("ms", 1, False)):
        if exact and ms % mult:
            continue
        v = ms // mult
        if v > 0:
            out.append(f"{v}{unit}")
            ms -= v * mult
    return "".join(out)


# --------------------------------------------------------------------------------------------- numbers

_INT64 = 2**63


def _go_number(val: str) -> float:
    """strconv.ParseInt(val, 0, 64) then ParseFloat, as Prometheus' parser.number does."""
    low = val.lower()
    n = None
    if low.startswith("0x"):
        try:
            n = int(low[2:], 16)
        except ValueError:
            n = None
    elif low.isdigit():
        if len(low) > 1 and low[0] == "0":
            n = int(low, 8) if all(c < "8" for c in low) else None   # Go's base-0 octal
        else:
            n = int(low)
    if n is not None and n < _INT64:
        return float(n)
    if low in ("inf", "+inf", "infinity", "nan"):
        return math.inf if low != "nan" else math.nan
    try:
        f = float(val) if not low.startswith("0x") and "_" not in val else None
    except ValueError:
        f = None
    if f is None:
        raise ValueError(f"strconv.ParseFloat: parsing {L.go_quote(val)}: invalid syntax")
    if math.isinf(f):
        raise ValueError(f"strconv.ParseFloat: parsing {L.go_quote(val)}: value out of range")
    return f


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# --------------------------------------------------------------------------------------------- grammar

_BIN_PREC = {
    "LOR": 1,
    "LAND": 2, "LUNLESS": 2,
    "EQLC": 3, "NEQ": 3, "LTE": 3, "LSS": 3, "GTE": 3, "GTR": 3,
    "ADD": 4, "SUB": 4,
    "MUL": 5, "DIV": 5, "MOD": 5, "ATAN2": 5,
    "POW": 6,
}
_UNARY_OPERAND_PREC = 6        # unary +/- has MUL's precedence: only `^` binds tighter
_OP_TEXT = {"LOR": "or", "LAND": "and", "LUNLESS": "unless", "EQLC": "==", "NEQ": "!=", "LTE": "<=",
            "LSS": "<", "GTE": ">=", "GTR": ">", "ADD": "+", "SUB": "-", "MUL": "*", "DIV": "/", "MOD": "%",
            "ATAN2": "atan2", "POW": "^"}
COMPARISON_OPS = frozenset(("==", "!=", "<=", "<", ">=", ">"))
SET_OPS = frozenset(("and", "or", "unless"))
_MATCH_OPS = {"=": "=", "NEQ": "!=", "EQL_REGEX": "=~", "NEQ_REGEX": "!~"}
_AGG_WITH_PARAM = frozenset(("topk", "bottomk", "count_values", "quantile"))
# Keywords that may still name a metric at the start of an expression (yacc's metric_identifier).
_METRIC_KEYWORDS = L.AGGREGATOR_TYPES | {"BY", "WITHOUT", "OFFSET", "START", "END", "LAND", "LOR", "LUNLESS"}
# Keywords that may name a label in by/without/on/ignoring lists (yacc's maybe_label).
_LABEL_TOKENS = L.AGGREGATOR_TYPES | L.KEYWORD_TYPES | {L.IDENTIFIER, L.METRIC_IDENTIFIER, "LAND", "LOR",
                                                        "LUNLESS", "ATAN2"}
# Tokens that can begin an expression.
_EXPR_START = _METRIC_KEYWORDS | {L.NUMBER, L.STRING, L.LEFT_PAREN, L.LEFT_BRACE, L.IDENTIFIER,
                                  L.METRIC_IDENTIFIER, "ADD", "SUB"}
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DOC_TYPE = {VECTOR: "instant vector", MATRIX: "range vector", SCALAR: "scalar", STRING: "string"}


def expr_type(node) -> str:
    """The PromQL value type of an expression (Expr.Type() in Prometheus)."""
    while True:
        cls = type(node)
        if cls is VectorSelector or cls is AggregateExpr:
            return VECTOR
        if cls is NumberLiteral:
            return SCALAR
        if cls is MatrixSelector or cls is SubqueryExpr:
            return MATRIX
        if cls is StringLiteral:
            return STRING
        if cls is Call:
            return FUNCTIONS[node.func].return_type
        if cls is BinaryExpr:
            return SCALAR if expr_type(node.lhs) == SCALAR and expr_type(node.rhs) == SCALAR else VECTOR
        if cls is ParenExpr or cls is UnaryExpr:
            node = node.expr
            continue
        raise TypeError(f"not a PromQL expression: {node!r}")


class _Parser:
    __slots__ = ("src", "toks", "i", "pos", "keep", "ctx", "bin_vm", "bin_type")

    def __init__(self, src: str):
        self.src = src
        self.toks = L.tokenize(src)
        self.i = 0
        self.pos = {}       # id(node) -> (start, end) byte offsets
        self.keep = []      # keeps every node alive so that no id() is reused while parsing
        self.ctx = []       # enclosing yacc error contexts, e.g. "aggregation"
        self.bin_vm = {}    # id(BinaryExpr) -> matching as written, for the type checks
        self.bin_type = {}  # id(BinaryExpr) -> value type, so long operator chains stay linear

    # ------------------------------------------------------------------ helpers
    def node(self, n, start, end):
        self.pos[id(n)] = (start, end)
        self.keep.append(n)
        return n

    def span(self, n):
        return self.pos[id(n)]

    def fail(self, msg, pos):
        raise ParseError(msg, pos, self.src)

    def unexpected(self, tok, context=None, expected=""):
        if tok[0] == L.ERROR:            # a lexer error is reported as it is, once
            self.fail(tok[1], tok[2])
        if context is None and self.ctx:
            context, expected = self.ctx[-1]
        msg = "unexpected " + L.describe(tok)
        if context:
            msg += " in " + context
        if expected:
            msg += ", expected " + expected
        self.fail(msg, tok[2])

    @staticmethod
    def tok_end(tok):
        return tok[2] + len(tok[1].encode()) if not tok[1].isascii() else tok[2] + len(tok[1])

    # ------------------------------------------------------------------ entry
    def parse(self):
        tok = self.toks[0]
        if tok[0] == L.EOF:
            self.fail("no expression found in input", 0)
        expr = self.expr(0)
        tok = self.toks[self.i]
        if tok[0] != L.EOF:
            self.unexpected(tok)
        _Checker(self).check(expr)
        return expr

    # ------------------------------------------------------------------ expressions
    def expr(self, min_prec):
        lhs = self.unary()
        toks = self.toks
        while True:
            tok = toks[self.i]
            prec = _BIN_PREC.get(tok[0])
            if prec is None or prec < min_prec:
                return lhs
            self.i += 1
            op = _OP_TEXT[tok[0]]
            return_bool, vm = self.bin_modifiers()
            rhs = self.expr(prec if tok[0] == "POW" else prec + 1)
            lhs = self.binary(op, lhs, rhs, return_bool, vm, tok[2])

    def bin_modifiers(self):
        toks = self.toks
        return_bool = False
        if toks[self.i][0] == "BOOL":
            return_bool = True
            self.i += 1
        vm = VectorMatching()
        on_kind = toks[self.i][0]
        if on_kind == "ON" or on_kind == "IGNORING":
            self.i += 1
            labels = self.grouping_labels()
            card, include = "one-to-one", ()
            kind = toks[self.i][0]
            if kind == "GROUP_LEFT" or kind == "GROUP_RIGHT":
                self.i += 1
                card = "many-to-one" if kind == "GROUP_LEFT" else "one-to-many"
                nxt = toks[self.i][0]
                if nxt == L.LEFT_PAREN:
                    include = self.grouping_labels()
                elif nxt not in _EXPR_START:
                    # yacc tries the label list here, so the error names it.
                    self.unexpected(toks[self.i], "grouping opts", '"("')
            vm = VectorMatching(card=card, on=on_kind == "ON", labels=labels, include=include)
        return return_bool, vm

    def type_of(self, n):
        while type(n) is ParenExpr or type(n) is UnaryExpr:
            n = n.expr
        if type(n) is BinaryExpr:
            return self.bin_type[id(n)]
        return expr_type(n)

    def binary(self, op, lhs, rhs, return_bool, vm, op_pos):
        lt, rt = self.type_of(lhs), self.type_of(rhs)
        matching = vm
        if lt != VECTOR or rt != VECTOR:
            matching = None
        elif op in SET_OPS and vm.card == "one-to-one":
            matching = replace(vm, card="many-to-many")
        n = BinaryExpr(op=op, lhs=lhs, rhs=rhs, return_bool=return_bool, matching=matching)
        self.bin_vm[id(n)] = (vm, op_pos)
        self.bin_type[id(n)] = SCALAR if lt == SCALAR and rt == SCALAR else VECTOR
        return self.node(n, self.span(lhs)[0], self.span(rhs)[1])

    def unary(self):
        tok = self.toks[self.i]
        if tok[0] == "ADD" or tok[0] == "SUB":
            self.i += 1
            operand = self.expr(_UNARY_OPERAND_PREC)
            end = self.span(operand)[1]
            if type(operand) is NumberLiteral:
                # Prometheus folds a sign into a number literal.
                value = -operand.value if tok[0] == "SUB" else operand.value
                return self.node(NumberLiteral(value), tok[2], end)
            return self.node(UnaryExpr(tok[1], operand), tok[2], end)
        return self.postfix(self.primary())

    def primary(self):
        toks = self.toks
        tok = toks[self.i]
        typ = tok[0]
        if typ == L.NUMBER:
            self.i += 1
            try:
                value = _go_number(tok[1])
            except ValueError as exc:
                self.fail(f"error parsing number: {exc}", tok[2])
            return self.node(NumberLiteral(value), tok[2], self.tok_end(tok))
        if typ == L.STRING:
            self.i += 1
            return self.node(StringLiteral(L.unquote(tok[1])), tok[2], self.tok_end(tok))
        if typ == L.LEFT_PAREN:
            self.i += 1
            inner = self.expr(0)
            close = toks[self.i]
            if close[0] != L.RIGHT_PAREN:
                self.unexpected(close)
            self.i += 1
            return self.node(ParenExpr(inner), tok[2], close[2] + 1)
        if typ == L.LEFT_BRACE:
            return self.selector(None)
        if typ == L.IDENTIFIER:
            if toks[self.i + 1][0] == L.LEFT_PAREN:
                return self.call()
            return self.selector(tok)
        if typ == L.METRIC_IDENTIFIER:
            return self.selector(tok)
        if typ in L.AGGREGATOR_TYPES:
            nxt = toks[self.i + 1][0]
            if nxt == L.LEFT_PAREN or nxt == "BY" or nxt == "WITHOUT":
                return self.aggregate()
            # Otherwise yacc's default reduction makes it a metric name; any error surfaces on the next token.
            return self.selector(tok)
        if typ in _METRIC_KEYWORDS:
            return self.selector(tok)
        self.unexpected(tok)

    # ------------------------------------------------------------------ selectors
    def selector(self, name_tok):
        toks = self.toks
        matchers = []
        if name_tok is not None:
            self.i += 1
            start = name_tok[2]
            end = self.tok_end(name_tok)
        else:
            start = toks[self.i][2]
        if toks[self.i][0] == L.LEFT_BRACE:
            matchers, end = self.label_matchers()
        name = None
        if name_tok is not None:
            name = name_tok[1]
            # The name written before the braces becomes the last matcher, as in Prometheus.
            matchers.append(Matcher("__name__", "=", name))
        return self.node(VectorSelector(name, tuple(matchers)), start, end)

    def label_matchers(self):
        toks = self.toks
        self.i += 1  # {
        matchers = []
        if toks[self.i][0] == L.RIGHT_BRACE:
            self.i += 1
            return matchers, toks[self.i - 1][2] + 1
        while True:
            name = toks[self.i]
            if name[0] != L.IDENTIFIER:
                self.unexpected(name, "label matching", 'identifier or "}"')
            op = toks[self.i + 1]
            if op[0] not in _MATCH_OPS:
                self.unexpected(op, "label matching", "label matching operator")
            val = toks[self.i + 2]
            if val[0] != L.STRING:
                self.unexpected(val, "label matching", "string")
            self.i += 3
            value = L.unquote(val[1])
            try:
                matchers.append(Matcher(name[1], _MATCH_OPS[op[0]], value))
            except BadRegex:
                self.fail(_regex_message(value), name[2])
            sep = toks[self.i]
            if sep[0] == L.COMMA:
                self.i += 1
                if toks[self.i][0] == L.RIGHT_BRACE:
                    self.i += 1
                    return matchers, toks[self.i - 1][2] + 1
                continue
            if sep[0] == L.RIGHT_BRACE:
                self.i += 1
                return matchers, sep[2] + 1
            self.unexpected(sep, "label matching", '"," or "}"')

    # ------------------------------------------------------------------ calls and aggregations
    def call_args(self):
        """`( expr, ... )` -> (args, end position)."""
        toks = self.toks
        self.i += 1  # (
        args = []
        if toks[self.i][0] == L.RIGHT_PAREN:
            self.i += 1
            return args, toks[self.i - 1][2] + 1
        while True:
            args.append(self.expr(0))
            tok = toks[self.i]
            if tok[0] == L.COMMA:
                self.i += 1
                nxt = toks[self.i][0]
                if nxt == L.ERROR:
                    self.unexpected(toks[self.i])
                if nxt not in _EXPR_START:
                    # yacc reduces `args COMMA` before it fails on the next token, so this error comes first.
                    self.fail("trailing commas not allowed in function call args", tok[2])
                continue
            if tok[0] == L.RIGHT_PAREN:
                self.i += 1
                return args, tok[2] + 1
            self.unexpected(tok)

    def call(self):
        name_tok = self.toks[self.i]
        self.i += 1
        args, end = self.call_args()
        if name_tok[1] not in FUNCTIONS:
            self.fail(f"unknown function with name {L.go_quote(name_tok[1])}", name_tok[2])
        return self.node(Call(name_tok[1], tuple(args)), name_tok[2], end)

    def aggregate(self):
        toks = self.toks
        op_tok = toks[self.i]
        op = op_tok[0].lower()
        self.i += 1
        self.ctx.append(("aggregation", ""))
        grouping, without = (), False
        kind = toks[self.i][0]
        if kind == "BY" or kind == "WITHOUT":
            self.i += 1
            without = kind == "WITHOUT"
            grouping = self.grouping_labels()
            if toks[self.i][0] != L.LEFT_PAREN:
                self.unexpected(toks[self.i])
            args, end = self.call_args()
        else:
            args, end = self.call_args()
            kind = toks[self.i][0]
            if kind == "BY" or kind == "WITHOUT":
                self.i += 1
                without = kind == "WITHOUT"
                grouping = self.grouping_labels()
                end = toks[self.i - 1][2] + 1
        self.ctx.pop()
        start = op_tok[2]
        if (not args or len(args) != (2 if op in _AGG_WITH_PARAM else 1)) and toks[self.i][0] == L.ERROR:
            # yacc needs the next token to reduce `op(...)`, so a lexer error there is reported first.
            self.unexpected(toks[self.i])
        if not args:
            self.fail("no arguments for aggregate expression provided", start)
        want = 2 if op in _AGG_WITH_PARAM else 1
        if len(args) != want:
            self.fail(f"wrong number of arguments for aggregate expression provided, expected {want}, "
                      f"got {len(args)}", start)
        param = args[0] if want == 2 else None
        n = AggregateExpr(op=op, expr=args[-1], param=param, grouping=tuple(grouping), without=without)
        return self.node(n, start, end)

    def grouping_labels(self):
        toks = self.toks
        tok = toks[self.i]
        if tok[0] != L.LEFT_PAREN:
            self.unexpected(tok, "grouping opts", '"("')
        self.i += 1
        labels = []
        if toks[self.i][0] == L.RIGHT_PAREN:
            self.i += 1
            return ()
        while True:
            tok = toks[self.i]
            if tok[0] not in _LABEL_TOKENS:
                self.unexpected(tok, "grouping opts", "label")
            if not _LABEL_NAME_RE.match(tok[1]):
                self.unexpected(tok, "grouping opts", "label")
            self.i += 1
            labels.append(tok[1])
            sep = toks[self.i]
            if sep[0] == L.COMMA:
                self.i += 1
                if toks[self.i][0] == L.RIGHT_PAREN:
                    self.i += 1
                    return tuple(labels)
                continue
            if sep[0] == L.RIGHT_PAREN:
                self.i += 1
                return tuple(labels)
            self.unexpected(sep, "grouping opts", '"," or ")"')

    # ------------------------------------------------------------------ offset, @, ranges, subqueries
    def postfix(self, e):
        toks = self.toks
        while True:
            tok = toks[self.i]
            typ = tok[0]
            if typ == "OFFSET":
                self.i += 1
                tok = toks[self.i]
                sign = 1
                if tok[0] == "SUB":
                    sign = -1
                    self.i += 1
                    tok = toks[self.i]
                if tok[0] != L.DURATION:
                    self.unexpected(tok, "offset", "duration")
                self.i += 1
                e = self.add_offset(e, sign * self.duration(tok), self.tok_end(tok))
            elif typ == "AT":
                self.i += 1
                e = self.at_modifier(e)
            elif typ == L.LEFT_BRACKET:
                e = self.range_or_subquery(e)
            else:
                return e

    def duration(self, tok) -> int:
        try:
            ms = parse_duration(tok[1])
        except ValueError as exc:
            self.fail(str(exc), tok[2])
        if ms == 0:
            self.fail("duration must be greater than 0", tok[2])
        return ms

    def add_offset(self, e, offset_ms, end):
        start = self.span(e)[0]
        target = self.modifier_target(e, "offset modifier", start)
        if target.offset_ms != 0:
            self.fail("offset may not be set multiple times", start)
        return self.with_modifier(e, target, start, end, offset_ms=offset_ms)

    def modifier_target(self, e, what: str, start: int):
        """The selector or subquery an `offset` or `@` modifier applies to (a matrix selector's vector)."""
        cls = type(e)
        if cls is VectorSelector or cls is SubqueryExpr:
            return e
        if cls is MatrixSelector:
            return e.vector
        self.fail(f"{what} must be preceded by an instant vector selector or range vector selector or a "
                  "subquery", start)

    def with_modifier(self, e, target, start: int, end: int, **fields):
        if type(e) is MatrixSelector:
            vs = self.node(replace(target, **fields), *self.span(target))
            return self.node(replace(e, vector=vs), start, end)
        return self.node(replace(e, **fields), start, end)

    def at_modifier(self, e):
        toks = self.toks
        tok = toks[self.i]
        at_ms = modifier = None
        if tok[0] in ("START", "END"):
            if toks[self.i + 1][0] != L.LEFT_PAREN:
                self.unexpected(toks[self.i + 1], "@", "timestamp")
            if toks[self.i + 2][0] != L.RIGHT_PAREN:
                self.unexpected(toks[self.i + 2], "@", "timestamp")
            modifier = tok[0].lower()
            self.i += 3
            end = toks[self.i - 1][2] + 1
        else:
            sign = 1.0
            if tok[0] in ("ADD", "SUB"):
                sign = -1.0 if tok[0] == "SUB" else 1.0
                self.i += 1
                tok = toks[self.i]
            if tok[0] != L.NUMBER:
                self.unexpected(tok, "@", "timestamp")
            self.i += 1
            end = self.tok_end(tok)
            try:
                ts = sign * _go_number(tok[1])
            except ValueError as exc:
                self.fail(f"error parsing number: {exc}", tok[2])
            start = self.span(e)[0]
            if math.isinf(ts) or math.isnan(ts) or ts >= 2.0**63 or ts <= -(2.0**63):
                self.fail(f"timestamp out of bounds for @ modifier: {_go_f(ts)}", start)
            at_ms = _round_half_away(ts * 1000)
        start = self.span(e)[0]
        target = self.modifier_target(e, "@ modifier", start)
        if target.at_ms is not None or target.at_modifier is not None:
            self.fail("@ <timestamp> may not be set multiple times", start)
        return self.with_modifier(e, target, start, end, at_ms=at_ms, at_modifier=modifier)

    def range_or_subquery(self, e):
        toks = self.toks
        open_tok = toks[self.i]
        self.i += 1
        tok = toks[self.i]
        if tok[0] != L.DURATION:
            self.unexpected(tok, "subquery selector", "duration")
        self.i += 1
        range_ms = self.duration(tok)
        tok = toks[self.i]
        start = self.span(e)[0]
        if tok[0] == L.RIGHT_BRACKET:
            self.i += 1
            msg = None
            if type(e) is not VectorSelector:
                msg = "ranges only allowed for vector selectors"
            elif e.offset_ms != 0:
                msg = "no offset modifiers allowed before range"
            elif e.at_ms is not None:
                msg = "no @ modifiers allowed before range"
            if msg:
                self.fail(msg, open_tok[2])
            return self.node(MatrixSelector(e, range_ms), start, tok[2] + 1)
        if tok[0] != L.COLON:
            self.unexpected(tok, "subquery or range", '":" or "]"')
        self.i += 1
        tok = toks[self.i]
        step_ms = 0
        if tok[0] == L.DURATION:
            self.i += 1
            step_ms = self.duration(tok)
            tok = toks[self.i]
            if tok[0] != L.RIGHT_BRACKET:
                self.unexpected(tok, "subquery selector", '"]"')
        elif tok[0] != L.RIGHT_BRACKET:
            self.unexpected(tok, "subquery selector", 'duration or "]"')
        self.i += 1
        return self.node(SubqueryExpr(e, range_ms, step_ms), start, tok[2] + 1)


# RE2 (C++) error texts -> Go regexp/syntax texts, which Prometheus shows.
_RE2_TO_GO = {
    "missing )": "missing closing )", "missing ]": "missing closing ]", "unexpected )": "unexpected )",
    "bad repetition operator": "invalid nested repetition operator",
    "missing argument to repetition operator": "missing argument to repetition operator",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid escape sequence": "invalid escape sequence", "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "trailing \\": "trailing backslash at end of expression", "invalid named capture group": "invalid named capture",
    "invalid perl operator": "invalid or unsupported Perl syntax", "invalid repetition size": "invalid repeat count",
    "invalid UTF-8": "invalid UTF-8", "duplicate capture group name": "duplicate capture group name",
}


def _regex_message(pattern: str) -> str:
    """Go's "error parsing regexp: <reason>: `<fragment>`" for a pattern that RE2 rejected."""
    import re2
    opts = re2.Options()
    opts.log_errors = False
    try:
        re2.compile(f"^(?:{pattern})$", options=opts)
    except Exception as exc:  # noqa: BLE001 - re2's error type is not stable across versions
        raw = exc.args[0] if exc.args else str(exc)
        detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    else:
        detail = "pattern too large"   # compiled without our memory limit: it was the limit that failed
    reason, _, fragment = detail.partition(": ")
    reason = _RE2_TO_GO.get(reason, reason)
    return f"error parsing regexp: {reason}: `{fragment}`" if fragment else f"error parsing regexp: {reason}"


def _go_f(x: float) -> str:
    """Go's %f (used in the @ bounds message)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.6f}"


class _Checker:
    """Prometheus' checkAST: type checks run after a successful parse, in the same order."""

    def __init__(self, p: _Parser):
        self.p = p

    def fail(self, msg, node):
        self.p.fail(msg, self.p.span(node)[0])

    def expect(self, node, want, context):
        t = self.check(node)
        if t != want:
            self.fail(f"expected type {_DOC_TYPE[want]} in {context}, got {_DOC_TYPE[t]}", node)

    def check(self, n) -> str:
        cls = type(n)
        if cls is AggregateExpr:
            self.expect(n.expr, VECTOR, "aggregation expression")
            if n.op in ("topk", "bottomk", "quantile"):
                self.expect(n.param, SCALAR, "aggregation parameter")
            elif n.op == "count_values":
                self.expect(n.param, STRING, "aggregation parameter")
            return VECTOR
        if cls is BinaryExpr:
            return self.check_binary(n)
        if cls is Call:
            spec = FUNCTIONS[n.func]
            nargs, got = len(spec.arg_types), len(n.args)
            name = L.go_quote(n.func)
            if spec.variadic == 0:
                if nargs != got:
                    self.fail(f"expected {nargs} argument(s) in call to {name}, got {got}", n)
            else:
                least = nargs - 1
                if least > got:
                    self.fail(f"expected at least {least} argument(s) in call to {name}, got {got}", n)
                most = least + spec.variadic
                if spec.variadic > 0 and most < got:
                    self.fail(f"expected at most {most} argument(s) in call to {name}, got {got}", n)
            for i, arg in enumerate(n.args):
                if i >= nargs:
                    if spec.variadic == 0:
                        break
                    i = nargs - 1
                self.expect(arg, spec.arg_types[i], f"call to function {name}")
            return spec.return_type
        if cls is ParenExpr:
            return self.check(n.expr)
        if cls is UnaryExpr:
            t = self.check(n.expr)
            if t != SCALAR and t != VECTOR:
                self.fail("unary expression only allowed on expressions of type scalar or instant vector, "
                          f"got {L.go_quote(_DOC_TYPE[t])}", n)
            return t
        if cls is SubqueryExpr:
            t = self.check(n.expr)
            if t != VECTOR:
                self.fail(f"subquery is only allowed on instant vector, got {t} instead", n)
            return MATRIX
        if cls is MatrixSelector:
            self.check(n.vector)
            return MATRIX
        if cls is VectorSelector:
            if n.name is not None:
                for m in n.matchers[:-1]:
                    if m.name == "__name__":
                        self.fail(f"metric name must not be set twice: {L.go_quote(n.name)} or "
                                  f"{L.go_quote(m.value)}", n)
                return VECTOR
            if not any(not m.matches("") for m in n.matchers):
                self.fail("vector selector must contain at least one non-empty matcher", n)
            return VECTOR
        if cls is NumberLiteral:
            return SCALAR
        if cls is StringLiteral:
            return STRING
        raise TypeError(f"unknown node type {cls.__name__}")

    def check_binary(self, top) -> str:
        # Left-deep operator chains (`a or b or c ...`) are walked iteratively, in the order Prometheus'
        # recursive checkAST reports errors: the whole LHS, then the RHS, then the operator itself.
        chain = [top]
        while type(chain[-1].lhs) is BinaryExpr:
            chain.append(chain[-1].lhs)
        lt = self.check(chain[-1].lhs)
        for n in reversed(chain):
            lt = self.check_binary_node(n, lt, self.check(n.rhs))
        return lt

    def check_binary_node(self, n, lt, rt) -> str:
        vm, op_pos = self.p.bin_vm[id(n)]
        op = n.op
        if n.return_bool and op not in COMPARISON_OPS:
            self.p.fail("bool modifier can only be used on comparison operators", op_pos)
        if op in COMPARISON_OPS and not n.return_bool and lt == SCALAR and rt == SCALAR:
            self.p.fail("comparisons between scalars must use BOOL modifier", op_pos)
        if vm.on:
            for l1 in vm.labels:
                if l1 in vm.include:
                    self.p.fail(f"label {L.go_quote(l1)} must not occur in ON and GROUP clause at once", op_pos)
        if lt != SCALAR and lt != VECTOR:
            self.fail("binary expression must contain only scalar and instant vector types", n.lhs)
        if rt != SCALAR and rt != VECTOR:
            self.fail("binary expression must contain only scalar and instant vector types", n.rhs)
        if lt != VECTOR or rt != VECTOR:
            if vm.labels:
                self.fail("vector matching only allowed between instant vectors", n)
        elif op in SET_OPS:
            if vm.card in ("one-to-many", "many-to-one"):
                self.fail(f"no grouping allowed for {L.go_quote(op)} operation", n)
        if (lt == SCALAR or rt == SCALAR) and op in SET_OPS:
            self.fail(f"set operator {L.go_quote(op)} not allowed in binary scalar expression", n)
        return SCALAR if lt == SCALAR and rt == SCALAR else VECTOR


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str):
    try:
        return _Parser(text).parse()
    except RecursionError:
        # Go's parser has no depth limit; ours is Python's stack. Refuse instead of failing with a 500.
        raise ParseError("expression nested too deeply", 0, text) from None


def parse_expr(text: str):
    """Parse a PromQL expression into the AST of `ast.py`; raises ParseError (a ValueError).

    Results are cached by query text: dashboards and rules send the same queries again and again, and the
    AST is immutable, so sharing it is safe.
    """
    if text is None:    # a missing `query` parameter reads as empty, as in Prometheus
        text = ""
    return _parse_cached(text)
