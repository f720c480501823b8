"""Time-axis Transform functions (graphite_api/functions/timefns.py): bucketing, shifting, slicing, running
totals per interval and the generators. Functions that re-fetch other windows (timeShift, timeStack,
smartSummarize alignTo, hitcount alignToInterval) run through the real evaluator over a real storage."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import graphite_api.functions  # noqa: F401  (registers every family)
from graphite_api.evaluator import EvalContext, evaluate, evaluate_targets
from graphite_api.fetch import FetchContext
from graphite_api.functions.registry import REGISTRY, FunctionError, bind
from graphite_api.functions.timefns import summarize_values
from graphite_api.series import Series
from graphite_api.target.grammar import parse_target
from storage.engine import AGGREGATIONS, SCHEMAS, EngineOptions, Storage

CTX = SimpleNamespace(start=1000, end=1600, params={}, fetch=SimpleNamespace(now=2000), prefetched={})


def S(values, name="a.b", start=1060, step=60, **kw):
    return Series(name=name, start=start, step=step, values=[math.nan if v is None else v for v in values], **kw)


def call(name, *args, ctx=CTX, **kwargs):
    spec = REGISTRY[name]
    args, kwargs = bind(spec, list(args), kwargs)
    return spec.func(ctx, *args, **kwargs)


def vals(series):
    return [None if math.isnan(v) else v for v in series.values.tolist()]


# --- summarize --------------------------------------------------------------------------------------------------

def test_summarize_epoch_aligned_buckets():
    out, = call("summarize", [S(list(range(1, 11)), start=600)], "5min")
    # buckets 600, 900 and a trailing empty 1200 (graphite-web runs to end - end % interval + interval)
    assert (out.start, out.step, vals(out)) == (600, 300, [15, 40, None])
    assert out.name == out.path_expression == 'summarize(a.b, "5min", "sum")'
    assert out.tags == {"name": "a.b", "summarize": "5min", "summarizeFunction": "sum"}


def test_summarize_unaligned_start_and_align_to_from():
    data = list(range(1, 11))
    out, = call("summarize", [S(data, start=660)], "5min", "max")
    assert (out.start, vals(out)) == (600, [4, 9, 10])
    frm, = call("summarize", [S(data, start=660)], "5min", "max", True)
    assert (frm.start, vals(frm)) == (660, [5, 10])
    assert frm.name == 'summarize(a.b, "5min", "max", true)'


def test_summarize_functions_and_nulls():
    data = [1, None, 3, None, None, -2, 4, None, None, None]
    expect = {"sum": [4, 2, None], "avg": [2, 1, None], "average": [2, 1, None], "avg_zero": [0.8, 0.4, None],
              "median": [2, 1, None], "min": [1, -2, None], "max": [3, 4, None], "count": [2, 2, None],
              "diff": [-2, -6, None], "range": [2, 6, None], "rangeOf": [2, 6, None], "last": [3, 4, None],
              "current": [3, 4, None], "multiply": [None, None, None], "total": [4, 2, None],
              "stddev": [1.0, 3.0, None]}
    for func, want in expect.items():
        out, = call("summarize", [S(data, start=600)], "5min", func)
        assert vals(out) == pytest.approx(want), func
    full, = call("summarize", [S([2, 3, 4, 5, 6, 1, 1, 1, 1, None], start=600)], "5min", "multiply")
    assert vals(full) == [720, None, None]


def test_summarize_xfiles_factor_uses_the_interval_in_points():
    data = [1, None, None, None, None, 1, 1, 1, None, None]
    out, = call("summarize", [S(data, start=600, xfiles_factor=0.5)], "5min")
    assert vals(out) == [None, 3, None]                 # 1/5 < 0.5, 3/5 >= 0.5
    # a step that does not divide the interval: 420 s over 120 s steps is 3.5 points per bucket
    slow, = call("summarize", [S([1, 2, 3, 4, 5, 6], start=840, step=120, xfiles_factor=0.6)], "7min")
    assert slow.start == 840 and vals(slow) == [10, None]      # 4/3.5 passes, 2/3.5 = 0.57 does not


def test_summarize_bad_arguments():
    with pytest.raises(FunctionError, match="func"):
        call("summarize", [S([1])], "5min", "sumSeries")       # getAggFunc has no <name>Series spelling
    with pytest.raises(FunctionError, match="func"):
        call("summarize", [S([1])], "5min", "first")
    with pytest.raises(FunctionError, match="intervalString"):
        call("summarize", [S([1])], "0min")
    with pytest.raises(FunctionError, match="intervalString"):
        call("summarize", [S([1])], "-1h")
    with pytest.raises(FunctionError, match="intervalString"):
        call("summarize", [S([1])], "5")
    with pytest.raises(FunctionError):
        call("summarize", [S([1])])


def test_summarize_values_drops_points_before_the_first_bucket():
    s = S([1, 2, 3, 4, 5, 6], start=0)
    values, end = summarize_values(s, "sum", 120, 120, s.end)
    assert values.tolist() == [7, 11] and end == 360


# --- hitcount ---------------------------------------------------------------------------------------------------

def test_hitcount_aligned():
    out, = _hitcount([1, 2, None, 4], "2min")
    assert (out.start, out.step, vals(out)) == (0, 120, [180, 240])
    assert out.name == 'hitcount(a.b, "2min")' and out.tags["hitcount"] == "2min"


def test_hitcount_buckets_aligned_to_the_end():
    out, = _hitcount([1, 2, None, 4], "90s")
    assert (out.start, vals(out)) == (-30, [60, 120, 240])


def test_hitcount_interval_shorter_than_step():
    out, = _hitcount([1, 2, None, 4], "30s")
    assert (out.start, vals(out)) == (0, [30, 30, 60, 60, None, None, 120, 120])


def test_hitcount_zero_value_is_not_empty():
    out, = _hitcount([0, None, None, None], "2min")
    assert vals(out) == [0, None]


def _hitcount(values, interval):
    """hitcount takes raw arguments: drive it with a literal series injected as a prefetched path."""
    fctx = FetchContext(storage=None, tenant="anonymous", start=-60, end=180, now=180)
    ctx = EvalContext(fetch=fctx, params={}, prefetched={("path", "a.b", None): [S(values, start=0)]})
    return evaluate(ctx, parse_target(f'hitcount(a.b,"{interval}")'))


def test_hitcount_bad_interval():
    with pytest.raises(FunctionError, match="intervalString"):
        _hitcount([1], "bogus")
    with pytest.raises(FunctionError, match="alignToInterval"):
        fctx = FetchContext(storage=None, tenant="anonymous", start=-60, end=180, now=180)
        ctx = EvalContext(fetch=fctx, params={}, prefetched={("path", "a.b", None): [S([1], start=0)]})
        evaluate(ctx, parse_target('hitcount(a.b,"1h",3)'))


# --- compressPeriodicGaps --------------------------------------------------------------------------------------

def test_compress_periodic_gaps():
    out, = call("compressPeriodicGaps", [S([None, None, 3, None, None, 6, None, None, 9, None, None, 12], start=0)])
    assert (out.start, out.step, vals(out)) == (120, 180, [3, 6, 9, 12])
    assert out.name == out.path_expression == "compressPeriodicGaps(a.b)"


def test_compress_periodic_gaps_skips_a_value_at_index_zero():
    out, = call("compressPeriodicGaps", [S([5, None, None, 6, None, None, 7, None, None, 8, None, None], start=0)])
    assert (out.start, out.step, vals(out)) == (180, 180, [6, 7, 8])


def test_compress_periodic_gaps_unchanged_without_a_guess():
    data = [1, 2, None, 4, 5, 6]
    out, = call("compressPeriodicGaps", [S(data, start=0)])
    assert (out.start, out.step, vals(out)) == (0, 60, data)
    assert out.name == "compressPeriodicGaps(a.b)"
    zeros, = call("compressPeriodicGaps", [S([0, None, 0, None, 0, None], start=0)])
    assert zeros.step == 60                             # zeros count as missing: nothing to guess from


# --- delay, integralByInterval, timeSlice ----------------------------------------------------------------------

def test_delay():
    data = [1, 2, 3]
    assert vals(call("delay", [S(data)], 1)[0]) == [None, 1, 2]
    assert vals(call("delay", [S(data)], -1)[0]) == [2, 3, None]
    assert vals(call("delay", [S(data)], 5)[0]) == [None, None, None]
    assert vals(call("delay", [S(data)], -5)[0]) == [None, None, None]
    zero, = call("delay", [S(data)], 0)
    assert vals(zero) == []                              # graphite-web's series[:-0]
    out, = call("delay", [S(data)], 2)
    assert out.name == out.path_expression == "delay(a.b,2)" and out.tags["delay"] == "2"
    with pytest.raises(FunctionError, match="steps"):
        call("delay", [S(data)], 1.5)


def test_integral_by_interval_resets_at_boundaries_from_request_from():
    out, = call("integralByInterval", [S([1, 2, 3, None, 5])], "2min")
    # ctx.start = 1000: periods (t - 1000) // 120 are 0, 1, 1, 2, 2
    assert vals(out) == [1, 2, 5, 0, 5]
    assert out.name == "integralByInterval(a.b,'2min')" and out.tags["integralByInterval"] == "2min"
    long, = call("integralByInterval", [S([1, None, 2, -4])], "1d")
    assert vals(long) == [1, 1, 3, -1]
    short, = call("integralByInterval", [S([1, None, 2])], "30s")
    assert vals(short) == [1, 0, 2]
    with pytest.raises(FunctionError, match="intervalUnit"):
        call("integralByInterval", [S([1])], "0s")


def test_time_slice_walks_from_the_request_start():
    out, = call("timeSlice", [S([1, 2, None, 4, 5])], "1060", "1180")
    # positions are ctx.start + i * step = 1000, 1060, 1120, 1180, 1240 (not the series' own timestamps)
    assert vals(out) == [None, 2, None, 4, None]
    assert out.name == "timeSlice(a.b, 1060, 1180)" and out.path_expression == "a.b"
    assert out.tags["timeSliceStart"] == "1060" and out.tags["timeSliceEnd"] == "1180"
    now, = call("timeSlice", [S([1, 2])], "1000")
    assert now.name == "timeSlice(a.b, 1000, 2000)"     # endSliceAt defaults to now
    with pytest.raises(FunctionError, match="startSliceAt"):
        call("timeSlice", [S([1])], "not a time")


# --- generators -------------------------------------------------------------------------------------------------

def test_time_function():
    out, = call("time", "the.time")
    assert (out.name, out.start, out.step) == ("the.time", 1000, 60)
    assert out.values.tolist() == [1000.0 + 60 * i for i in range(10)]
    assert out.tags == {"name": "the.time"} and out.path_expression == "the.time"
    odd, = call("timeFunction", "t", 7)
    assert len(odd.values) == math.ceil(600 / 7) and odd.values[-1] == 1000 + 7 * 85
    tagged, = call("time", "cpu;dc=east")
    assert tagged.tags == {"name": "cpu", "dc": "east"}
    with pytest.raises(FunctionError, match="step"):
        call("time", "t", 0)


def test_sin_function():
    out, = call("sin", "wave", 2)
    ts = 1000 + 60 * np.arange(10)
    assert out.values.tolist() == pytest.approx((np.sin(ts) * 2).tolist())
    assert out.name == "wave" and REGISTRY["sin"] is REGISTRY["sinFunction"]
    slow, = call("sinFunction", "w", 1, 300)
    assert len(slow.values) == 2 and slow.step == 300


def test_groups():
    for name in ["compressPeriodicGaps", "delay", "hitcount", "integralByInterval", "smartSummarize", "summarize",
                 "timeShift", "timeSlice", "timeStack", "sin", "sinFunction", "time", "timeFunction"]:
        assert REGISTRY[name].group == "Transform", name


# --- re-fetching functions over a real storage --------------------------------------------------------------------

T0 = 1_700_006_400          # midnight UTC
HOUR = 3600


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    st = Storage(str(tmp_path_factory.mktemp("timefns")), None, EngineOptions(flush_interval=3600))
    st.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 60s:30d\n")
    st.set_config_text("anonymous", AGGREGATIONS,
                       "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n")
    n = 6 * 60
    ts = (T0 + 60 * np.arange(n)) * 1000
    st.write("anonymous", ["a.b"] * n, ts, np.arange(n, dtype=float), intervals=np.full(n, 60))
    st.write("anonymous", ["a.c"] * n, ts, np.arange(n, dtype=float) * 2, intervals=np.full(n, 60))
    yield st
    st.close()


def render(storage, target, start=T0 + 3 * HOUR, end=T0 + 4 * HOUR):
    fctx = FetchContext(storage=storage, tenant="anonymous", start=start, end=end, now=T0 + 6 * HOUR)
    return evaluate_targets(EvalContext(fetch=fctx, params={}), [parse_target(target)])


def test_time_shift_back(storage):
    out, = render(storage, 'timeShift(a.b,"1h")')
    assert out.start == T0 + 3 * HOUR + 60 and out.step == 60
    assert out.values.tolist() == [float(i) for i in range(121, 181)]
    assert out.name == 'timeShift(a.b, "-1h")' and out.path_expression == "a.b"
    assert out.tags == {"name": "a.b", "timeShift": "-1h"}


def test_time_shift_forward_and_wildcards(storage):
    b, c = render(storage, 'timeShift(a.*,"+30min")')
    assert b.values[0] == 211.0 and c.values[0] == 422.0 and b.name == 'timeShift(a.b, "+30min")'


def test_time_shift_empty_input_and_bad_shift(storage):
    assert render(storage, 'timeShift(nothing.here,"1h")') == []
    with pytest.raises(FunctionError, match="timeShift"):
        render(storage, 'timeShift(a.b,"1q")')
    with pytest.raises(FunctionError, match="resetEnd"):
        render(storage, 'timeShift(a.b,"1h","yes")')


def test_time_shift_under_consolidate_by(storage):
    out, = render(storage, 'consolidateBy(timeShift(a.b,"1h"),"max")')
    assert out.values[0] == 121.0 and out.consolidation == "max"


def test_time_shift_reset_end_false_keeps_all_values(storage):
    out, = render(storage, 'timeShift(a.b,"1h",false)')
    assert len(out.values) == 60


def test_time_stack(storage):
    out = render(storage, 'timeStack(a.b,"1h",0,3)')
    assert [s.name for s in out] == ["timeShift(a.b, -1h, 0)", "timeShift(a.b, -1h, 1)", "timeShift(a.b, -1h, 2)"]
    assert [s.values[0] for s in out] == [181.0, 121.0, 61.0]
    assert all(s.start == T0 + 3 * HOUR + 60 for s in out)
    assert out[1].tags == {"name": "a.b", "timeShiftUnit": "-1h", "timeShift": "1"}
    assert out[1].path_expression == out[1].name


def test_smart_summarize_align_to_hours(storage):
    out, = render(storage, 'smartSummarize(a.b,"1h","sum","hours")', start=T0 + 3 * HOUR + 1800)
    # re-fetched from 03:00 (exclusive): buckets start at 03:01
    assert out.start == T0 + 3 * HOUR + 60 and out.step == HOUR
    assert out.values.tolist() == [float(sum(range(181, 241)))]
    assert out.name == 'smartSummarize(a.b, "1h", "sum")'
    assert out.tags["smartSummarize"] == "1h" and out.tags["smartSummarizeFunction"] == "sum"


def test_smart_summarize_without_alignment_and_legacy_boolean(storage):
    plain, = render(storage, 'smartSummarize(a.b,"30min","max")')
    legacy, = render(storage, 'smartSummarize(a.b,"30min","max",true)')
    assert plain.values.tolist() == legacy.values.tolist() == [210.0, 240.0]


def test_smart_summarize_bad_align_to(storage):
    with pytest.raises(FunctionError, match="alignTo"):
        render(storage, 'smartSummarize(a.b,"1h","sum","fortnights")')
    with pytest.raises(FunctionError, match="func"):
        render(storage, 'smartSummarize(a.b,"1h","nosuch")')


def test_hitcount_align_to_interval(storage):
    out, = render(storage, 'hitcount(a.b,"1h",true)', start=T0 + 3 * HOUR + 1800)
    # re-fetched from 03:00; the end is stretched to a whole hour past the last full one
    assert out.name == 'hitcount(a.b, "1h", true)' and out.step == HOUR
    assert out.start == T0 + 3 * HOUR + 60
    assert out.values[0] == 60 * sum(range(181, 241)) and math.isnan(out.values[1]) and len(out.values) == 2


def test_generated_points_respect_the_request_limit():
    from graphite_api.fetch import FetchLimitError
    ctx = SimpleNamespace(start=0, end=10_000, params={}, fetch=SimpleNamespace(now=0, max_points=100),
                          prefetched={})
    with pytest.raises(FetchLimitError, match="time"):
        call("time", "t", 1, ctx=ctx)
    with pytest.raises(FetchLimitError, match="summarize"):
        call("summarize", [S([1] * 10, start=0)], "1s", ctx=ctx)
    assert len(call("time", "t", 600, ctx=ctx)[0].values) == 17
