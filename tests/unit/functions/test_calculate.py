"""Calculate group: moving windows, exponentialMovingAverage, stdev, nPercentile, aggregateLine, identity and
linearRegression — golden values worked out from graphite-web 1.1.10's documented behaviour."""
from __future__ import annotations

import math

import numpy as np
import pytest

from graphite_api.evaluator import EvalContext, evaluate_targets
from graphite_api.fetch import FetchContext
from graphite_api.functions import calculate
from graphite_api.functions.registry import REGISTRY, FunctionError
from graphite_api.series import Series
from graphite_api.target.grammar import parse_target
from storage.engine import EngineOptions, Storage

NAN = math.nan
T0 = 1_700_000_000 // 3600 * 3600
START, END = T0 + 600, T0 + 1200          # the request window; the 10 minutes before it feed the previews


class Pipe:
    """A real Storage and whole-target evaluation through the evaluator. Series are named -> (step, values);
    value i lands at T0 + step * (i + 1)."""

    DATA = {
        "ramp": (60, [float(i) for i in range(1, 21)]),                       # value = minute index
        "holes": (60, [1.0, NAN, 3.0, NAN, 5.0, 6.0, NAN, NAN, NAN, 10.0,
                       11.0, NAN, 13.0, 14.0, NAN, 16.0, 17.0, 18.0, NAN, 20.0]),
        "neg": (60, [float(-i) for i in range(1, 21)]),
        "slow": (120, [float(i) for i in range(1, 11)]),
        "line": (60, [2.0 * i + 1 for i in range(1, 21)]),
        "tagged;dc=east": (60, [5.0] * 20),
    }

    def __init__(self, path):
        self.storage = Storage(str(path), None, EngineOptions(flush_interval=3600))
        keys, ts, vals, steps = [], [], [], []
        for name, (step, values) in self.DATA.items():
            for i, v in enumerate(values):
                if not math.isnan(v):
                    keys.append(name)
                    ts.append((T0 + step * (i + 1)) * 1000)
                    vals.append(v)
                    steps.append(step)
        self.storage.write("anonymous", keys, np.array(ts), np.array(vals), intervals=steps)

    def ctx(self, start=START, end=END, params=None) -> EvalContext:
        fctx = FetchContext(storage=self.storage, tenant="anonymous", start=start, end=end, now=end + 60)
        return EvalContext(fetch=fctx, params=dict(params or {}))

    def render(self, *targets, start=START, end=END, params=None) -> list[Series]:
        return evaluate_targets(self.ctx(start, end, params), [parse_target(t) for t in targets])

    def close(self):
        self.storage.close()


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("calculate") / "data")
    yield p
    p.close()


def vals(series) -> list:
    return [None if math.isnan(v) else v for v in series.values]


def mk(name, values, start=START + 60, step=60, **kw) -> Series:
    return Series(name=name, start=start, step=step, values=np.array(values, dtype=float), **kw)


class FakeCtx:
    def __init__(self, start=START, end=END, params=None):
        self.start, self.end, self.params = start, end, dict(params or {})
        self.fetch = None


def call(name, *args, ctx=None, **kwargs):
    return REGISTRY[name].func(ctx or FakeCtx(), *args, **kwargs)


# --- moving windows ----------------------------------------------------------------------------------------------

def test_moving_average_includes_the_current_point(pipe):
    [s] = pipe.render("movingAverage(ramp,3)")
    assert s.name == "movingAverage(ramp,3)"
    assert s.start == START + 60 and s.step == 60
    assert vals(s) == [float(v - 1) for v in range(11, 21)]        # avg(v-2, v-1, v)
    assert s.tags == {"name": "ramp", "movingAverage": "3"}
    assert s.path_expression == s.name


def test_moving_family_values(pipe):
    out = {s.name: vals(s) for s in pipe.render(
        "movingSum(ramp,'3min')", "movingMin(ramp,3)", "movingMax(neg,3)", "movingMedian(ramp,4)")}
    assert out['movingSum(ramp,"3min")'] == [3.0 * v - 3 for v in range(11, 21)]
    assert out["movingMin(ramp,3)"] == [float(v - 2) for v in range(11, 21)]
    assert out["movingMax(neg,3)"] == [float(-v + 2) for v in range(11, 21)]
    assert out["movingMedian(ramp,4)"] == [v - 1.5 for v in range(11, 21)]


