"""Alias functions (graphite-web 1.1.10 group "Alias"): alias, aliasByMetric, aliasByNode, aliasByTags,
aliasQuery, aliasSub, legendValue, upper, lower. They rename series; values and tags stay as they are.

Regular expressions (aliasSub, aliasQuery) run on RE2, so no user pattern can take more than linear time;
the replacement keeps Python's `re.sub` template language (`\\1`, `\\g<1>`, `\\g<name>`, `\\n`...), which
Grafana relies on: it wraps every target as `aliasSub(<target>, "(^.*$)", "\\1 A")`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from storage.matchers import compile_regex

from ..target import grammar
from .common import agg_key
from .registry import INTEGER, NODE_OR_TAG, SERIES_LIST, STRING, FunctionError, Param, register
from .special import format_units, substr

# --- RE2 substitution with Python's replacement syntax --------------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_OCT = "01234567"
_DEC = "0123456789"
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@functools.lru_cache(maxsize=1024)
def parse_template(template: str, groups: int, groupindex: tuple) -> tuple:
    """Python's `re` replacement template as a tuple of literal strings and group numbers.

    The rules are `re._parser.parse_template`'s: `\\g<name>`/`\\g<n>`, `\\1`..`\\99`, octal `\\0oo`/`\\ooo`,
    the escapes `\\a \\b \\f \\n \\r \\t \\v \\\\`; another backslashed ASCII letter is an error and any other
    backslashed character stays as written (backslash included)."""
    names = dict(groupindex)
    pieces: list = []
    literal: list[str] = []

    def group_ref(index: int) -> None:
        if index > groups:
            raise FunctionError(f"invalid group reference {index} in replacement {template!r}")
        if literal:
            pieces.append("".join(literal))
            literal.clear()
        pieces.append(index)

    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "\\":
            literal.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise FunctionError(f"bad escape (end of pattern) in replacement {template!r}")
        d = template[i + 1]
        if d == "g":
            if i + 2 >= n or template[i + 2] != "<":
                raise FunctionError(f"missing < after \\g in replacement {template!r}")
            close = template.find(">", i + 3)
            if close < 0:
                raise FunctionError(f"missing >, unterminated name in replacement {template!r}")
            name = template[i + 3:close]
            if not name:
                raise FunctionError(f"missing group name in replacement {template!r}")
            if name.isidentifier():
                if name not in names:
                    raise FunctionError(f"unknown group name {name!r} in replacement {template!r}")
                index = names[name]
            else:
                try:
                    index = int(name)
                except ValueError:
                    index = -1
                if index < 0:
                    raise FunctionError(f"bad character in group name {name!r} in replacement {template!r}")
            group_ref(index)
            i = close + 1
        elif d == "0":
            j = i + 2
            while j < n and j < i + 4 and template[j] in _OCT:
                j += 1
            literal.append(chr(int(template[i + 1:j], 8) & 0xFF))
            i = j
        elif d in _DEC:
            j = i + 2
            if j < n and template[j] in _DEC:
                j += 1
                if d in _OCT and template[j - 1] in _OCT and j < n and template[j] in _OCT:
                    value = int(template[i + 1:j + 1], 8)
                    if value > 0o377:
                        raise FunctionError(f"octal escape value \\{template[i + 1:j + 1]} outside of range "
                                            f"0-0o377 in replacement {template!r}")
                    literal.append(chr(value))
                    i = j + 1
                    continue
            group_ref(int(template[i + 1:j]))
            i = j
        else:
            if d in _ESCAPES:
                literal.append(_ESCAPES[d])
            elif d in _ASCII_LETTERS:
                raise FunctionError(f"bad escape \\{d} in replacement {template!r}")
            else:
                literal.append("\\" + d)
            i += 2
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def regex_sub(pattern: str, template: str, text: str) -> str:
    """`re.sub(pattern, template, text)` with an RE2 pattern (unanchored, like Python's).

    Empty matches follow Python 3.7+: one is allowed right after a non-empty match; after an empty match
    the search resumes one character further on (Python would also accept a non-empty match starting at
    the same place; RE2's leftmost-first choice already prefers it whenever the pattern allows)."""
    rx = compile_regex(pattern, anchor="none")
    pieces = parse_template(template, rx.groups, tuple(sorted(rx.groupindex.items())))
    out: list[str] = []
    last = pos = 0
    n = len(text)
    while pos <= n:
        m = rx.search(text, pos)
        if m is None:
            break
        begin, end = m.span()
        out.append(text[last:begin])
        for piece in pieces:
            out.append(piece if isinstance(piece, str) else (m.group(piece) or ""))
        last = end
        if end > begin:
            pos = end
        elif begin >= n:
            break
        else:
            pos = begin + 1
    out.append(text[last:])
    return "".join(out)


# --- alias, aliasByNode, aliasByTags, aliasByMetric ------------------------------------------------------------------

@register("alias", [Param("seriesList", SERIES_LIST, required=True), Param("newName", STRING, required=True)],
          group="Alias")
def alias(ctx, seriesList, newName):
    """Every series is named `newName`."""
    for s in seriesList:
        s.name = newName
    return seriesList


@register("aliasByNode", [Param("seriesList", SERIES_LIST, required=True),
                          Param("nodes", NODE_OR_TAG, required=True, multiple=True)],
          group="Alias")
def aliasByNode(ctx, seriesList, *nodes):
    """Name = the given nodes (0-based, negative from the end) and/or tag values, joined by '.'. Names that
    are function calls use their first path expression."""
    for s in seriesList:
        s.name = agg_key(s, nodes)
    return seriesList


@register("aliasByTags", [Param("seriesList", SERIES_LIST, required=True),
                          Param("tags", NODE_OR_TAG, required=True, multiple=True)],
          group="Alias")
def aliasByTags(ctx, seriesList, *tags):
    """Alias of aliasByNode: name from tag values and/or nodes."""
    return aliasByNode(ctx, seriesList, *tags)


@register("aliasByMetric", [Param("seriesList", SERIES_LIST, required=True)], group="Alias")
def aliasByMetric(ctx, seriesList):
    """Name = the last node of the (innermost) metric path."""
    return substr(ctx, seriesList, -1, 0)


# --- aliasSub, aliasQuery -------------------------------------------------------------------------------------------

@register("aliasSub", [Param("seriesList", SERIES_LIST, required=True), Param("search", STRING, required=True),
                       Param("replace", STRING, required=True)],
          group="Alias")
def aliasSub(ctx, seriesList, search, replace):
    """Name = regex search/replace of the name; the replacement may use \\1 or \\g<1> back-references."""
    for s in seriesList:
        s.name = regex_sub(search, replace, "" if s.name is None else str(s.name))
    return seriesList


@register("aliasQuery", [Param("seriesList", SERIES_LIST, required=True), Param("search", STRING, required=True),
                         Param("replace", STRING, required=True), Param("newName", STRING, required=True)],
          group="Alias")
def aliasQuery(ctx, seriesList, search, replace, newName):
    """Each name is rewritten by search/replace into a new target, which is evaluated; the name becomes
    `newName % <last non-null value of its first series>`."""
    from ..evaluator import evaluate_in_window
    for s in seriesList:
        query = regex_sub(search, replace, str(s.name))
        try:
            tree = grammar.parse_target(query)
        except grammar.TargetSyntaxError as exc:
            raise FunctionError(f"aliasQuery: the query {query!r} does not parse: {exc}") from None
        found = evaluate_in_window(ctx, tree, ctx.start, ctx.end)
        if not isinstance(found, list) or not found:
            raise FunctionError(f"No series found with query: {query}")
        values = found[0].values
        ok = values[~np.isnan(values)]
        if len(ok) == 0:
            raise FunctionError(f"Cannot get last value of series: {found[0].name}")
        try:
            s.name = newName % float(ok[-1])
        except (TypeError, ValueError, OverflowError) as exc:
            raise FunctionError(f"aliasQuery: parameter 'newName' {newName!r} cannot format the value: "
                                f"{exc}") from None
    return seriesList


# --- legendValue ----------------------------------------------------------------------------------------------------
# graphite-web appends the value with str(), so the full repr of a float shows: sums are accumulated left to
# right (np.cumsum is sequential, unlike np.sum's pairwise summation) to get the same last digit.

def _seq_sum(x: np.ndarray) -> float:
    return float(np.cumsum(x)[-1])


def _legend_value(func: str, values: np.ndarray):
    ok = values[~np.isnan(values)]
    if func == "count":
        return len(ok)
    if func == "avg_zero":
        return _seq_sum(np.nan_to_num(values, nan=0.0)) / len(values) if len(values) else None
    if func == "multiply":
        if len(values) == 0 or len(ok) != len(values):
            return None
        return float(np.cumprod(values)[-1])
    if len(ok) == 0:
        return None
    if func in ("average", "avg"):
        return _seq_sum(ok) / len(ok)
    if func in ("sum", "total"):
        return _seq_sum(ok)
    if func == "min":
        return float(ok.min())
    if func == "max":
        return float(ok.max())
    if func in ("last", "current"):
        return float(ok[-1])
    if func in ("range", "rangeOf"):
        return float(ok.max()) - float(ok.min())
    if func == "median":
        srt = np.sort(ok)
        mid = len(srt) // 2
        return float(srt[mid - 1] + srt[mid]) / 2 if len(srt) % 2 == 0 else float(srt[mid])
    if func == "diff":
        return _seq_sum(np.concatenate([ok[:1], -ok[1:]]))
    if func == "stddev":
        avg = _seq_sum(ok) / len(ok)
        dev = ok - avg
        return math.sqrt(_seq_sum(dev * dev) / len(ok))
    return "(?)"            # graphite-web shows unknown types (including deprecated `<name>Series`) as (?)


LEGEND_FUNCS = ["average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range",
                "multiply", "last", "rangeOf", "avg", "total", "current"]
LEGEND_OPTIONS = LEGEND_FUNCS + [f + "Series" for f in LEGEND_FUNCS] + ["si", "binary"]


@register("legendValue", [Param("seriesList", SERIES_LIST, required=True),
                          Param("valuesTypes", STRING, multiple=True, options=LEGEND_OPTIONS)],
          group="Alias")
def legendValue(ctx, seriesList, *value_types):
    """Appends ` (<type>: <value>)` per value type (last, avg, total, min, max...); a final `si` or `binary`
    switches to fixed-width columns with unit-prefixed values."""
    if not value_types:
        raise FunctionError("legendValue: at least one value type is required")
    system = None
    if value_types[-1] in ("si", "binary"):
        system = value_types[-1]
        value_types = value_types[:-1]
    for value_type in value_types:
        for s in seriesList:
            value = _legend_value(value_type, s.values)
            if system is None:
                s.name = "%s (%s: %s)" % (s.name, value_type, value)
            else:
                if isinstance(value, str) or value is None:
                    formatted = value
                else:
                    formatted = "%.2f%s" % format_units(value, system, func="legendValue")
                s.name = "%-20s%-5s%-10s" % (s.name, value_type, formatted)
    return seriesList


# --- upper, lower ---------------------------------------------------------------------------------------------------

def _change_case(seriesList, positions, change):
    for s in seriesList:
        if not positions:
            s.name = change(s.name)
            continue
        chars = list(s.name)
        for i in positions:
            if -len(chars) <= i < len(chars):
                chars[i] = change(chars[i])
        s.name = "".join(chars)
    return seriesList


@register("upper", [Param("seriesList", SERIES_LIST, required=True), Param("pos", INTEGER, multiple=True)],
          group="Alias")
def toUpperCase(ctx, seriesList, *pos):
    """Upper-cases the name, or only the characters at the given positions (negative from the end)."""
    return _change_case(seriesList, pos, str.upper)


@register("lower", [Param("seriesList", SERIES_LIST, required=True), Param("pos", INTEGER, multiple=True)],
          group="Alias")
def toLowerCase(ctx, seriesList, *pos):
    """Lower-cases the name, or only the characters at the given positions (negative from the end)."""
    return _change_case(seriesList, pos, str.lower)
