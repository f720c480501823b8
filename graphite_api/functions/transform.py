"""Transform family, point-wise part (graphite-web 1.1.10 semantics).

Each function maps every series of its input to one output series on the same time grid. NaN stands for
graphite-web's None, so a null point stays null unless graphite-web says otherwise (isNonNull, transformNull,
keepLastValue, interpolate). Where graphite-web catches a math error and writes None (pow of a negative base, 1/0,
log of a non-positive number...), the numpy result is mapped to NaN explicitly.

Names and tags follow graphite-web exactly: `add(x,%d)` truncates its constant, `scale/offset/pow(x,%g)`,
`log(x, 10)` with a space, tag values are stringified (graphite-web's `Tags` does `str(value)`). Functions that
graphite-web implements with `series.copy(...)` also reset pathExpression to the new name; those that only rename
set it explicitly, which is the same thing here.
"""
from __future__ import annotations

import math

import numpy as np

from ..series import Series
from .common import format_g
from .registry import FLOAT, INT_OR_INF, INTEGER, SERIES_LIST, FunctionError, Param, register

_SL = Param("seriesList", SERIES_LIST, required=True)

# graphite-web's validateParams turns every float-typed argument into a float before the call, so `add(x,3)`
# is tagged "3.0"; each function below does the same with its float parameters.


def _rename(series: Series, name: str, tags: dict | None = None) -> Series:
    """New name (also the pathExpression, as graphite-web's functions set it) plus stringified tags."""
    series.name = name
    series.path_expression = name
    if tags:
        series.tags = {**series.tags, **{k: _tag_str(v) for k, v in tags.items()}}
    return series


def _tag_str(value) -> str:
    # graphite-web's Tags.__setitem__ is str(value); numpy scalars must print like Python floats
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _errstate():
    return np.errstate(invalid="ignore", divide="ignore", over="ignore")


def py_round(values: np.ndarray, ndigits: int) -> np.ndarray:
    """Python's `round(v, ndigits)` on an array (correctly rounded, ties to even).

    np.round multiplies by 10**ndigits first, which can flip a value lying within an ulp of a half; those few
    candidates (and any whose scaled value overflows) are redone with Python's round. That loop only visits
    near-tie points, never the whole series.
    """
    ndigits = int(ndigits)
    with _errstate():
        out = np.round(values, ndigits)
        scaled = values * 10.0 ** ndigits if ndigits >= 0 else values / 10.0 ** -ndigits
        frac = scaled - np.floor(scaled)
    finite = np.isfinite(values)
    # |scaled| >= 2**53: the value has no digits beyond `ndigits`, Python returns it unchanged
    exact = finite & np.isfinite(scaled) & (np.abs(scaled) >= 2.0 ** 53)
    out = np.where(exact, values, out)
    suspect = finite & ~exact & (~np.isfinite(scaled) | (np.abs(frac - 0.5) < 1e-6) | (abs(ndigits) > 22))
    for i in np.flatnonzero(suspect):
        out[i] = round(float(values[i]), ndigits)
    return out


def _pow(values: np.ndarray, exponent) -> np.ndarray:
    """graphite-web `safePow` (math.pow): ValueError / OverflowError -> None.

    numpy gives NaN for a negative base with a fractional exponent and inf for overflow or 0**negative; an
    infinite result from finite inputs is exactly the case where math.pow raises.
    """
    with _errstate():
        out = np.power(values, float(exponent))
    bad = np.isinf(out) & np.isfinite(values) & math.isfinite(exponent)
    return np.where(bad | np.isnan(values), np.nan, out)      # numpy's nan ** 0 is 1.0; None stays None


# --- arithmetic ------------------------------------------------------------------------------------------------

@register("absolute", [_SL], group="Transform")
def absolute(ctx, series_list):
    """Absolute value of every point."""
    for s in series_list:
        s.values = np.abs(s.values)
        _rename(s, f"absolute({s.name})", {"absolute": 1})
    return series_list


@register("add", [_SL, Param("constant", FLOAT, required=True)], group="Transform")
def add(ctx, series_list, constant):
    """Adds a constant to every point (null stays null); the name shows the constant truncated to an integer."""
    label = _percent_d(constant, "add", "constant")
    constant = float(constant)
    for s in series_list:
        with _errstate():
            s.values = s.values + constant
        _rename(s, f"add({s.name},{label})", {"add": constant})
    return series_list


def _percent_d(value, func: str, param: str) -> str:
    """Python's `%d` (truncates toward zero), used by graphite-web in `add(x,%d)` and `scaleToSeconds(x,%d)`."""
    if isinstance(value, float) and not math.isfinite(value):
        # graphite-web fails formatting the name (OverflowError/ValueError -> HTTP 500); say it is bad input
        raise FunctionError(f"{func}: parameter '{param}' must be finite, got {value!r}")
    return "%d" % value


