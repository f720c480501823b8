"""Sorting family (graphite-web 1.1.10 semantics): reorder a series list, values untouched.

Every sort is stable (ties keep their input order, also when descending) and a null aggregate sorts as -inf,
as graphite-web's `list.sort(key=keyFunc(...))` does.
"""
from __future__ import annotations

import re

from .filters import AGG_FUNC_OPTIONS, rank, series_aggregate, sort_key
from .registry import AGG_FUNC, BOOLEAN, SERIES_LIST, Param, register

_SL = Param("seriesList", SERIES_LIST, required=True)
_DIGITS = re.compile(r"\d+")     # fixed pattern, not user input: the stdlib engine is fine (and matches \d exactly)


@register("sortBy", [_SL, Param("func", AGG_FUNC, default="average", options=AGG_FUNC_OPTIONS),
                     Param("reverse", BOOLEAN, default=False)], group="Sorting")
def sort_by(ctx, seriesList, func="average", reverse=False):
    """Sorts the series ascending by an aggregate (func, default average); reverse=true for descending."""
    return rank(seriesList, func, bool(reverse), "sortBy")


@register("sortByTotal", [_SL], group="Sorting")
def sort_by_total(ctx, seriesList):
    """Sorts the series descending by the sum of their values."""
    return rank(seriesList, "sum", True, "sortByTotal")


@register("sortByMaxima", [_SL], group="Sorting")
def sort_by_maxima(ctx, seriesList):
    """Sorts the series descending by their maximum."""
    return rank(seriesList, "max", True, "sortByMaxima")


@register("sortByMinima", [_SL], group="Sorting")
def sort_by_minima(ctx, seriesList):
    """Sorts the series ascending by their minimum, keeping only series whose maximum is above 0."""
    kept = [s for s in seriesList if sort_key(series_aggregate(s.values, "max")) > 0]
    return rank(kept, "min", False, "sortByMinima")


def _natural_key(name: str) -> str:
    # every digit run zero-padded to 10 places, so server2 < server11 in plain string order
    return _DIGITS.sub(lambda m: "%010d" % int(m.group(0)), name)


@register("sortByName", [_SL, Param("natural", BOOLEAN, default=False), Param("reverse", BOOLEAN, default=False)],
          group="Sorting")
def sort_by_name(ctx, seriesList, natural=False, reverse=False):
    """Sorts the series by name, alphabetically or (natural=true) with digit runs compared as numbers."""
    key = (lambda s: _natural_key(s.name)) if natural else (lambda s: s.name)
    return sorted(seriesList, key=key, reverse=bool(reverse))
