"""Filter Series and Filter Data families (graphite-web 1.1.10 semantics).

Filter Series functions keep or drop whole series (by name, by an aggregate of their values, by rank) and
return them untouched; Filter Data functions null out individual points. Per-series aggregates follow
graphite-web's "safe" functions (nulls ignored, `count` of an empty series is 0, `avg_zero` counts nulls as 0)
and sum left to right like Python's `sum`, so ties and thresholds land exactly where graphite-web puts them.
"""
from __future__ import annotations

import math

import numpy as np

from storage.matchers import BadRegex, compile_regex

from ..consolidation import get_aggregator
from ..series import Series
from ..target import grammar as g
from .common import format_g, percentile
from .registry import AGG_FUNC, FLOAT, INTEGER, REGISTRY, SERIES_LIST, STRING, FunctionError, Param, bind, register

# graphite-web's aggFuncs and aggFuncAliases (functions/aggfuncs.py); `<name>Series` is NOT accepted here
_AGG_CANONICAL = {"average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range",
                  "multiply", "last"}
_AGG_ALIASES = {"rangeOf": "range", "avg": "average", "total": "sum", "current": "last"}
AGG_FUNC_OPTIONS = sorted(_AGG_CANONICAL | set(_AGG_ALIASES))

_OPERATORS = ["!=", "<", "<=", "=", ">", ">="]


# --- per-series aggregates -----------------------------------------------------------------------------------------

def _seq_sum(values: np.ndarray) -> float:
    # cumsum accumulates strictly left to right, as Python's sum does; np.sum's pairwise order can differ in the
    # last bit, which would move ties and exact-threshold comparisons away from graphite-web's
    return float(np.cumsum(values)[-1])


def agg_func_name(func: str, where: str) -> str:
    """Canonical aggregation name, or a FunctionError naming the caller (graphite-web's getAggFunc)."""
    if func in _AGG_CANONICAL:
        return func
    if func in _AGG_ALIASES:
        return _AGG_ALIASES[func]
    raise FunctionError(f"{where}: Unsupported aggregation function: {func}")


def series_aggregate(values: np.ndarray, func: str) -> float:
    """One series reduced by a canonical aggregation name with graphite-web's null rules; NaN = None."""
    present = values[~np.isnan(values)]
    if func == "count":
        return float(len(present))                      # safeLen: 0, never None
    if func == "avg_zero":
        # nulls count as 0 and in the divisor; an empty series has no value
        return _seq_sum(present) / len(values) if len(present) else (0.0 if len(values) else math.nan)
    if func == "multiply":
        # safeMul: None as soon as one factor is None
        if not len(values) or len(present) < len(values):
            return math.nan
        return float(np.multiply.accumulate(values)[-1])
    if not len(present):
        return math.nan
    if func == "sum":
        return _seq_sum(present)
    if func == "average":
        return _seq_sum(present) / len(present)
    if func == "diff":
        return _seq_sum(np.concatenate([present[:1], -present[1:]]))
    if func == "stddev":
        mean = _seq_sum(present) / len(present)
        dev = present - mean
        return math.sqrt(_seq_sum(dev * dev) / len(present))
    # min, max, last, median, range do not depend on summation order
    return float(get_aggregator(func)(present))


def sort_key(value: float) -> float:
    """graphite-web's keyFunc: a None aggregate sorts as -inf."""
    return -math.inf if math.isnan(value) else value


def compile_user_regex(pattern: str, where: str):
    """A user regex with Python `re.search` semantics, compiled by RE2 (linear time); bad → 400."""
    try:
        return compile_regex(pattern, anchor="none")
    except BadRegex as exc:
        raise FunctionError(f"{where}: {exc}") from None


def _by_param(spec_name: str, args: list, kwargs: dict) -> dict:
    """Bound positional and keyword arguments as {param name: value}."""
    params = REGISTRY[spec_name].params
    out = {p.name: p.default for p in params}
    out.update({p.name: v for p, v in zip(params, args)})
    out.update(kwargs)
    return out