def test_moving_with_nulls_and_xfiles_factor(pipe):
    [plain] = pipe.render("movingAverage(holes,3)")
    # windows ending at minutes 11..20 of [10, 11, _, 13, 14, _, 16, 17, 18, _, 20]
    assert vals(plain) == [10.5, 10.5, 12.0, 13.5, 13.5, 15.0, 16.5, 17.0, 17.5, 19.0]
    [strict] = pipe.render("movingAverage(holes,3,0.7)")
    assert vals(strict) == [None, None, None, None, None, None, None, 17.0, None, None]
    # the request's xFilesFactor is the default when the function gets none
    [req] = pipe.render("movingAverage(holes,3)", params={"xFilesFactor": "0.7"})
    assert vals(req) == vals(strict)


def test_all_null_window_is_null(pipe):
    [s] = pipe.render("movingSum(holes,'2min')", start=T0 + 420, end=T0 + 600)
    # minutes 8, 9, 10: windows (7,8) (8,9) (9,10) -> null, null, 10
    assert vals(s) == [None, None, 10.0]


def test_moving_window_functions(pipe):
    got = {s.name: vals(s) for s in pipe.render(
        "movingWindow(holes,4,'count')", "movingWindow(holes,4,'multiply')", "movingWindow(holes,4,'avg_zero')",
        "movingWindow(holes,4,'diff')", "movingWindow(holes,4,'rangeOf')", "movingWindow(holes,4,'current')",
        "movingWindow(holes,4)")}
    # windows of 4 ending at minute 11: (8,9,10,11) = [_, _, 10, 11]; at 12: (9..12) = [_, 10, 11, _]
    assert got["movingCount(holes,4)"][:2] == [2.0, 2.0]
    assert got["movingMultiply(holes,4)"][:2] == [110.0, 110.0]        # nulls are dropped, not null-making
    assert got["movingAvg_zero(holes,4)"][:2] == [10.5, 10.5]          # nulls dropped: divides by 2
    assert got["movingDiff(holes,4)"][:2] == [-1.0, -1.0]
    assert got["movingRangeof(holes,4)"][:2] == [1.0, 1.0]             # graphite-web's str.capitalize()
    assert got["movingCurrent(holes,4)"][:2] == [11.0, 11.0]
    assert got["movingAverage(holes,4)"][:2] == [10.5, 10.5]           # movingWindow's default is average


def test_moving_window_tags_and_names(pipe):
    [s] = pipe.render("movingWindow(tagged;dc=east,'2min','max',0.5)")
    assert s.name == 'movingMax(tagged;dc=east,"2min")'
    assert s.tags == {"name": "tagged", "dc": "east", "movingMax": "2min"}
    assert vals(s) == [5.0] * 10


def test_moving_string_window_on_coarse_series(pipe):
    [s] = pipe.render("movingAverage(slow,'4min')")
    assert s.step == 120
    assert vals(s) == [5.5, 6.5, 7.5, 8.5, 9.5]                       # 2-point windows at 120 s


def test_moving_int_window_sized_by_the_largest_step(pipe):
    fast, slow = pipe.render("movingAverage(ramp,2)", "movingAverage(slow,2)")
    assert vals(slow) == [5.5, 6.5, 7.5, 8.5, 9.5]
    # graphite-web: the preview is 2 x 120 s for every series of the list, so here (one series) 2 x 60 s
    assert vals(fast) == [v - 0.5 for v in range(11, 21)]


def test_mixed_steps_shift_like_graphite_web():
    s = mk("x", [float(i) for i in range(10)], start=0)
    # preview of 4 points for a 2-point window: values[:room] keeps what fits before the fetched end
    moved = calculate._moving_values(s.values, 2, "average", 0.0)
    assert len(moved) == 8
    assert len(calculate._shifted(s, 240, moved)) == 7


def test_zero_window_is_all_null(pipe):
    [s] = pipe.render("movingAverage(ramp,0)")
    assert len(s.values) == 10 and np.isnan(s.values).all()


def test_moving_empty_inputs(pipe):
    assert pipe.render("movingAverage(nothing.here,5)") == []
    assert pipe.render("movingAverage(nothing.here,'5min')") == []
    assert pipe.render("exponentialMovingAverage(nothing.here,5)") == []


