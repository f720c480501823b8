"""Render target grammar: literals, paths, calls, kwargs, pipes, templates, errors and limits."""
import math

import pytest

from graphite_api.target.grammar import (
    MAX_DEPTH, MAX_TARGET_LENGTH, Bool, Call, NoneLit, Number, PathExpr, String, TargetSyntaxError,
    format_target, parse_target, path_expressions,
)


def arg(text):
    """The single argument of f(<text>)."""
    node = parse_target(f"f({text})")
    assert isinstance(node, Call) and node.name == "f" and len(node.args) == 1 and not node.kwargs
    return node.args[0]


# --- literals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("0", 0), ("42", 42), ("-7", -7), ("007", 7), ("12345678901234567890", 12345678901234567890),
])
def test_integers(text, value):
    node = arg(text)
    assert node == Number(value) and type(node.value) is int


@pytest.mark.parametrize("text,value", [
    ("1.5", 1.5), ("-0.25", -0.25), ("10.0", 10.0),
    ("1e3", 1000.0), ("1E3", 1000.0), ("-2.5e-3", -0.0025), ("3e-2", 0.03), ("-1e5", -100000.0),
])
def test_floats_and_scientific(text, value):
    node = arg(text)
    assert isinstance(node, Number) and type(node.value) is float and node.value == value


@pytest.mark.parametrize("text,value", [("true", True), ("TRUE", True), ("True", True), ("tRuE", True),
                                        ("false", False), ("FALSE", False), ("False", False)])
def test_booleans_case_insensitive(text, value):
    assert arg(text) == Bool(value)


@pytest.mark.parametrize("text", ["None", "none", "NONE"])
def test_none(text):
    assert arg(text) == NoneLit()


@pytest.mark.parametrize("text,sign", [("inf", 1), ("INF", 1), ("Inf", 1), ("-inf", -1)])
def test_infinity(text, sign):
    node = arg(text)
    assert isinstance(node, Number) and math.isinf(node.value) and (node.value > 0) == (sign > 0)


@pytest.mark.parametrize("text,value", [
    ('"abc"', "abc"), ("'abc'", "abc"), ('""', ""), ("''", ""),
    ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'),
    ('"a,b)c(d"', "a,b)c(d"), ('"a.b.*"', "a.b.*"), ('"  spaced  "', "  spaced  "),
    ('"(^.*$)"', "(^.*$)"),
])
def test_strings_strip_outer_quotes(text, value):
    assert arg(text) == String(value)


@pytest.mark.parametrize("text,value", [
    (r'"\1 A"', r"\1 A"),          # Grafana's aliasSub replacement: the backslash must survive
    (r'"a\nb"', r"a\nb"),          # no escape processing at all
    (r'"a\"b"', r'a\"b'),          # an escaped quote does not close the string, and stays escaped
    (r"'a\'b'", r"a\'b"),
    (r'"\\"', r"\\"),
    (r'"C:\path"', r"C:\path"),
])
def test_string_backslashes_are_not_processed(text, value):
    assert arg(text) == String(value)


@pytest.mark.parametrize("text,path", [
    ("1.5.2", "1.5.2"),          # not followed by , ) or end -> a path, not a number
    ("1e", "1e"), ("1e+5", "1e+5"), ("+1", "+1"), ("1a", "1a"), ("-", "-"),
    ("trueish", "trueish"), ("true.x", "true.x"), ("none.x", "none.x"), ("inf.cpu", "inf.cpu"),
    ("Nonesuch", "Nonesuch"), ("infinity", "infinity"), ("123.foo", "123.foo"),
])
def test_words_that_only_look_like_literals_are_paths(text, path):
    assert arg(text) == PathExpr(path)


def test_literals_followed_by_whitespace_then_delimiter():
    node = parse_target("f( 1 , true ,None , inf , 'x' )")
    assert node.args == (Number(1), Bool(True), NoneLit(), Number(math.inf), String("x"))


def test_number_at_end_of_target_is_still_a_path_at_top_level():
    # The top level takes only a call or a path (graphite-web): literals are arguments.
    assert parse_target("42") == PathExpr("42")
    assert parse_target("true") == PathExpr("true")


# --- paths -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "a", "a.b.c", "servers.web-01.cpu_load", "a.*.c", "a.b?.c", "a.[a-z]x.c", "a.[!a].c",
    "a.{b,c}.d", "a.{b,c}{d,e}.f", "a.{b,{c,d}}.e", "a.{,x}y", "a.b{}", "a.**.z", "**",
    "$x.y", "a#b", "a@b:c", "a~b", "a+b", "a%20b", "a&b", "a<b>", "a[0]", "a!b", "a^b", "a/b", "a`b",
    "name;tag=v", "disk.used;datacenter=dc1;rack=a1", "a;b", "x;y=z.w", "a.b=c",
    "ünïcödé.métric", "数据.指标",
])
def test_path_expressions(text):
    assert parse_target(text) == PathExpr(text)
    assert arg(text) == PathExpr(text)


