"""Alias functions: names as graphite-web 1.1.10 makes them; aliasSub's RE2 + Python template substitution."""
from __future__ import annotations

import re

import pytest

from graphite_api.functions.alias import parse_template, regex_sub
from graphite_api.functions.registry import FunctionError
from storage.matchers import BadRegex

from .test_special import NAN, Pipe, call, mk, vals


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("alias") / "data")
    yield p
    p.close()


# --- regex_sub agrees with re.sub -----------------------------------------------------------------------------------

SUB_CASES = [
    ("(^.*$)", r"\1 A", "app.web1.requests.count"),          # Grafana's wrapper
    ("(^.*$)", r"\g<1> B", "disk.used;dc=east;host=h1"),
    ("^.*TCP(\\d+)", r"\1", "ip.192.TCP8080.count"),
    ("x*", "-", "a.b.c"),
    ("$", "X", "ab"),
    ("^", "X", "abc"),
    ("", "-", ""),
    ("", "-", "abc"),
    ("a|", "-", "ab"),
    ("b", r"\g<0>\g<0>", "abcb"),
    ("(?P<n>b)", r"[\g<n>]", "abc"),
    ("(b)", r"\n\t\\\. \0 \101 \1\1", "abc"),
    ("(a)|b", r"<\1>", "ab"),
    ("é", "e", "café é"),
    (r"\d+", r"#\g<0>#", "a12b3"),
    (r"\b", "|", "ab cd.ef"),
    (r"\.", "_", "a.b.c"),
    (r"([a-z]+)\.([a-z]+)", r"\2.\1", "ab.cd.ef.gh"),
    ("(x)?y", r"[\1]", "y xy"),
    ("(1)(2)(3)(4)(5)(6)(7)(8)(9)(10)", r"\10-\1", "12345678910"),
    ("no match", r"\\1", "abc"),
    ("a", "é\\\\", "banana"),
]


@pytest.mark.parametrize("pattern, repl, text", SUB_CASES)
def test_regex_sub_matches_python(pattern, repl, text):
    assert regex_sub(pattern, repl, text) == re.sub(pattern, repl, text)


@pytest.mark.parametrize("repl", [r"\q", "\\", r"\g", r"\g<", r"\g<>", r"\g<x>", r"\g<-1>", r"\2", r"\g<9>",
                                  r"\g<a b>", r"\777"])
def test_bad_templates_are_errors(repl):
    with pytest.raises((re.error, IndexError)):
        re.sub("(a)", repl, "a")
    with pytest.raises(FunctionError):
        regex_sub("(a)", repl, "a")


def test_template_pieces():
    assert parse_template(r"x\1y\g<2>", 2, ()) == ("x", 1, "y", 2)
    assert parse_template(r"\g<n>", 1, (("n", 1),)) == (1,)
    assert parse_template(r"\12", 12, ()) == (12,)
    assert parse_template(r"\123", 12, ()) == ("S",)          # three octal digits are a character


def test_bad_regex_is_a_user_error():
    with pytest.raises(BadRegex):
        regex_sub("(", "x", "abc")
    with pytest.raises(BadRegex):
        regex_sub("(?=a)", "x", "abc")                          # no lookaround in RE2


def test_alias_sub_grafana_wrapper(pipe):
    out = pipe.render('aliasSub(a.b.*, "(^.*$)", "\\1 A")')
    assert [s.name for s in out] == ["a.b.c A", "a.b.d A"]
    assert out[0].tags == {"name": "a.b.c"}
    [s] = pipe.render('aliasSub(seriesByTag("name=disk.used"), "(^.*$)", "\\1 A")')
    assert s.name == "disk.used;dc=east;host=h1 A"


def test_alias_sub_bad_arguments(pipe):
    with pytest.raises(FunctionError, match="replace"):
        pipe.render('aliasSub(a.b.c, "x")')
    with pytest.raises(BadRegex):
        pipe.render('aliasSub(a.b.c, "[", "x")')


# --- alias, aliasByNode, aliasByTags, aliasByMetric ----------------------------------------------------------------

def test_alias(pipe):
    out = pipe.render('alias(a.b.*, "Large Blue")')
    assert [s.name for s in out] == ["Large Blue", "Large Blue"]
    assert [s.tags for s in out] == [{"name": "a.b.c"}, {"name": "a.b.d"}]
    assert vals(out[0]) == [0.0, None, 2.0, 3.0, 4.0, 0.0, 1.0, 2.0, None, 4.0]
    assert pipe.render('alias(no.such, "x")') == []


@pytest.mark.parametrize("target, names", [
    ("aliasByNode(a.b.*, 1)", ["b", "b"]),
    ("aliasByNode(a.b.*, 0, -1)", ["a.c", "a.d"]),
    ('aliasByNode(a.b.c, 1, "name", 7)', ["b.a.b.c."]),
    ("aliasByNode(changed(a.b.c), 2)", ["c"]),                       # a call: its first path expression
    ('aliasByNode(consolidateBy(a.b.c, "max"), 0, 1)', ["a.b"]),
    ('aliasByTags(seriesByTag("dc=east"), "dc", "name", 0, "nope")', ["east.disk.used.disk."]),
    ('aliasByNode(seriesByTag("dc=east"), "host", 1)', ["h1.used"]),
])
def test_alias_by_node(pipe, target, names):
    assert [s.name for s in pipe.render(target)] == names


