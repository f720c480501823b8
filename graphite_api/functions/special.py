"""Special functions the spine needs: consolidateBy (also steers the rollup read) and seriesByTag
(resolved by the evaluator's prefetch; registered here so it is listed and its arguments checked)."""
from __future__ import annotations

from .registry import SERIES_LIST, STRING, Param, register

CONSOLIDATE_FUNCS = ["sum", "average", "avg", "avg_zero", "min", "max", "first", "last"]


@register("consolidateBy", [Param("seriesList", SERIES_LIST, required=True),
                            Param("consolidationFunc", STRING, required=True, options=CONSOLIDATE_FUNCS)],
          group="Special")
def consolidate_by(ctx, series_list, func):
    """Set the function used to consolidate points when there are more than maxDataPoints, and the rollup
    method read from coarser archives."""
    for s in series_list:
        s.consolidation = func
        s.name = f'consolidateBy({s.name},"{func}")'
        s.tags = {**s.tags, "consolidateBy": func}
    return series_list


@register("seriesByTag", [Param("tagExpressions", STRING, required=True, multiple=True)], group="Special")
def series_by_tag(ctx, *exprs):
    """Returns the series matching every tag expression (resolved by the evaluator before functions run)."""
    raise AssertionError("seriesByTag is resolved by the evaluator")