def test_identifier_equals_is_a_path_at_top_level_but_a_keyword_in_arguments():
    assert parse_target("a=b") == PathExpr("a=b")
    assert parse_target("f(a=b)") == Call("f", (), (("a", PathExpr("b")),))


@pytest.mark.parametrize("text", [
    r"a\(b\)", r"a\,b", r"a\{b\}", r"a\'b", r'a\"b', r"a\\b", r"a\|b", r"a\=b", r"a\*b", r"a\.b", r"a\ b",
])
def test_path_backslash_escapes_are_kept_verbatim(text):
    assert parse_target(text) == PathExpr(text)
    assert parse_target(f"sumSeries({text})").args == (PathExpr(text),)


def test_tagged_path_inside_call():
    node = parse_target("sumSeries(disk.used;datacenter=dc1;rack=a1)")
    assert node.args == (PathExpr("disk.used;datacenter=dc1;rack=a1"),)


def test_brace_groups_keep_commas_inside_calls():
    node = parse_target("sumSeries(a.{b,c}.d, e.{f,g})")
    assert node.args == (PathExpr("a.{b,c}.d"), PathExpr("e.{f,g}"))


# --- calls -----------------------------------------------------------------------------------------

def test_simple_call():
    assert parse_target("sumSeries(a.*.c)") == Call("sumSeries", (PathExpr("a.*.c"),))


def test_empty_call():
    assert parse_target("randomWalk()") == Call("randomWalk")
    assert parse_target("f( )") == Call("f")


def test_call_names():
    for name in ("f", "_f", "f_1", "sumSeriesWithWildcards", "A9"):
        assert parse_target(f"{name}(x)").name == name


def test_nested_calls_and_mixed_args():
    node = parse_target('alias(scale(sumSeries(a.*, b.{c,d}), 0.5), "total")')
    assert node == Call("alias", (
        Call("scale", (Call("sumSeries", (PathExpr("a.*"), PathExpr("b.{c,d}"))), Number(0.5))),
        String("total"),
    ))


def test_whitespace_around_tokens():
    node = parse_target("  alias ( sumSeries ( a.b ,  c.d ) ,  'x' )  ")
    assert node == Call("alias", (Call("sumSeries", (PathExpr("a.b"), PathExpr("c.d"))), String("x")))
    assert parse_target("f(\ta,\nb)") == Call("f", (PathExpr("a"), PathExpr("b")))


def test_grafana_wrapped_target():
    node = parse_target(r'aliasSub(sumSeries(a.*.c), "(^.*$)", "\1 A")')
    assert node == Call("aliasSub", (Call("sumSeries", (PathExpr("a.*.c"),)), String("(^.*$)"),
                                     String(r"\1 A")))


def test_grafana_wrapped_seriesbytag():
    node = parse_target(r"""aliasSub(seriesByTag('name=cpu', 'dc=~us-.*'), "(^.*$)", "\1 B")""")
    inner = node.args[0]
    assert inner == Call("seriesByTag", (String("name=cpu"), String("dc=~us-.*")))
    assert inner.raw == "seriesByTag('name=cpu', 'dc=~us-.*')"


# --- keyword arguments -----------------------------------------------------------------------------

def test_kwargs():
    node = parse_target('movingAverage(a.b, windowSize="5min", xFilesFactor=0.5)')
    assert node.args == (PathExpr("a.b"),)
    assert node.kwargs == (("windowSize", String("5min")), ("xFilesFactor", Number(0.5)))
    assert node.kwarg("xFilesFactor") == Number(0.5)
    assert node.kwarg("missing", 1) == 1


def test_kwargs_of_every_kind():
    node = parse_target("f(a=1, b=true, c=None, d=inf, e='s', g=x.y, h=sumSeries(z), i=p|q())")
    assert dict(node.kwargs) == {
        "a": Number(1), "b": Bool(True), "c": NoneLit(), "d": Number(math.inf), "e": String("s"),
        "g": PathExpr("x.y"), "h": Call("sumSeries", (PathExpr("z"),)),
        "i": Call("q", (PathExpr("p"),)),
    }


def test_kwargs_only_and_spaces_around_equals():
    assert parse_target("constantLine(value = 5)") == Call("constantLine", (), (("value", Number(5)),))