def test_moving_keyword_and_piped_arguments(pipe):
    [a] = pipe.render("movingAverage(seriesList=ramp,windowSize=3)")
    [b] = pipe.render("ramp|movingAverage(3)")
    [c] = pipe.render("movingAverage(ramp,xFilesFactor=0.1,windowSize='3min')")
    assert vals(a) == vals(b) == vals(c) == [float(v - 1) for v in range(11, 21)]


def test_nested_moving_windows(pipe):
    [s] = pipe.render("movingSum(movingAverage(ramp,3),2)")
    assert s.name == "movingSum(movingAverage(ramp,3),2)"
    assert vals(s) == [2.0 * v - 3 for v in range(11, 21)]


@pytest.mark.parametrize("target, message", [
    ("movingWindow(ramp,5,'bogus')", "func"),
    ("movingWindow(ramp,5,'first')", "func"),
    ("movingAverage(ramp,-2)", "windowSize"),
    ("movingAverage(ramp,'5parsecs')", "windowSize"),
    ("movingAverage(ramp,2.5)", "windowSize"),
    ("movingAverage(ramp)", "windowSize"),
    ("movingAverage(5,5)", "seriesList"),
    ("movingAverage(ramp,5,'x')", "xFilesFactor"),
])
def test_moving_bad_arguments(pipe, target, message):
    with pytest.raises(FunctionError, match=message):
        pipe.render(target)


def test_moving_values_large_window_is_chunked():
    values = np.arange(20000, dtype=float)
    out = calculate._moving_values(values, 5000, "max", 0.0)
    assert len(out) == 15000 and out[0] == 5000.0 and out[-1] == 19999.0


# --- exponentialMovingAverage --------------------------------------------------------------------------------

def test_ema_int_window(pipe):
    [s] = pipe.render("exponentialMovingAverage(ramp,3)")
    assert s.name == "exponentialMovingAverage(ramp,3)"
    assert s.tags == {"name": "ramp", "exponentialMovingAverage": "3"}
    # seed avg(8, 9, 10) = 9 at the first visible slot, then 0.5 * v + 0.5 * ema: one point past the last value
    assert s.start == START + 60
    assert vals(s) == [9.0 + k for k in range(11)]


def test_ema_interval_window_uses_seconds_as_n(pipe):
    [s] = pipe.render("exponentialMovingAverage(ramp,'2min')")
    c = 2.0 / 121
    expect = [9.5]
    for v in range(11, 21):
        expect.append(c * v + (1 - c) * expect[-1])
    assert vals(s) == [round(v, 6) for v in expect]
    assert s.name == 'exponentialMovingAverage(ramp,"2min")'


def test_ema_nulls_keep_the_average():
    values = np.array([NAN, NAN, 4.0, NAN, 8.0])
    out = calculate._ema(values, 2, 0.5)
    # seed: no value in the first window -> 0; then 4 -> 2, null, 8 -> 5
    assert [None if math.isnan(v) else v for v in out] == [0.0, 2.0, None, 5.0]


def test_ema_rounds_to_six_decimals():
    out = calculate._ema(np.array([1.0, 2.0, 2.0]), 1, 2.0 / 3)
    assert out.tolist() == [1.0, round(2 / 3 * 2 + 1 / 3, 6), round(2 / 3 * 2 + 1 / 3 * (2 / 3 * 2 + 1 / 3), 6)]


# --- stdev ---------------------------------------------------------------------------------------------------

def test_stdev_golden():
    [s] = call("stdev", [mk("x", [1.0, 2.0, 3.0, 4.0])], 2)
    assert s.name == "stdev(x,2)" and s.tags["stdev"] == "2"
    assert vals(s) == [0.0, 0.5, 0.5, 0.5]


def test_stdev_window_tolerance():
    x = mk("x", [1.0, NAN, 3.0, NAN, NAN, 6.0])
    [loose] = call("stdev", [x.copy()], 3)
    assert vals(loose) == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    [tight] = call("stdev", [x.copy()], 3, 0.5)
    assert vals(tight) == [None, None, 1.0, None, None, None]
    [default] = call("stdev", [mk("y", [NAN, NAN, NAN, 1.0])], 20)
    assert vals(default) == [None, None, None, None]               # 1/20 < the default 0.1


def test_stdev_population_and_negatives():
    [s] = call("stdev", [mk("x", [-2.0, 4.0, -6.0])], 3)
    assert vals(s)[-1] == pytest.approx(np.std([-2.0, 4.0, -6.0]))


