"""PromQL printer: Prometheus 2.42's canonical String() form and its round trip through the parser."""
from __future__ import annotations

import dataclasses
import glob
import math
import os
import re

import pytest

from prom_bridge.promql.ast import NumberLiteral, StringLiteral, VectorSelector
from prom_bridge.promql.parser import parse_expr
from prom_bridge.promql.printer import format_expr, go_float, pretty_expr


def canon(node):
    """The tree with matchers sorted: the printer sorts them, so only their order may change."""
    if isinstance(node, VectorSelector):
        return dataclasses.replace(node, matchers=tuple(sorted(node.matchers, key=str)))
    if isinstance(node, tuple):
        return tuple(canon(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.replace(node, **{f.name: canon(getattr(node, f.name))
                                            for f in dataclasses.fields(node) if f.init})
    return node


@pytest.mark.parametrize("text,expected", [
    ("1", "1"), ("1.5", "1.5"), ("-2.5", "-2.5"), ("1e6", "1e+06"), ("123456", "123456"),
    ("1234567", "1.234567e+06"), ("0.0001", "0.0001"), ("0.00001", "1e-05"), ("Inf", "+Inf"),
    ("-Inf", "-Inf"), ("NaN", "NaN"), ("0x10", "16"), ("1e-7", "1e-07"), ("1e21", "1e+21"),
    ('"a\\nb"', '"a\\nb"'), ("'single'", '"single"'), ("`raw\"q`", '"raw\\"q"'), ('"é"', '"é"'),
    ("foo", "foo"), ('foo{b="2", a="1"}', 'foo{a="1",b="2"}'), ('{__name__="foo"}', '{__name__="foo"}'),
    ('{__name__="foo", a="b"}', '{__name__="foo",a="b"}'), ('foo{a=~"x.*", b!~"y", c!="z"}',
                                                           'foo{a=~"x.*",b!~"y",c!="z"}'),
    ('foo{a="quote\\"d"}', 'foo{a="quote\\"d"}'),
    ("foo offset 5m", "foo offset 5m"), ("foo offset -90m", "foo offset -1h30m"),
    ("foo offset 7d", "foo offset 1w"), ("foo offset 10d", "foo offset 10d"), ("foo[365d]", "foo[1y]"),
    ("foo @ 100", "foo @ 100.000"), ("foo @ 1.5", "foo @ 1.500"), ("foo @ start()", "foo @ start()"),
    ("foo offset 1m @ end()", "foo @ end() offset 1m"),
    ("foo[5m] offset 1m @ 10", "foo[5m] @ 10.000 offset 1m"), ("foo[1500ms]", "foo[1s500ms]"),
    ("foo[10m:1m]", "foo[10m:1m]"), ("foo[10m:]", "foo[10m:]"),
    ("rate(foo[5m])[1h:] offset 5m @ start()", "rate(foo[5m])[1h:] @ start() offset 5m"),
    ("1+2*3", "1 + 2 * 3"), ("(1+2)*3", "(1 + 2) * 3"), ("-1^2", "-1 ^ 2"), ("-foo", "-foo"),
    ("a > bool 1", "a > bool 1"), ("a + on(x,y) b", "a + on (x, y) b"), ("a + on() b", "a + on () b"),
    ("a + ignoring(x) b", "a + ignoring (x) b"), ("a * on(x) group_left(y) b", "a * on (x) group_left (y) b"),
    ("a * ignoring(x) group_right b", "a * ignoring (x) group_right () b"),
    ("a and on(x) b", "a and on (x) b"), ("a or b unless c", "a or b unless c"), ("a atan2 b", "a atan2 b"),
    ("sum(foo)", "sum(foo)"), ("sum by (a,b) (foo)", "sum by (a, b) (foo)"),
    ("sum(foo) by (a)", "sum by (a) (foo)"), ("sum by () (foo)", "sum(foo)"),
    ("avg without (a) (foo)", "avg without (a) (foo)"), ("avg without () (foo)", "avg without () (foo)"),
    ("topk(5, foo)", "topk(5, foo)"), ('count_values("v", foo)', 'count_values("v", foo)'),
    ("SUM(foo)", "sum(foo)"), ("time()", "time()"),
    ('label_replace(up, "a", "$1", "b", "(.*)")', 'label_replace(up, "a", "$1", "b", "(.*)")'),
    ("# comment\nfoo # trailing", "foo"),
])
def test_format(text, expected):
    assert format_expr(parse_expr(text)) == expected


def test_go_float_matches_fmt_sprint():
    assert go_float(-0.0) == "-0"
    assert go_float(0.1 + 0.2) == "0.30000000000000004"
    assert go_float(100000.0) == "100000"
    assert go_float(1e100) == "1e+100"
    assert go_float(-1.5e-10) == "-1.5e-10"
    assert go_float(math.pi) == "3.141592653589793"


def test_literals_format_directly():
    assert format_expr(NumberLiteral(2.0)) == "2"
    assert format_expr(StringLiteral("tab\there")) == '"tab\\there"'
    assert format_expr(StringLiteral("\x01")) == '"\\x01"'


def test_pretty_short_is_string_form():
    q = "sum by (job) (rate(http_requests_total[5m]))"
    assert pretty_expr(parse_expr(q)) == q


def test_pretty_splits_long_expressions():
    q = ('sum by (job, instance) (rate(http_requests_total{job="api-server", code=~"5..", method="GET"}[5m])) '
         '/ sum by (job, instance) (rate(http_requests_total{job="api-server"}[5m]))')
    out = pretty_expr(parse_expr(q))
    assert out.split("\n") == [
        '  sum by (job, instance) (rate(http_requests_total{code=~"5..",job="api-server",method="GET"}[5m]))',
        "/",
        '  sum by (job, instance) (rate(http_requests_total{job="api-server"}[5m]))',
    ]
    assert canon(parse_expr(out)) == canon(parse_expr(q))


_EVAL = re.compile(r"^\s*eval(?:_fail|_ordered)?\s+instant\s+at\s+\S+\s+(.*)$")


@pytest.mark.skipif(not os.path.isdir("/work/shared/conformance/promql-v2.42"), reason="no conformance files")
def test_round_trip_of_conformance_expressions():
    seen = 0
    for path in sorted(glob.glob("/work/shared/conformance/promql-v2.42/*.test")):
        for line in open(path, encoding="utf-8"):
            m = _EVAL.match(line)
            if not m:
                continue
            node = parse_expr(m.group(1))
            text = format_expr(node)
            # Printing is a fixed point and preserves the tree (NaN literals compare unequal, so compare text).
            again = parse_expr(text)
            assert format_expr(again) == text, (m.group(1), text)
            assert canon(again) == canon(node) or "NaN" in text, (m.group(1), text)
            assert canon(parse_expr(pretty_expr(node))) == canon(node) or "NaN" in text
            seen += 1
    assert seen >= 560
