"""Graphite glob patterns: node splitting, every metacharacter, globstar, tags, limits and errors."""
import pytest

from graphite_api.target.glob import (
    MAX_ALTERNATIVES, MAX_BRACE_DEPTH, MAX_PATTERN_LENGTH, GlobError, compile_glob, is_pattern,
)


def matches(pattern, path):
    return compile_glob(pattern).matches(path)


# --- splitting and literal nodes ---------------------------------------------------------------------

def test_literal_pattern():
    g = compile_glob("servers.web01.cpu")
    assert [n.text for n in g.nodes] == ["servers", "web01", "cpu"]
    assert all(n.is_literal and n.regex is None for n in g.nodes)
    assert [n.literal for n in g.nodes] == ["servers", "web01", "cpu"]
    assert g.is_literal and g.literal == "servers.web01.cpu"
    assert g.depth == 3 and g.min_depth == 3 and not g.has_globstar and not g.is_tagged
    assert g.alternatives == ("servers.web01.cpu",)
    assert g.matches("servers.web01.cpu")
    assert not g.matches("servers.web01.cpu.x") and not g.matches("servers.web01") and not g.matches("x")


def test_node_matches_whole_name_only():
    node = compile_glob("a.b*").nodes[1]
    assert not node.is_literal and node.regex is not None
    assert node.matches("b") and node.matches("bcd")
    assert not node.matches("ab") and not node.matches("xb")


def test_tag_suffix_belongs_to_last_node():
    g = compile_glob("disk.used;datacenter=dc1;host=10.0.0.1")
    assert [n.text for n in g.nodes] == ["disk", "used;datacenter=dc1;host=10.0.0.1"]
    assert g.is_tagged and g.is_literal and g.depth == 2
    assert g.matches("disk.used;datacenter=dc1;host=10.0.0.1")
    assert not g.matches("disk.used")


def test_tag_suffix_with_wildcards():
    g = compile_glob("disk.used;host=10.*")
    assert g.matches("disk.used;host=10.0.0.1")       # `*` crosses dots inside a tag value
    assert not g.matches("disk.used;host=10.0.0.1;rack=a")   # but never `;`
    assert not g.matches("disk.used;host=11.0.0.1")


def test_untagged_patterns_never_match_tagged_series():
    for pattern in ("disk.*", "disk.u?ed*", "*.*", "disk.[!x]*", "**", "disk.**"):
        g = compile_glob(pattern)
        assert not g.matches("disk.used;dc=1"), pattern
    assert compile_glob("disk.*").matches("disk.used")


def test_empty_nodes_are_errors():
    for pattern in ("a..b", ".a", "a.", ".", ";a=b", "a.;b=c"):
        with pytest.raises(GlobError, match="is empty"):
            compile_glob(pattern)


def test_empty_pattern_is_an_error():
    with pytest.raises(GlobError, match="empty"):
        compile_glob("")


# --- metacharacters --------------------------------------------------------------------------------

def test_star():
    assert matches("a.*.c", "a.b.c") and matches("a.*.c", "a.bbb.c")
    assert not matches("a.*.c", "a.b.x.c")         # never crosses a dot
    assert matches("a.b*", "a.b") and matches("a.*b*", "a.xbx") and matches("*", "anything")
    assert not matches("a.*", "a")


def test_star_matches_empty_run():
    assert matches("a.x*y", "a.xy")


def test_double_star_inside_a_node_is_a_single_star():
    g = compile_glob("a.b**c")
    assert not g.has_globstar
    assert g.matches("a.bxc") and not g.matches("a.bx.c")


def test_question_mark_is_exactly_one_character():
    assert matches("a.b?", "a.bc")
    assert not matches("a.b?", "a.b")               # metrictank's `.?` is a divergence
    assert not matches("a.b?", "a.bcd")
    assert not matches("a?b", "a.b")


@pytest.mark.parametrize("pattern,yes,no", [
    ("x[abc]", ["xa", "xb", "xc"], ["xd", "x", "xab"]),
    ("x[a-c]", ["xa", "xb", "xc"], ["xd", "xA"]),
    ("x[a-cx-z0-9]", ["xb", "xy", "x5"], ["xm"]),
    ("x[!a]", ["xb", "x1"], ["xa", "x"]),
    ("x[^a]", ["xb"], ["xa"]),
    ("x[]a]", ["x]", "xa"], ["xb"]),
    ("x[!]]", ["xa"], ["x]"]),
    ("x[a-]", ["xa", "x-"], ["xb"]),
    ("x[-a]", ["xa", "x-"], ["xb"]),
    ("x[.]", [], ["x."]),                           # `.` splits first: `x[` and `]`... see below
])
def test_character_classes(pattern, yes, no):
    if pattern == "x[.]":
        g = compile_glob(pattern)                   # graphite-web splits on '.' before reading classes
        assert [n.text for n in g.nodes] == ["x[", "]"]
        return
    g = compile_glob(pattern)
    for name in yes:
        assert g.matches(name), (pattern, name)
    for name in no:
        assert not g.matches(name), (pattern, name)


