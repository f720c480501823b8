"""PromQL parser: grammar coverage, Prometheus 2.42 error messages, conformance expressions, speed."""
from __future__ import annotations

import glob
import math
import os
import re
import time

import pytest

from prom_bridge.promql import ast
from prom_bridge.promql.ast import (AggregateExpr, BinaryExpr, Call, MatrixSelector, NumberLiteral, ParenExpr,
                                    StringLiteral, SubqueryExpr, UnaryExpr, VectorMatching, VectorSelector)
from prom_bridge.promql.functions_table import FUNCTIONS, arg_bounds
from prom_bridge.promql.parser import ParseError, expr_type, parse_duration, parse_expr
from prom_bridge.promql.printer import format_expr
from storage.matchers import Matcher

CONFORMANCE = "/work/shared/conformance/promql-v2.42"


def sel(name=None, *matchers, **kw):
    ms = tuple(Matcher(n, op, v) for n, op, v in matchers)
    if name is not None:
        ms += (Matcher("__name__", "=", name),)
    return VectorSelector(name, ms, **kw)


def num(v):
    return NumberLiteral(float(v))


# ------------------------------------------------------------------------------------------------ literals

@pytest.mark.parametrize("text,value", [
    ("1", 1), ("+Inf", math.inf), ("-Inf", -math.inf), ("inf", math.inf), (".5", 0.5), ("5.", 5),
    ("123.4567", 123.4567), ("5e-3", 0.005), ("5e3", 5000), ("0xc", 12), ("0X1F", 31), ("0755", 493),
    ("+5.5e-3", 0.0055), ("-0755", -493), ("1e+2", 100), ("09", 9),
])
def test_number_literals(text, value):
    assert parse_expr(text) == NumberLiteral(float(value))


def test_nan_literal():
    node = parse_expr("NaN")
    assert isinstance(node, NumberLiteral) and math.isnan(node.value)


def test_durations_are_not_numbers_in_2_42():
    with pytest.raises(ParseError, match=r'unexpected duration "5m"'):
        parse_expr("5m")


@pytest.mark.parametrize("text,value", [
    ('"double"', "double"), ("'single'", "single"), ("`raw\\n`", "raw\\n"),
    (r'"a\nb\t\"q\""', 'a\nb\t"q"'), (r"'it\'s'", "it's"), (r'"\x41\101\u00e9\U0001F600"', "AAé\U0001F600"),
    ('"ünï"', "ünï"), (r'"\\"', "\\"),
])
def test_string_literals(text, value):
    assert parse_expr(text) == StringLiteral(value)


# ------------------------------------------------------------------------------------------------ selectors

def test_selectors():
    assert parse_expr("foo") == sel("foo")
    assert parse_expr('foo{a="b", c!="d", e=~"f.*", g!~"h",}') == sel(
        "foo", ("a", "=", "b"), ("c", "!=", "d"), ("e", "=~", "f.*"), ("g", "!~", "h"))
    assert parse_expr('{__name__="foo"}') == sel(None, ("__name__", "=", "foo"))
    assert parse_expr("foo:bar:rate5m") == sel("foo:bar:rate5m")
    assert parse_expr(":colon") == sel(":colon")
    # Keywords are plain label names inside braces.
    assert parse_expr('foo{on="x", by="y", offset="z"}') == sel(
        "foo", ("on", "=", "x"), ("by", "=", "y"), ("offset", "=", "z"))
    # Some keywords may name a metric.
    for kw in ("sum", "by", "without", "offset", "start", "end", "and", "min"):
        assert parse_expr(kw) == sel(kw)
    assert parse_expr("foo * sum") == BinaryExpr("*", sel("foo"), sel("sum"), matching=VectorMatching())
    assert parse_expr('sum{a="b"}') == sel("sum", ("a", "=", "b"))


def test_matchers_are_full_anchored_re2():
    node = parse_expr('foo{a=~"b|c"}')
    m = node.matchers[0]
    assert m.anchor == "full" and m.matches("b") and not m.matches("xb")