def test_alias_by_node_requires_nodes(pipe):
    with pytest.raises(FunctionError, match="nodes"):
        pipe.render("aliasByNode(a.b.c)")
    with pytest.raises(FunctionError, match="nodes"):
        pipe.render("aliasByNode(a.b.c, 1.5)")


def test_alias_by_metric():
    out = call("aliasByMetric", [mk("carbon.agents.graphite.creates", [1]), mk("sumSeries(a.b.*,x.y)", [1]),
                                 mk("scale(a.b.c,2)", [1]), mk("plain", [1])])
    assert [s.name for s in out] == ["creates", "y", "c", "plain"]


# --- aliasQuery ------------------------------------------------------------------------------------------------------

def test_alias_query(pipe):
    out = pipe.render('aliasQuery(a.b.*, "a\\.b\\.(.*)", "a.b.\\1", "v %d")')
    assert [s.name for s in out] == ["v 4", "v 9"]
    out = pipe.render('aliasQuery(a.b.*, "a\\.b\\.(.*)", "neg.x", "%s / %.1f" )'.replace("%s / %.1f", "last %s"))
    assert [s.name for s in out] == ["last 0.0", "last 0.0"]


def test_alias_query_errors(pipe):
    with pytest.raises(FunctionError, match="No series found with query: no.c"):
        pipe.render('aliasQuery(a.b.c, "a\\.b", "no", "%d")')
    with pytest.raises(FunctionError, match="newName"):
        pipe.render('aliasQuery(a.b.c, "x", "x", "no format")')
    with pytest.raises(FunctionError, match="does not parse"):
        pipe.render('aliasQuery(a.b.c, ".*", "f(", "%d")')


# --- legendValue ---------------------------------------------------------------------------------------------------

def test_legend_value_golden():
    series = [mk("a.b.c", [0, NAN, 2, 3, 4, 0, 1, 2, NAN, 4]), mk("a.b.d", [i * 1234.5678 for i in range(20, 30)])]
    out = call("legendValue", [s.copy() for s in series], "avg", "max", "total", "last", "count", "median", "bogus")
    assert out[0].name == "a.b.c (avg: 2.0) (max: 4.0) (total: 16.0) (last: 4.0) (count: 8) (median: 2.0) (bogus: (?))"
    assert out[1].name == ("a.b.d (avg: 30246.911100000005) (max: 35802.4662) (total: 302469.11100000003) "
                           "(last: 35802.4662) (count: 10) (median: 30246.9111) (bogus: (?))")
    out = call("legendValue", [s.copy() for s in series], "avg", "max", "si")
    assert out[0].name == "a.b.c               avg  2.00      max  4.00      "
    assert out[1].name == "a.b.d               avg  30.25k    max  35.80k    "
    out = call("legendValue", [s.copy() for s in series], "avg", "binary")
    assert out[1].name == "a.b.d               avg  29.54Ki   "


def test_legend_value_every_type():
    s = mk("x", [3, NAN, -1, 4, 2])
    got = {}
    for t in ["average", "avg", "avg_zero", "median", "sum", "total", "min", "max", "diff", "stddev", "count",
              "range", "rangeOf", "multiply", "last", "current", "sumSeries"]:
        [out] = call("legendValue", [s.copy()], t)
        got[t] = out.name[len("x ("):-1].split(": ", 1)[1]
    assert got == {"average": "2.0", "avg": "2.0", "avg_zero": "1.6", "median": "2.5", "sum": "8.0", "total": "8.0",
                   "min": "-1.0", "max": "4.0", "diff": "-2.0", "stddev": str(3.5 ** 0.5), "count": "4",
                   "range": "5.0", "rangeOf": "5.0", "multiply": "None", "last": "2.0", "current": "2.0",
                   "sumSeries": "(?)"}


def test_legend_value_all_null_and_empty():
    [s] = call("legendValue", [mk("x", [NAN, NAN])], "avg", "count", "avg_zero")
    assert s.name == "x (avg: None) (count: 0) (avg_zero: 0.0)"
    [s] = call("legendValue", [mk("x", [NAN])], "max", "si")
    assert s.name == "x                   max  None      "
    assert call("legendValue", [], "avg") == []


def test_legend_value_sums_left_to_right():
    values = [0.1] * 10 + [1e16, 1.0, -1e16]
    [s] = call("legendValue", [mk("x", values)], "sum")
    total = 0
    for v in values:
        total += v
    assert s.name == f"x (sum: {total})"


def test_legend_value_needs_a_type(pipe):
    with pytest.raises(FunctionError, match="legendValue"):
        pipe.render("legendValue(a.b.c)")


# --- upper / lower ---------------------------------------------------------------------------------------------------

def test_upper_lower(pipe):
    [s] = pipe.render("upper(a.b.c)")
    assert s.name == "A.B.C" and s.tags == {"name": "a.b.c"}
    [s] = pipe.render("upper(a.b.c, 0, -1, 99, -99)")
    assert s.name == "A.b.C"
    [s] = pipe.render('lower(alias(a.b.c, "ABC"))')
    assert s.name == "abc"
    [s] = pipe.render('lower(alias(a.b.c, "ABC"), 1)')
    assert s.name == "AbC"
    with pytest.raises(FunctionError, match="pos"):
        pipe.render('upper(a.b.c, "x")')
