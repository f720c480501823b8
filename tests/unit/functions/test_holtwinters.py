"""holtWinters* (forecast, confidence bands, aberration, confidence area): the model worked out by hand from
graphite-web 1.1.10's holtWintersAnalysis, and the functions through the real evaluation pipeline."""
from __future__ import annotations

import math

import numpy as np
import pytest

from graphite_api.functions import holtwinters as hw
from graphite_api.functions.registry import REGISTRY, FunctionError

from .test_calculate import END, START, T0, Pipe, vals

NAN = math.nan


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("holtwinters") / "data")
    yield p
    p.close()


# --- the model ---------------------------------------------------------------------------------------------------

def test_analysis_by_hand():
    pred, dev = hw.analysis(np.array([1.0, 2.0, 3.0]), 2)
    # i=0 seeds level 1; i=1: level 0.1*2 + 0.9*1 = 1.1, trend 0.0035*0.1, season 0.1*(2-1.1);
    # i=2 predicts 1.1 + 0.00035 + season[0] (0)
    assert pred.tolist() == pytest.approx([1.0, 1.0, 1.10035])
    assert dev.tolist() == pytest.approx([0.0, 0.1, 0.1 * abs(3 - 1.10035)])


def test_analysis_null_resets_level_and_voids_next_prediction():
    pred, dev = hw.analysis(np.array([1.0, NAN, 3.0]), 2)
    # the null slot keeps the prediction made before it; the next point has none (deviation against 0)
    assert vals_of(pred) == [1.0, 1.0, None]
    assert dev.tolist() == pytest.approx([0.0, 0.0, 0.3])


def test_analysis_leading_nulls_and_empty():
    pred, dev = hw.analysis(np.array([NAN, NAN, 4.0, 4.0]), 2)
    assert vals_of(pred) == [None, None, None, 4.0]
    assert dev.tolist() == pytest.approx([0.0, 0.0, 0.4, 0.0])
    pred, dev = hw.analysis(np.array([]), 2)
    assert len(pred) == len(dev) == 0


def test_analysis_uses_last_season():
    season = 3
    values = np.array([10.0, 20.0, 30.0] * 20)
    pred, _ = hw.analysis(values, season)
    # after a few seasons the seasonal terms carry the pattern: predictions follow the data closely
    assert np.allclose(pred[-3:], values[-3:], atol=3.0)


def vals_of(a) -> list:
    return [None if math.isnan(v) else v for v in a.tolist()]


# --- the functions -------------------------------------------------------------------------------------------

