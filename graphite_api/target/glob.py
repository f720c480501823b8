"""Graphite glob patterns, as used by find, render, expand and delete.

A pattern is matched one dot-separated node at a time (graphite-web's StandardFinder walks a directory
tree, metrictank its node tree), so `compile_glob` splits it into nodes first and compiles each node on
its own: a node without metacharacters stays a literal for exact lookups; any other node becomes an RE2
regex matched against the whole node. Nothing here uses Python's `re`, so no pattern can take more than
linear time; brace expansion is bounded.

Syntax (graphite-web's `fnmatch` after `expand_braces`, plus metrictank's `[^...]`):
  *          any run of characters within a node, including none
  ?          exactly one character (metrictank's `.?` is a divergence; Graphite wins)
  [abc] [a-z] [!a] [^a]   character classes; a `[` without a closing `]` is a literal `[`
  {a,b,c}    alternatives; several groups per node, nested groups and empty alternatives allowed
  **         as a whole node: any number of nodes (a trailing `**` needs at least one, like graphite-web
             which appends `*` to a terminal globstar)
  \\x         the character x, literally
A `;tags` suffix (`name;k=v`) belongs to the last node: dots in tag values do not split. Wildcards never
match `;`, and outside the tag suffix never `.` either, so an untagged pattern never matches a tagged
series, whose name Graphite keeps apart from the tree (`_tagged/...`).

Dots split first, before braces are read, as in graphite-web (`pattern.split('.')` then `expand_braces`
per element) and metrictank: a `.` inside `{...}` therefore leaves the group unclosed and is reported as
an error rather than silently matching nothing. An escaped dot `\\.` also splits, because graphite-web
strips backslashes before splitting and no node name can contain a dot.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from functools import cached_property

import re2

from storage.matchers import BadRegex, compile_regex

__all__ = ["GlobError", "GlobNode", "GlobPattern", "compile_glob", "is_pattern",
           "MAX_ALTERNATIVES", "MAX_PATTERN_LENGTH", "MAX_BRACE_DEPTH"]

MAX_ALTERNATIVES = 10_000       # brace expansions per node (graphite-web expands them all)
MAX_PATTERN_LENGTH = 64 * 1024
MAX_BRACE_DEPTH = 32

_ANY_NAME, _ONE_NAME = "[^.;]*", "[^.;]"    # inside a node name
_ANY_TAG, _ONE_TAG = "[^;]*", "[^;]"        # inside the tag suffix, where values may hold dots


class GlobError(ValueError):
    """An invalid glob pattern; the message names it."""


# Tokens of one node: ("lit", char) ("any", in_tags) ("one", in_tags) ("class", regex) ("alt", [seq, ...])

class _NodeParser:
    def __init__(self, pattern: str, text: str):
        self.pattern, self.text, self.i = pattern, text, 0
        self.in_tags = False

    def fail(self, why: str):
        raise GlobError(f"invalid glob pattern {self.pattern!r}: {why}")

    def parse(self) -> list:
        seq = self.seq(0)
        if self.i < len(self.text):          # only a stray '}' stops the top level early
            self.fail(f"unmatched '}}' in node {self.text!r}")
        return seq

    def seq(self, depth: int) -> list:
        text, out = self.text, []
        while self.i < len(text):
            c = text[self.i]
            if c == "\\":
                if self.i + 1 >= len(text):
                    self.fail(f"node {self.text!r} ends with an unfinished escape")
                out.append(("lit", text[self.i + 1]))
                self.i += 2
            elif c == "*":
                while self.i < len(text) and text[self.i] == "*":   # `**` inside a node is just `*`
                    self.i += 1
                out.append(("any", self.in_tags))
            elif c == "?":
                out.append(("one", self.in_tags))
                self.i += 1
            elif c == "[":
                out.append(self.char_class())
            elif c == "{":
                if depth >= MAX_BRACE_DEPTH:
                    self.fail(f"braces nested more than {MAX_BRACE_DEPTH} deep")
                start = self.i
                self.i += 1
                alts = [self.seq(depth + 1)]
                while self.i < len(text) and text[self.i] == ",":
                    self.i += 1
                    alts.append(self.seq(depth + 1))
                if self.i >= len(text):
                    self.fail(f"unclosed '{{' at offset {start} of node {self.text!r} ('.' cannot appear "
                              "inside '{...}': Graphite splits patterns on '.' before expanding braces)")
                self.i += 1                                   # the closing '}'
                out.append(("alt", alts))
            elif c in ",}" and depth:
                return out                                    # the enclosing group decides
            elif c == "}":
                return out
            else:
                if c == ";" and not depth:
                    self.in_tags = True
                out.append(("lit", c))
                self.i += 1
        return out

    def char_class(self):
        text, start = self.text, self.i
        j = start + 1
        negate = j < len(text) and text[j] in "!^"
        if negate:
            j += 1
        items, first = [], True
        while j < len(text) and (text[j] != "]" or first):
            first = False
            if text[j] == "\\" and j + 1 < len(text):
                items.append(text[j + 1])
                j += 2
            else:
                items.append(text[j])
                j += 1
        if j >= len(text):               # no closing ']': fnmatch reads the '[' literally
            self.i = start + 1
            return ("lit", "[")
        self.i = j + 1
        parts, k = [], 0
        while k < len(items):
            if k + 2 < len(items) and items[k + 1] == "-":
                lo, hi = items[k], items[k + 2]
                if lo > hi:
                    self.fail(f"bad character range {lo}-{hi} in {text[start:j + 1]!r}")
                parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
                k += 3
            else:
                parts.append(_class_char(items[k]))
                k += 1
        if negate:
            parts.append(r"\;" if self.in_tags else r"\.\;")
        return ("class", "[" + ("^" if negate else "") + "".join(parts) + "]")


def _class_char(c: str) -> str:
    return c if c.isalnum() else re2.escape(c)


def _body(seq) -> str:
    """RE2 source of a token sequence (unanchored; composable into a whole-path regex)."""
    out, lits = [], []
    for tok in seq:
        if tok[0] == "lit":
            lits.append(tok[1])
            continue
        if lits:
            out.append(re2.escape("".join(lits)))
            lits = []
        kind = tok[0]
        if kind == "any":
            out.append(_ANY_TAG if tok[1] else _ANY_NAME)
        elif kind == "one":
            out.append(_ONE_TAG if tok[1] else _ONE_NAME)
        elif kind == "class":
            out.append(tok[1])
        else:
            out.append("(?:" + "|".join(_body(alt) for alt in tok[1]) + ")")
    if lits:
        out.append(re2.escape("".join(lits)))
    return "".join(out)


def _count(seq, limit: int) -> int:
    """How many strings brace expansion would produce, capped just above `limit`."""
    total = 1
    for tok in seq:
        if tok[0] == "alt":
            n = 0
            for alt in tok[1]:
                n = min(n + _count(alt, limit), limit + 1)
            total = min(total * n, limit + 1)
    return total


def _finite(seq) -> bool:
    return all(tok[0] == "lit" or (tok[0] == "alt" and all(_finite(a) for a in tok[1])) for tok in seq)


def _expand(seq) -> list[str]:
    choices = []
    for tok in seq:
        if tok[0] == "lit":
            choices.append((tok[1],))
        else:
            choices.append(tuple(s for alt in tok[1] for s in _expand(alt)))
    return ["".join(p) for p in itertools.product(*choices)]


@dataclass(frozen=True)
class GlobNode:
    """One dot-separated node of a pattern."""
    text: str                                   # as written (escapes kept)
    body: str                                   # RE2 source matching the node, without anchors
    literal: str | None = None                  # the name itself when the node has no metacharacters
    alternatives: tuple[str, ...] | None = None  # every name it can match, when that set is finite
    is_globstar: bool = False
    regex: object = field(default=None, compare=False, repr=False)   # anchored RE2; None if literal/**

    @property
    def is_literal(self) -> bool:
        return self.literal is not None

    def matches(self, name: str) -> bool:
        """Whether one node name matches (a globstar matches any single node)."""
        if self.literal is not None:
            return name == self.literal
        if self.is_globstar:
            return True
        return self.regex.search(name) is not None


@dataclass(frozen=True)
class GlobPattern:
    pattern: str
    nodes: tuple[GlobNode, ...]

    @property
    def depth(self) -> int:
        """Number of nodes; with a globstar the matched depth varies (see `min_depth`)."""
        return len(self.nodes)

    @property
    def has_globstar(self) -> bool:
        return any(n.is_globstar for n in self.nodes)

    @property
    def min_depth(self) -> int:
        fixed = sum(not n.is_globstar for n in self.nodes)
        return fixed + (1 if self.nodes[-1].is_globstar else 0)

    @property
    def is_tagged(self) -> bool:
        return ";" in self.nodes[-1].text

    @property
    def is_literal(self) -> bool:
        return all(n.is_literal for n in self.nodes)

    @property
    def literal(self) -> str | None:
        """The exact path when the pattern has no metacharacters (escapes resolved)."""
        return ".".join(n.literal for n in self.nodes) if self.is_literal else None

    @cached_property
    def alternatives(self) -> tuple[str, ...] | None:
        """Every path the pattern can match when that set is finite and at most MAX_ALTERNATIVES long,
        so a store can answer `a.{b,c}.d` with exact lookups; None otherwise."""
        if any(n.alternatives is None for n in self.nodes):
            return None
        total = 1
        for n in self.nodes:
            total *= len(n.alternatives)
            if total > MAX_ALTERNATIVES:
                return None
        return tuple(".".join(p) for p in itertools.product(*(n.alternatives for n in self.nodes)))

    @cached_property
    def regex_source(self) -> str:
        """RE2 source matching a whole path (anchors not included)."""
        out, last = [], len(self.nodes) - 1
        for i, node in enumerate(self.nodes):
            sep = r"\." if i and not self.nodes[i - 1].is_globstar else ""
            if node.is_globstar:
                # in the middle: zero or more whole nodes, each with its dot; at the end: one or more
                out.append(sep + (r"[^.;]+(?:\.[^.;]+)*" if i == last else r"(?:[^.;]+\.)*"))
            else:
                out.append(sep + node.body)
        return "".join(out)

    @cached_property
    def regex(self):
        return _compile(self.pattern, self.regex_source)

    def matches(self, path: str) -> bool:
        """Whether a concrete series path (`a.b.c` or `a.b.c;k=v`) matches the whole pattern."""
        literal = self.literal
        if literal is not None:
            return path == literal
        return self.regex.search(path) is not None


def _compile(pattern: str, body: str):
    try:
        return compile_regex(body, "full")
    except BadRegex as exc:
        raise GlobError(f"invalid glob pattern {pattern!r}: {exc}") from None


def _split(pattern: str) -> list[str]:
    """Split on unescaped dots; the first unescaped ';' starts a tag suffix that stays in the last node."""
    nodes, cur, i, n = [], [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            if pattern[i + 1] == ".":          # graphite-web strips backslashes before splitting
                nodes.append("".join(cur))
                cur = []
            else:
                cur.append(pattern[i:i + 2])
            i += 2
        elif c == ";":
            cur.append(pattern[i:])
            break
        elif c == ".":
            nodes.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(c)
            i += 1
    nodes.append("".join(cur))
    return nodes


def _compile_node(pattern: str, text: str) -> GlobNode:
    if text == "**":
        return GlobNode(text, _ANY_NAME, is_globstar=True)
    seq = _NodeParser(pattern, text).parse()
    if _count(seq, MAX_ALTERNATIVES) > MAX_ALTERNATIVES:
        raise GlobError(f"invalid glob pattern {pattern!r}: node {text!r} expands to more than "
                        f"{MAX_ALTERNATIVES} alternatives")
    if all(tok[0] == "lit" for tok in seq):
        name = "".join(tok[1] for tok in seq)
        return GlobNode(text, re2.escape(name), literal=name, alternatives=(name,))
    body = _body(seq)
    alternatives = tuple(dict.fromkeys(_expand(seq))) if _finite(seq) else None
    return GlobNode(text, body, alternatives=alternatives, regex=_compile(pattern, body))


@functools.lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> GlobPattern:
    """Compile a Graphite glob pattern; GlobError names the pattern and what is wrong with it."""
    if not isinstance(pattern, str):
        raise GlobError(f"invalid glob pattern {pattern!r}: not a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise GlobError(f"invalid glob pattern {pattern[:40]!r}...: longer than {MAX_PATTERN_LENGTH} characters")
    if not pattern:
        raise GlobError("invalid glob pattern '': empty")
    texts = _split(pattern)
    for k, text in enumerate(texts):
        if not text or text.startswith(";"):
            raise GlobError(f"invalid glob pattern {pattern!r}: node {k + 1} is empty")
    return GlobPattern(pattern, tuple(_compile_node(pattern, t) for t in texts))


_META = frozenset("*?[{")


def is_pattern(text: str) -> bool:
    """Whether `text` has any unescaped glob metacharacter (`*` `?` `[` `{`)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in _META:
            return True
        i += 1
    return False