def test_equals_after_non_identifier_is_a_path():
    # `a.b=c` cannot be a keyword (a keyword name is an identifier), so it is a path, as in graphite-web
    assert parse_target("f(a.b=c)").args == (PathExpr("a.b=c"),)
    assert parse_target("f(a=)").args == (PathExpr("a="),)
    assert parse_target("f(x;t=v)").args == (PathExpr("x;t=v"),)


def test_positional_after_keyword_is_an_error():
    with pytest.raises(TargetSyntaxError, match="positional argument follows keyword argument in f"):
        parse_target("f(x=1, a.b)")


def test_duplicate_keyword_is_an_error():
    with pytest.raises(TargetSyntaxError, match="duplicate keyword argument 'x'") as info:
        parse_target("f(x=1, x=2)")
    assert info.value.column == 8


# --- pipes -----------------------------------------------------------------------------------------

def test_pipe_is_nested_call():
    assert parse_target("a|f(x)|g()") == parse_target("g(f(a,x))")


def test_pipe_spacing_and_args():
    node = parse_target("a.b.* | sumSeries() | alias('total') | scale(2, extra=true)")
    assert node == Call("scale", (Call("alias", (Call("sumSeries", (PathExpr("a.b.*"),)),
                                                 String("total"))), Number(2)),
                        (("extra", Bool(True)),))


def test_pipe_after_call_and_inside_arguments():
    assert parse_target("sumSeries(a)|f()") == Call("f", (Call("sumSeries", (PathExpr("a"),)),))
    assert parse_target("f(a|g(1), b)") == Call("f", (Call("g", (PathExpr("a"), Number(1))), PathExpr("b")))


def test_piped_call_keeps_its_own_raw_text():
    assert parse_target("a | alias('x')").raw == "alias('x')"


# --- raw text --------------------------------------------------------------------------------------

def test_raw_is_the_call_text_as_written():
    text = "sumSeries( a.b ,seriesByTag('x=y',  \"z!=w\") )"
    node = parse_target("  " + text + "   ")
    assert node.raw == text
    assert node.args[1].raw == "seriesByTag('x=y',  \"z!=w\")"


def test_raw_does_not_take_part_in_equality():
    assert Call("f", (PathExpr("a"),), raw="f( a )") == Call("f", (PathExpr("a"),))


def test_raw_with_tabs_is_exact():
    text = "f(\ta,\tb)"
    assert parse_target(text).raw == text


# --- templates -------------------------------------------------------------------------------------

def test_template_positional_and_keyword():
    assert parse_target('template(a.$1.$2, "b", 3)') == PathExpr("a.b.3")
    assert parse_target('template(a.$x.c, x="b")') == PathExpr("a.b.c")


def test_template_inside_call_and_call_inside_template():
    assert parse_target('sumSeries(template(a.$x, x="b"))') == Call("sumSeries", (PathExpr("a.b"),))
    node = parse_target('template(sumSeries(a.$x.*, c.$x), x="srv")')
    assert node == Call("sumSeries", (PathExpr("a.srv.*"), PathExpr("c.srv")))


def test_template_request_params_override_and_extend():
    assert parse_target('template(a.$x.c, x="b")', {"x": "q"}) == PathExpr("a.q.c")
    assert parse_target("template(a.$x.$y)", {"x": "1", "y": "two"}) == PathExpr("a.1.two")
    assert parse_target('template(a.$1, "b")', {"1": "z"}) == PathExpr("a.z")


def test_template_params_need_a_template_call():
    # graphite-web substitutes only inside template(); a bare `$x` stays as written
    assert parse_target("a.$x.c", {"x": "q"}) == PathExpr("a.$x.c")


def test_template_whole_token_becomes_a_value():
    assert parse_target("template(scale(a.b, $f), f=2)") == Call("scale", (PathExpr("a.b"), Number(2)))
    assert parse_target('template(scale(a.b, $f), f="2.5")').args[1] == Number(2.5)
    assert parse_target('template(aliasByNode(a.b, $n), n="1")').args[1] == Number(1)
    assert parse_target('template(alias(a.b, $n), n="x y")').args[1] == String("x y")
    assert parse_target('template(alias(a.b, $n), n="1.2.3")').args[1] == String("1.2.3")
    assert parse_target("template(scale(a.b, $f))", {"f": "-3"}).args[1] == Number(-3)


def test_template_substitutes_in_kwargs():
    node = parse_target('template(f(a.$x, other=b.$x), x="q")')
    assert node == Call("f", (PathExpr("a.q"),), (("other", PathExpr("b.q")),))


