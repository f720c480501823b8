"""Filter Series and Filter Data functions: graphite-web 1.1.10 semantics on hand-built series and through the
real pipeline (storage → fetch → evaluator) where a function evaluates new targets."""
import math

import numpy as np
import pytest

import graphite_api.functions  # noqa: F401  (registers every family)
from graphite_api.evaluator import EvalContext, evaluate_targets
from graphite_api.fetch import FetchContext
from graphite_api.functions.filters import series_aggregate
from graphite_api.functions.registry import REGISTRY, FunctionError
from graphite_api.series import Series
from graphite_api.target.grammar import parse_target
from storage.engine import EngineOptions, Storage

NAN = math.nan


def S(name, values, start=600, step=60, **kw):
    return Series(name, start, step, np.array(values, dtype=np.float64), **kw)


def call(name, *args, **kwargs):
    return REGISTRY[name].func(None, *args, **kwargs)


def names(series_list):
    return [s.name for s in series_list]


def same(a, b):
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)


# --- the real pipeline: a storage holding a few series, targets evaluated as /render does ----------------------

T0 = 1_700_000_040
PIPE_DATA = {
    "a.b": [1, 2, NAN, 4],
    "a.c": [5, 6, 7, 8],
    "a.gap": [NAN, 50, NAN, 1],
    "x.b": [10, 20, 30, 40],
    "x.c": [0, 0, 0, 0],
    "d.u;dc=east": [9, 9, 9, 9],
    "d.v;dc=east": [3, 3, 3, 3],
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    st = Storage(str(tmp_path_factory.mktemp("filters")), None, EngineOptions(flush_interval=3600))
    for name, values in PIPE_DATA.items():
        vals = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(vals)
        ts = ((T0 + 60 * np.arange(len(vals)))[ok] * 1000).astype(np.int64)
        st.write("anonymous", [name] * int(ok.sum()), ts, vals[ok], intervals=np.full(int(ok.sum()), 60))

    def render(target):
        fctx = FetchContext(storage=st, tenant="anonymous", start=T0 - 60, end=T0 + 180, now=T0 + 3600)
        return evaluate_targets(EvalContext(fetch=fctx), [parse_target(target)])

    yield render
    st.close()


# --- per-series aggregates ---------------------------------------------------------------------------------------

def test_aggregates_follow_graphite_web_safe_functions():
    v = np.array([1.0, NAN, 4.0, 2.0])
    assert series_aggregate(v, "sum") == 7
    assert series_aggregate(v, "average") == 7 / 3
    assert series_aggregate(v, "avg_zero") == 7 / 4          # nulls count as 0 and in the divisor
    assert series_aggregate(v, "count") == 3
    assert series_aggregate(v, "median") == 2
    assert series_aggregate(v, "diff") == 1 - 4 - 2
    assert series_aggregate(v, "range") == 3
    assert series_aggregate(v, "last") == 2
    assert math.isnan(series_aggregate(v, "multiply"))       # safeMul: None if any factor is None
    assert series_aggregate(np.array([2.0, -3.0, 0.5]), "multiply") == -3
    assert series_aggregate(np.array([1.0, 3.0]), "stddev") == 1.0   # population
    empty = np.full(3, NAN)
    assert series_aggregate(empty, "count") == 0               # safeLen is 0, not None
    assert series_aggregate(empty, "avg_zero") == 0
    for func in ("sum", "average", "min", "max", "last", "median", "diff", "stddev", "range", "multiply"):
        assert math.isnan(series_aggregate(empty, func)), func


def test_sums_add_left_to_right_like_python():
    rnd = np.random.default_rng(7)
    v = np.round(rnd.uniform(-5, 20, 500), 3)
    py = sum(v.tolist())
    assert series_aggregate(v, "sum") == py
    assert series_aggregate(v, "average") == py / len(v)
    mean = py / len(v)
    assert series_aggregate(v, "stddev") == math.sqrt(sum((x - mean) * (x - mean) for x in v.tolist()) / len(v))


# --- filterSeries and its shorthands ---------------------------------------------------------------------------

def test_filter_series_operators_and_null_aggregates():
    lst = [S("lo", [1, 2, 3]), S("hi", [5, 6, 7]), S("none", [NAN, NAN, NAN])]
    assert names(call("filterSeries", lst, "max", ">", 3)) == ["hi"]
    assert names(call("filterSeries", lst, "max", ">=", 3)) == ["lo", "hi"]
    assert names(call("filterSeries", lst, "max", "=", 7)) == ["hi"]
    # a None aggregate passes !=, < and <= only
    assert names(call("filterSeries", lst, "max", "!=", 7)) == ["lo", "none"]
    assert names(call("filterSeries", lst, "max", "<", 5)) == ["lo", "none"]
    assert names(call("filterSeries", lst, "max", "<=", 3)) == ["lo", "none"]
    assert names(call("filterSeries", lst, "count", "=", 0)) == ["none"]
    assert names(call("filterSeries", lst, "current", ">", 6)) == ["hi"]
    assert call("filterSeries", [], "max", ">", 0) == []


def test_filter_series_rejects_unknown_operator_and_function():
    lst = [S("a", [1])]
    with pytest.raises(FunctionError, match="operator"):
        call("filterSeries", lst, "max", "~", 1)
    with pytest.raises(FunctionError, match="Unsupported aggregation function: bogus"):
        call("filterSeries", lst, "bogus", ">", 1)
    with pytest.raises(FunctionError, match="sumSeries"):       # graphite-web's getAggFunc has no Series suffix
        call("filterSeries", lst, "sumSeries", ">", 1)


def test_threshold_shorthands_are_strict_above_and_inclusive_below():
    lst = [S("neg", [-5, -1, -3]), S("mid", [0, 10, 4]), S("top", [7, 20, 12])]
    assert names(call("maximumAbove", lst, 10)) == ["top"]
    assert names(call("maximumBelow", lst, 10)) == ["neg", "mid"]
    assert names(call("minimumAbove", lst, -5)) == ["mid", "top"]
    assert names(call("minimumBelow", lst, 0)) == ["neg", "mid"]
    assert names(call("currentAbove", lst, 4)) == ["top"]
    assert names(call("currentBelow", lst, 4)) == ["neg", "mid"]
    assert names(call("averageAbove", lst, 12.9)) == ["top"]
    assert names(call("averageAbove", lst, 13)) == []                       # top's average is exactly 13
    assert names(call("averageBelow", lst, 13)) == ["neg", "mid", "top"]
    assert names(call("averageBelow", lst, -3)) == ["neg"]


def test_current_is_last_non_null_and_null_averages():
    lst = [S("a", [1, 9, NAN]), S("b", [NAN, NAN, NAN])]
    assert names(call("currentAbove", lst, 5)) == ["a"]
    assert names(call("averageAbove", lst, -100)) == ["a"]      # a None average is never above
    assert names(call("averageBelow", lst, -100)) == ["b"]      # ... and always below


def test_different_steps_are_judged_on_their_own_values():
    lst = [S("fine", [1, 2, 3, 4], step=60), S("coarse", [10, 1], step=120)]
    assert names(call("maximumAbove", lst, 5)) == ["coarse"]
    assert names(call("highest", lst, 1, "sum")) == ["coarse"]


# --- ranking ---------------------------------------------------------------------------------------------------

def test_highest_and_lowest_sort_stably_with_none_as_minus_infinity():
    lst = [S("a", [1, 1]), S("none", [NAN, NAN]), S("b", [3, 3]), S("c", [1, 1])]
    assert names(call("highest", lst, 4)) == ["b", "a", "c", "none"]
    assert names(call("lowest", lst, 4)) == ["none", "a", "c", "b"]
    assert names(call("highest", lst, 1)) == ["b"]
    assert names(call("highest", lst, 2, "max")) == ["b", "a"]
    assert names(call("lowest", lst, 2, "count")) == ["none", "a"]
    assert names(call("highest", lst, 0)) == []
    assert names(call("highest", lst, -1)) == ["b", "a", "c"]     # Python slice, as graphite-web's [:n]
    with pytest.raises(FunctionError):
        call("highest", lst, 1, "bogus")


def test_highest_lowest_shorthands():
    lst = [S("a", [10, 0]), S("b", [4, 4]), S("c", [0, 5])]
    assert names(call("highestAverage", lst, 1)) == ["a"]
    assert names(call("highestCurrent", lst, 1)) == ["c"]
    assert names(call("highestMax", lst, 2)) == ["a", "c"]
    assert names(call("lowestAverage", lst, 1)) == ["c"]
    assert names(call("lowestCurrent", lst, 2)) == ["a", "b"]


def test_most_deviant_ranks_by_variance_and_drops_empty_series():
    lst = [S("flat", [5, 5, 5]), S("wide", [0, 10, NAN]), S("empty", [NAN, NAN, NAN]), S("some", [1, 3, 2])]
    assert names(call("mostDeviant", lst, 5)) == ["wide", "some", "flat"]
    assert names(call("mostDeviant", lst, 1)) == ["wide"]


def test_limit_slices_like_python():
    lst = [S(n, [1]) for n in "abcd"]
    assert names(call("limit", lst, 2)) == ["a", "b"]
    assert names(call("limit", lst, -1)) == ["a", "b", "c"]
    assert names(call("limit", lst, 10)) == ["a", "b", "c", "d"]
    assert call("limit", lst, 0) == []


# --- percentile bands -------------------------------------------------------------------------------------------

def test_average_outside_percentile():
    lst = [S(f"s{i}", [i, i]) for i in range(1, 11)]
    # averages 1..10: p20 = sorted[ceil(2.2) - 1] = 3, p80 = sorted[ceil(8.8) - 1] = 9; keep avg <= 3 or >= 9
    want = ["s1", "s2", "s3", "s9", "s10"]
    assert names(call("averageOutsidePercentile", lst, 80)) == want
    assert names(call("averageOutsidePercentile", lst, 20)) == want          # n < 50 means 100 - n
    assert len(call("averageOutsidePercentile", lst, 50)) == 10
    # graphite-web 1.1.10 raises on a series without values; it is kept here (not inside the band)
    with_empty = lst + [S("empty", [NAN, NAN])]
    assert names(call("averageOutsidePercentile", with_empty, 80)) == want + ["empty"]
    with pytest.raises(FunctionError, match="out of range"):
        call("averageOutsidePercentile", lst, 150)


def test_remove_between_percentile():
    lst = [S(f"s{i}", [i, i, i]) for i in range(1, 6)]
    # per column 1..5: p30 = 2, p70 = 5 (ranks ceil(1.8)=2 and ceil(4.2)=5); keep series with a value <= 2 or >= 5
    assert names(call("removeBetweenPercentile", lst, 30)) == ["s1", "s2", "s5"]
    assert names(call("removeBetweenPercentile", lst, 70)) == ["s1", "s2", "s5"]
    # one point outside the band is enough
    spiky = lst[:4] + [S("spiky", [3, 3, 100])]
    assert "spiky" in names(call("removeBetweenPercentile", spiky, 30))
    # nulls are neither inside nor outside (graphite-web 1.1.10 raises TypeError on them) and take no part in
    # the percentiles: an all-null series goes, the others are judged as without it
    assert names(call("removeBetweenPercentile", lst + [S("nulls", [NAN, NAN, NAN])], 30)) == ["s1", "s2", "s5"]
    # middle column 1,2,3,4,5,3 → p30 = 3, p70 = 4: s3 and s4 now touch the band's edges there
    gaps = lst + [S("gap", [NAN, 3, NAN])]
    assert names(call("removeBetweenPercentile", gaps, 30)) == ["s1", "s2", "s3", "s4", "s5", "gap"]
    seven = [S(f"t{i}", [i, i]) for i in range(1, 8)]
    # columns 1..7 → band (3, 6); with the extra 4 the last column is 1..7,4 → band (3, 6) still: 4 is inside
    out = call("removeBetweenPercentile", seven + [S("inside", [NAN, 4])], 30)
    assert names(out) == ["t1", "t2", "t3", "t6", "t7"]
    # positional rows, shorter series padded with nulls
    ragged = lst + [S("short", [100])]
    assert "short" in names(call("removeBetweenPercentile", ragged, 30))
    assert call("removeBetweenPercentile", [], 30) == []


# --- names, emptiness, uniqueness --------------------------------------------------------------------------------

def test_exclude_and_grep_search_anywhere_in_the_name():
    lst = [S("app.web1.count", [1]), S("app.web2.count", [1]), S("disk.used;dc=east;host=h1", [1])]
    assert names(call("exclude", lst, "web[12]")) == ["disk.used;dc=east;host=h1"]
    assert names(call("exclude", lst, "^app")) == ["disk.used;dc=east;host=h1"]
    assert names(call("grep", lst, "web2")) == ["app.web2.count"]
    assert names(call("grep", lst, "host=h1$")) == ["disk.used;dc=east;host=h1"]
    assert names(call("grep", lst, "count|used")) == names(lst)
    assert call("grep", lst, "nomatch") == []


@pytest.mark.parametrize("fn", ["exclude", "grep"])
@pytest.mark.parametrize("pattern", ["(", "[a-", r"(a)\1"])
def test_bad_regex_is_a_function_error(fn, pattern):
    with pytest.raises(FunctionError, match=fn):
        call(fn, [S("a", [1])], pattern)


def test_remove_empty_series():
    lst = [S("full", [1, 2, 3, 4]), S("half", [1, NAN, 2, NAN]), S("one", [NAN, NAN, NAN, 5]),
           S("none", [NAN] * 4), S("zero_len", [])]
    assert names(call("removeEmptySeries", lst)) == ["full", "half", "one"]
    assert names(call("removeEmptySeries", lst, 0.5)) == ["full", "half"]     # >= xFilesFactor
    assert names(call("removeEmptySeries", lst, xFilesFactor=0.51)) == ["full"]
    assert names(call("removeEmptySeries", lst, 1)) == ["full"]


def test_unique_keeps_the_first_of_each_name():
    a1, b, a2, c = S("a", [1]), S("b", [2]), S("a", [3]), S("c", [4])
    out = call("unique", [a1, b], [a2, c], [])
    assert names(out) == ["a", "b", "c"] and out[0] is a1


# --- useSeriesAbove (evaluates new targets) ---------------------------------------------------------------------

def test_use_series_above_renders_the_replaced_names(pipeline):
    assert names(pipeline("useSeriesAbove(a.*, 5, 'a', 'x')")) == ["x.c"]          # only a.c has max > 5
    assert names(pipeline("useSeriesAbove(a.{b,c}, 0, '^a', 'x')")) == ["x.b", "x.c"]
    assert names(pipeline("useSeriesAbove(a.c, 7.5, '(\\w)\\.(\\w)', '\\1.\\2')")) == ["a.c"]
    # a gap does not hide a maximum (graphite-web 1.1.10 raises TypeError here)
    assert names(pipeline("useSeriesAbove(a.gap, 49, 'a.gap', 'x.b')")) == ["x.b"]
    assert pipeline("useSeriesAbove(a.gap, 50, 'a.gap', 'x.b')") == []
    # a name that does not exist renders nothing
    assert pipeline("useSeriesAbove(a.c, 0, 'c', 'nosuch')") == []
    tagged = pipeline("useSeriesAbove(seriesByTag('name=d.u'), 5, 'd.u', 'd.v')")
    assert names(tagged) == ["d.v;dc=east"] and tagged[0].values.tolist() == [3, 3, 3, 3]


def test_use_series_above_argument_errors(pipeline):
    with pytest.raises(FunctionError, match="useSeriesAbove"):
        pipeline("useSeriesAbove(a.c, 0, '(', 'x')")
    with pytest.raises(FunctionError, match="useSeriesAbove"):
        pipeline("useSeriesAbove(a.c, 0, 'c', '\\5')")
    with pytest.raises(FunctionError, match="useSeriesAbove"):
        pipeline("useSeriesAbove(a.c, 'x', 'c', 'b')")
    with pytest.raises(FunctionError, match="useSeriesAbove"):
        pipeline("useSeriesAbove(a.c, 0, 'c')")


def test_arguments_are_checked_against_the_spec(pipeline):
    for target in ["highest(a.*, 'x')", "highest(a.*)", "filterSeries(a.*, 'max', '>')",
                   "filterSeries(a.*, 'max', '~', 1)", "averageAbove(a.*, 'x')", "exclude(a.*)",
                   "removeEmptySeries(a.*, xff=1)", "highest(a.*, 1, 'sumSeries')"]:
        with pytest.raises(FunctionError):
            pipeline(target)
    assert names(pipeline("highest(seriesList=a.*, n=1, func='max')")) == ["a.gap"]
    assert names(pipeline("filterSeries(a.*, func='max', operator='<', threshold=8)")) == ["a.b"]


# --- Filter Data -------------------------------------------------------------------------------------------------

def test_remove_above_and_below_value():
    s = S("a.b", [-2, 0, NAN, 2.5, 7], tags={"name": "a.b", "dc": "x"})
    out = call("removeAboveValue", [s], 2.5)[0]
    assert out.name == "removeAboveValue(a.b, 2.5)" and out.path_expression == out.name
    assert same(out.values, [-2, 0, NAN, 2.5, NAN])
    assert out.tags == {"name": "a.b", "dc": "x"}                         # no tag added
    out = call("removeBelowValue", [S("a.b", [-2, 0, NAN, 2.5, 7])], 0)[0]
    assert out.name == "removeBelowValue(a.b, 0)"
    assert same(out.values, [NAN, 0, NAN, 2.5, 7])
    assert call("removeAboveValue", [S("c", [1])], 1e20)[0].name == "removeAboveValue(c, 1e+20)"


def test_remove_above_and_below_percentile():
    vals = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    # p50 of 1..10: rank ceil(5.5) = 6 → 6
    out = call("removeAbovePercentile", [S("s", vals)], 50)[0]
    assert out.name == "removeAbovePercentile(s, 50)"
    assert same(out.values, [1, 2, 3, 4, 5, 6] + [NAN] * 4)
    assert out.tags["nPercentile"] == "50.0"                               # graphite-web's leaked tag
    out = call("removeBelowPercentile", [S("s", vals + [NAN])], 25.5)[0]
    # p25.5: rank ceil(2.805) = 3 → 3
    assert out.name == "removeBelowPercentile(s, 25.5)" and out.tags["nPercentile"] == "25.5"
    assert same(out.values, [NAN, NAN, 3, 4, 5, 6, 7, 8, 9, 10, NAN])


def test_percentile_edge_cases():
    empty = call("removeAbovePercentile", [S("e", [NAN, NAN])], 50)[0]
    assert empty.name == "removeAbovePercentile(e, 50)" and "nPercentile" not in empty.tags
    # rank past the end: graphite-web's IndexError is swallowed, the series stays as it was (renamed)
    far = call("removeAbovePercentile", [S("f", [1, 2, 3])], 250)[0]
    assert same(far.values, [1, 2, 3]) and "nPercentile" not in far.tags
    # p100 is the maximum
    assert same(call("removeAbovePercentile", [S("m", [3, 1, 2])], 100)[0].values, [3, 1, 2])
    # negative n indexes from the end like graphite-web's Python list (rank ceil(-5.5) = -5 → 5th from last)
    neg = call("removeAbovePercentile", [S("n", list(range(10)))], -50)[0]
    assert same(neg.values, [0, 1, 2, 3, 4] + [NAN] * 5)
    with pytest.raises(FunctionError, match="greater than 0"):
        call("removeBelowPercentile", [S("z", [1])], 0)
    assert call("removeBelowPercentile", [], 0) == []


def test_use_series_above_inside_consolidate_by(pipeline):
    # the prefetch keys data by the consolidateBy around the call; the raw-args function still finds its input
    out = pipeline("consolidateBy(useSeriesAbove(a.*, 5, 'a', 'x'), 'max')")
    assert names(out) == ['consolidateBy(x.c,"max")']
