"""Combine family, aggregate half (graphite_api/functions/combine.py): graphite-web 1.1.10 semantics on hand-built
series (values, nulls, names, tags, lcm normalisation, positional rows) and through the real pipeline."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import graphite_api.functions  # noqa: F401  (registers every family)
from graphite_api.evaluator import EvalContext, evaluate_targets
from graphite_api.fetch import FetchContext
from graphite_api.functions.registry import REGISTRY, FunctionError, bind
from graphite_api.series import Series
from graphite_api.target.grammar import parse_target
from storage.engine import EngineOptions, Storage

NAN = math.nan


def S(name, values, start=600, step=60, **kw):
    return Series(name, start, step, np.array(values, dtype=np.float64), **kw)


def ctx(**params):
    return SimpleNamespace(params=params, start=540, end=840)


def call(name, *args, context=None, **kwargs):
    spec = REGISTRY[name]
    args, kwargs = bind(spec, list(args), kwargs)       # the same argument checks as a /render call
    return spec.func(context or ctx(), *args, **kwargs)


def same(a, b):
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)


def abc():
    return [S("a.b.c", [1, 2, NAN, 4]), S("a.b.d", [10, NAN, NAN, -4]), S("a.x.c", [-1, 5, NAN, 6])]


# --- aggregate and the row rule ------------------------------------------------------------------------------------

@pytest.mark.parametrize("func, expected", [
    ("sum", [10, 7, NAN, 6]),
    ("total", [10, 7, NAN, 6]),
    ("average", [10 / 3, 3.5, NAN, 2]),
    ("avg", [10 / 3, 3.5, NAN, 2]),
    ("avg_zero", [10 / 3, 7 / 3, NAN, 2]),                  # nulls count as 0 and in the divisor
    ("median", [1, 3.5, NAN, 4]),
    ("min", [-1, 2, NAN, -4]),
    ("max", [10, 5, NAN, 6]),
    ("diff", [1 - 10 + 1, 2 - 5, NAN, 4 + 4 - 6]),          # first non-null minus the rest
    ("stddev", [np.std([1, 10, -1]), 1.5, NAN, np.std([4, -4, 6])]),
    ("count", [3, 2, NAN, 3]),                              # an all-null row is null, not 0
    ("range", [11, 3, NAN, 10]),
    ("rangeOf", [11, 3, NAN, 10]),
    ("multiply", [-10, NAN, NAN, -96]),                     # any null factor makes the product null
    ("last", [-1, 5, NAN, 6]),
    ("current", [-1, 5, NAN, 6]),
])
def test_aggregate_functions(func, expected):
    out, = call("aggregate", abc(), func)
    assert out.name == f"{func}Series(a.b.c,a.b.d,a.x.c)"
    assert out.tags == {"name": out.name, "aggregatedBy": func}
    assert (out.start, out.step) == (600, 60)
    assert np.allclose(out.values, expected, equal_nan=True)


def test_aggregate_deprecated_series_spelling_and_unknown_names():
    out, = call("aggregate", abc(), "sumSeries")
    assert out.name == "sumSeries(a.b.c,a.b.d,a.x.c)" and out.tags["aggregatedBy"] == "sum"
    with pytest.raises(FunctionError, match="must be one of"):
        call("aggregate", abc(), "nosuch")
    with pytest.raises(FunctionError, match="Unsupported aggregation function: first"):
        REGISTRY["aggregate"].func(ctx(), abc(), "first")   # metrictank's name, not graphite-web's
    with pytest.raises(FunctionError, match="Unsupported aggregation function: firstSeries"):
        REGISTRY["aggregate"].func(ctx(), abc(), "firstSeries")


def test_aggregate_xfiles_factor_argument_then_request():
    series = abc()
    out, = call("aggregate", series, "sum", 0.6)            # needs 2 of 3 non-null
    assert same(out.values, [10, 7, NAN, 6]) and out.xfiles_factor == 0.6
    out, = call("aggregate", abc(), "sum", xFilesFactor=1)
    assert same(out.values, [10, NAN, NAN, 6])
    out, = call("sumSeries", abc(), context=ctx(xFilesFactor="0.7"))
    assert same(out.values, [10, NAN, NAN, 6])
    out, = call("aggregate", abc(), "sum", 0, context=ctx(xFilesFactor="0.7"))
    assert same(out.values, [10, 7, NAN, 6])                 # the argument wins over the request


def test_aggregate_empty_inputs():
    assert call("aggregate", [], "sum") == []
    assert call("sumSeries", [], []) == []
    empty, = call("sumSeries", [S("e", [])])
    assert len(empty.values) == 0


def test_aliases_flatten_their_lists_and_name_by_path_expression():
    a = S("app.web1.count", [1, 2], path_expression="app.*.count")
    b = S("app.web2.count", [3, NAN], path_expression="app.*.count")
    c = S("other", [5, 5])
    out, = call("sum", [a, b], [c])
    assert out.name == "sumSeries(app.*.count,other)" and same(out.values, [9, 7])
    assert call("avg", [a, b])[0].name == "averageSeries(app.*.count)"
    assert same(call("diffSeries", [c], [a, b])[0].values, [1, 3])
    assert same(call("minSeries", [a, b, c])[0].values, [1, 2])
    assert same(call("maxSeries", [a, b, c])[0].values, [5, 5])
    assert same(call("rangeOfSeries", [a, b, c])[0].values, [4, 3])
    assert call("rangeOfSeries", [a])[0].tags["aggregatedBy"] == "rangeOf"
    assert same(call("stddevSeries", [a, b])[0].values, [1, 0])


def test_common_tags_survive_and_name_tag_is_kept_when_shared():
    a = S("disk.used;dc=east;host=h1", [1], tags={"name": "disk.used", "dc": "east", "host": "h1"})
    b = S("disk.used;dc=east;host=h3", [2], tags={"name": "disk.used", "dc": "east", "host": "h3"})
    out, = call("sumSeries", [a, b])
    assert out.tags == {"name": "disk.used", "dc": "east", "aggregatedBy": "sum"}
    c = S("cpu.load;dc=east", [2], tags={"name": "cpu.load", "dc": "east"})
    out, = call("maxSeries", [a, c])
    assert out.tags == {"name": out.name, "dc": "east", "aggregatedBy": "max"}


def test_rows_are_positional_and_padded_with_null():
    # graphite-web zips normalised series by position: different starts are not aligned by time
    a = S("a", [1, 2, 3], start=600)
    b = S("b", [10, 20], start=720)
    out, = call("sumSeries", [a, b])
    assert out.start == 600 and same(out.values, [11, 22, 3])
    out, = call("multiplySeries", [a, b])
    assert same(out.values, [10, 40, NAN])


def test_lcm_normalisation_consolidates_with_each_series_function():
    fast = S("fast", [1, 3, 5, NAN, NAN, NAN, 7], step=60)
    slow = S("slow", [100, 200, 300, 400], step=120, start=600)
    out, = call("sumSeries", [fast, slow])
    assert out.step == 120 and out.start == 600
    assert same(out.values, [102, 205, 300, 407])            # fast averaged per pair, the lone 7 kept
    fast_max = S("fast", [1, 3, 5, NAN, NAN, NAN, 7], consolidation="max")
    assert same(call("sumSeries", [fast_max, slow])[0].values, [103, 205, 300, 407])
    fast_xff = S("fast", [1, 3, 5, NAN, NAN, NAN, 7], xfiles_factor=1.0)
    assert same(call("sumSeries", [fast_xff, slow])[0].values, [102, 200, 300, 400])


def test_multiply_series_single_series_is_returned_untouched():
    a = S("a.b", [1, NAN, 3])
    assert call("multiplySeries", [a]) == [a]
    assert call("multiplySeries", [a], [S("x", [2, 2, 2])])[0].name == "multiplySeries(a.b,x)"


# --- the pairwise *SeriesLists ------------------------------------------------------------------------------------

def test_series_lists_pair_by_index():
    first = [S("a.1", [1, 2]), S("a.2", [3, NAN])]
    second = [S("b.1", [10, 20]), S("b.2", [NAN, NAN])]
    out = call("sumSeriesLists", first, second)
    assert [s.name for s in out] == ["sumSeries(a.1,b.1)", "sumSeries(a.2,b.2)"]
    assert same(out[0].values, [11, 22]) and same(out[1].values, [3, NAN])
    assert out[0].tags["name"] == "sumSeries(a.1,b.1)"
    out = call("diffSeriesLists", [S("a.1", [1, 2])], [S("b.1", [10, NAN])])
    assert out[0].name == "diffSeries(a.1,b.1)" and same(out[0].values, [-9, 2])
    out = call("multiplySeriesLists", [S("a.1", [1, 2])], [S("b.1", [10, NAN])])
    assert out[0].name == "multiplySeries(a.1,b.1)" and same(out[0].values, [10, NAN])
    out = call("aggregateSeriesLists", [S("a.1", [1, NAN])], [S("b.1", [3, 4])], "avg", 1)
    assert out[0].name == "avgSeries(a.1,b.1)" and same(out[0].values, [2, NAN])


def test_series_lists_need_equal_lengths():
    with pytest.raises(FunctionError, match="equal length"):
        call("sumSeriesLists", [S("a", [1])], [])
    with pytest.raises(FunctionError, match="equal length"):
        call("aggregateSeriesLists", [S("a", [1])], [S("b", [1]), S("c", [1])], "sum")


# --- division -----------------------------------------------------------------------------------------------------

def test_divide_series_nulls_and_zero():
    out = call("divideSeries", [S("a", [10, 20, NAN, 5, -6]), S("b", [1, 2, 3, 4, 5])],
               [S("d", [2, 0, 1, NAN, -3])])
    assert [s.name for s in out] == ["divideSeries(a,d)", "divideSeries(b,d)"]
    assert same(out[0].values, [5, NAN, NAN, NAN, 2])
    assert same(out[1].values, [0.5, NAN, 3, NAN, -5 / 3])
    assert out[0].tags == {"name": "divideSeries(a,d)"}


def test_divide_series_missing_and_too_many_divisors():
    a = S("a.b;dc=x", [1, 2], tags={"name": "a.b", "dc": "x"})
    out, = call("divideSeries", [a], [])
    assert out.name == out.path_expression == "divideSeries(a.b;dc=x,MISSING)"
    assert same(out.values, [NAN, NAN]) and out.tags == {"name": "a.b", "dc": "x"}
    with pytest.raises(FunctionError, match=r"exactly 1 series \(got 2\)"):
        call("divideSeries", [a], [S("x", [1]), S("y", [1])])


def test_divide_series_lcm_and_lists():
    out, = call("divideSeries", [S("a", [1, 3, 5, 7])], [S("b", [2, 4], step=120)])
    assert out.step == 120 and same(out.values, [1, 1.5])
    out = call("divideSeriesLists", [S("a", [4, 9]), S("b", [1, 1])], [S("c", [2, 3]), S("d", [0, NAN])])
    assert [s.name for s in out] == ["divideSeries(a,c)", "divideSeries(b,d)"]
    assert same(out[0].values, [2, 3]) and same(out[1].values, [NAN, NAN])
    with pytest.raises(FunctionError, match="equal length"):
        call("divideSeriesLists", [S("a", [1])], [])


# --- asPercent ----------------------------------------------------------------------------------------------------

def test_as_percent_of_the_sum():
    a = S("x.a", [1, 0, NAN, 2], path_expression="x.*")
    b = S("x.b", [3, 0, 4, NAN], path_expression="x.*")
    out = call("asPercent", [a, b])
    assert [s.name for s in out] == ["asPercent(x.a,sumSeries(x.*))", "asPercent(x.b,sumSeries(x.*))"]
    assert same(out[0].values, [25, NAN, NAN, 100]) and same(out[1].values, [75, NAN, 100, NAN])
    assert call("pct", [a, b])[0].name == out[0].name


def test_as_percent_of_a_number():
    a = S("x.a", [1, -2, NAN])
    out, = call("asPercent", [a], 4)
    assert out.name == "asPercent(x.a,4)" and same(out.values, [25, -50, NAN])
    out, = call("asPercent", [a], 2.5)
    assert out.name == "asPercent(x.a,2.5)" and same(out.values, [40, -80, NAN])
    out, = call("asPercent", [a], 0)
    assert out.name == "asPercent(x.a,0)" and same(out.values, [NAN, NAN, NAN])
    with pytest.raises(FunctionError, match="total"):
        call("asPercent", [a], "abc")


def test_as_percent_of_series():
    a, b = S("x.b", [1, 2]), S("x.a", [3, 4])
    out = call("asPercent", [a, b], [S("t", [4, 0])])
    assert [s.name for s in out] == ["asPercent(x.b,t)", "asPercent(x.a,t)"]
    assert same(out[0].values, [25, NAN]) and same(out[1].values, [75, NAN])
    # as many totals as series: matched by sorted name
    out = call("asPercent", [a, b], [S("t.2", [1, 1]), S("t.1", [10, 10])])
    assert [s.name for s in out] == ["asPercent(x.a,t.1)", "asPercent(x.b,t.2)"]
    assert same(out[0].values, [30, 40]) and same(out[1].values, [100, 200])
    with pytest.raises(FunctionError, match="same number of series"):
        call("asPercent", [a, b], [S("t", [1, 1])] * 3)
    assert call("asPercent", []) == [] and call("asPercent", [], 100) == []


def test_as_percent_mixed_steps_keep_each_series_grid():
    # graphite-web consolidates to the lcm step but labels the result with the series' own start and step
    fast = S("fast", [1, 3, 5, 7])
    slow = S("slow", [8, 8], step=120)
    out = call("asPercent", [fast, slow])
    assert [s.step for s in out] == [60, 120]
    # totals: fast averaged in pairs [2, 6] plus slow [8, 8]
    assert np.allclose(out[0].values, [20, 600 / 14]) and np.allclose(out[1].values, [80, 800 / 14])


def test_as_percent_by_nodes():
    used = [S("h1.mem.used", [1, 2]), S("h2.mem.used", [3, 4])]
    total = [S("h1.mem.total", [4, 4]), S("h3.mem.total", [8, 8])]
    out = call("asPercent", used, total, 0)
    assert [s.name for s in out] == ["asPercent(h1.mem.used,h1.mem.total)", "asPercent(h2.mem.used,MISSING)",
                                     "asPercent(MISSING,h3.mem.total)"]
    assert same(out[0].values, [25, 50]) and same(out[1].values, [NAN, NAN]) and same(out[2].values, [NAN, NAN])
    # no total: each series against the sum of its group
    cpu = [S("h1.cpu.user", [1, 3]), S("h1.cpu.sys", [3, 1]), S("h2.cpu.user", [5, NAN])]
    out = call("asPercent", cpu, None, 0)
    assert [s.name for s in out] == ["asPercent(h1.cpu.user,sumSeries(h1.cpu.user,h1.cpu.sys))",
                                     "asPercent(h1.cpu.sys,sumSeries(h1.cpu.user,h1.cpu.sys))",
                                     "asPercent(h2.cpu.user,h2.cpu.user)"]
    assert same(out[0].values, [25, 75]) and same(out[2].values, [100, NAN])
    tagged = [S("d;dc=e", [1], tags={"name": "d", "dc": "e"}), S("d;dc=w", [3], tags={"name": "d", "dc": "w"})]
    out = call("asPercent", tagged, None, "dc")
    assert same(out[0].values, [100]) and same(out[1].values, [100])
    with pytest.raises(FunctionError, match="total must be None or a seriesList"):
        call("asPercent", cpu, 100, 0)


# --- countSeries, group, powSeries, percentileOfSeries, weightedAverage --------------------------------------------

def test_count_series():
    out, = call("countSeries", [S("a", [NAN, 1]), S("b", [1, 1, 1])], [S("c", [2])])
    assert out.name == out.path_expression == "countSeries(a,b,c)"
    assert same(out.values, [3, 3, 3])                      # series count, not non-null count
    assert call("countSeries", []) == []
    zero, = call("countSeries", context=SimpleNamespace(params={}, start=1000, end=1600))
    assert (zero.name, zero.path_expression, zero.start, zero.step) == ("0", "countSeries()", 1000, 300)
    assert same(zero.values, [0, 0, 0])


def test_group_concatenates():
    a, b, c = S("a", [1]), S("b", [2]), S("c", [3])
    assert call("group", [a], [], [b, c]) == [a, b, c]
    assert call("group") == []


def test_pow_series():
    out, = call("powSeries", [S("a", [2, -8, 0, NAN, 2, 10, 1]), S("b", [3, 1 / 3, -1, 2, NAN, 400, NAN])])
    assert out.name == "powSeries(a,b)"
    # -8 ** (1/3) and 0 ** -1 raise in math.pow, 10 ** 400 overflows, null operands give null (even 1 ** null)
    assert same(out.values, [8, NAN, NAN, NAN, NAN, NAN, NAN])
    out, = call("powSeries", [S("a", [2, 3]), S("b", [3, 2]), S("c", [2, 0.5])])
    assert same(out.values, [64, 3])
    assert same(call("powSeries", [S("a", [2, NAN])])[0].values, [2, NAN])
    assert call("powSeries", []) == []


def test_percentile_of_series_nist():
    rows = [S(f"s.{i}", [v, NAN, i]) for i, v in enumerate([15, 20, 35, 40, 50])]
    out, = call("percentileOfSeries", rows, 40, context=ctx())
    assert out.name == "percentileOfSeries(s.0,40)"
    assert same(out.values, [35, NAN, 2])                   # rank 0.4 * 6 = 2.4, rounded up: the 3rd value
    out, = call("percentileOfSeries", rows, 40, True)
    assert np.allclose(out.values, [20 + 0.4 * 15, NAN, 1.4], equal_nan=True)   # 2nd + 0.4 * (3rd - 2nd)
    out, = call("percentileOfSeries", rows, 99.5)
    assert same(out.values, [50, NAN, 4])
    out, = call("percentileOfSeries", rows, 1)
    assert same(out.values, [15, NAN, 0])
    assert call("percentileOfSeries", [S("a", [1])], 2.5)[0].name == "percentileOfSeries(a,2.5)"


def test_percentile_of_series_bad_n():
    rows = [S("a", [1, 2]), S("b", [3, 4])]
    for n in (0, -5):
        with pytest.raises(FunctionError, match="greater than 0"):
            call("percentileOfSeries", rows, n)
    # graphite-web fails with IndexError (HTTP 500) past the end of the sorted row
    with pytest.raises(FunctionError, match="out of range"):
        call("percentileOfSeries", rows, 150)
    with pytest.raises(FunctionError, match="out of range"):
        call("percentileOfSeries", rows, 100, True)
    assert same(call("percentileOfSeries", rows, 100)[0].values, [3, 4])
    assert call("percentileOfSeries", [], 50) == []


def test_weighted_average():
    avg = [S("h1.mean", [10, 20, NAN]), S("h2.mean", [30, NAN, 5])]
    weight = [S("h1.count", [1, 3, 2]), S("h2.count", [3, 1, NAN])]
    out, = call("weightedAverage", avg, weight, 0)
    assert out.name == "weightedAverage(h1.mean,h2.mean, h1.count,h2.count, 0)"
    # Σ(v·w) over pairs with both values / Σw over every weight
    assert same(out.values, [(10 + 90) / 4, 60 / 4, NAN])
    assert out.tags == {"name": out.name}
    with pytest.raises(FunctionError, match="same number of series"):
        call("weightedAverage", avg, weight[:1], 0)
    assert call("weightedAverage", [S("a.x", [1])], [S("b.y", [1])], 1) == []   # nothing pairs up


def test_param_specs_match_graphite_web():
    spec = REGISTRY["aggregate"]
    assert [p.as_json() for p in spec.params][1]["options"] == sorted(
        ["average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min", "multiply",
         "range", "rangeOf", "stddev", "sum", "total"])
    assert REGISTRY["avg"] is REGISTRY["averageSeries"] and REGISTRY["pct"] is REGISTRY["asPercent"]
    assert REGISTRY["powSeries"].params[0].name == "seriesList"
    assert REGISTRY["percentileOfSeries"].params[2].as_json() == {"name": "interpolate", "type": "boolean",
                                                                 "default": False}


# --- through the real pipeline -------------------------------------------------------------------------------------

T0 = 1_700_000_040


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    st = Storage(str(tmp_path_factory.mktemp("combine")), None, EngineOptions(flush_interval=3600))
    data = {"app.web1.count": [1, 2, NAN, 4], "app.web2.count": [10, NAN, NAN, -4], "app.web3.count": [0, 0, 0, 0]}
    for name, values in data.items():
        vals = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(vals)
        ts = ((T0 + 60 * np.arange(len(vals)))[ok] * 1000).astype(np.int64)
        st.write("anonymous", [name] * int(ok.sum()), ts, vals[ok], intervals=np.full(int(ok.sum()), 60))

    def run(target, **params):
        fctx = FetchContext(storage=st, tenant="anonymous", start=T0 - 60, end=T0 + 180, now=T0 + 3600)
        return evaluate_targets(EvalContext(fetch=fctx, params=params), [parse_target(target)])

    yield run
    st.close()


def test_pipeline_targets(render):
    out, = render("sumSeries(app.*.count)")
    assert out.name == "sumSeries(app.*.count)" and same(out.values, [11, 2, 0, 0])
    out, = render("sum(app.*.count)", xFilesFactor="0.5")
    assert same(out.values, [11, 2, NAN, 0])
    out = render("asPercent(app.web{1,2}.count,app.web3.count)")
    assert all(np.isnan(s.values).all() for s in out)
    out = render("divideSeries(app.web1.count,sumSeries(app.*.count))")
    assert out[0].name == "divideSeries(app.web1.count,sumSeries(app.*.count))"
    assert same(out[0].values, [1 / 11, 1, NAN, NAN])
    out, = render("countSeries(app.*.count)")
    assert same(out.values, [3, 3, 3, 3])


def test_pipeline_bad_arguments(render):
    with pytest.raises(FunctionError, match="missing required parameter 'func'"):
        render("aggregate(app.*.count)")
    with pytest.raises(FunctionError, match="exactly 1 series"):
        render("divideSeries(app.web1.count,app.*.count)")
    with pytest.raises(FunctionError, match="must be a number"):
        render("percentileOfSeries(app.*.count,'x')")
