"""Graphite tag expressions (`seriesByTag`, `/tags/findSeries`, `/tags/autoComplete/*`) -> label matchers.

Grammar (graphite-web `BaseTagDB.parse_tagspec`, plus metrictank's prefix operator):
    tag=value    tag!=value    tag=~regex    tag!=~regex    tag^=prefix
Regexes are anchored at the start only, as both graphite-web (`re.match`) and metrictank (`^(?:re)`) do.
The tag `name` is the metric name, which the store keeps as the label `__name__`; the mapping is made
here so that the store only ever sees `__name__`.
"""
from __future__ import annotations

import re

import re2

from storage.matchers import EQ, NEQ, NRE, RE, BadRegex, Matcher

__all__ = ["TagExpressionError", "parse_tag_expression", "parse_series_by_tag_args",
           "split_series_by_tag_string", "EMPTY_MATCH_ERROR"]

EMPTY_MATCH_ERROR = "At least one tagspec must not match the empty string"   # graphite-web's wording

# Key: anything up to the operator except `; ! = ^`; value: anything but `;`. The `(?s)` lets a newline
# through as graphite-web's `[^;]*` does. Operators longest first so `!=~` is not read as `!=` + `~...`.
_EXPR = re.compile(r"(?s)^([^;!=^]+)(!=~|=~|!=|\^=|=)([^;]*)$")
_OPS = {"=": EQ, "!=": NEQ, "=~": RE, "!=~": NRE}


class TagExpressionError(ValueError):
    """A malformed tag expression or expression list; the message names it."""


def parse_tag_expression(text: str) -> Matcher:
    """One expression -> a Matcher on label names (`name` becomes `__name__`)."""
    if not isinstance(text, str):
        raise TagExpressionError(f"invalid tag expression {text!r}: not a string")
    m = _EXPR.match(text)
    if m is None:
        raise TagExpressionError(f"invalid tag expression {text!r}: expected tag=value, tag!=value, "
                                 "tag=~regex, tag!=~regex or tag^=prefix")
    key, op, value = m.groups()
    label = "__name__" if key == "name" else key
    try:
        if op == "^=":
            # A prefix is a start-anchored regex of the escaped prefix; it needs no new matcher kind.
            return Matcher(label, RE, re2.escape(value), anchor="start")
        return Matcher(label, _OPS[op], value, anchor="start")
    except BadRegex as exc:
        raise TagExpressionError(f"invalid tag expression {text!r}: {exc}") from None


def parse_series_by_tag_args(args) -> list[Matcher]:
    """The arguments of `seriesByTag(...)` (or repeated `expr` parameters) -> ANDed matchers.

    Duplicates are dropped (order kept). As in graphite-web, an empty value matches series that lack
    the tag, so at least one matcher must reject the empty string, or the query would select every
    series in the store.
    """
    matchers: dict[Matcher, None] = {}
    for arg in args:
        matchers.setdefault(parse_tag_expression(arg), None)
    result = list(matchers)
    if not any(not m.matches_empty for m in result):
        raise TagExpressionError(EMPTY_MATCH_ERROR)
    return result


def split_series_by_tag_string(text: str) -> list[str]:
    """Split the quoted argument list metrictank accepts: `'a=b', "c!=~d.*"`.

    Each expression is quoted with ' or " (no escapes: the same quote ends it), expressions are separated
    by exactly one comma, and spaces outside quotes are ignored. A whole call `seriesByTag(...)`, as
    graphite-web passes it around as the series' pathExpression, is accepted too.
    """
    s = text.strip()
    if s.startswith("seriesByTag(") and s.endswith(")"):
        s = s[len("seriesByTag("):-1]
    out: list[str] = []
    quote, start, commas = "", 0, 0
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                out.append(s[start:i])
                quote, commas = "", 0
        elif c in "'\"":
            if out and commas == 0:
                raise TagExpressionError("Missing comma between quotes")
            if commas > 1 or (not out and commas):
                raise TagExpressionError("Too many commas between quotes")
            quote, start = c, i + 1
        elif c == ",":
            commas += 1
        elif c != " ":
            raise TagExpressionError("Invalid character outside quotes")
    if quote:
        raise TagExpressionError("Unclosed quotes")
    if commas:
        raise TagExpressionError("Too many commas between quotes")   # a trailing comma
    return out