def test_template_leaves_strings_alone():
    node = parse_target('template(seriesByTag("name=$x"), x="q")')
    assert node.args == (String("name=$x"),)
    assert node.raw == 'seriesByTag("name=$x")'


def test_nested_template_uses_its_own_values():
    node = parse_target('template(f(template(a.$x, x="in"), b.$x), x="out")')
    assert node == Call("f", (PathExpr("a.in"), PathExpr("b.out")))


def test_template_then_pipe_and_piped_into_template():
    assert parse_target('template(a.$x, x="b")|sumSeries()') == Call("sumSeries", (PathExpr("a.b"),))
    assert parse_target('a.$x|template(x="q")') == PathExpr("a.q")


def test_template_numbers_are_printed_like_python():
    assert parse_target("template(a.$x, x=1.5)") == PathExpr("a.1.5")
    assert parse_target("template(a.$x, x=7)") == PathExpr("a.7")


@pytest.mark.parametrize("text", [
    "template(a.b, x=c.d)", "template(a.b, true)", "template(a.b, x=None)", "template(a.b, f(x))",
])
def test_template_rejects_non_literal_values(text):
    with pytest.raises(TargetSyntaxError, match=r"invalid template\(\) syntax, only string/numeric"):
        parse_target(text)


def test_template_needs_a_series_first():
    with pytest.raises(TargetSyntaxError, match=r"template\(\) needs a path or call"):
        parse_target("template(1)")
    with pytest.raises(TargetSyntaxError, match=r"template\(\) needs a path or call"):
        parse_target("template()")


# --- path_expressions ------------------------------------------------------------------------------

def test_path_expressions_collects_paths_in_order_without_duplicates():
    node = parse_target("sumSeries(a.*, f(b, k=c.d), a.*, 'str', 5)")
    assert path_expressions(node) == ["a.*", "b", "c.d"]


def test_path_expressions_uses_seriesbytag_raw_text():
    node = parse_target("""group(seriesByTag('name=x', "dc=y"), seriesByTag( 'a=b' ), x.y)""")
    assert path_expressions(node) == ["""seriesByTag('name=x', "dc=y")""", "seriesByTag( 'a=b' )", "x.y"]


def test_path_expressions_of_several_targets():
    targets = [parse_target("a.b"), parse_target("f(a.b, c)"), parse_target("seriesByTag('n=1')")]
    assert path_expressions(targets) == ["a.b", "c", "seriesByTag('n=1')"]


def test_path_expressions_of_a_bare_path_and_after_templates():
    assert path_expressions(parse_target("a.b.c")) == ["a.b.c"]
    assert path_expressions(parse_target('template(f(a.$x), x="q")')) == ["a.q"]


def test_path_expressions_of_a_built_seriesbytag_uses_canonical_text():
    assert path_expressions(Call("seriesByTag", (String("a=b"), String("c=d")))) == \
        ['seriesByTag("a=b","c=d")']


# --- format_target ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("a.b", "a.b"),
    ("sumSeries( a.* , b )", "sumSeries(a.*,b)"),
    ("f(1, 2.5, 'x', true, None, inf, -inf, k=False)", 'f(1,2.5,"x",true,None,inf,-inf,k=false)'),
    ("""f('say "hi"')""", """f('say "hi"')"""),
    ("a|f()|g(1)", "g(f(a),1)"),
    ("f(1e20)", "f(1e20)"),
])
def test_format_target(text, expected):
    assert format_target(parse_target(text)) == expected


@pytest.mark.parametrize("text", [
    r'aliasSub(sumSeries(a.*.c),"(^.*$)","\1 A")',
    "f(g(h(a.{b,c},x=1.5e-07)),y=-3)",
    "seriesByTag('name=x','dc!=~us.*')",
])
def test_format_round_trips(text):
    node = parse_target(text)
    assert parse_target(format_target(node)) == node


def test_format_rejects_non_nodes():
    with pytest.raises(TypeError):
        format_target(object())