def test_offset_and_at_modifiers():
    assert parse_expr("foo offset 5m") == sel("foo", offset_ms=300_000)
    assert parse_expr("foo offset -1h30m") == sel("foo", offset_ms=-5_400_000)
    assert parse_expr("foo @ 1609746000") == sel("foo", at_ms=1_609_746_000_000)
    assert parse_expr("foo @ 1609746000.5") == sel("foo", at_ms=1_609_746_000_500)
    assert parse_expr("foo @ -100") == sel("foo", at_ms=-100_000)
    assert parse_expr("foo @ start()") == sel("foo", at_modifier="start")
    assert parse_expr("foo @ end() offset 1m") == sel("foo", at_modifier="end", offset_ms=60_000)
    assert parse_expr("foo offset 1m @ end()") == sel("foo", at_modifier="end", offset_ms=60_000)
    assert parse_expr("foo[5m] offset 1w @ 10") == MatrixSelector(sel("foo", offset_ms=604_800_000,
                                                                         at_ms=10_000), 300_000)


def test_ranges_and_subqueries():
    assert parse_expr("foo[5m]") == MatrixSelector(sel("foo"), 300_000)
    assert parse_expr("foo[1h30m]") == MatrixSelector(sel("foo"), 5_400_000)
    assert parse_expr("foo[ 500ms ]") == MatrixSelector(sel("foo"), 500)
    assert parse_expr("foo[10m:1m]") == SubqueryExpr(sel("foo"), 600_000, 60_000)
    assert parse_expr("foo[10m:]") == SubqueryExpr(sel("foo"), 600_000, 0)
    assert parse_expr("rate(foo[5m])[30m:1m] offset 5m @ start()") == SubqueryExpr(
        Call("rate", (MatrixSelector(sel("foo"), 300_000),)), 1_800_000, 60_000, offset_ms=300_000,
        at_modifier="start")
    assert parse_expr("(foo + bar)[5m:]").expr == ParenExpr(
        BinaryExpr("+", sel("foo"), sel("bar"), matching=VectorMatching()))


# ------------------------------------------------------------------------------------------------ operators

def test_precedence_and_associativity():
    assert parse_expr("1 + 2 * 3") == BinaryExpr("+", num(1), BinaryExpr("*", num(2), num(3)))
    assert parse_expr("1 - 2 - 3") == BinaryExpr("-", BinaryExpr("-", num(1), num(2)), num(3))
    assert parse_expr("2 ^ 3 ^ 2") == BinaryExpr("^", num(2), BinaryExpr("^", num(3), num(2)))
    assert parse_expr("-1 ^ 2") == UnaryExpr("-", BinaryExpr("^", num(1), num(2)))
    assert parse_expr("-1 * 2") == BinaryExpr("*", num(-1), num(2))
    assert parse_expr("+1 + -2 * 1") == BinaryExpr("+", num(1), BinaryExpr("*", num(-2), num(1)))
    assert parse_expr("-1^-2") == UnaryExpr("-", BinaryExpr("^", num(1), num(-2)))
    assert parse_expr("1 atan2 2 + 3") == BinaryExpr("+", BinaryExpr("atan2", num(1), num(2)), num(3))
    a, b, c = sel("a"), sel("b"), sel("c")
    mm = VectorMatching(card="many-to-many")
    node = parse_expr("a or b and c")
    assert node == BinaryExpr("or", a, BinaryExpr("and", b, c, matching=mm), matching=mm)
    node = parse_expr("a > b + 1 unless c")
    assert node.op == "unless" and node.lhs.op == ">" and node.lhs.rhs.op == "+"
    assert parse_expr("-foo") == UnaryExpr("-", sel("foo"))
    assert parse_expr("-(1)") == UnaryExpr("-", ParenExpr(num(1)))
    assert parse_expr("- - 1") == num(1)