def test_stdev_edge_points():
    [zero] = call("stdev", [mk("x", [1.0, 2.0])], 0)
    assert vals(zero) == [None, None]
    with pytest.raises(FunctionError, match="points"):
        call("stdev", [mk("x", [1.0])], -1)
    assert call("stdev", [], 3) == []


def test_stdev_through_pipeline(pipe):
    [s] = pipe.render("stdev(ramp,2)")
    assert vals(s) == [0.0] + [0.5] * 9           # stdev has no preview: the window starts at `from`
    with pytest.raises(FunctionError, match="points"):
        pipe.render("stdev(ramp,2.5)")


# --- nPercentile ---------------------------------------------------------------------------------------------

def test_n_percentile():
    x = mk("x", [float(v) for v in range(10, 0, -1)] + [NAN])
    [p50] = call("nPercentile", [x.copy()], 50)
    assert p50.name == "nPercentile(x, 50)" and p50.tags["nPercentile"] == "50.0"
    assert vals(p50) == [6.0] * 11                      # rank ceil(0.5 * 11) = 6, on 11 slots
    [p95] = call("nPercentile", [x.copy()], 95)
    assert vals(p95)[0] == 10.0
    [p1] = call("nPercentile", [x.copy()], 1)
    assert vals(p1)[0] == 1.0
    [frac] = call("nPercentile", [x.copy()], 99.5)
    assert frac.name == "nPercentile(x, 99.5)"


def test_n_percentile_skips_empty_series_and_rejects_bad_n():
    assert call("nPercentile", [mk("x", [NAN, NAN])], 50) == []
    with pytest.raises(FunctionError, match="'n'"):
        call("nPercentile", [mk("x", [1.0])], 0)
    with pytest.raises(FunctionError, match="'n'"):
        call("nPercentile", [mk("x", [1.0, 2.0])], 150)


# --- aggregateLine -------------------------------------------------------------------------------------------

def test_aggregate_line_default_draws_three_points():
    [s] = call("aggregateLine", [mk("x", [1.0, NAN, 3.0])])
    assert s.name == "aggregateLine(x, 2)"
    assert s.start == START and s.step == 300 and vals(s) == [2.0, 2.0, 2.0]
    assert s.tags == {"name": "2.0"} and s.path_expression == s.name


def test_aggregate_line_functions():
    x = mk("x", [4.0, NAN, -1.0, 3.0])
    got = {f: call("aggregateLine", [x.copy()], f)[0].name for f in
           ("sum", "min", "max", "diff", "count", "range", "last", "median", "multiply", "avg_zero", "stddev")}
    assert got["sum"] == "aggregateLine(x, 6)"
    assert got["min"] == "aggregateLine(x, -1)"
    assert got["max"] == "aggregateLine(x, 4)"
    assert got["diff"] == "aggregateLine(x, 2)"
    assert got["count"] == "aggregateLine(x, 3)"
    assert got["range"] == "aggregateLine(x, 5)"
    assert got["last"] == "aggregateLine(x, 3)"
    assert got["median"] == "aggregateLine(x, 3)"
    assert got["multiply"] == "aggregateLine(x, None)"          # a null factor nulls the product
    assert got["avg_zero"] == "aggregateLine(x, 1.5)"           # nulls count as 0
    assert got["stddev"] == "aggregateLine(x, %g)" % np.std([4.0, -1.0, 3.0])


def test_aggregate_line_all_null_and_keep_step():
    empty = mk("e", [NAN, NAN])
    [cnt] = call("aggregateLine", [empty.copy()], "count", True)
    assert cnt.name == "aggregateLine(e, 0)" and vals(cnt) == [0.0, 0.0]
    [none] = call("aggregateLine", [empty.copy()], "average")
    assert none.name == "aggregateLine(e, None)" and vals(none) == [None] * 3 and none.tags == {"name": "None"}
    [kept] = call("aggregateLine", [mk("x", [1.0, 3.0], tags={"name": "x", "a": "b"})], "max", True)
    assert kept.start == START + 60 and vals(kept) == [3.0, 3.0] and kept.tags == {"name": "x", "a": "b"}