@register("offset", [_SL, Param("factor", FLOAT, required=True)], group="Transform")
def offset(ctx, series_list, factor):
    """Adds `factor` to every non-null point."""
    factor = float(factor)
    for s in series_list:
        with _errstate():
            s.values = s.values + factor
        _rename(s, f"offset({s.name},{format_g(factor)})", {"offset": factor})
    return series_list


@register("scale", [_SL, Param("factor", FLOAT, required=True)], group="Transform")
def scale(ctx, series_list, factor):
    """Multiplies every point by `factor`."""
    factor = float(factor)
    for s in series_list:
        with _errstate():
            s.values = s.values * factor
        _rename(s, f"scale({s.name},{format_g(factor)})", {"scale": factor})
    return series_list


@register("scaleToSeconds", [_SL, Param("seconds", FLOAT, required=True)], group="Transform")
def scale_to_seconds(ctx, series_list, seconds):
    """Rescales each point from a per-step amount to a per-`seconds` amount (value * seconds / step,
    six decimals), e.g. after derivative() on series of mixed resolutions."""
    label = _percent_d(seconds, "scaleToSeconds", "seconds")
    seconds = float(seconds)
    for s in series_list:
        factor = seconds / s.step
        with _errstate():
            s.values = py_round(s.values * factor, 6)
        _rename(s, f"scaleToSeconds({s.name},{label})", {"scaleToSeconds": seconds})
    return series_list


@register("pow", [_SL, Param("factor", FLOAT, required=True)], group="Transform")
def pow_(ctx, series_list, factor):
    """Raises every point to the power `factor`; impossible results (negative base with a fractional power,
    overflow, 0 to a negative power) are null."""
    factor = float(factor)
    for s in series_list:
        s.values = _pow(s.values, factor)
        _rename(s, f"pow({s.name},{format_g(factor)})", {"pow": factor})
    return series_list


@register("squareRoot", [_SL], group="Transform")
def square_root(ctx, series_list):
    """Square root of every point; negative points become null."""
    for s in series_list:
        s.values = _pow(s.values, 0.5)
        _rename(s, f"squareRoot({s.name})", {"squareRoot": 1})
    return series_list


@register("invert", [_SL], group="Transform")
def invert(ctx, series_list):
    """1/x for every point; zero becomes null."""
    for s in series_list:
        s.values = _pow(s.values, -1)
        _rename(s, f"invert({s.name})", {"invert": 1})
    return series_list


@register("exp", [_SL], group="Transform")
def exp(ctx, series_list):
    """e raised to the power of every point."""
    for s in series_list:
        # graphite-web raises OverflowError (HTTP 500) above ~709.78; the IEEE result inf is kept here
        with _errstate():
            s.values = np.exp(s.values)
        _rename(s, f"exp({s.name})", {"exp": "e"})
    return series_list


@register("log", [_SL, Param("base", INTEGER, default=10)], group="Transform")
def logarithm(ctx, series_list, base=10):
    """Logarithm of every point in `base` (default 10); zero and negative points become null."""
    if base <= 0 or base == 1:
        # math.log(v, base) raises for these (graphite-web answers 500)
        raise FunctionError(f"log: parameter 'base' must be positive and not 1, got {base!r}")
    den = math.log(base)
    out = []
    for s in series_list:
        with _errstate():
            values = np.where(s.values > 0, np.log(s.values) / den, np.nan)
        out.append(_rename(s.copy(values=values), f"log({s.name}, {base})", {"log": base}))
    return out


@register("logit", [_SL], group="Transform")
def logit(ctx, series_list):
    """log(x / (1 - x)) for every point; points where it is undefined become null."""
    for s in series_list:
        with _errstate():
            ratio = s.values / (1 - s.values)
            # math.log raises for ratio <= 0 and 1/0 raises ZeroDivisionError: both become None
            s.values = np.where((ratio > 0) & (s.values != 1), np.log(ratio), np.nan)
        _rename(s, f"logit({s.name})", {"logit": "logit"})
    return series_list


@register("sigmoid", [_SL], group="Transform")
def sigmoid(ctx, series_list):
    """1 / (1 + e^-x) for every point."""
    for s in series_list:
        # graphite-web raises OverflowError (HTTP 500) below x ~ -709.78; the IEEE limit 0.0 is kept here
        with _errstate():
            s.values = 1 / (1 + np.exp(-s.values))
        _rename(s, f"sigmoid({s.name})", {"sigmoid": "sigmoid"})
    return series_list


@register("round", [_SL, Param("precision", INTEGER, default=0)], group="Transform")
def round_(ctx, series_list, precision=None):
    """Rounds every point to `precision` decimals (0 when omitted; negative rounds to tens, hundreds...)."""
    for s in series_list:
        s.values = py_round(s.values, precision or 0)
        name = f"round({s.name})" if precision is None else f"round({s.name},{int(precision)})"
        _rename(s, name, {"round": precision or 0})
    return series_list