def test_class_special_characters_are_literal():
    g = compile_glob(r"x[$|()+^\\\]]")          # a backslash escapes inside a class too
    for c in "$|()+^\\]":
        assert g.matches("x" + c), c
    assert not g.matches("xa")


def test_negated_class_does_not_match_dot_or_semicolon():
    assert not matches("a[!x]b", "a;b")


def test_unclosed_bracket_is_literal():
    g = compile_glob("a.[b")
    assert g.is_literal and g.literal == "a.[b"
    assert g.matches("a.[b") and not g.matches("a.b")


def test_reversed_range_is_an_error():
    with pytest.raises(GlobError, match="bad character range z-a"):
        compile_glob("x[z-a]")


@pytest.mark.parametrize("pattern,yes,no", [
    ("a.{b,c}.d", ["a.b.d", "a.c.d"], ["a.e.d", "a.bc.d", "a.{b,c}.d"]),
    ("a.{b,c}{d,e}", ["a.bd", "a.be", "a.cd", "a.ce"], ["a.b", "a.bc"]),
    ("a.x{b,{c,d}}y", ["a.xby", "a.xcy", "a.xdy"], ["a.xy", "a.xbcy"]),
    ("a.{,pre}fix", ["a.fix", "a.prefix"], ["a.pre"]),
    ("a.{b*,c?}", ["a.b", "a.bxx", "a.cx"], ["a.c", "a.cxx"]),
    ("a.{b}", ["a.b"], ["a.{b}"]),
    ("{a,b}.c", ["a.c", "b.c"], ["c.c"]),
    ("a.{x}{}y", ["a.xy"], ["a.x"]),
])
def test_braces(pattern, yes, no):
    g = compile_glob(pattern)
    for path in yes:
        assert g.matches(path), (pattern, path)
    for path in no:
        assert not g.matches(path), (pattern, path)


def test_brace_alternatives_are_exposed_for_exact_lookup():
    g = compile_glob("a.{b,c}.{d,e}")
    assert g.nodes[1].alternatives == ("b", "c")
    assert g.alternatives == ("a.b.d", "a.b.e", "a.c.d", "a.c.e")
    assert not g.is_literal and g.literal is None


def test_alternatives_are_deduplicated_and_absent_with_wildcards():
    assert compile_glob("{a,a,b}").nodes[0].alternatives == ("a", "b")
    assert compile_glob("{a,b*}").nodes[0].alternatives is None
    assert compile_glob("a.*.{b,c}").alternatives is None


def test_alternatives_of_whole_pattern_are_bounded():
    group = "{" + ",".join(str(i) for i in range(100)) + "}"
    g = compile_glob(f"{group}.{group}.{group}")       # 10^6 paths: fine as a regex, too many to list
    assert g.alternatives is None
    assert g.matches("5.17.99") and not g.matches("5.17.100")


def test_dot_inside_braces_is_an_error_that_says_why():
    with pytest.raises(GlobError, match=r"unclosed '\{'.*splits patterns on '\.' before expanding braces"):
        compile_glob("a.{b.c,d}")


def test_unbalanced_braces():
    with pytest.raises(GlobError, match=r"unclosed '\{'"):
        compile_glob("a.{b,c")
    with pytest.raises(GlobError, match=r"unmatched '\}'"):
        compile_glob("a.b}")
    with pytest.raises(GlobError, match=r"unmatched '\}'"):
        compile_glob("a.{b}}")


def test_comma_outside_braces_is_literal():
    assert compile_glob("a,b").literal == "a,b"


# --- escapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,literal", [
    (r"a.\*", "a.*"), (r"a.\?", "a.?"), (r"a.\[x\]", "a.[x]"), (r"a.\{b,c\}", "a.{b,c}"), (r"a\\b", "a\\b"),
])
def test_escaped_metacharacters_are_literal(pattern, literal):
    g = compile_glob(pattern)
    assert g.is_literal and g.literal == literal
    assert g.matches(literal)


def test_escaped_star_does_not_match_other_names():
    assert not matches(r"a.\*", "a.b")


def test_escaped_dot_still_splits_like_graphite_web():
    g = compile_glob(r"a\.b")
    assert [n.literal for n in g.nodes] == ["a", "b"]


def test_escaped_semicolon_is_not_a_tag_suffix():
    g = compile_glob(r"a.b\;c.d")
    assert [n.literal for n in g.nodes] == ["a", "b;c", "d"]


def test_trailing_backslash_is_an_error():
    with pytest.raises(GlobError, match="unfinished escape"):
        compile_glob("a.b\\")