# --- filterSeries and its shorthands -------------------------------------------------------------------------------

def _keep(value: float, operator: str, threshold: float) -> bool:
    null = math.isnan(value)
    if operator == "=":
        return not null and value == threshold
    if operator == "!=":
        return null or value != threshold
    if operator == ">":
        return not null and value > threshold
    if operator == ">=":
        return not null and value >= threshold
    if operator == "<":
        return null or value < threshold
    if operator == "<=":
        return null or value <= threshold
    raise FunctionError(f"filterSeries: Unsupported operator: {operator}")


def _filter(series_list: list[Series], func: str, operator: str, threshold: float, where: str) -> list[Series]:
    name = agg_func_name(func, where)
    if operator not in _OPERATORS:
        raise FunctionError(f"{where}: Unsupported operator: {operator}")
    return [s for s in series_list if _keep(series_aggregate(s.values, name), operator, threshold)]


_SL = Param("seriesList", SERIES_LIST, required=True)
_N_FLOAT = Param("n", FLOAT, required=True)
_N_INT = Param("n", INTEGER, required=True)


@register("filterSeries", [_SL, Param("func", AGG_FUNC, required=True, options=AGG_FUNC_OPTIONS),
                           Param("operator", STRING, required=True, options=_OPERATORS),
                           Param("threshold", FLOAT, required=True)], group="Filter Series")
def filter_series(ctx, seriesList, func, operator, threshold):
    """Keeps the series whose aggregate (func) compares true against threshold with operator
    (=, !=, >, >=, <, <=). A series whose aggregate is null passes only !=, < and <=."""
    return _filter(seriesList, func, operator, threshold, "filterSeries")


def _threshold_filter(name: str, func: str, operator: str, doc: str):
    def fn(ctx, seriesList, n):
        return _filter(seriesList, func, operator, n, name)
    fn.__doc__ = doc
    fn.__name__ = name
    register(name, [_SL, _N_FLOAT], group="Filter Series")(fn)
    return fn


_threshold_filter("maximumAbove", "max", ">", "Keeps the series whose maximum is above n.")
_threshold_filter("maximumBelow", "max", "<=", "Keeps the series whose maximum is at most n.")
_threshold_filter("minimumAbove", "min", ">", "Keeps the series whose minimum is above n.")
_threshold_filter("minimumBelow", "min", "<=", "Keeps the series whose minimum is at most n.")
_threshold_filter("currentAbove", "last", ">", "Keeps the series whose last non-null value is above n.")
_threshold_filter("currentBelow", "last", "<=", "Keeps the series whose last non-null value is at most n.")
_threshold_filter("averageAbove", "average", ">", "Keeps the series whose average is above n.")
_threshold_filter("averageBelow", "average", "<=", "Keeps the series whose average is at most n.")


# --- ranking -------------------------------------------------------------------------------------------------------

def rank(series_list: list[Series], func: str, descending: bool, where: str) -> list[Series]:
    """Stable sort by an aggregate (None as -inf), as graphite-web's list.sort(key=keyFunc(...))."""
    name = agg_func_name(func, where)
    keyed = [(sort_key(series_aggregate(s.values, name)), s) for s in series_list]
    keyed.sort(key=lambda kv: kv[0], reverse=descending)
    return [s for _, s in keyed]


@register("highest", [_SL, _N_INT, Param("func", AGG_FUNC, default="average", options=AGG_FUNC_OPTIONS)],
          group="Filter Series")
def highest(ctx, seriesList, n=1, func="average"):
    """The n series with the highest aggregate (func, default average) over the window."""
    return rank(seriesList, func, True, "highest")[:int(n)]


@register("lowest", [_SL, _N_INT, Param("func", AGG_FUNC, default="average", options=AGG_FUNC_OPTIONS)],
          group="Filter Series")
def lowest(ctx, seriesList, n=1, func="average"):
    """The n series with the lowest aggregate (func, default average) over the window."""
    return rank(seriesList, func, False, "lowest")[:int(n)]


