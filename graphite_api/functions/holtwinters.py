"""Holt-Winters forecasting (graphite-web 1.1.10): forecast, confidence bands, aberration and confidence area.

Additive Holt-Winters with alpha = gamma = 0.1 and beta = 0.0035, one season = `seasonality` / step points.
The model is trained on data fetched from `bootstrapInterval` before `from`, so the first visible point already
has a warmed-up forecast; only the points inside the request window are returned.
"""
from __future__ import annotations

import math

import numpy as np

from .. import evaluator
from ..series import Series
from ..timeparse import parse_interval
from .calculate import bind_raw, evaluate_here, series_arg_node
from .registry import INTEGER, INTERVAL, SERIES_LIST, FunctionError, Param, register

ALPHA = GAMMA = 0.1
BETA = 0.0035


def analysis(values: np.ndarray, season: int) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, deviations) for every point, following graphite-web's holtWintersAnalysis exactly,
    including how a null input resets the level and voids the next prediction.

    A recurrence (each step needs the previous level, trend and the value one season back), so this loops
    over the points in plain Python floats; it runs once per series on the bootstrap window.
    """
    n = len(values)
    vals = values.tolist()
    seasonals = [0.0] * n
    deviations = [0.0] * n
    predictions = [math.nan] * n
    last_intercept = None          # intercepts[-1]; None after a null input
    last_slope = 0.0
    next_pred = None
    one_minus_alpha, one_minus_beta, one_minus_gamma = 1 - ALPHA, 1 - BETA, 1 - GAMMA
    for i, actual in enumerate(vals):
        if actual != actual:       # null: missing input breaks the model; carry what graphite-web carries
            if next_pred is not None:
                predictions[i] = next_pred
            last_intercept = None
            last_slope = 0.0
            next_pred = None
            continue
        if i == 0:
            li, ls = actual, 0.0
            prediction = actual
        else:
            li = actual if last_intercept is None else last_intercept
            ls = last_slope
            prediction = next_pred
        j = i - season
        last_seasonal = seasonals[j] if j >= 0 else 0
        last_seasonal_dev = deviations[j] if j >= 0 else 0
        next_last_seasonal = seasonals[j + 1] if j + 1 >= 0 else 0
        intercept = ALPHA * (actual - last_seasonal) + one_minus_alpha * (li + ls)
        slope = BETA * (intercept - li) + one_minus_beta * ls
        seasonal = GAMMA * (actual - intercept) + one_minus_gamma * last_seasonal
        next_pred = intercept + slope + next_last_seasonal
        base = 0 if prediction is None else prediction
        deviation = GAMMA * math.fabs(actual - base) + one_minus_gamma * last_seasonal_dev
        last_intercept, last_slope = intercept, slope
        seasonals[i] = seasonal
        deviations[i] = deviation
        if prediction is not None:
            predictions[i] = prediction
    return np.asarray(predictions, dtype=np.float64), np.asarray(deviations, dtype=np.float64)


def _seconds(fname: str, pname: str, text) -> int:
    try:
        return parse_interval(text)
    except ValueError as exc:
        raise FunctionError(f"{fname}: parameter '{pname}': {exc}") from None


class _Model:
    """Forecast and deviation of one series, cut to the request window."""

    def __init__(self, series: Series, bootstrap: int, seasonality: int, fname: str):
        season = seasonality // series.step
        if season < 2:
            # graphite-web fails (IndexError) when a season is shorter than two points
            raise FunctionError(f"{fname}: parameter 'seasonality' must span at least two points of "
                                f"{series.name} (step {series.step}s)")
        predictions, deviations = analysis(series.values, season)
        skip = bootstrap // series.step
        self.series = series
        self.start = series.start + bootstrap
        self.forecast = predictions[skip:]
        self.deviation = deviations[skip:]


def _models(ctx, node) -> tuple[dict, list[_Model]]:
    fname = node.name
    params = bind_raw(ctx, node)
    bootstrap = _seconds(fname, "bootstrapInterval", params["bootstrapInterval"])
    if bootstrap < 0:
        raise FunctionError(f"{fname}: parameter 'bootstrapInterval' must not be negative")
    seasonality = _seconds(fname, "seasonality", params["seasonality"])
    series_list = evaluator.evaluate_in_window(ctx, series_arg_node(node), ctx.start - bootstrap, ctx.end)
    if not isinstance(series_list, list):
        raise FunctionError(f"{fname}: parameter 'seriesList' must be a series list")
    return params, [_Model(s, bootstrap, seasonality, fname) for s in series_list]


# graphite-web's analysis adds these tags to the (shared) tags of the bootstrap series
_ANALYSIS_TAGS = {"holtWintersForecast": "1", "holtWintersDeviation": "1"}
_BAND_TAGS = {**_ANALYSIS_TAGS, "holtWintersConfidenceUpper": "1", "holtWintersConfidenceLower": "1"}


def _bands(model: _Model, delta) -> tuple[np.ndarray, np.ndarray]:
    scaled = delta * model.deviation
    return model.forecast - scaled, model.forecast + scaled


_BOOTSTRAP_PARAMS = [
    Param("bootstrapInterval", INTERVAL, default="7d", suggestions=["7d", "30d"]),
    Param("seasonality", INTERVAL, default="1d", suggestions=["1d", "7d"]),
]
_DELTA = Param("delta", INTEGER, default=3)


@register("holtWintersForecast", [Param("seriesList", SERIES_LIST, required=True), *_BOOTSTRAP_PARAMS],
          group="Calculate", raw_args=True)
def holt_winters_forecast(ctx, node):
    """Holt-Winters forecast of each series, trained on data from bootstrapInterval (default 7d) before the
    request range with a season of `seasonality` (default 1d)."""
    _, models = _models(ctx, node)
    out = []
    for m in models:
        name = f"holtWintersForecast({m.series.name})"
        out.append(m.series.copy(name=name, start=m.start, values=m.forecast, path_expression=name,
                                 tags={**m.series.tags, **_ANALYSIS_TAGS}))
    return out


@register("holtWintersConfidenceBands", [Param("seriesList", SERIES_LIST, required=True), _DELTA,
                                         *_BOOTSTRAP_PARAMS], group="Calculate", raw_args=True)
def holt_winters_confidence_bands(ctx, node):
    """The forecast minus and plus delta (default 3) predicted deviations: a lower and an upper series for each
    input series."""
    params, models = _models(ctx, node)
    out = []
    for m in models:
        lower, upper = _bands(m, params["delta"])
        tags = {**m.series.tags, **_BAND_TAGS}
        out.append(m.series.copy(name=f"holtWintersConfidenceLower({m.series.name})", start=m.start,
                                 values=lower, tags=dict(tags), path_expression=m.series.path_expression))
        out.append(m.series.copy(name=f"holtWintersConfidenceUpper({m.series.name})", start=m.start,
                                 values=upper, tags=dict(tags), path_expression=m.series.path_expression))
    return out


@register("holtWintersAberration", [Param("seriesList", SERIES_LIST, required=True), _DELTA,
                                    *_BOOTSTRAP_PARAMS], group="Calculate", raw_args=True)
def holt_winters_aberration(ctx, node):
    """How far each point lies outside its confidence band: value - upper above it, value - lower below it,
    0 inside it or where the value is null."""
    params, models = _models(ctx, node)
    bands = {m.series.name: _bands(m, params["delta"]) for m in models}
    out = []
    for s in evaluate_here(ctx, series_arg_node(node)):
        n = len(s.values)
        lower, upper = bands.get(s.name, (np.empty(0), np.empty(0)))
        # bands are matched by name and compared point by point from the start of the window
        lo = np.full(n, np.nan)
        hi = np.full(n, np.nan)
        lo[:min(n, len(lower))] = lower[:n]
        hi[:min(n, len(upper))] = upper[:n]
        v = s.values
        with np.errstate(invalid="ignore"):
            values = np.where(v > hi, v - hi, np.where(v < lo, v - lo, 0.0))
        values = np.where(np.isnan(v), 0.0, values)
        name = f"holtWintersAberration({s.name})"
        out.append(s.copy(name=name, values=values, path_expression=name,
                          tags={**s.tags, "holtWintersAberration": "1"}))
    return out


@register("holtWintersConfidenceArea", [Param("seriesList", SERIES_LIST, required=True), _DELTA,
                                        *_BOOTSTRAP_PARAMS], group="Calculate", raw_args=True)
def holt_winters_confidence_area(ctx, node):
    """The confidence bands drawn as an area (the lower band stacked invisibly under the upper one)."""
    params, models = _models(ctx, node)
    out = []
    # graphite-web hands all bands to areaBetween, which accepts exactly one pair (one input series); here every
    # input series gets its own pair
    for m in models:
        lower, upper = _bands(m, params["delta"])
        name = f"holtWintersConfidenceArea({m.series.path_expression})"
        tags = {**m.series.tags, **_BAND_TAGS, "holtWintersConfidenceArea": "1"}
        for values in (lower, upper):
            out.append(m.series.copy(name=name, start=m.start, values=values, tags=dict(tags),
                                     path_expression=name))
    return out