# --- globstar --------------------------------------------------------------------------------------

def test_globstar_in_the_middle_matches_zero_or_more_nodes():
    g = compile_glob("a.**.z")
    assert g.has_globstar and g.depth == 3 and g.min_depth == 2
    assert g.nodes[1].is_globstar and g.nodes[1].matches("anything")
    for path in ("a.z", "a.b.z", "a.b.c.d.z"):
        assert g.matches(path), path
    for path in ("a.b", "b.z", "a.z.y"):
        assert not g.matches(path), path


def test_trailing_globstar_needs_at_least_one_node():
    g = compile_glob("a.**")
    assert g.min_depth == 2
    assert g.matches("a.b") and g.matches("a.b.c.d")
    assert not g.matches("a")


def test_leading_and_lone_globstar():
    assert matches("**.z", "z") and matches("**.z", "a.b.z") and not matches("**.z", "a.b")
    assert matches("**", "a") and matches("**", "a.b.c")


def test_several_globstars():
    g = compile_glob("a.**.m.**.z")
    assert g.matches("a.m.z") and g.matches("a.b.m.c.d.z") and not g.matches("a.b.c.z")


def test_globstar_with_other_wildcards():
    g = compile_glob("servers.**.cpu*")
    assert g.matches("servers.web.cpu0") and g.matches("servers.dc.web.cpu") and not g.matches("servers.mem")


def test_globstar_many_times_is_still_linear():
    g = compile_glob(".".join(["**"] * 200) + ".z")
    assert g.matches("a." * 300 + "z")
    assert not g.matches("a." * 300 + "y")


# --- safety ----------------------------------------------------------------------------------------

def test_brace_bomb_is_refused():
    bomb = "{a,b}" * 20                                  # 2^20 expansions
    with pytest.raises(GlobError, match=f"more than {MAX_ALTERNATIVES} alternatives"):
        compile_glob(bomb)


def test_nested_brace_bomb_is_refused():
    with pytest.raises(GlobError, match=f"nested more than {MAX_BRACE_DEPTH} deep"):
        compile_glob("{" * 5000 + "a" + "}" * 5000)


def test_expansion_at_the_limit_is_allowed():
    group = "{" + ",".join(f"{i:02d}" for i in range(100)) + "}"
    node = compile_glob(group + group).nodes[0]          # 100 * 100 = MAX_ALTERNATIVES
    assert len(node.alternatives) == MAX_ALTERNATIVES
    assert node.matches("9999") and node.matches("0000") and not node.matches("999")
    with pytest.raises(GlobError, match="alternatives"):
        compile_glob(group + group + "{a,b}")


def test_many_singleton_groups_are_cheap():
    g = compile_glob("{a}" * 3000)
    assert g.nodes[0].alternatives == ("a" * 3000,)


def test_star_bomb_against_long_name_is_linear():
    # With backtracking regexes `*a*a*a...b` against "aaaa...": exponential. RE2 is linear.
    g = compile_glob("*a" * 40 + "b")
    assert not g.matches("a" * 5000)
    assert g.matches("a" * 100 + "b")


def test_pattern_length_limit():
    with pytest.raises(GlobError, match=f"longer than {MAX_PATTERN_LENGTH}"):
        compile_glob("a" * (MAX_PATTERN_LENGTH + 1))


def test_regex_metacharacters_in_names_are_literal():
    g = compile_glob("a.b+c(d)|e$^")
    assert g.is_literal and g.matches("a.b+c(d)|e$^") and not g.matches("a.bbc(d)|e$^")
    g = compile_glob("a.(x)*")
    assert g.matches("a.(x)yz") and not g.matches("a.xyz")


def test_errors_name_the_pattern_and_are_value_errors():
    with pytest.raises(ValueError, match=r"invalid glob pattern 'a\.\{b'"):
        compile_glob("a.{b")


def test_non_string_pattern():
    with pytest.raises(GlobError):
        compile_glob(None)


def test_unicode_names():
    g = compile_glob("数据.*.mé?ric")
    assert g.matches("数据.x.métric")
    assert not g.matches("数据.x.mtric")


def test_full_regex_source_is_composable():
    g = compile_glob("a.*.{b,c}")
    assert g.regex_source == r"a\.[^.;]*\.(?:b|c)"
    assert g.regex.search("a.x.b") and not g.regex.search("a.x.y.b")


def test_compile_is_cached():
    assert compile_glob("a.*.cached") is compile_glob("a.*.cached")


# --- is_pattern ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("a.b.c", False), ("a.*", True), ("a?", True), ("a[bc]", True), ("a.{b,c}", True), ("**", True),
    (r"a.\*", False), (r"a\{b", False), ("a;b=c", False), ("a}", False), ("", False),
])
def test_is_pattern(text, expected):
    assert is_pattern(text) is expected