# --- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,column,expected", [
    ("f(", 3, "Expected argument or ')'"),
    ("f(a", 4, "Expected ',' or ')'"),
    ("f(a,)", 5, "Expected argument"),
    ("f(,a)", 3, "Expected argument or ')'"),
    ("f(a b)", 5, "Expected ',' or ')'"),
    ("f(1 2)", 5, "Expected ',' or ')'"),
    ('f("abc)', 3, "Expected argument or ')'"),
    ("f(a))", 5, "Expected ',' or ')' or '|' or end of target"),
    ("f(a) b", 6, "Expected ',' or ')' or '|' or end of target"),
    ("a b", 3, "Expected ',' or ')' or '|' or end of target"),
    ("a..b", 3, "Expected path element after '.'"),
    ("a.", 3, "Expected path element after '.'"),
    (".a", 1, "Expected function call or path expression"),
    ("(a)", 1, "Expected function call or path expression"),
    ("a.{b,c", 3, "Expected '}' to close '{'"),
    ("f(a.{b,c)", 5, "Expected '}' to close '{'"),
    ("a.{b.c}", 5, "'.' is not allowed inside '{...}'"),
    ("a\\", 3, "Expected a character after '\\'"),
    ("f(a)|", 6, "Expected function call"),
    ("a|b", 3, "Expected function call"),
    ("f(g(h(a,)))", 9, "Expected argument"),
    ("f(x=g(()", 7, "Expected argument or ')'"),
    ("f('a''b')", 6, "Expected ',' or ')'"),
    ("f('a\nb')", 3, "Expected argument or ')'"),
    ("1f(a)", 3, "Expected ',' or ')' or '|' or end of target"),
])
def test_syntax_errors_say_where_and_what(text, column, expected):
    with pytest.raises(TargetSyntaxError) as info:
        parse_target(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.column == column
    assert f"at column {column}" in str(err)
    assert expected in str(err)


def test_error_message_names_what_was_found():
    with pytest.raises(TargetSyntaxError, match=r"\(found 'b'\)"):
        parse_target("f(a b)")
    with pytest.raises(TargetSyntaxError, match=r"\(found end of target\)"):
        parse_target("f(a")


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_target(text):
    with pytest.raises(TargetSyntaxError, match="empty target"):
        parse_target(text)


def test_target_length_limit():
    ok = "a." * ((MAX_TARGET_LENGTH - 1) // 2) + "a"
    assert len(ok) <= MAX_TARGET_LENGTH
    assert isinstance(parse_target(ok), PathExpr)
    with pytest.raises(TargetSyntaxError, match=f"longer than {MAX_TARGET_LENGTH} characters"):
        parse_target("a" * (MAX_TARGET_LENGTH + 1))


# --- nesting limits --------------------------------------------------------------------------------

def nested(depth, inner="a"):
    return "f(" * depth + inner + ")" * depth


def test_nesting_up_to_the_limit_parses():
    node = parse_target(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH):
        assert isinstance(node, Call)
        node = node.args[0]
    assert node == PathExpr("a")


def test_nesting_up_to_the_limit_through_kwargs_and_pipes():
    text = "f(x=" * 50 + "a|g()" + ")" * 50
    assert isinstance(parse_target(text), Call)


def test_nesting_beyond_the_limit_fails():
    with pytest.raises(TargetSyntaxError, match=f"more than {MAX_DEPTH} levels deep") as info:
        parse_target(nested(MAX_DEPTH + 1))
    assert info.value.column == 2 * MAX_DEPTH + 2


def test_nesting_bomb_fails_fast():
    # 30,000 open parentheses, no closing ones: refused by the pre-scan, never reaches pyparsing
    with pytest.raises(TargetSyntaxError, match="levels deep"):
        parse_target("f(" * 30000)


def test_parentheses_inside_strings_do_not_count():
    text = "f('" + "(" * 500 + "')"
    assert parse_target(text) == Call("f", (String("(" * 500),))


def test_pipe_chains_count_as_nesting():
    assert isinstance(parse_target("a" + "|f()" * MAX_DEPTH), Call)
    with pytest.raises(TargetSyntaxError, match="counting pipes"):
        parse_target("a" + "|f()" * (MAX_DEPTH + 1))
    with pytest.raises(TargetSyntaxError, match="levels deep"):
        parse_target("a" + "|f()" * 16000)


def test_deep_error_reports_innermost_position():
    text = nested(60, "a,")
    with pytest.raises(TargetSyntaxError, match="Expected argument") as info:
        parse_target(text)
    assert info.value.column == 2 * 60 + 3


def test_nested_template_failure_is_not_exponential():
    # each template fails only after its inner expression parsed; a backtracking grammar would redo it
    text = "template(" * 40 + "a.b" + ", c.d)" * 40
    with pytest.raises(TargetSyntaxError, match=r"invalid template\(\) syntax"):
        parse_target(text)


def test_many_arguments():
    node = parse_target("sumSeries(" + ",".join(f"a.b{i}" for i in range(3000)) + ")")
    assert len(node.args) == 3000 and node.args[-1] == PathExpr("a.b2999")


def test_results_are_immutable():
    node = parse_target("f(a)")
    with pytest.raises(AttributeError):
        node.name = "g"
    assert hash(node) == hash(Call("f", (PathExpr("a"),)))
