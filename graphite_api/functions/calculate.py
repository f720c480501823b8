"""Calculate group: moving windows, exponentialMovingAverage, stdev, nPercentile, aggregateLine, identity,
linearRegression (graphite-web 1.1.10 semantics; the holtWinters* family lives in holtwinters.py).

Functions that need data from another window than the request's (the moving family's preview before `from`,
linearRegression's source range) take their arguments unevaluated (`raw_args`) and evaluate the series argument
themselves; scalar arguments are still checked against the declared params with `registry.bind`.
"""
from __future__ import annotations

from collections import Counter

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import evaluator
from ..consolidation import canonical_name, get_aggregator
from ..series import Series
from ..target import grammar as g
from ..timeparse import parse_interval, parse_time
from .common import format_g, percentile
from .special import request_xff, tags_from_name
from .registry import (AGG_FUNC, BOOLEAN, DATE, FLOAT, INT_OR_INTERVAL, INTEGER, REGISTRY, SERIES_LIST, STRING,
                       FunctionError, Param, bind, register)

# graphite-web's aggFunc param options (aggfuncs.aggFuncs + aggFuncAliases), as /functions lists them
AGG_FUNC_OPTIONS = sorted(["average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range",
                           "multiply", "last", "rangeOf", "avg", "total", "current"], key=str)
WINDOW_SUGGESTIONS = [5, 7, 10, "1min", "5min", "10min", "30min", "1hour"]
_CHUNK_CELLS = 1 << 22          # sliding-window rows are reduced in blocks of at most this many cells


# --- raw-argument plumbing (shared with holtwinters.py) ----------------------------------------------------------

def series_arg_node(node: g.Call):
    """The AST of the first (series list) argument, positional or `seriesList=`; None when missing."""
    if node.args:
        return node.args[0]
    for key, value in node.kwargs:
        if key == "seriesList":
            return value
    return None


def bind_raw(ctx, node: g.Call) -> dict:
    """Evaluate the scalar arguments of a raw-args call and check every argument against the declared params.

    The series argument is not fetched here (the caller fetches it over the window it needs): a path or call
    stands in as an empty list, anything else (a literal) is passed as is so that bind rejects it.
    Returns {param name: value}, defaults filled in.
    """
    spec = REGISTRY[node.name]
    series_node = series_arg_node(node)

    def value_of(arg):
        if arg is series_node and isinstance(arg, (g.PathExpr, g.Call)):
            return []
        return evaluator.evaluate(ctx, arg)

    args = [value_of(a) for a in node.args]
    kwargs = {k: value_of(a) for k, a in node.kwargs}
    args, kwargs = bind(spec, args, kwargs)
    values = {p.name: p.default for p in spec.params}
    values.update(zip((p.name for p in spec.params), args))
    values.update(kwargs)
    return values


def evaluate_here(ctx, node) -> list[Series]:
    """Evaluate a raw argument over the request window.

    The request's prefetch keyed each path by the consolidateBy around it; a raw function is not told that
    context, so when its keys are missing (raw call inside consolidateBy) the subtree is fetched again.
    """
    keys = Counter()
    evaluator._fetch_keys(node, None, keys)
    if all(k in ctx.prefetched for k in keys):
        return evaluator.evaluate(ctx, node)
    return evaluator.evaluate_in_window(ctx, node, ctx.start, ctx.end)


def _series_list(value, fname: str) -> list[Series]:
    if not isinstance(value, list):
        raise FunctionError(f"{fname}: parameter 'seriesList' must be a series list, got {value!r}")
    return value


def _window_seconds(fname: str, window) -> int:
    """Seconds of a string window (graphite-web takes the absolute value of the offset)."""
    try:
        return abs(parse_interval(window))
    except ValueError as exc:
        raise FunctionError(f"{fname}: parameter 'windowSize': {exc}") from None


# --- moving windows --------------------------------------------------------------------------------------------