# --- whole-series scaling -------------------------------------------------------------------------------------

@register("offsetToZero", [_SL], group="Transform")
def offset_to_zero(ctx, series_list):
    """Subtracts the series' own minimum from every point, so its lowest point sits at zero."""
    for s in series_list:
        present = s.values[~np.isnan(s.values)]
        minimum = float(present.min()) if len(present) else None
        if minimum is not None:
            s.values = s.values - minimum
        _rename(s, f"offsetToZero({s.name})", {"offsetToZero": minimum})
    return series_list


@register("minMax", [_SL], group="Transform")
def min_max(ctx, series_list):
    """Min-max normalisation of each series: (x - min) / (max - min), so values span 0..1 (0 for a flat
    series)."""
    for s in series_list:
        present = s.values[~np.isnan(s.values)]
        lo = float(present.min()) if len(present) else 0.0
        hi = float(present.max()) if len(present) else 0.0
        if hi - lo == 0:
            s.values = np.where(np.isnan(s.values), np.nan, 0.0)     # graphite-web's ZeroDivisionError branch
        else:
            s.values = (s.values - lo) / (hi - lo)
        _rename(s, f"minMax({s.name})")
    return series_list


# --- nulls -----------------------------------------------------------------------------------------------------

@register("isNonNull", [_SL], group="Transform")
def is_non_null(ctx, series_list):
    """1 where a point has a value, 0 where it is null (e.g. to count reporting hosts with sumSeries)."""
    for s in series_list:
        s.values = (~np.isnan(s.values)).astype(np.float64)
        _rename(s, f"isNonNull({s.name})", {"isNonNull": 1})
    return series_list


@register("transformNull", [_SL, Param("default", FLOAT, default=0), Param("referenceSeries", SERIES_LIST)],
          group="Transform")
def transform_null(ctx, series_list, default=None, referenceSeries=None):
    """Replaces nulls with `default` (0). With referenceSeries, only at positions where at least one
    reference series has a value."""
    # graphite-web's Python default is the int 0 (tagged "0"); a given default is validated to float ("0.0")
    default = 0 if default is None else float(default)
    fill = None
    if referenceSeries:
        # rows are zipped by position (graphite-web's izip_longest), not by timestamp
        length = max(len(r.values) for r in referenceSeries)
        present = np.zeros(length, dtype=bool)
        for r in referenceSeries:
            present[:len(r.values)] |= ~np.isnan(r.values)
        fill = np.where(present, float(default), np.nan)
    label = format_g(default)
    for s in series_list:
        tags = {"transformNull": default}
        if referenceSeries:
            tags["referenceSeries"] = 1
            name = f"transformNull({s.name},{label},referenceSeries)"
        else:
            name = f"transformNull({s.name},{label})"
        values = s.values
        if fill is None or not len(fill):
            # an empty reference row list is falsy in graphite-web: every null is replaced
            values = np.where(np.isnan(values), float(default), values)
        else:
            # graphite-web zips the series with the reference rows (zip_longest), then writes the result with
            # `series.extend(values); del series[:len(values)]`: with a longer reference that keeps the LAST
            # len(series) transformed rows, i.e. the rows are shifted by the length difference.
            n = max(len(values), len(fill))
            padded = np.full(n, np.nan)
            padded[:len(values)] = values
            ref = np.full(n, np.nan)
            ref[:len(fill)] = fill
            values = np.where(np.isnan(padded), ref, padded)[n - len(values):]
        s.values = values
        _rename(s, name, tags)
    return series_list


def _gap_runs(values: np.ndarray):
    """For every point: index of the previous non-null (-1 if none), of the next non-null (len if none)."""
    n = len(values)
    valid = ~np.isnan(values)
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(valid, idx, -1)) if n else idx
    nxt = np.minimum.accumulate(np.where(valid, idx, n)[::-1])[::-1] if n else idx
    return valid, prev, nxt


def _limit(limit, func: str) -> float:
    if limit is None:
        return math.inf
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or (
            isinstance(limit, float) and math.isfinite(limit) and not limit.is_integer()):
        raise FunctionError(f"{func}: parameter 'limit' must be an integer or inf, got {limit!r}")
    return limit


@register("keepLastValue", [_SL, Param("limit", INT_OR_INF, default=math.inf)], group="Transform")
def keep_last_value(ctx, series_list, limit=math.inf):
    """Fills runs of at most `limit` nulls (all runs by default) with the value before them, trailing
    runs included."""
    limit = _limit(limit, "keepLastValue")
    for s in series_list:
        valid, prev, nxt = _gap_runs(s.values)
        gap = nxt - prev - 1                       # a trailing gap runs to the end of the series
        fill = ~valid & (prev >= 0) & (gap <= limit)
        s.values = np.where(fill, s.values[np.maximum(prev, 0)], s.values) if len(s.values) else s.values
        _rename(s, f"keepLastValue({s.name})")
    return series_list


