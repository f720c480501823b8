"""Combine family: aggregate and its aliases (sumSeries, averageSeries, ...), the *SeriesLists pairwise forms and
series-list arithmetic (asPercent, divideSeries, powSeries, percentileOfSeries, weightedAverage, countSeries, group).

Semantics follow graphite-web 1.1.10. Series are combined after lcm normalisation (`consolidation.normalize`), and
rows are formed *by position* (graphite-web zips the normalised series with zip_longest, padding short ones with
null), so every row-wise operation here is one numpy operation over a 2-D array of shape (series, points).
"""
from __future__ import annotations

import math

import numpy as np

from ..consolidation import consolidate, get_aggregator, normalize_with_bounds
from ..series import Series, stacked_view
from .common import agg_key, format_g, unique_path_expressions
from .registry import (AGG_FUNC, ANY, BOOLEAN, FLOAT, NODE_OR_TAG, SERIES_LIST, FunctionError, Param, register)

GROUP = "Combine"

# graphite-web's aggFuncs and aggFuncAliases: the only names aggregate() accepts (plus the deprecated "<name>Series")
AGG_FUNCS = ["average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range", "multiply",
             "last", "rangeOf", "avg", "total", "current"]
# functions graphite-web marks `.aggregator = True`; with AGG_FUNCS they are the options of an aggOrSeriesFunc param
AGGREGATOR_FUNCTIONS = ["asPercent", "pct", "averageSeries", "avg", "averageSeriesWithWildcards", "countSeries",
                        "diffSeries", "diffSeriesLists", "maxSeries", "minSeries", "multiplySeries",
                        "multiplySeriesLists", "multiplySeriesWithWildcards", "powSeries", "rangeOfSeries",
                        "stddevSeries", "sum", "sumSeries", "sumSeriesLists", "sumSeriesWithWildcards"]


class AggFuncOptions(list):
    """The options graphite-web lists for an aggFunc parameter (what `/functions` shows).

    graphite-web does not enforce its parameter options (ENFORCE_INPUT_VALIDATION is off), so names outside the list
    still work: the deprecated `sumSeries` spelling of `sum`. Membership (used by `registry.bind`) accepts those too;
    the function itself rejects what graphite-web rejects, with graphite-web's message.
    """

    def __contains__(self, value) -> bool:
        if list.__contains__(self, value):
            return True
        return isinstance(value, str) and value.endswith("Series") and value[:-6] in AGG_FUNCS


class AggOrSeriesFuncOptions(AggFuncOptions):
    """Options of an aggOrSeriesFunc parameter: aggregation names and aggregator functions. graphite-web calls any
    render function named there (groupByNode(x, 1, "highestMax") works), so membership accepts every registered
    function as well."""

    def __contains__(self, value) -> bool:
        from .registry import REGISTRY
        return AggFuncOptions.__contains__(self, value) or (isinstance(value, str) and value in REGISTRY)


def agg_func_param(name: str = "func", required: bool = True) -> Param:
    return Param(name, AGG_FUNC, required=required, options=AggFuncOptions(sorted(AGG_FUNCS, key=str)))


def agg_or_series_func_options() -> AggOrSeriesFuncOptions:
    return AggOrSeriesFuncOptions(sorted(set(AGG_FUNCS) | set(AGGREGATOR_FUNCTIONS), key=str))


def _seriesList(name: str = "seriesList") -> Param:
    return Param(name, SERIES_LIST, required=True)


def _seriesLists() -> list[Param]:
    return [Param("seriesLists", SERIES_LIST, required=True, multiple=True)]


# --- shared helpers -------------------------------------------------------------------------------------------------

def request_xff(ctx) -> float:
    """The request's xFilesFactor (`xFilesFactor=` query parameter, or what setXFilesFactor stored); default 0."""
    params = getattr(ctx, "params", None) or {}
    value = params.get("xFilesFactor")
    if value is None or value == "":
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FunctionError(f"xFilesFactor must be a number, got {value!r}") from None


def flatten(series_lists) -> list[Series]:
    out: list[Series] = []
    for lst in series_lists:
        out.extend(lst)
    return out


def stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Rows padded with NaN to the longest: graphite-web's zip_longest over series, as one 2-D array (a
    read-only view of the fetch matrix when the arrays are its consecutive rows)."""
    view = stacked_view(arrays)
    if view is not None:
        return view
    lengths = {len(a) for a in arrays}
    if len(lengths) == 1:
        return np.vstack(arrays)
    out = np.full((len(arrays), max(lengths)), np.nan)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def at_step(series: Series, step: int) -> np.ndarray:
    """The values of `series` consolidated to `step` (a multiple of its own), lazily as graphite-web does: buckets
    from the series' first point, its own consolidation function and xFilesFactor."""
    if step == series.step or len(series.values) == 0:
        return series.values
    return consolidate(series, step // series.step, series.consolidation, series.xfiles_factor).values


def fit(values: np.ndarray, start: int, end: int, step: int) -> np.ndarray:
    """graphite-web's JSON pairs values with range(start, end + 1, step): extra values past `end` are dropped."""
    n = max(0, (end - start) // step + 1) if step > 0 else len(values)
    return values[:n] if len(values) > n else values


def safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """graphite-web safeDiv: null when either side is null or the divisor is 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(b == 0, np.nan, a / b)


def _canonical_agg(func: str) -> str:
    """graphite-web strips a trailing "Series" then accepts only aggFuncs / aggFuncAliases."""
    name = func[:-6] if func.endswith("Series") else func
    if name not in AGG_FUNCS:
        raise FunctionError(f"Unsupported aggregation function: {func}")
    return name


def _common_tags(series_list: list[Series]) -> dict:
    tags = dict(series_list[0].tags)
    for s in series_list[1:]:
        if not tags:
            break
        other = s.tags
        tags = {k: v for k, v in tags.items() if k in other and other[k] == v}
    return tags


def aggregate_series(ctx, series_list: list[Series], func: str, xff: float | None = None) -> list[Series]:
    """graphite-web `aggregate`: normalise, aggregate each row across series, name `<func>Series(<pathExprs>)`."""
    name = _canonical_agg(func)
    series_list = list(series_list)
    if not series_list:
        return []
    normed, start, _end, step = normalize_with_bounds(series_list)
    xff = request_xff(ctx) if xff is None else float(xff)
    matrix = stack([s.values for s in normed])
    values = get_aggregator(name)(matrix, axis=0, xff=xff)
    out_name = f"{name}Series({unique_path_expressions(normed)})"
    tags = _common_tags(normed)
    if "name" not in tags:
        tags["name"] = out_name
    tags["aggregatedBy"] = name
    return [Series(out_name, start, step, values, tags=tags, xfiles_factor=xff)]


# --- aggregate and its aliases --------------------------------------------------------------------------------------

@register("aggregate", [_seriesList(), agg_func_param(), Param("xFilesFactor", FLOAT)], group=GROUP)
def aggregate(ctx, series_list, func, xFilesFactor=None):
    """Aggregate series using the specified function (average/avg, avg_zero, median, sum/total, min, max, diff,
    stddev, count, range/rangeOf, multiply, last/current), row by row across the series."""
    return aggregate_series(ctx, series_list, func, xFilesFactor)


def _alias(func: str, name: str, doc: str, aliases: tuple = ()):
    def fn(ctx, *series_lists):
        return aggregate_series(ctx, flatten(series_lists), func)
    fn.__name__ = name
    fn.__doc__ = doc
    register(name, _seriesLists(), group=GROUP, aliases=aliases)(fn)
    return fn


sum_series = _alias("sum", "sumSeries", "Adds the series together at each point (short form: sum).", ("sum",))
average_series = _alias("average", "averageSeries",
                        "The average of the series at each point (short form: avg).", ("avg",))
diff_series = _alias("diff", "diffSeries", "Subtracts series 2 through n from series 1 at each point.")
min_series = _alias("min", "minSeries", "The lowest value of the series at each point.")
max_series = _alias("max", "maxSeries", "The highest value of the series at each point.")
stddev_series = _alias("stddev", "stddevSeries", "The population standard deviation of the series at each point.")
range_series = _alias("rangeOf", "rangeOfSeries", "The range (max - min) of the series at each point.")


@register("multiplySeries", _seriesLists(), group=GROUP)
def multiply_series(ctx, *series_lists):
    """Multiplies the series at each point; a null factor makes the product null."""
    if len(series_lists) == 1 and len(series_lists[0]) == 1:
        return series_lists[0]          # graphite-web's legacy behaviour: one series comes back untouched
    return aggregate_series(ctx, flatten(series_lists), "multiply")


# --- pairwise *SeriesLists -----------------------------------------------------------------------------------------

def aggregate_series_lists(ctx, first, second, func, xff=None) -> list[Series]:
    if len(first) != len(second):
        raise FunctionError("seriesListFirstPos and seriesListSecondPos argument must have equal length")
    _canonical_agg(func)
    out = []
    for a, b in zip(first, second):
        result = aggregate_series(ctx, [a, b], func, xff)[0]
        # only the name changes: the name tag keeps aggregate's "<func>Series(<pathExprs>)"
        result.name = result.name[:result.name.find("Series(")] + f"Series({a.name},{b.name})"
        out.append(result)
    return out


_PAIR_PARAMS = [_seriesList("seriesListFirstPos"), _seriesList("seriesListSecondPos")]


@register("aggregateSeriesLists", _PAIR_PARAMS + [agg_func_param(), Param("xFilesFactor", FLOAT)], group=GROUP)
def aggregate_series_lists_fn(ctx, seriesListFirstPos, seriesListSecondPos, func, xFilesFactor=None):
    """Aggregates list1[i] with list2[i] for each i using the given function; the lists must be equally long."""
    return aggregate_series_lists(ctx, seriesListFirstPos, seriesListSecondPos, func, xFilesFactor)


@register("sumSeriesLists", list(_PAIR_PARAMS), group=GROUP)
def sum_series_lists(ctx, seriesListFirstPos, seriesListSecondPos):
    """list1[i] + list2[i] for each i (aggregateSeriesLists with sum)."""
    return aggregate_series_lists(ctx, seriesListFirstPos, seriesListSecondPos, "sum")


@register("diffSeriesLists", list(_PAIR_PARAMS), group=GROUP)
def diff_series_lists(ctx, seriesListFirstPos, seriesListSecondPos):
    """list1[i] - list2[i] for each i (aggregateSeriesLists with diff)."""
    return aggregate_series_lists(ctx, seriesListFirstPos, seriesListSecondPos, "diff")


@register("multiplySeriesLists", list(_PAIR_PARAMS), group=GROUP)
def multiply_series_lists(ctx, seriesListFirstPos, seriesListSecondPos):
    """list1[i] * list2[i] for each i (aggregateSeriesLists with multiply)."""
    return aggregate_series_lists(ctx, seriesListFirstPos, seriesListSecondPos, "multiply")


# --- division -------------------------------------------------------------------------------------------------------

def _pair(a: Series, b: Series) -> tuple[int, int, np.ndarray]:
    """Normalise two series to their lcm step; (start, step, 2-D rows padded to the longer)."""
    step = math.lcm(a.step, b.step)
    return min(a.start, b.start), step, stack([at_step(a, step), at_step(b, step)])


def _quotient(ctx, dividend: Series, divisor: Series) -> Series:
    start, step, rows = _pair(dividend, divisor)
    return Series(f"divideSeries({dividend.name},{divisor.name})", start, step, safe_div(rows[0], rows[1]),
                  xfiles_factor=request_xff(ctx))


@register("divideSeries", [_seriesList("dividendSeriesList"), _seriesList("divisorSeries")], group=GROUP)
def divide_series(ctx, dividendSeriesList, divisorSeries):
    """Divides each dividend series by the one divisor series; division by 0 or null gives null."""
    if len(divisorSeries) == 0:
        for s in dividendSeriesList:
            s.name = f"divideSeries({s.name},MISSING)"
            s.path_expression = s.name
            s.values = np.full(len(s.values), np.nan)
        return dividendSeriesList
    if len(divisorSeries) > 1:
        raise FunctionError("divideSeries second argument must reference exactly 1 series "
                            f"(got {len(divisorSeries)})")
    return [_quotient(ctx, s, divisorSeries[0]) for s in dividendSeriesList]


@register("divideSeriesLists", [_seriesList("dividendSeriesList"), _seriesList("divisorSeriesList")], group=GROUP)
def divide_series_lists(ctx, dividendSeriesList, divisorSeriesList):
    """Divides list1[i] by list2[i] for each i; the lists must be equally long."""
    if len(dividendSeriesList) != len(divisorSeriesList):
        raise FunctionError("dividendSeriesList and divisorSeriesList argument must have equal length")
    return [_quotient(ctx, a, b) for a, b in zip(dividendSeriesList, divisorSeriesList)]


# --- asPercent ------------------------------------------------------------------------------------------------------

def _percent(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    rows = stack([values, totals])
    return safe_div(rows[0], rows[1]) * 100.0


def _sum_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """graphite-web safeSum per row: nulls skipped, all-null rows null, no xFilesFactor."""
    return get_aggregator("sum")(stack(arrays), axis=0)


class _LazySteps:
    """graphite-web consolidates lazily: normalize() only sets each series' valuesPerPoint, and asPercent reads the
    series again after several normalize() calls. This keeps that per-series state so the same values come out."""

    def __init__(self):
        self.vpp: dict[int, int] = {}

    def normalize(self, series_list: list[Series]) -> tuple[int, int, int]:
        step = math.lcm(*(s.step for s in series_list))
        for s in series_list:
            self.vpp[id(s)] = step // s.step
        start = min(s.start for s in series_list)
        end = max(s.end for s in series_list)
        return start, end - (end - start) % step, step

    def values(self, s: Series) -> np.ndarray:
        return at_step(s, s.step * self.vpp.get(id(s), 1))


def _grouped_total(lazy: _LazySteps, group: list[Series], xff: float):
    start, end, step = lazy.normalize(group)
    total = Series(f"sumSeries({unique_path_expressions(group)})", start, step,
                   _sum_rows([lazy.values(s) for s in group]), xfiles_factor=xff)
    return total, (start, end, step)


def _as_percent_by_nodes(ctx, series_list, total, nodes, lazy: _LazySteps, xff: float) -> list[Series]:
    keys: list[str] = []
    groups: dict[str, list[Series]] = {}
    for s in series_list:
        key = agg_key(s, nodes)
        if key not in groups:
            groups[key] = []
            keys.append(key)
        groups[key].append(s)
    totals: dict[str, Series] = {}
    # graphite-web builds MISSING series with the start/end/step of the latest normalize() call
    bounds = None
    if total is None:
        for key in keys:
            if len(groups[key]) == 1:
                totals[key] = groups[key][0]
            else:
                totals[key], bounds = _grouped_total(lazy, groups[key], xff)
    elif isinstance(total, list):
        total_groups: dict[str, list[Series]] = {}
        for s in total:
            key = agg_key(s, nodes)
            if key not in total_groups:
                total_groups[key] = []
                if key not in keys:
                    keys.append(key)
            total_groups[key].append(s)
        for key, group in total_groups.items():
            if len(group) == 1:
                totals[key] = group[0]
            else:
                totals[key], bounds = _grouped_total(lazy, group, xff)
    else:
        raise FunctionError("total must be None or a seriesList")

    def missing(name: str, like: Series) -> Series:
        # graphite-web fails (UnboundLocalError) when no normalize() ran yet; the series' own grid is used then
        start, end, step = bounds or (like.start, like.end, like.step)
        n = len(lazy.values(like))
        return Series(name, start, step, fit(np.full(n, np.nan), start, end, step), xfiles_factor=xff)

    out = []
    for key in keys:
        if key not in groups:
            out.append(missing(f"asPercent(MISSING,{totals[key].name})", totals[key]))
            continue
        for s in groups[key]:
            if key not in totals:
                out.append(missing(f"asPercent({s.name},MISSING)", s))
                continue
            t = totals[key]
            bounds = start, end, step = lazy.normalize([s, t])
            values = fit(_percent(lazy.values(s), lazy.values(t)), start, end, step)
            out.append(Series(f"asPercent({s.name},{t.name})", start, step, values, xfiles_factor=xff))
    return out


@register("asPercent", [_seriesList(), Param("total", ANY), Param("nodes", NODE_OR_TAG, multiple=True)],
          group=GROUP, aliases=("pct",))
def as_percent(ctx, seriesList, total=None, *nodes):
    """Each series as a percentage of a total: the sum of all series (no total), a number, one total series, a list
    of totals matched by sorted name, or (with nodes) totals matched by the given nodes/tags."""
    series_list = list(seriesList)
    if not series_list:
        return []
    xff = request_xff(ctx)
    lazy = _LazySteps()
    lazy.normalize(series_list)
    if nodes:
        return _as_percent_by_nodes(ctx, series_list, total, nodes, lazy, xff)

    if total is None:
        total_values = _sum_rows([lazy.values(s) for s in series_list])
        total_text = f"sumSeries({unique_path_expressions(series_list)})"
    elif isinstance(total, list):
        if len(total) != 1 and len(total) != len(series_list):
            raise FunctionError("asPercent second argument must be missing, a single digit, reference exactly 1 "
                                "series or reference the same number of series as the first argument")
        if len(total) == 1:
            lazy.normalize(series_list + total)
            total_values = lazy.values(total[0])
            total_text = total[0].name
    elif isinstance(total, (int, float)):
        total_values = np.full(len(series_list[0].values), float(total))
        total_text = str(total)
    else:
        raise FunctionError(f"asPercent: parameter 'total' must be a number or a series list, got {total!r}")

    out = []
    if isinstance(total, list) and len(total) == len(series_list):
        pairs = zip(sorted(series_list, key=lambda s: s.name), sorted(total, key=lambda s: s.name))
        for s, t in pairs:
            start, end, step = lazy.normalize([s, t])
            values = fit(_percent(lazy.values(s), lazy.values(t)), start, end, step)
            out.append(Series(f"asPercent({s.name},{t.name})", start, step, values, xfiles_factor=xff))
        return out
    for s in series_list:
        # graphite-web keeps each series' own start/end/step here even when normalize() consolidated its values
        # (mixed steps): the points then sit on the original step, as graphite-web outputs them
        values = fit(_percent(lazy.values(s), total_values), s.start, s.end, s.step)
        out.append(Series(f"asPercent({s.name},{total_text or s.path_expression})", s.start, s.step, values,
                          xfiles_factor=xff))
    return out


# --- other row-wise combinations -----------------------------------------------------------------------------------

@register("countSeries", [Param("seriesLists", SERIES_LIST, multiple=True)], group=GROUP)
def count_series(ctx, *series_lists):
    """A constant line with the number of series (0 and constantLine(0)'s layout when called with no argument)."""
    if not series_lists:
        step = max(int((ctx.end - ctx.start) / 2.0), 1)
        return [Series("0", ctx.start, step, np.zeros(3), path_expression="countSeries()",
                       xfiles_factor=request_xff(ctx))]
    series_list = flatten(series_lists)
    if not series_list:
        return []
    normed, start, _end, step = normalize_with_bounds(series_list)
    n = max(len(s.values) for s in normed)
    name = f"countSeries({unique_path_expressions(normed)})"
    return [Series(name, start, step, np.full(n, float(len(normed))), xfiles_factor=request_xff(ctx))]


@register("powSeries", [Param("seriesList", SERIES_LIST, required=True, multiple=True)], group=GROUP)
def pow_series(ctx, *series_lists):
    """Raises series 1 to the power of series 2, the result to the power of series 3, ... at each point."""
    series_list = flatten(series_lists)
    if not series_list:
        return []
    normed, start, _end, step = normalize_with_bounds(series_list)
    rows = stack([s.values for s in normed])
    acc = rows[0].copy()
    with np.errstate(all="ignore"):
        for b in rows[1:]:                       # a left fold over series, each step vectorised over the points
            result = np.power(acc, b)
            # safePow: null operands give null (numpy gives 1 for nan**0 and 1**nan); math.pow raises where numpy
            # overflows or divides by zero from finite operands, and graphite-web turns that into null
            bad = np.isnan(acc) | np.isnan(b) | (np.isinf(result) & np.isfinite(acc) & np.isfinite(b))
            acc = np.where(bad, np.nan, result)
    name = "powSeries(%s)" % ",".join(s.name for s in normed)
    return [Series(name, start, step, acc, xfiles_factor=request_xff(ctx))]


def _row_percentiles(rows: np.ndarray, n: float, interpolate: bool) -> np.ndarray:
    """graphite-web `_getPercentile` (NIST) for every column of `rows` (series x points) at once."""
    cols = np.sort(rows.T, axis=1)              # per point, its values in order; NaN (null) sort last
    cnt = (~np.isnan(cols)).sum(axis=1)
    has = cnt > 0
    fractional = (n / 100.0) * (cnt + 1)
    rank = np.floor(fractional).astype(np.int64)
    fraction = fractional - rank
    if not interpolate:
        rank = rank + np.ceil(fraction).astype(np.int64)
    idx = np.where(rank == 0, 0, np.where(rank - 1 == cnt, cnt - 1, rank - 1))
    has_next = interpolate & (rank != cnt)
    # graphite-web raises IndexError (HTTP 500) in these cases (n > 100; n = 100 with interpolation)
    if np.any(has & ((idx >= cnt) | (has_next & (rank >= cnt)))):
        raise FunctionError(f"percentileOfSeries: parameter 'n' = {n:g} is out of range for the data")
    width = cols.shape[1]
    value = np.take_along_axis(cols, np.clip(idx, 0, max(width - 1, 0))[:, None], axis=1)[:, 0]
    if interpolate:
        nxt = np.take_along_axis(cols, np.clip(rank, 0, max(width - 1, 0))[:, None], axis=1)[:, 0]
        with np.errstate(invalid="ignore"):
            value = np.where(has_next, value + fraction * (nxt - value), value)
    return np.where(has, value, np.nan)


@register("percentileOfSeries", [_seriesList(), Param("n", FLOAT, required=True),
                                 Param("interpolate", BOOLEAN, default=False)], group=GROUP)
def percentile_of_series(ctx, seriesList, n, interpolate=False):
    """The n-th percentile of the series' values at each point; without interpolation it is always one of the
    values present."""
    if n <= 0:
        raise FunctionError("The requested percent is required to be greater than 0")
    if not seriesList:
        return []
    normed, start, _end, step = normalize_with_bounds(seriesList)
    rows = stack([s.values for s in normed])
    if rows.shape[1] == 0:
        values = np.empty(0)
    else:
        values = _row_percentiles(rows, float(n), bool(interpolate))
    name = f"percentileOfSeries({seriesList[0].path_expression},{format_g(n)})"
    return [Series(name, start, step, values, xfiles_factor=request_xff(ctx))]


@register("weightedAverage", [_seriesList("seriesListAvg"), _seriesList("seriesListWeight"),
                              Param("nodes", NODE_OR_TAG, multiple=True)], group=GROUP)
def weighted_average(ctx, seriesListAvg, seriesListWeight, *nodes):
    """Σ(value × weight) / Σ(weight) at each point, value and weight series paired by the given nodes/tags."""
    if len(seriesListAvg) != len(seriesListWeight):
        raise FunctionError("weightedAverage must receive the same number of series for seriesListAvg and "
                            f"seriesListWeight but received respectively {len(seriesListAvg)} and "
                            f"{len(seriesListWeight)}")
    pairs: dict[str, dict] = {}
    for avg, weight in zip(seriesListAvg, seriesListWeight):
        pairs.setdefault(agg_key(avg, nodes), {})["avg"] = avg
        pairs.setdefault(agg_key(weight, nodes), {})["weight"] = weight
    products = []
    for pair in pairs.values():
        if "avg" not in pair or "weight" not in pair:
            continue
        avg, weight = pair["avg"], pair["weight"]
        # graphite-web multiplies the raw values by position, without normalising the two steps
        rows = stack([avg.values, weight.values])
        products.append(Series(f"product({weight.name},{avg.name})", avg.start, avg.step, rows[0] * rows[1],
                               xfiles_factor=request_xff(ctx)))
    if not products:
        return []
    sum_products = aggregate_series(ctx, products, "sum")[0]
    sum_weights = aggregate_series(ctx, seriesListWeight, "sum")[0]   # every weight, paired or not
    rows = stack([sum_products.values, sum_weights.values])
    name = "weightedAverage(%s, %s, %s)" % (",".join(sorted({s.path_expression for s in seriesListAvg})),
                                            ",".join(sorted({s.path_expression for s in seriesListWeight})),
                                            ",".join(map(str, nodes)))
    return [Series(name, sum_products.start, sum_products.step, safe_div(rows[0], rows[1]),
                   xfiles_factor=request_xff(ctx))]


@register("group", [Param("seriesLists", SERIES_LIST, multiple=True)], group=GROUP)
def group(ctx, *series_lists):
    """Joins several series lists into one (to pass them where one list is expected)."""
    return flatten(series_lists)