def _reduce_rows(block: np.ndarray, func: str, xff: float, total: int) -> np.ndarray:
    """func over each row's non-null values (graphite-web drops nulls before calling the aggregator)."""
    if func == "multiply":
        # on the non-null values only, so a null inside the window does not null the product
        mask = ~np.isnan(block)
        cnt = mask.sum(axis=-1)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.prod(np.where(mask, block, 1.0), axis=-1)
        null = cnt == 0
        if xff:
            null |= (cnt / total) < xff
        return np.where(null, np.nan, out)
    if func == "avg_zero":
        func = "average"            # nulls are already dropped, so avg_zero divides by the non-null count
    return get_aggregator(func)(block, axis=-1, xff=xff, total=total)


def _moving_values(values: np.ndarray, points: int, func: str, xff: float) -> np.ndarray:
    """Output i aggregates values[i+1 : i+1+points]: the window ending at (and including) the point that
    lands on output i's timestamp (1.1.10), so a series of n preview points gives n - points outputs."""
    n = len(values)
    if points <= 0:
        return np.full(n, np.nan)   # graphite-web: an empty window is never valid
    count = n - points
    if count <= 0:
        return np.empty(0)
    rows = sliding_window_view(values, points)[1:]
    out = np.empty(count)
    step = max(1, _CHUNK_CELLS // points)
    for lo in range(0, count, step):      # blocks bound memory; each block is one vectorised reduction
        out[lo:lo + step] = _reduce_rows(rows[lo:lo + step], func, xff, points)
    return out


def _shifted(s: Series, preview: int, values: np.ndarray) -> np.ndarray:
    """graphite-web moves the start by `preview` but keeps the fetched end, and its output pairs values with
    timestamps start..end: when the preview is longer than the window (mixed steps) the extra values go."""
    room = max(0, (len(s.values) * s.step - preview) // s.step + 1)
    return values[:room]


def _windowed(s: Series, fname: str, window, preview: int, compute) -> Series:
    """One output series of a moving-window function: `compute(values, points)` over the series fetched with
    its preview, named and tagged as graphite-web does (a quoted window for time strings)."""
    if isinstance(window, str):
        name, points = f'{fname}({s.name},"{window}")', preview // s.step
    else:
        name, points = f"{fname}({s.name},{window})", int(window)
    values = _shifted(s, preview, compute(s.values, points))
    return s.copy(name=name, start=s.start + preview, values=values, path_expression=name,
                  tags={**s.tags, fname: str(window)})


def _preview(ctx, node: g.Call, window, fname: str) -> tuple[list[Series], int]:
    """Re-evaluate the series argument from `from - preview` and return (series, preview seconds)."""
    series_node = series_arg_node(node)
    if isinstance(window, str):
        seconds = _window_seconds(fname, window)
        series = evaluator.evaluate_in_window(ctx, series_node, ctx.start - seconds, ctx.end)
        return _series_list(series, fname), seconds
    if window < 0:
        raise FunctionError(f"{fname}: parameter 'windowSize' must not be negative, got {window}")
    # graphite-web sizes an int preview by the largest step of the list; with an empty list there is nothing to do
    original = _series_list(evaluate_here(ctx, series_node), fname)
    if not original:
        return [], 0
    seconds = max(s.step for s in original) * int(window)
    series = evaluator.evaluate_in_window(ctx, series_node, ctx.start - seconds, ctx.end)
    return _series_list(series, fname), seconds


def moving_window(ctx, node: g.Call, func: str | None = None) -> list[Series]:
    fname = node.name
    params = bind_raw(ctx, node)
    window = params["windowSize"]
    func = func or params.get("func") or "average"
    try:
        canonical = canonical_name(func)
    except ValueError:
        raise FunctionError(f"{fname}: Unsupported aggregation function: {func}") from None
    series_list, preview = _preview(ctx, node, window, fname)
    tag = "moving" + func.capitalize()          # graphite-web: movingAvg, movingRangeof...
    # graphite-web falls back to the series' xFilesFactor, which for fetched series is the request's (not the
    # storage-aggregation value plumbago's fetch attaches)
    xff_arg = params.get("xFilesFactor")
    xff = float(xff_arg) if xff_arg is not None else request_xff(ctx)
    def compute(values, points):
        return _moving_values(values, points, canonical, xff)
    return [_windowed(s, tag, window, preview, compute) for s in series_list]


_MOVING_PARAMS = [
    Param("seriesList", SERIES_LIST, required=True),
    Param("windowSize", INT_OR_INTERVAL, required=True, suggestions=WINDOW_SUGGESTIONS),
    Param("xFilesFactor", FLOAT),
]


@register("movingWindow", [
    Param("seriesList", SERIES_LIST, required=True),
    Param("windowSize", INT_OR_INTERVAL, required=True, suggestions=WINDOW_SUGGESTIONS),
    Param("func", AGG_FUNC, default="average", options=AGG_FUNC_OPTIONS),
    Param("xFilesFactor", FLOAT),
], group="Calculate", raw_args=True)
def moving_window_fn(ctx, node):
    """Applies an aggregation function (default average) over a moving window of a number of points or a time
    interval ending at each point, fetching data from before `from` to fill the first windows. A window is null
    unless at least one value is non-null and the non-null share reaches xFilesFactor."""
    return moving_window(ctx, node)


def _fixed_moving(func: str):
    def fn(ctx, node):
        return moving_window(ctx, node, func)
    return fn


for _name, _func, _what in (("movingAverage", "average", "average"), ("movingMedian", "median", "median"),
                            ("movingSum", "sum", "sum"), ("movingMin", "min", "minimum"),
                            ("movingMax", "max", "maximum")):
    _f = _fixed_moving(_func)
    _f.__name__ = _name
    _f.__doc__ = (f"The moving {_what} of each series over a number of points or a time interval ending at "
                  f"each point (movingWindow with '{_func}'); xFilesFactor sets the non-null share a window needs.")
    register(_name, list(_MOVING_PARAMS), group="Calculate", raw_args=True)(_f)


# --- exponentialMovingAverage ----------------------------------------------------------------------------------

def _ema(values: np.ndarray, points: int, constant: float) -> np.ndarray:
    """graphite-web's EMA: the first output is the mean of the first `points` values (0 when none), then one
    output per later value; a null input gives a null output and leaves the average unchanged."""
    head = values[:points]
    head = head[~np.isnan(head)]
    # a left-to-right running sum, as Python's sum() computes it, keeps the rounding identical
    ema = float(np.cumsum(head)[-1] / len(head)) if len(head) else 0.0
    ema = ema or 0.0                # graphite-web's `safeAvg(...) or 0` (also turns -0.0 into 0)
    tail = values[points:]
    out = np.full(len(tail) + 1, np.nan)
    out[0] = round(ema, 6)
    mask = ~np.isnan(tail)
    keep = 1.0 - constant
    results = []
    # A recurrence: each average depends on the previous one, so this loops over the non-null values.
    for v in tail[mask].tolist():
        ema = constant * v + keep * ema
        results.append(round(ema, 6))
    out[1:][mask] = results
    return out


@register("exponentialMovingAverage", [
    Param("seriesList", SERIES_LIST, required=True),
    Param("windowSize", INT_OR_INTERVAL, required=True, suggestions=WINDOW_SUGGESTIONS),
], group="Calculate", raw_args=True)
def exponential_moving_average(ctx, node):
    """Exponential moving average with constant 2 / (N + 1), N the window in points (or in seconds for an
    interval window); seeded with the plain average of the first window. Values are rounded to 6 decimals."""
    fname = node.name
    params = bind_raw(ctx, node)
    window = params["windowSize"]
    series_list, preview = _preview(ctx, node, window, fname)
    if isinstance(window, str):
        constant = 2.0 / (preview + 1)
    else:
        constant = 2.0 / (int(window) + 1)
    return [_windowed(s, "exponentialMovingAverage", window, preview,
                      lambda values, points: _ema(values, points, constant)) for s in series_list]


# --- stdev ---------------------------------------------------------------------------------------------------

def _rolling_stdev(values: np.ndarray, points: int, tolerance: float) -> np.ndarray:
    """Population stddev of the last `points` values (fewer at the start), null when the non-null share of the
    window is below `tolerance`; graphite-web's sqrt(n*sum(x²) - sum(x)²) / n."""
    n = len(values)
    if points <= 0 or n == 0:
        return np.full(n, np.nan)
    valid = ~np.isnan(values)
    x = np.where(valid, values, 0.0)
    pad = np.zeros(points - 1)
    # window sums computed per window (no running total that drifts), in blocks to bound memory
    xs = np.concatenate([pad, x])
    cs = np.concatenate([pad, valid.astype(np.float64)])
    total = np.empty(n)
    squares = np.empty(n)
    count = np.empty(n)
    step = max(1, _CHUNK_CELLS // points)
    win_x = sliding_window_view(xs, points)
    win_c = sliding_window_view(cs, points)
    for lo in range(0, n, step):
        block = win_x[lo:lo + step]
        total[lo:lo + step] = block.sum(axis=-1)
        squares[lo:lo + step] = (block * block).sum(axis=-1)
        count[lo:lo + step] = win_c[lo:lo + step].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = count * squares - total * total
        out = np.sqrt(inner) / count
    ok = (count > 0) & (count / points >= tolerance) & (inner >= 0)
    return np.where(ok, out, np.nan)


@register("stdev", [
    Param("seriesList", SERIES_LIST, required=True),
    Param("points", INTEGER, required=True),
    Param("windowTolerance", FLOAT, default=0.1),
], group="Calculate")
def stdev(ctx, series_list, points, windowTolerance=0.1):
    """Rolling population standard deviation of each series over its last N points; a window whose share of
    non-null points is below windowTolerance is null."""
    if points < 0:
        raise FunctionError(f"stdev: parameter 'points' must not be negative, got {points}")
    tolerance = 0.1 if windowTolerance is None else float(windowTolerance)
    out = []
    for s in series_list:
        name = f"stdev({s.name},{int(points)})"
        out.append(s.copy(name=name, values=_rolling_stdev(s.values, int(points), tolerance),
                          path_expression=name, tags={**s.tags, "stdev": str(points)}))
    return out


# --- nPercentile ---------------------------------------------------------------------------------------------

@register("nPercentile", [
    Param("seriesList", SERIES_LIST, required=True),
    Param("n", FLOAT, required=True),
], group="Calculate")
def n_percentile(ctx, series_list, n):
    """A constant series at the n-th percentile (nearest rank, NIST) of each series' non-null values; series
    without any value are dropped."""
    if not n:
        raise FunctionError("nPercentile: parameter 'n' must be greater than 0")
    out = []
    for s in series_list:
        if not np.any(~np.isnan(s.values)):
            continue
        try:
            value = percentile(s.values, n)
        except IndexError:
            raise FunctionError(f"nPercentile: parameter 'n' must be between 0 and 100, got {n!r}") from None
        name = f"nPercentile({s.name}, {format_g(n)})"
        out.append(s.copy(name=name, values=np.full(len(s.values), value), path_expression=name,
                          tags={**s.tags, "nPercentile": str(float(n))}))
    return out


# --- aggregateLine -------------------------------------------------------------------------------------------

def _line_value(values: np.ndarray, func: str):
    """graphite-web's aggregation of a whole series. The sum-based functions add left to right (cumsum) like
    Python's sum(), because the full repr of the value becomes the line's `name` tag."""
    name = canonical_name(func)
    ok = values[~np.isnan(values)]
    if name == "count":
        return len(ok)                                  # an int, also for an all-null series
    if name == "avg_zero":
        if not len(values):
            return None
        return float(np.cumsum(np.where(np.isnan(values), 0.0, values))[-1] / len(values))
    if name == "multiply":
        if not len(values) or len(ok) < len(values):
            return None
        return float(np.multiply.accumulate(values)[-1])
    if not len(ok):
        return None
    if name == "sum":
        return float(np.cumsum(ok)[-1])
    if name == "average":
        return float(np.cumsum(ok)[-1] / len(ok))
    if name == "diff":
        return float(np.cumsum(np.concatenate([ok[:1], -ok[1:]]))[-1])
    if name == "stddev":
        mean = np.cumsum(ok)[-1] / len(ok)
        dev = ok - mean
        return float(math.sqrt(np.cumsum(dev * dev)[-1] / len(ok)))
    return float(get_aggregator(name)(ok, axis=-1))


@register("aggregateLine", [
    Param("seriesList", SERIES_LIST, required=True),
    Param("func", AGG_FUNC, default="average", options=AGG_FUNC_OPTIONS),
    Param("keepStep", BOOLEAN, default=False),
], group="Calculate")
def aggregate_line(ctx, series_list, func="average", keepStep=False):
    """A horizontal line at func (default average) of each series: three points across the request range, or
    the series' own points with keepStep."""
    try:
        canonical_name(func)
    except ValueError:
        raise FunctionError(f"aggregateLine: Unsupported aggregation function: {func}") from None
    out = []
    for s in series_list:
        value = _line_value(s.values, func)
        name = f"aggregateLine({s.name}, {format_g(value)})" if value is not None else f"aggregateLine({s.name}, None)"
        fill = np.nan if value is None else float(value)
        if keepStep:
            out.append(s.copy(name=name, values=np.full(len(s.values), fill), path_expression=name))
        else:
            # graphite-web draws it with constantLine: 3 points from `from`, half the range apart, whose name tag
            # is the value's text
            step = int((ctx.end - ctx.start) / 2.0)
            if step <= 0:
                raise FunctionError("aggregateLine: the time range is too short to draw a line")
            out.append(Series(name=name, start=ctx.start, step=step, values=np.full(3, fill),
                              tags=tags_from_name(value), path_expression=name,
                              xfiles_factor=request_xff(ctx)))
    return out


# --- identity ------------------------------------------------------------------------------------------------

@register("identity", [Param("name", STRING, required=True)], group="Calculate")
def identity(ctx, name):
    """A series whose value at each minute from `from` is that timestamp (step 60)."""
    start, end = int(ctx.start), int(ctx.end)
    values = np.arange(start, end, 60, dtype=np.float64)
    return [Series(name=name, start=start, step=60, values=values, tags=tags_from_name(name),
                   path_expression=f'identity("{name}")', xfiles_factor=request_xff(ctx))]


# --- linearRegression ----------------------------------------------------------------------------------------

def _regression(source: Series):
    """Least-squares (factor, offset) of value against timestamp over the non-null points; None when fewer than
    two distinct points. Index sums are exact integers as in graphite-web."""
    mask = ~np.isnan(source.values)
    n = int(mask.sum())
    idx = np.flatnonzero(mask).astype(np.int64)
    v = source.values[mask]
    sum_i = int(idx.sum())
    sum_ii = int((idx * idx).sum())
    sum_v = float(v.sum())
    sum_iv = float((idx * v).sum())
    denominator = float(n * sum_ii - sum_i * sum_i)
    if denominator == 0:
        return None
    factor = (n * sum_iv - sum_i * sum_v) / denominator / source.step
    offset = (sum_ii * sum_v - sum_iv * sum_i) / denominator - factor * source.start
    return factor, offset


def _date(ctx, value, pname: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return parse_time(str(value) if isinstance(value, int) else value, now=ctx.fetch.now,
                          tz=ctx.params.get("tz") or None)
    except ValueError as exc:
        raise FunctionError(f"linearRegression: parameter '{pname}': {exc}") from None


@register("linearRegression", [
    Param("seriesList", SERIES_LIST, required=True),
    Param("startSourceAt", DATE),
    Param("endSourceAt", DATE),
], group="Calculate", raw_args=True)
def linear_regression(ctx, node):
    """The least-squares line of each series, fitted on the data between startSourceAt and endSourceAt
    (default: the request range) and drawn over the request range."""
    params = bind_raw(ctx, node)
    series_node = series_arg_node(node)
    series_list = _series_list(evaluate_here(ctx, series_node), node.name)
    start_at, end_at = params.get("startSourceAt"), params.get("endSourceAt")
    start = ctx.start if start_at is None else _date(ctx, start_at, "startSourceAt")
    end = ctx.end if end_at is None else _date(ctx, end_at, "endSourceAt")
    if start_at is None and end_at is None:
        sources = series_list
    elif start >= end:
        sources = []
    else:
        sources = _series_list(evaluator.evaluate_in_window(ctx, series_node, start, end), node.name)
    out = []
    # graphite-web pairs sources and series by position
    for source, s in zip(sources, series_list):
        fit = _regression(source)
        if fit is None:
            continue
        factor, offset = fit
        name = f"linearRegression({s.name}, {start}, {end})"
        values = offset + s.timestamps.astype(np.float64) * factor
        out.append(s.copy(name=name, values=values, path_expression=name,
                          tags={**s.tags, "linearRegressions": f"{start}, {end}"}))
    return out
