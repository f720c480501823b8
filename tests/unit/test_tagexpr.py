"""Graphite tag expressions -> storage matchers; seriesByTag argument lists."""
import pytest

from graphite_api.target.tagexpr import (
    EMPTY_MATCH_ERROR, TagExpressionError, parse_series_by_tag_args, parse_tag_expression,
    split_series_by_tag_string,
)
from storage.matchers import EQ, NEQ, NRE, RE, Matcher


# --- single expressions ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,name,op,value", [
    ("dc=east", "dc", EQ, "east"),
    ("dc!=east", "dc", NEQ, "east"),
    ("dc=~us-.*", "dc", RE, "us-.*"),
    ("dc!=~us-.*", "dc", NRE, "us-.*"),
    ("a=b=c", "a", EQ, "b=c"),                 # the first operator wins, the rest is the value
    ("a=!b", "a", EQ, "!b"),
    ("a=~~b", "a", RE, "~b"),
    ("a!=~=x", "a", NRE, "=x"),
    ("my tag=my value", "my tag", EQ, "my value"),
    ("host=10.0.0.1", "host", EQ, "10.0.0.1"),
    ("k=ünï", "k", EQ, "ünï"),
    ("dc==", "dc", EQ, "="),                   # graphite-web's grammar reads these the same way
    ("dc~=x", "dc~", EQ, "x"),
])
def test_operators(text, name, op, value):
    m = parse_tag_expression(text)
    assert isinstance(m, Matcher)
    assert (m.name, m.op, m.value, m.anchor) == (name, op, value, "start")


@pytest.mark.parametrize("text,label", [("name=cpu.load", "__name__"), ("name=~cpu\\..*", "__name__"),
                                        ("name!=x", "__name__"), ("name^=cpu", "__name__"),
                                        ("names=x", "names"), ("__name__=x", "__name__")])
def test_name_tag_is_the_metric_name_label(text, label):
    assert parse_tag_expression(text).name == label


def test_equality_semantics():
    m = parse_tag_expression("dc=east")
    assert m.matches("east") and not m.matches("eastern") and not m.matches("")
    m = parse_tag_expression("dc!=east")
    assert not m.matches("east") and m.matches("west") and m.matches("")


def test_regex_is_anchored_at_the_start_only():
    m = parse_tag_expression("dc=~us")
    assert m.matches("us") and m.matches("us-east")       # end not anchored (graphite-web re.match)
    assert not m.matches("eu-us")                         # start anchored
    m = parse_tag_expression("dc!=~us")
    assert not m.matches("us-east") and m.matches("eu-us")


def test_regex_already_starting_with_caret():
    m = parse_tag_expression("dc=~^us|eu")
    assert m.matches("us-1") and m.matches("eu-1")


def test_regex_alternation_is_anchored_as_a_group():
    m = parse_tag_expression("dc=~us|eu")
    assert m.matches("eu-1") and not m.matches("x-eu")


def test_prefix_operator():
    m = parse_tag_expression("dc^=us.e")
    assert m.op == RE and m.anchor == "start"
    assert m.matches("us.east") and m.matches("us.e")
    assert not m.matches("usXeast")                      # the prefix is literal, not a regex
    assert not m.matches("xus.e")
    assert not m.matches("")


def test_prefix_with_regex_metacharacters():
    m = parse_tag_expression("k^=a(b)*[c]^$")
    assert m.matches("a(b)*[c]^$tail") and not m.matches("ab")


def test_empty_values():
    # `k=` is "k absent"; `k!=` is "k present"; `k=~` matches all; `k!=~` matches none
    assert parse_tag_expression("k=").matches("") and not parse_tag_expression("k=").matches("v")
    assert not parse_tag_expression("k!=").matches("") and parse_tag_expression("k!=").matches("v")
    assert parse_tag_expression("k=~").matches("") and parse_tag_expression("k=~").matches("v")
    assert not parse_tag_expression("k!=~").matches("") and not parse_tag_expression("k!=~").matches("v")
    assert parse_tag_expression("k^=").matches("")


def test_regex_bomb_compiles_and_runs_linearly():
    m = parse_tag_expression("k=~(a*)*b")
    assert not m.matches("a" * 100_000)
    assert m.matches("aaab")
    m = parse_tag_expression("k=~(a|aa)+$")
    assert not m.matches("a" * 50_000 + "!")


@pytest.mark.parametrize("text", [
    "", "dc", "=east", "!=east", "=~x", "dc!x", "a;b=c", "a=b;c", ";a=b", "!a=b",
    "a^b=c", "^=x", "dc=~x;y",
])
def test_malformed_expressions(text):
    with pytest.raises(TagExpressionError) as info:
        parse_tag_expression(text)
    assert isinstance(info.value, ValueError)
    assert f"invalid tag expression {text!r}" in str(info.value)
    assert "expected tag=value" in str(info.value)