def test_bool_and_vector_matching():
    assert parse_expr("a > bool 1") == BinaryExpr(">", sel("a"), num(1), return_bool=True)
    assert parse_expr("1 == bool 1") == BinaryExpr("==", num(1), num(1), return_bool=True)
    assert parse_expr("a / on(x, y) b").matching == VectorMatching(on=True, labels=("x", "y"))
    assert parse_expr("a / ignoring(x) b").matching == VectorMatching(labels=("x",))
    assert parse_expr("a / on() b").matching == VectorMatching(on=True)
    assert parse_expr("a * on(x) group_left(y) b").matching == VectorMatching(
        card="many-to-one", on=True, labels=("x",), include=("y",))
    assert parse_expr("a * ignoring(x) group_right b").matching == VectorMatching(
        card="one-to-many", labels=("x",))
    assert parse_expr("a == bool on(x) b").return_bool
    assert parse_expr("a and on(x) b").matching == VectorMatching(card="many-to-many", on=True, labels=("x",))
    # Scalars take part without matching.
    assert parse_expr("a + 1").matching is None
    assert parse_expr("a + on(x) group_left(y) b").matching.include == ("y",)


# ------------------------------------------------------------------------------------------------ calls and aggregations

def test_function_calls():
    assert parse_expr("time()") == Call("time", ())
    assert parse_expr("rate(foo[5m])") == Call("rate", (MatrixSelector(sel("foo"), 300_000),))
    assert parse_expr('label_replace(up, "a", "$1", "b", "(.*)")').args[1] == StringLiteral("a")
    assert len(parse_expr('label_join(up, "a", ",", "b", "c", "d")').args) == 6
    assert parse_expr("round(foo)") == Call("round", (sel("foo"),))
    assert parse_expr("round(foo, 0.5)").args[1] == num(0.5)
    assert parse_expr("hour()") == Call("hour", ())
    assert parse_expr("rate (foo[1m])") == Call("rate", (MatrixSelector(sel("foo"), 60_000),))


def test_aggregations():
    expected = AggregateExpr("sum", sel("foo"), grouping=("a", "b"))
    assert parse_expr("sum by (a, b) (foo)") == expected
    assert parse_expr("sum(foo) by (a, b)") == expected
    assert parse_expr("sum by (a, b,) (foo)") == expected
    assert parse_expr("SUM BY (a, b) (foo)") == expected
    assert parse_expr("avg without (a) (foo)") == AggregateExpr("avg", sel("foo"), grouping=("a",), without=True)
    assert parse_expr("count by () (foo)") == AggregateExpr("count", sel("foo"))
    assert parse_expr("topk(3, foo)") == AggregateExpr("topk", sel("foo"), param=num(3))
    assert parse_expr("quantile(0.9, foo)").param == num(0.9)
    assert parse_expr('count_values("v", foo)').param == StringLiteral("v")
    # Keywords are label names in grouping lists.
    assert parse_expr("sum by (on, by, offset, sum, bool, start) (foo)").grouping == (
        "on", "by", "offset", "sum", "bool", "start")
    assert parse_expr("group(foo)").op == "group"
    assert parse_expr("stddev(foo) + stdvar(foo)").op == "+"


def test_comments_and_whitespace():
    assert parse_expr("# leading comment\nfoo # trailing\n") == sel("foo")
    assert parse_expr('foo{a="b" # comment\n}') == sel("foo", ("a", "=", "b"))
    assert parse_expr("\tsum(\n  foo\n)\n") == AggregateExpr("sum", sel("foo"))


def test_types():
    assert expr_type(parse_expr("foo")) == ast.VECTOR
    assert expr_type(parse_expr("foo[5m]")) == ast.MATRIX
    assert expr_type(parse_expr("foo[5m:]")) == ast.MATRIX
    assert expr_type(parse_expr("1 + 2")) == ast.SCALAR
    assert expr_type(parse_expr("scalar(foo)")) == ast.SCALAR
    assert expr_type(parse_expr('"s"')) == ast.STRING
    assert expr_type(parse_expr("-(foo)")) == ast.VECTOR