def _ranked(name: str, func: str, descending: bool, doc: str):
    def fn(ctx, seriesList, n):
        return rank(seriesList, func, descending, name)[:int(n)]
    fn.__doc__ = doc
    fn.__name__ = name
    register(name, [_SL, _N_INT], group="Filter Series")(fn)
    return fn


_ranked("highestAverage", "average", True, "The n series with the highest average.")
_ranked("highestCurrent", "current", True, "The n series with the highest last non-null value.")
_ranked("highestMax", "max", True, "The n series with the highest maximum.")
_ranked("lowestAverage", "average", False, "The n series with the lowest average.")
_ranked("lowestCurrent", "current", False, "The n series with the lowest last non-null value.")


@register("mostDeviant", [_SL, _N_INT], group="Filter Series")
def most_deviant(ctx, seriesList, n):
    """The n series with the largest variance (mean squared distance from their own mean); series without
    values are dropped."""
    scored = []
    for s in seriesList:
        present = s.values[~np.isnan(s.values)]
        if not len(present):
            continue
        mean = _seq_sum(present) / len(present)
        dev = present - mean
        scored.append((_seq_sum(dev * dev) / len(present), s))
    scored.sort(key=lambda kv: sort_key(kv[0]), reverse=True)
    return [s for _, s in scored][:n]


@register("limit", [_SL, _N_INT], group="Filter Series")
def limit(ctx, seriesList, n):
    """The first n series (Python slice semantics: a negative n drops from the end)."""
    return seriesList[0:n]


# --- percentile bands ----------------------------------------------------------------------------------------------

def _column_percentiles(matrix: np.ndarray, n: float, where: str) -> np.ndarray:
    """NIST percentile (non-interpolating, as common.percentile) of every column of (series × points); NaN where
    a column has no value. Ranks out of range behave as graphite-web's list indexing: a negative one counts
    from the end, one past the end is an error."""
    ordered = np.sort(matrix, axis=0)                  # NaN sorts last: the first `count` rows are the values
    count = (~np.isnan(matrix)).sum(axis=0)
    fractional = (n / 100.0) * (count + 1)
    whole = np.trunc(fractional)
    rank_ = (whole + np.ceil(fractional - whole)).astype(np.int64)
    idx = np.where(rank_ == 0, 0, np.where(rank_ - 1 == count, count - 1, rank_ - 1))
    if ((count > 0) & ((idx >= count) | (idx < -count))).any():
        raise FunctionError(f"{where}: parameter 'n': percentile {format_g(n)} is out of range")
    idx = np.where(count > 0, np.where(idx < 0, idx + count, idx), 0)
    out = np.take_along_axis(ordered, idx[None, :], axis=0)[0]
    return np.where(count > 0, out, np.nan)


def _list_percentile(values: np.ndarray, n: float, where: str) -> float:
    try:
        return percentile(values, n)
    except IndexError:       # graphite-web: IndexError (HTTP 500) for a rank past the end
        raise FunctionError(f"{where}: parameter 'n': percentile {format_g(n)} is out of range") from None


@register("averageOutsidePercentile", [_SL, _N_FLOAT], group="Filter Series")
def average_outside_percentile(ctx, seriesList, n):
    """Keeps the series whose average lies outside the band between the (100−n)th and nth percentiles of all
    the averages (n < 50 is read as 100 − n)."""
    averages = np.array([series_aggregate(s.values, "average") for s in seriesList], dtype=np.float64)
    if n < 50:
        n = 100 - n
    low = _list_percentile(averages, 100 - n, "averageOutsidePercentile")
    high = _list_percentile(averages, n, "averageOutsidePercentile")
    # graphite-web 1.1.10 raises TypeError on a series without values; like its Python 2 ancestor we keep it
    # (a null average is not inside the band)
    return [s for s, avg in zip(seriesList, averages) if math.isnan(avg) or not (low < avg < high)]