@register("interpolate", [_SL, Param("limit", INT_OR_INF, default=math.inf)], group="Transform")
def interpolate(ctx, series_list, limit=math.inf):
    """Fills runs of at most `limit` nulls (all runs by default) on the straight line between the values
    around them; runs at the start or end of the series stay null."""
    limit = _limit(limit, "interpolate")
    for s in series_list:
        v = s.values
        n = len(v)
        if n:
            valid, prev, nxt = _gap_runs(v)
            gap = nxt - prev - 1
            fill = ~valid & (prev >= 0) & (nxt < n) & (gap <= limit)
            p = np.maximum(prev, 0)
            q = np.minimum(nxt, n - 1)
            # same operation order as graphite-web: prev + (i - p) * (next - prev) / (gap + 1)
            with _errstate():
                line = v[p] + (np.arange(n) - p) * (v[q] - v[p]) / (gap + 1)
            s.values = np.where(fill, line, v)
        _rename(s, f"interpolate({s.name})")
    return series_list


# --- differences and sums --------------------------------------------------------------------------------------

def _previous(values: np.ndarray) -> np.ndarray:
    prev = np.empty_like(values)
    if len(values):
        prev[0] = np.nan
        prev[1:] = values[:-1]
    return prev


@register("derivative", [_SL], group="Transform")
def derivative(ctx, series_list):
    """Difference between each point and the one before it (null when either is null); for rates per
    second use perSecond()."""
    out = []
    for s in series_list:
        with _errstate():
            values = s.values - _previous(s.values)
        s.tags = {**s.tags, "derivative": "1"}
        out.append(_rename(s.copy(values=values), f"derivative({s.name})"))
    return out


def _non_negative_delta(values: np.ndarray, max_value, min_value) -> np.ndarray:
    """graphite-web's `_nonNegativeDelta` applied along a series.

    Its only state is `prev`, which is simply the previous point when that point was usable (non-null and
    within [minValue, maxValue]) and None otherwise, so the recurrence is a shifted copy.
    """
    usable = ~np.isnan(values)
    if max_value is not None:
        usable &= ~(values > max_value)
    if min_value is not None:
        usable &= ~(values < min_value)
    cur = np.where(usable, values, np.nan)
    prev = _previous(cur)
    with _errstate():
        rising = cur >= prev
        if max_value is not None:
            wrapped = max_value + 1 + cur - prev - (min_value or 0)
        elif min_value is not None:
            wrapped = cur - min_value
        else:
            wrapped = np.full_like(cur, np.nan)
        delta = np.where(rising, cur - prev, wrapped)
    return np.where(np.isnan(cur) | np.isnan(prev), np.nan, delta)


_MAX_MIN = [Param("maxValue", FLOAT), Param("minValue", FLOAT)]


@register("nonNegativeDerivative", [_SL, *_MAX_MIN], group="Transform")
def non_negative_derivative(ctx, series_list, maxValue=None, minValue=None):
    """Like derivative() but a decrease (a counter reset or wrap) gives null, or with maxValue the
    delta across a wrap at maxValue, or with minValue the rise from minValue. Points outside
    [minValue, maxValue] become null."""
    out = []
    for s in series_list:
        values = _non_negative_delta(s.values, maxValue, minValue)
        s.tags = {**s.tags, "nonNegativeDerivative": "1"}
        out.append(_rename(s.copy(values=values), f"nonNegativeDerivative({s.name})"))
    return out


@register("perSecond", [_SL, *_MAX_MIN], group="Transform")
def per_second(ctx, series_list, maxValue=None, minValue=None):
    """nonNegativeDerivative() divided by the step: a counter turned into a rate per second (six
    decimals). maxValue and minValue work as in nonNegativeDerivative()."""
    out = []
    for s in series_list:
        with _errstate():
            values = py_round(_non_negative_delta(s.values, maxValue, minValue) / s.step, 6)
        s.tags = {**s.tags, "perSecond": "1"}
        out.append(_rename(s.copy(values=values), f"perSecond({s.name})"))
    return out


@register("integral", [_SL], group="Transform")
def integral(ctx, series_list):
    """Running total of the series; null points stay null and do not reset the total."""
    out = []
    for s in series_list:
        null = np.isnan(s.values)
        # cumsum adds left to right like graphite-web's running total; null points stay null
        values = np.where(null, np.nan, np.cumsum(np.where(null, 0.0, s.values)))
        s.tags = {**s.tags, "integral": "1"}
        out.append(_rename(s.copy(values=values), f"integral({s.name})"))
    return out