# ------------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("text,message", [
    ("", "1:1: parse error: no expression found in input"),
    ("# just a comment\n\n", "1:1: parse error: no expression found in input"),
    ("1+", "1:3: parse error: unexpected end of input"),
    (".", "1:1: parse error: unexpected character: '.'"),
    ("2.5.", "1:4: parse error: unexpected character: '.'"),
    ("100..4", '1:5: parse error: unexpected number ".4"'),
    ("0deadbeef", '1:1: parse error: bad number or duration syntax: "0de"'),
    ("*1", "1:1: parse error: unexpected <op:*>"),
    ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
    ("((1)", "1:5: parse error: unclosed left parenthesis"),
    ("9" * 400, "out of range"),
    ("1 and 1", 'set operator "and" not allowed in binary scalar expression'),
    ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
    ("1 !~ 1", "unexpected character after '!': '~'"),
    ("1 =~ 1", "unexpected character after '=': '~'"),
    ('-"string"', 'unary expression only allowed on expressions of type scalar or instant vector, got "string"'),
    ("-test[5m]", 'unary expression only allowed on expressions of type scalar or instant vector, '
                  'got "range vector"'),
    ("1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range "
                    "vector selector or a subquery"),
    ("foo offset 1s offset 2s", "offset may not be set multiple times"),
    ("a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"),
    ("foo + bool bar", "bool modifier can only be used on comparison operators"),
    ("foo and 1", 'set operator "and" not allowed in binary scalar expression'),
    ("foo and on(a) group_left bar", 'no grouping allowed for "and" operation'),
    ("foo * on(a) group_left(a) bar", 'label "a" must not occur in ON and GROUP clause at once'),
    ("1 + on(a) foo", "vector matching only allowed between instant vectors"),
    ("foo[5m] + 1", "binary expression must contain only scalar and instant vector types"),
    ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
    ('{x=""}', "vector selector must contain at least one non-empty matcher"),
    ('{x=~".*"}', "vector selector must contain at least one non-empty matcher"),
    ('{x!~".+"}', "vector selector must contain at least one non-empty matcher"),
    ('foo{__name__="bar"}', 'metric name must not be set twice: "foo" or "bar"'),
    ('foo{a="b"', "1:10: parse error: unexpected end of input inside braces"),
    ('foo{a="b" c="d"}', 'unexpected identifier "c" in label matching, expected "," or "}"'),
    ('foo{a}', 'unexpected "}" in label matching, expected label matching operator'),
    ('foo{a=1}', 'unexpected character inside braces: \'1\''),
    ('foo{a=b}', 'unexpected identifier "b" in label matching, expected string'),
    ('foo{,}', 'unexpected "," in label matching, expected identifier or "}"'),
    ('foo{a="\\q"}', "unknown escape sequence U+0071 'q'"),
    ('foo{a="unterminated}', "unterminated quoted string"),
    ('"\\xZZ"', "illegal character U+005A 'Z' in escape sequence"),
    ("`raw", "unterminated raw string"),
    ('foo{a=~"("}', "1:5: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
    ("foo[5m", "unclosed left bracket"),
    ("foo[]", "missing unit character in duration"),
    ("foo[1]", "missing unit character in duration"),
    ("foo[5mm]", 'bad duration syntax: "5mm"'),
    ("foo[0m]", "duration must be greater than 0"),
    ("foo[5m1h]", 'not a valid duration string: "5m1h"'),
    ("foo[1.5m]", 'not a valid duration string: "1.5m"'),
    ("foo offset 0s", "duration must be greater than 0"),
    ('foo["5m"]', "1:5: parse error"),
    ("some_metric[5m] OFFSET 1", 'unexpected number "1" in offset, expected duration'),
    ("some_metric[5m] OFFSET 1mm", 'bad number or duration syntax: "1mm"'),
    ("some_metric OFFSET", "unexpected end of input in offset, expected duration"),
    ("foo[5m][5m]", "ranges only allowed for vector selectors"),
    ("(foo)[5m]", "ranges only allowed for vector selectors"),
    ("foo offset 5m [5m]", "no offset modifiers allowed before range"),
    ("foo @ 10 [5m]", "no @ modifiers allowed before range"),
    ("foo[5m][5m:1m]", "subquery is only allowed on instant vector, got matrix instead"),
    ('"x"[5m:1m]', "subquery is only allowed on instant vector, got string instead"),
    ("foo[5m:1m:1m]", "unexpected colon ':'"),
    ("foo[5m:1]", 'unexpected number "1" in subquery selector, expected duration or "]"'),
    ("foo[5m 1m]", 'unexpected duration "1m" in subquery or range, expected ":" or "]"'),
    ("foo @ bar", 'unexpected identifier "bar" in @, expected timestamp'),
    ("foo @ start", 'unexpected end of input in @, expected timestamp'),
    ("foo @ Inf", "timestamp out of bounds for @ modifier: +Inf"),
    ("foo @ 1 @ 2", "@ <timestamp> may not be set multiple times"),
    ("sum(foo) @ 1", "@ modifier must be preceded by an instant vector selector or range vector selector or a "
                     "subquery"),
    ("sum(foo) offset 1m", "offset modifier must be preceded by"),
    ("rate(foo)", '1:6: parse error: expected type range vector in call to function "rate", got instant vector'),
    ("abs(foo[5m])", 'expected type instant vector in call to function "abs", got range vector'),
    ("foo(bar)", '1:1: parse error: unknown function with name "foo"'),
    ("Rate(foo[5m])", 'unknown function with name "Rate"'),
    ("rate(foo[5m], 1)", 'expected 1 argument(s) in call to "rate", got 2'),
    ("time(1)", 'expected 0 argument(s) in call to "time", got 1'),
    ("round(foo, 1, 2)", 'expected at most 2 argument(s) in call to "round", got 3'),
    ('label_join(foo, "a")', 'expected at least 3 argument(s) in call to "label_join", got 2'),
    ('label_join(foo, "a", ",", 1)', 'expected type string in call to function "label_join", got scalar'),
    ("rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args"),
    ("rate(foo bar)", 'unexpected identifier "bar"'),
    ("sum()", "no arguments for aggregate expression provided"),
    ("topk(foo)", "wrong number of arguments for aggregate expression provided, expected 2, got 1"),
    ("sum(1, foo)", "wrong number of arguments for aggregate expression provided, expected 1, got 2"),
    ("sum(foo bar)", 'unexpected identifier "bar" in aggregation'),
    ("sum 1", '1:5: parse error: unexpected number "1"'),
    ("count(sum 1)", 'unexpected number "1" in aggregation'),
    ("sum by (a) foo", 'unexpected identifier "foo" in aggregation'),
    ("sum by foo (x)", 'unexpected identifier "foo" in grouping opts, expected "("'),
    ("sum by (a b) (x)", 'unexpected identifier "b" in grouping opts, expected "," or ")"'),
    ("sum by (1) (x)", 'unexpected number "1" in grouping opts, expected label'),
    ("sum by (a:b) (x)", '1:9: parse error: unexpected metric identifier "a:b" in grouping opts, expected label'),
    ("sum(foo[5m])", "expected type instant vector in aggregation expression, got range vector"),
    ("topk(foo, bar)", "expected type scalar in aggregation parameter, got instant vector"),
    ("count_values(1, foo)", "expected type string in aggregation parameter, got scalar"),
    ("foo bar", 'unexpected identifier "bar"'),
    ("on", "unexpected <on>"),
    ("foo}", "unexpected character: '}'"),
    ("foo]", "unexpected right bracket ']'"),
    ("foo $", "unexpected character: '$'"),
    ("a + group_left b", "unexpected <group_left>"),
])
def test_error_messages(text, message):
    with pytest.raises(ParseError) as info:
        parse_expr(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_query_is_empty():
    with pytest.raises(ParseError, match="no expression found in input"):
        parse_expr(None)


def test_error_positions_count_lines_and_bytes():
    with pytest.raises(ParseError) as info:
        parse_expr("sum(\n  rate(foo)\n)")
    assert str(info.value).startswith("2:8: parse error: expected type range vector")
    with pytest.raises(ParseError) as info:
        parse_expr('foo{a="é"} bar')
    assert str(info.value).startswith("1:13: parse error: unexpected identifier")


# ------------------------------------------------------------------------------------------------ durations and table

@pytest.mark.parametrize("text,ms", [
    ("0", 0), ("1s", 1000), ("5m", 300_000), ("1h30m", 5_400_000), ("1y", 31_536_000_000), ("2w", 1_209_600_000),
    ("1d", 86_400_000), ("500ms", 500), ("1h0m5s", 3_605_000), ("1y2w3d4h5m6s7ms", 33_019_506_007),
])
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "1ns", "1.5m", "5m1h", "1", "-1s", "1us", "s", "300000000y"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_function_table_matches_2_42():
    assert len(FUNCTIONS) == 70
    assert FUNCTIONS["rate"].arg_types == (ast.MATRIX,)
    assert FUNCTIONS["scalar"].return_type == ast.SCALAR
    assert arg_bounds("label_join") == (3, None)
    assert arg_bounds("round") == (1, 2)
    assert arg_bounds("year") == (0, 1)
    assert arg_bounds("clamp") == (3, 3)
    for later in ("sort_by_label", "histogram_avg", "double_exponential_smoothing", "info", "limitk"):
        assert later not in FUNCTIONS


def test_every_function_parses_with_valid_arguments():
    sample = {ast.VECTOR: "v", ast.MATRIX: "v[5m]", ast.SCALAR: "1", ast.STRING: '"s"'}
    for name, spec in FUNCTIONS.items():
        args = ", ".join(sample[t] for t in spec.arg_types)
        assert parse_expr(f"{name}({args})") == parse_expr(f"{name}({args})")


# ------------------------------------------------------------------------------------------------ conformance files

_EVAL = re.compile(r"^\s*(eval(?:_fail|_ordered)?)\s+instant\s+at\s+\S+\s+(.*)$")
# eval_fail lines whose failure is a parse error in Prometheus 2.42 (none of the 2.42 files has one:
# their failures are evaluation errors such as duplicate series or a bad regex in label_replace).
_PARSE_FAILURES: set = set()


def _conformance_expressions():
    out = []
    for path in sorted(glob.glob(os.path.join(CONFORMANCE, "*.test"))):
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                m = _EVAL.match(line)
                if m:
                    out.append((f"{os.path.basename(path)}:{lineno}", m.group(1), m.group(2).strip()))
    return out


@pytest.mark.skipif(not os.path.isdir(CONFORMANCE), reason="conformance files not present")
def test_conformance_expressions_parse():
    exprs = _conformance_expressions()
    assert len(exprs) >= 560
    failures = []
    for where, kind, text in exprs:
        try:
            parse_expr(text)
        except ParseError as exc:
            if text not in _PARSE_FAILURES:
                failures.append(f"{where}: {text}: {exc}")
        else:
            if text in _PARSE_FAILURES:
                failures.append(f"{where}: {text}: expected a parse error")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------ speed

def test_parse_throughput():
    queries = [f'rate(http_requests_total{{job="api{i}", code=~"5.."}}[5m])' for i in range(2000)]
    queries += [f"sum by (job) (up{{instance=\"i{i}\"}}) / {i}" for i in range(2000)]
    t0 = time.perf_counter()
    for q in queries:
        parse_expr(q)
    cold = len(queries) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(5):
        for q in queries:
            parse_expr(q)
    warm = 5 * len(queries) / (time.perf_counter() - t0)
    assert warm >= 20_000, warm
    assert cold >= 1_000, cold


def test_long_chains_and_deep_nesting():
    node = parse_expr(" + ".join(["a"] * 3000))
    assert node.op == "+" and node.rhs == sel("a")
    assert format_expr(node).count("+") == 2999
    assert parse_expr("(" * 50 + "1" + ")" * 50) is not None
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_expr("(" * 5000 + "1" + ")" * 5000)


def test_cache_returns_same_tree():
    q = 'sum(rate(cached_metric{a="b"}[5m]))'
    assert parse_expr(q) is parse_expr(q)


# ------------------------------------------------------------------------------------------------ differential

def _prometheus_242():
    import shutil
    import subprocess
    exe = shutil.which("prometheus")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if "version 2.42." in (out.stdout + out.stderr) else None


def _fuzz_corpus(seed: int, count: int) -> list:
    import random
    rng = random.Random(seed)
    base = [text for _, _, text in _conformance_expressions()] or ["sum by (a) (rate(foo[5m]))"]
    pieces = ["(", ")", "{", "}", "[", "]", ":", ",", "=", "!=", "=~", "!~", '"a"', "'b'", "`c`", "@", "+", "-",
              "*", "/", "^", "%", "<", ">=", "==", " ", "5m", "1m30s", "0.5", "0x1F", "1e-3", "Inf", "NaN", "by",
              "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "start()", "end()", "sum",
              "topk", "count_values", "rate", "abs", "time()", "foo", "bar:baz", "__name__", "and", "or", "unless",
              "atan2", "#c\n", "\n", '"\\q"', '"\\xzz"', '"unterminated', "é", "$", ".", "5mm", "0s", "-5m"]
    out = set()
    while len(out) < count:
        if rng.random() < 0.4:
            q = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        else:
            q = rng.choice(base)
            for _ in range(rng.randint(1, 3)):
                i = rng.randint(0, len(q))
                p = rng.choice(pieces)
                q = q[:i] + p + q[i + (len(p) if rng.random() < 0.3 else 0):]
        out.add(q)
    return sorted(out)


@pytest.fixture(scope="module")
def prometheus_242(tmp_path_factory):
    import socket
    import subprocess
    import urllib.request
    exe = _prometheus_242()
    if exe is None:
        pytest.skip("Prometheus 2.42 is not installed")
    work = tmp_path_factory.mktemp("prom242")
    (work / "prom.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, f"--config.file={work / 'prom.yml'}", f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.skip("Prometheus 2.42 did not start")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_matches_prometheus_242(prometheus_242):
    """Every corpus query gets Prometheus' exact error or its exact /format_query text (Pretty(0))."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request
    from prom_bridge.promql.printer import pretty_expr

    corpus = [a[0] for a in test_error_messages.pytestmark[0].args[1]]
    corpus += [text for _, _, text in _conformance_expressions()]
    corpus += _fuzz_corpus(42, 1500)
    diffs = []
    for q in corpus:
        body = urllib.parse.urlencode({"query": q}).encode()
        try:
            reply = json.load(urllib.request.urlopen(f"{prometheus_242}/api/v1/format_query", body, timeout=10))
        except urllib.error.HTTPError as exc:
            reply = json.load(exc)
        if reply["status"] == "success":
            want = (True, reply["data"])
        else:
            want = (False, reply["error"].replace('invalid parameter "query": ', "", 1))
        try:
            got = (True, pretty_expr(parse_expr(q)))
        except ParseError as exc:
            got = (False, str(exc))
        if got != want:
            diffs.append(f"{q!r}\n  prometheus: {want}\n  plumbago:   {got}")
    assert not diffs, f"{len(diffs)} of {len(corpus)} differ:\n" + "\n".join(diffs[:20])