@register("removeBetweenPercentile", [_SL, _N_FLOAT], group="Filter Series")
def remove_between_percentile(ctx, seriesList, n):
    """Keeps the series with at least one value outside the band between the (100−n)th and nth percentiles of
    all the values at that position (n < 50 is read as 100 − n)."""
    if not seriesList:
        return []
    if n < 50:
        n = 100 - n
    width = max(len(s.values) for s in seriesList)
    # rows are positional, like graphite-web's zip; shorter series are padded with nulls
    matrix = np.full((len(seriesList), width), np.nan)
    for i, s in enumerate(seriesList):
        matrix[i, :len(s.values)] = s.values
    low = _column_percentiles(matrix, 100 - n, "removeBetweenPercentile")
    high = _column_percentiles(matrix, n, "removeBetweenPercentile")
    # graphite-web 1.1.10 raises TypeError on nulls; a null is neither inside nor outside the band here
    with np.errstate(invalid="ignore"):
        outside = ~np.isnan(matrix) & ~((low < matrix) & (matrix < high))
    return [s for s, keep in zip(seriesList, outside.any(axis=1)) if keep]


# --- by name, by emptiness -----------------------------------------------------------------------------------------

@register("exclude", [_SL, Param("pattern", STRING, required=True)], group="Filter Series")
def exclude(ctx, seriesList, pattern):
    """Drops the series whose name matches the regular expression (searched anywhere in the name)."""
    regex = compile_user_regex(pattern, "exclude")
    return [s for s in seriesList if not regex.search(s.name)]


@register("grep", [_SL, Param("pattern", STRING, required=True)], group="Filter Series")
def grep(ctx, seriesList, pattern):
    """Keeps only the series whose name matches the regular expression (searched anywhere in the name)."""
    regex = compile_user_regex(pattern, "grep")
    return [s for s in seriesList if regex.search(s.name)]


@register("removeEmptySeries", [_SL, Param("xFilesFactor", FLOAT)], group="Filter Series")
def remove_empty_series(ctx, seriesList, xFilesFactor=None):
    """Keeps the series with at least one value, or with a non-null fraction of at least xFilesFactor (this
    function's own default is 0, whatever the request's xFilesFactor)."""
    xff = 0 if xFilesFactor is None else xFilesFactor
    out = []
    for s in seriesList:
        total = len(s.values)
        present = int(np.count_nonzero(~np.isnan(s.values)))
        if present and total and present / total >= xff:
            out.append(s)
    return out


@register("unique", [Param("seriesLists", SERIES_LIST, required=True, multiple=True)], group="Filter Series")
def unique(ctx, *seriesLists):
    """The series of all the lists, the first of each name only."""
    seen: set = set()
    out = []
    for seriesList in seriesLists:
        for s in seriesList:
            if s.name not in seen:
                seen.add(s.name)
                out.append(s)
    return out


def _evaluate_raw_arg(ctx, node):
    """Evaluate an argument of a raw-args function. The evaluator prefetched its data under the method of any
    consolidateBy around this call, which it does not pass on: when the plain entries are missing (as in
    consolidateBy(useSeriesAbove(...), 'max')), the argument is fetched afresh over the same window."""
    from ..evaluator import evaluate, evaluate_in_window
    texts = g.path_expressions(node)
    if all(any(k[1] == t and k[2] is None for k in ctx.prefetched) for t in texts):
        return evaluate(ctx, node)
    return evaluate_in_window(ctx, node, ctx.start, ctx.end)


@register("useSeriesAbove", [_SL, Param("value", FLOAT, required=True), Param("search", STRING, required=True),
                             Param("replace", STRING, required=True)], group="Filter Series", raw_args=True)