def test_aggregate_line_sums_left_to_right():
    values = [0.1] * 7 + [1e16, 1.0, -1e16]
    [s] = call("aggregateLine", [mk("x", values)], "sum")
    assert s.tags["name"] == str(float(np.cumsum(values)[-1]))


def test_aggregate_line_bad_func(pipe):
    with pytest.raises(FunctionError, match="func"):
        pipe.render("aggregateLine(ramp,'nosuch')")
    [s] = pipe.render("aggregateLine(ramp,'avg')")
    assert s.name == "aggregateLine(ramp, 15.5)"


# --- identity ------------------------------------------------------------------------------------------------

def test_identity():
    [s] = call("identity", "the.time")
    assert s.name == "the.time" and s.start == START and s.step == 60
    assert vals(s) == [float(START + 60 * i) for i in range(10)]
    assert s.path_expression == 'identity("the.time")'
    assert call("identity", "a.b;x=y")[0].tags == {"name": "a.b", "x": "y"}


# --- linearRegression ----------------------------------------------------------------------------------------

def test_linear_regression_reproduces_a_line(pipe):
    [s] = pipe.render("linearRegression(line)")
    assert s.name == f"linearRegression(line, {START}, {END})"
    assert s.tags == {"name": "line", "linearRegressions": f"{START}, {END}"}
    assert np.allclose(s.values, [2.0 * i + 1 for i in range(11, 21)])


def test_linear_regression_source_range(pipe):
    # fit on the first 5 minutes of ramp (1..5 at minutes 1..5): value == minute, extrapolated into the window
    [s] = pipe.render(f"linearRegression(ramp,'{T0}','{T0 + 300}')")
    assert s.name == f"linearRegression(ramp, {T0}, {T0 + 300})"
    assert np.allclose(s.values, [float(v) for v in range(11, 21)])
    # source (from, T0+900]: 11, _, 13, 14, _ on the line value == minute
    [h] = pipe.render(f"linearRegression(holes,endSourceAt='{T0 + 900}')")
    assert h.name == f"linearRegression(holes, {START}, {T0 + 900})"
    assert np.allclose(h.values, [float(v) for v in range(11, 21)])


def test_linear_regression_needs_two_points():
    assert calculate._regression(mk("x", [NAN, 5.0, NAN])) is None
    factor, offset = calculate._regression(mk("x", [1.0, NAN, 5.0], start=0, step=10))
    assert factor * 20 + offset == pytest.approx(5.0) and offset == pytest.approx(1.0)


def test_linear_regression_bad_dates(pipe):
    with pytest.raises(FunctionError, match="startSourceAt"):
        pipe.render("linearRegression(ramp,'not a time')")
    assert pipe.render(f"linearRegression(ramp,'{T0 + 300}','{T0}')") == []


def test_raw_functions_inside_consolidate_by(pipe):
    [s] = pipe.render("consolidateBy(linearRegression(line),'max')")
    assert s.name == f'consolidateBy(linearRegression(line, {START}, {END}),"max")'
    assert np.allclose(s.values, [2.0 * i + 1 for i in range(11, 21)])
    [m] = pipe.render("consolidateBy(movingAverage(ramp,3),'sum')")
    assert vals(m) == [float(v - 1) for v in range(11, 21)]


def test_function_specs_match_graphite_web():
    spec = REGISTRY["movingWindow"]
    assert [p.as_json() for p in spec.params] == [
        {"name": "seriesList", "type": "seriesList", "required": True},
        {"name": "windowSize", "type": "intOrInterval", "required": True,
         "suggestions": [5, 7, 10, "1min", "5min", "10min", "30min", "1hour"]},
        {"name": "func", "type": "aggFunc", "default": "average", "options": calculate.AGG_FUNC_OPTIONS},
        {"name": "xFilesFactor", "type": "float"},
    ]
    assert {REGISTRY[n].group for n in ("identity", "stdev", "movingSum", "aggregateLine")} == {"Calculate"}


def test_moving_multiply_all_null_window_is_null():
    out = calculate._moving_values(np.array([2.0, NAN, NAN, 3.0, 4.0]), 2, "multiply", 0.0)
    assert [None if math.isnan(v) else v for v in out] == [None, 3.0, 12.0]
    strict = calculate._moving_values(np.array([2.0, NAN, NAN, 3.0, 4.0]), 2, "multiply", 1.0)
    assert [None if math.isnan(v) else v for v in strict] == [None, None, 12.0]