def _model(pipe, name, bootstrap, season):
    """The analysis over what the pipeline fetches from `from - bootstrap`, cut to the request window."""
    ctx = pipe.ctx(START - bootstrap, END)
    from graphite_api.evaluator import evaluate_in_window
    from graphite_api.target.grammar import parse_target
    [s] = evaluate_in_window(ctx, parse_target(name), START - bootstrap, END)
    pred, dev = hw.analysis(s.values, season // s.step)
    skip = bootstrap // s.step
    return pred[skip:], dev[skip:]


def test_forecast(pipe):
    [s] = pipe.render("holtWintersForecast(ramp,'10min','2min')")
    assert s.name == "holtWintersForecast(ramp)"
    assert s.start == START + 60 and s.step == 60 and len(s.values) == 10
    assert s.tags == {"name": "ramp", "holtWintersForecast": "1", "holtWintersDeviation": "1"}
    pred, _ = _model(pipe, "ramp", 600, 120)
    assert np.array_equal(s.values, pred, equal_nan=True)


def test_confidence_bands(pipe):
    lower, upper = pipe.render("holtWintersConfidenceBands(holes,2,'10min','3min')")
    assert (lower.name, upper.name) == ("holtWintersConfidenceLower(holes)", "holtWintersConfidenceUpper(holes)")
    assert lower.tags == upper.tags == {"name": "holes", "holtWintersForecast": "1", "holtWintersDeviation": "1",
                                        "holtWintersConfidenceUpper": "1", "holtWintersConfidenceLower": "1"}
    assert lower.path_expression == "holes"
    pred, dev = _model(pipe, "holes", 600, 180)
    assert np.array_equal(lower.values, pred - 2 * dev, equal_nan=True)
    assert np.array_equal(upper.values, pred + 2 * dev, equal_nan=True)
    assert np.isnan(lower.values).any()                 # a null input voids the next forecast


def test_aberration(pipe):
    [a] = pipe.render("holtWintersAberration(holes,1,'10min','3min')")
    lower, upper = pipe.render("holtWintersConfidenceBands(holes,1,'10min','3min')")
    [raw] = pipe.render("holes")
    assert a.name == "holtWintersAberration(holes)" and a.tags == {"name": "holes", "holtWintersAberration": "1"}
    v = raw.values
    expect = []
    for x, lo, hi in zip(v, lower.values, upper.values):
        if math.isnan(x):
            expect.append(0.0)
        elif not math.isnan(hi) and x > hi:
            expect.append(x - hi)
        elif not math.isnan(lo) and x < lo:
            expect.append(x - lo)
        else:
            expect.append(0.0)
    assert a.values.tolist() == pytest.approx(expect)
    assert any(expect)


def test_confidence_area_names_by_path_expression(pipe):
    lower, upper = pipe.render("holtWintersConfidenceArea(ramp,3,'10min','2min')")
    assert lower.name == upper.name == "holtWintersConfidenceArea(ramp)"
    assert lower.tags["holtWintersConfidenceArea"] == "1" and "areaBetween" not in lower.tags
    bands = pipe.render("holtWintersConfidenceBands(ramp,3,'10min','2min')")
    assert np.array_equal(lower.values, bands[0].values, equal_nan=True)
    assert np.array_equal(upper.values, bands[1].values, equal_nan=True)
    # several series: one pair each (graphite-web only draws exactly one pair)
    pairs = pipe.render("holtWintersConfidenceArea({ramp,neg},3,'10min','2min')")
    assert [s.name for s in pairs] == ["holtWintersConfidenceArea({ramp,neg})"] * 4


def test_short_bootstrap_and_zero_bootstrap(pipe):
    [s] = pipe.render("holtWintersForecast(ramp,'0s','2min')")
    # no bootstrap: the model starts at the first visible point, whose prediction is the value itself
    assert s.start == START + 60 and s.values[0] == 11.0


def test_default_bootstrap_is_seven_days(pipe):
    [s] = pipe.render("holtWintersForecast(ramp,seasonality='2min')")
    assert len(s.values) == 10
    assert REGISTRY["holtWintersForecast"].params[1].default == "7d"
    assert REGISTRY["holtWintersConfidenceBands"].params[1].default == 3


@pytest.mark.parametrize("target, message", [
    ("holtWintersForecast(ramp,'1h','1min')", "seasonality"),      # a season of one point
    ("holtWintersForecast(ramp,'1h','30s')", "seasonality"),
    ("holtWintersForecast(ramp,'-1h')", "bootstrapInterval"),
    ("holtWintersForecast(ramp,'forever')", "bootstrapInterval"),
    ("holtWintersConfidenceBands(ramp,1.5)", "delta"),
    ("holtWintersAberration(3)", "seriesList"),
])
def test_bad_arguments(pipe, target, message):
    with pytest.raises(FunctionError, match=message):
        pipe.render(target)


def test_empty_inputs(pipe):
    for fn in ("holtWintersForecast", "holtWintersConfidenceBands", "holtWintersAberration",
               "holtWintersConfidenceArea"):
        assert pipe.render(f"{fn}(nothing.here)") == []


def test_coarse_series(pipe):
    [s] = pipe.render("holtWintersForecast(slow,'10min','6min')")
    assert s.step == 120 and s.start == START + 120 and len(s.values) == 5
    pred, _ = _model(pipe, "slow", 600, 360)
    assert np.array_equal(s.values, pred, equal_nan=True)


def test_window_start_unaligned_to_step(pipe):
    # graphite-web moves the start by the bootstrap seconds even when they are not a whole number of steps
    [s] = pipe.render("holtWintersForecast(ramp,'90s','2min')")
    assert s.start == (START - 90) // 60 * 60 + 60 + 90
    assert T0 < s.start < END