def use_series_above(ctx, node):
    """For every series whose maximum is above value, renders the target named by replacing search (a regular
    expression) with replace in its name, instead of the series itself."""
    from ..evaluator import EvalContext, evaluate, prefetch
    spec = REGISTRY["useSeriesAbove"]
    args, kwargs = bind(spec, [_evaluate_raw_arg(ctx, a) for a in node.args],
                        {k: _evaluate_raw_arg(ctx, a) for k, a in node.kwargs})
    p = _by_param("useSeriesAbove", args, kwargs)
    regex = compile_user_regex(p["search"], "useSeriesAbove")
    names = []
    for s in p["seriesList"]:
        # graphite-web 1.1.10 raises TypeError on nulls (Python 3 max); the max of the values is what it means
        top = np.fmax.reduce(s.values) if len(s.values) else math.nan
        if not math.isnan(top) and top > p["value"]:
            try:
                names.append(regex.sub(p["replace"], s.name))
            except Exception as exc:      # a bad group reference in replace
                raise FunctionError(f"useSeriesAbove: parameter 'replace': {exc}") from None
    if not names:
        return []
    trees = []
    for name in names:
        try:
            trees.append(g.parse_target(name))
        except (g.TargetSyntaxError, ValueError) as exc:
            raise FunctionError(f"useSeriesAbove: cannot render {name!r}: {exc}") from None
    # the new targets are fetched afresh over the same window, like graphite-web's evaluateTarget
    sub = EvalContext(fetch=ctx.fetch, params=ctx.params)
    prefetch(sub, trees)
    out = []
    for tree in trees:
        result = evaluate(sub, tree)
        if not isinstance(result, list):
            raise FunctionError(f"useSeriesAbove: {g.format_target(tree)!r} is not a series list")
        out.extend(s for s in result if s is not None and len(s.values) > 0)
    return out


# --- Filter Data ---------------------------------------------------------------------------------------------------

def _rename(s: Series, func: str, n) -> None:
    s.name = f"{func}({s.name}, {format_g(n)})"
    s.path_expression = s.name


def _check_percent(n, where: str) -> None:
    # graphite-web's nPercentile asserts n (an AssertionError, HTTP 500, on 0): bad input, so a 400 here.
    # A negative n is accepted there (its rank indexes from the end) and is reproduced as is.
    if n == 0:
        raise FunctionError(f"{where}: parameter 'n': the requested percent is required to be greater than 0")


def _series_percentile(s: Series, n) -> float | None:
    """graphite-web's nPercentile(...)[0][0]: None when the series has no value or n is so far above 100 that
    graphite-web's index runs off the end (it then leaves the series as it is)."""
    try:
        value = percentile(s.values, n)
    except IndexError:
        return None
    return None if math.isnan(value) else value


def _tag_percentile(s: Series, n) -> None:
    # graphite-web's nPercentile tags a copy that shares the tags dict, so the tag leaks onto the series;
    # the value is the float parameter as Python prints it
    s.tags = {**s.tags, "nPercentile": repr(float(n))}


def _remove_beyond_percentile(series_list, n, fname: str, beyond) -> list:
    for s in series_list:
        _check_percent(n, fname)
        _rename(s, fname, n)
        pct = _series_percentile(s, n)
        if pct is None:
            continue
        _tag_percentile(s, n)
        s.values = np.where(beyond(s.values, pct), np.nan, s.values)
    return series_list


@register("removeAbovePercentile", [_SL, _N_FLOAT], group="Filter Data")
def remove_above_percentile(ctx, seriesList, n):
    """Nulls the values above the nth percentile of each series."""
    return _remove_beyond_percentile(seriesList, n, "removeAbovePercentile", np.greater)


@register("removeBelowPercentile", [_SL, _N_FLOAT], group="Filter Data")
def remove_below_percentile(ctx, seriesList, n):
    """Nulls the values below the nth percentile of each series."""
    return _remove_beyond_percentile(seriesList, n, "removeBelowPercentile", np.less)


@register("removeAboveValue", [_SL, _N_FLOAT], group="Filter Data")
def remove_above_value(ctx, seriesList, n):
    """Nulls the values above n."""
    for s in seriesList:
        _rename(s, "removeAboveValue", n)
        s.values = np.where(s.values > n, np.nan, s.values)
    return seriesList


@register("removeBelowValue", [_SL, _N_FLOAT], group="Filter Data")
def remove_below_value(ctx, seriesList, n):
    """Nulls the values below n."""
    for s in seriesList:
        _rename(s, "removeBelowValue", n)
        s.values = np.where(s.values < n, np.nan, s.values)
    return seriesList