def test_bad_regex_names_expression():
    with pytest.raises(TagExpressionError, match=r"invalid tag expression 'dc=~\(unclosed'"):
        parse_tag_expression("dc=~(unclosed")
    with pytest.raises(TagExpressionError, match=r"invalid tag expression 'dc!=~a\{2,1\}'"):
        parse_tag_expression("dc!=~a{2,1}")


def test_backreference_is_refused_by_re2():
    with pytest.raises(TagExpressionError, match="invalid tag expression"):
        parse_tag_expression(r"dc=~(a)\1")


def test_non_string_expression():
    with pytest.raises(TagExpressionError, match="not a string"):
        parse_tag_expression(None)


# --- argument lists --------------------------------------------------------------------------------

def test_series_by_tag_args():
    ms = parse_series_by_tag_args(["name=cpu", "dc=~us.*", "env!=dev"])
    assert [(m.name, m.op, m.value) for m in ms] == [("__name__", EQ, "cpu"), ("dc", RE, "us.*"),
                                                    ("env", NEQ, "dev")]


def test_series_by_tag_args_are_deduplicated_in_order():
    ms = parse_series_by_tag_args(["a=1", "b=2", "a=1", "b=2", "c!=3"])
    assert [str(m) for m in ms] == ["a='1'", "b='2'", "c!='3'"]


@pytest.mark.parametrize("args", [
    ["dc!=east"], ["dc="], ["dc=~"], ["dc=~.*"], ["dc=~x*"], ["dc!=~x"], ["dc^="],
    ["dc!=a", "env=~.*", "x="], [],
])
def test_at_least_one_expression_must_reject_empty(args):
    with pytest.raises(TagExpressionError) as info:
        parse_series_by_tag_args(args)
    assert str(info.value) == EMPTY_MATCH_ERROR == "At least one tagspec must not match the empty string"


@pytest.mark.parametrize("args", [
    ["dc=east"], ["dc!="], ["dc=~.+"], ["dc=~x"], ["dc!=~"], ["dc!=~.*"], ["dc^=u"],
    ["a!=x", "b=~.*", "name=cpu"],
])
def test_expressions_that_require_a_value_satisfy_the_check(args):
    assert parse_series_by_tag_args(args)


def test_bad_expression_inside_args_is_reported_first():
    with pytest.raises(TagExpressionError, match="invalid tag expression 'oops'"):
        parse_series_by_tag_args(["name=x", "oops"])


# --- the quoted argument string ---------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("'a=b'", ["a=b"]),
    ("'a=b', \"c!=~d.*\"", ["a=b", "c!=~d.*"]),
    ("  'a=b'  ,  'c=d'  ", ["a=b", "c=d"]),
    ("'a=b','c=d','e=f'", ["a=b", "c=d", "e=f"]),
    ("\"it's=x\"", ["it's=x"]),
    ("'say=\"hi\"'", ['say="hi"']),
    ("'a,b=c'", ["a,b=c"]),
    ("''", [""]),
    ("", []),
    ("   ", []),
    ("seriesByTag('name=x', \"dc=y\")", ["name=x", "dc=y"]),
    ("'a=\\1'", ["a=\\1"]),                      # no escape processing
])
def test_split_series_by_tag_string(text, expected):
    assert split_series_by_tag_string(text) == expected


@pytest.mark.parametrize("text,message", [
    ("'a=b' 'c=d'", "Missing comma between quotes"),
    ("'a=b''c=d'", "Missing comma between quotes"),
    ("'a=b',,'c=d'", "Too many commas between quotes"),
    ("'a=b', , 'c=d'", "Too many commas between quotes"),
    (",'a=b'", "Too many commas between quotes"),
    ("'a=b',", "Too many commas between quotes"),
    ("'a=b'x", "Invalid character outside quotes"),
    ("a=b", "Invalid character outside quotes"),
    ("'a=b', 5", "Invalid character outside quotes"),
    ("seriesByTag('a=b', x.y)", "Invalid character outside quotes"),
    ("'a=b", "Unclosed quotes"),
    ("'a=b', \"c=d", "Unclosed quotes"),
    ("'a=b\"", "Unclosed quotes"),
])
def test_split_errors(text, message):
    with pytest.raises(TagExpressionError) as info:
        split_series_by_tag_string(text)
    assert str(info.value) == message


def test_split_then_parse_round_trip():
    ms = parse_series_by_tag_args(split_series_by_tag_string("'name=cpu', 'dc=~us'"))
    assert [(m.name, m.op) for m in ms] == [("__name__", EQ), ("dc", RE)]
