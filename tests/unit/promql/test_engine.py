"""PromQL engine: selectors, staleness, range functions, operators, aggregations, functions and errors, against a
real Storage. Most cases build the AST by hand (the engine's contract), some go through the parser."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from prom_bridge.promql import ast
from prom_bridge.promql.ast import (AggregateExpr, BinaryExpr, Call, MatrixSelector, NumberLiteral, StringLiteral,
                                    SubqueryExpr, UnaryExpr, VectorMatching, VectorSelector)
from prom_bridge.promql.engine import Engine, EvalError, Matrix, Scalar, String, Vector
from prom_bridge.promql.functions import format_go_float
from storage.engine import EngineOptions, Storage
from storage.matchers import Matcher
from storage.querier import Querier

STALE = struct.unpack("<d", struct.pack("<Q", 0x7ff0000000000002))[0]
M = 60_000


@pytest.fixture
def store(tmp_path):
    s = Storage(str(tmp_path / "data"), options=EngineOptions(wal_fsync=False))
    yield s
    s.close()


@pytest.fixture
def engine(store):
    return Engine(lambda: Querier(store, "t"))


def write(store, labels: dict, points):
    """points: [(ts_ms, value)]"""
    ls = tuple(sorted(labels.items()))
    store.write_labels("t", [ls] * len(points), np.array([p[0] for p in points], np.int64),
                       np.array([p[1] for p in points], np.float64))


def sel(name=None, offset_ms=0, at_ms=None, at_modifier=None, **eq):
    ms = tuple(Matcher(k, "=", v) for k, v in eq.items())
    if name:
        ms += (Matcher("__name__", "=", name),)
    return VectorSelector(name, ms, offset_ms=offset_ms, at_ms=at_ms, at_modifier=at_modifier)


def rng(vs, range_ms):
    return MatrixSelector(vs, range_ms)


def num(v):
    return NumberLiteral(float(v))


def as_dict(vec: Vector):
    return {tuple(s.labels): s.value for s in vec}


def L(**kw):
    return tuple(sorted(kw.items()))


@pytest.fixture
def http(store):
    """Counters every 30s for 20 minutes: a = 10/min, b = 20/min."""
    for inst, rate in (("a", 10), ("b", 20)):
        write(store, {"__name__": "reqs", "job": "api", "instance": inst},
              [(i * 30_000, i * rate / 2) for i in range(41)])
    return store


# ---- selectors and staleness --------------------------------------------------------------------------------
def test_instant_selector_lookback_is_closed(store, engine):
    write(store, {"__name__": "x"}, [(0, 1.0)])
    assert as_dict(engine.instant(sel("x"), 300_000)) == {L(__name__="x"): 1.0}
    assert len(engine.instant(sel("x"), 300_001)) == 0


def test_stale_marker_hides_series_but_real_nan_is_data(store, engine):
    write(store, {"__name__": "s"}, [(0, 1.0), (10_000, STALE)])
    write(store, {"__name__": "n"}, [(0, float("nan"))])
    assert len(engine.instant(sel("s"), 5_000)) == 1
    assert len(engine.instant(sel("s"), 20_000)) == 0
    res = engine.instant(sel("n"), 20_000)
    assert len(res) == 1 and math.isnan(res.samples[0].value)


def test_instant_vector_reports_eval_time(http, engine):
    res = engine.instant(sel("reqs", instance="a"), 95_000)
    assert res.samples[0].ts == 95_000 and res.samples[0].value == 15.0


def test_range_query_equals_instant_at_every_step(http, engine):
    expr = Call("rate", (rng(sel("reqs"), 5 * M),))
    mat = engine.range(expr, 5 * M, 20 * M, 30_000)
    assert isinstance(mat, Matrix) and len(mat) == 2
    for s in mat:
        for t, v in zip(s.ts.tolist(), s.values.tolist()):
            inst = as_dict(engine.instant(expr, t))
            assert inst[tuple(s.labels)] == pytest.approx(v)


def test_matrix_selector_instant_returns_raw_samples(http, engine):
    res = engine.instant(rng(sel("reqs", instance="a"), M), 10 * M)
    assert isinstance(res, Matrix)
    assert res.series[0].ts.tolist() == [9 * M, 9 * M + 30_000, 10 * M]   # closed window


def test_offset_and_at(http, engine):
    a = sel("reqs", instance="a", offset_ms=5 * M)
    assert as_dict(engine.instant(a, 10 * M))[L(__name__="reqs", instance="a", job="api")] == 50.0
    pinned = sel("reqs", instance="a", at_ms=2 * M)
    mat = engine.range(pinned, 5 * M, 10 * M, M)
    assert set(mat.series[0].values.tolist()) == {20.0}
    start = sel("reqs", instance="a", at_modifier="start")
    mat = engine.range(start, 5 * M, 10 * M, M)
    assert set(mat.series[0].values.tolist()) == {50.0}


# ---- range functions ----------------------------------------------------------------------------------------
def test_rate_increase_delta(http, engine):
    r = as_dict(engine.instant(Call("rate", (rng(sel("reqs"), 5 * M),)), 10 * M))
    assert r[L(instance="a", job="api")] == pytest.approx(10 / 60)
    assert r[L(instance="b", job="api")] == pytest.approx(20 / 60)
    inc = as_dict(engine.instant(Call("increase", (rng(sel("reqs", instance="a"), 5 * M),)), 10 * M))
    assert list(inc.values()) == [pytest.approx(50.0)]


def test_rate_handles_counter_reset(store, engine):
    write(store, {"__name__": "c"}, [(0, 10), (60_000, 20), (120_000, 5), (180_000, 15)])
    v = engine.instant(Call("increase", (rng(sel("c"), 3 * M),)), 3 * M).samples[0].value
    assert v == pytest.approx(15 - 10 + 20)      # the drop from 20 counts as a reset; window fully covered


def test_irate_resets_changes(store, engine):
    write(store, {"__name__": "c"}, [(0, 1), (60_000, 3), (120_000, 2), (180_000, 2)])
    assert engine.instant(Call("resets", (rng(sel("c"), 5 * M),)), 3 * M).samples[0].value == 1
    assert engine.instant(Call("changes", (rng(sel("c"), 5 * M),)), 3 * M).samples[0].value == 2
    assert engine.instant(Call("irate", (rng(sel("c"), 5 * M),)), 2 * M).samples[0].value == pytest.approx(2 / 60)


def test_over_time_functions(store, engine):
    write(store, {"__name__": "g", "k": "v"}, [(i * M, v) for i, v in enumerate([4, 1, 7, 2])])
    m = rng(sel("g"), 5 * M)
    t = 3 * M
    val = lambda f: engine.instant(Call(f, (m,)), t).samples[0].value
    assert val("sum_over_time") == 14 and val("count_over_time") == 4 and val("avg_over_time") == 3.5
    assert val("min_over_time") == 1 and val("max_over_time") == 7
    assert val("stdvar_over_time") == pytest.approx(np.var([4, 1, 7, 2]))
    last = engine.instant(Call("last_over_time", (m,)), t).samples[0]
    assert last.value == 2 and dict(last.labels)["__name__"] == "g"          # keeps the name
    q = engine.instant(Call("quantile_over_time", (num(0.5), m)), t).samples[0].value
    assert q == pytest.approx(3.0)


def test_deriv_predict_linear_holt_winters(store, engine):
    write(store, {"__name__": "lin"}, [(i * M, 2.0 * i) for i in range(11)])
    m = rng(sel("lin"), 10 * M)
    assert engine.instant(Call("deriv", (m,)), 10 * M).samples[0].value == pytest.approx(2 / 60)
    assert engine.instant(Call("predict_linear", (m, num(600))), 10 * M).samples[0].value == pytest.approx(40)
    hw = engine.instant(Call("holt_winters", (m, num(0.5), num(0.5))), 10 * M).samples[0].value
    assert hw == pytest.approx(20.0)
    with pytest.raises(EvalError) as err:
        engine.instant(Call("holt_winters", (m, num(1.5), num(0.5))), 10 * M)
    assert "smoothing factor" in err.value.message


def test_subquery_steps_align_to_absolute_multiples(store, engine):
    write(store, {"__name__": "x"}, [(i * 10_000, float(i)) for i in range(100)])
    sq = SubqueryExpr(sel("x"), range_ms=M, step_ms=20_000)
    res = engine.instant(sq, 125_000)
    assert res.series[0].ts.tolist() == [80_000, 100_000, 120_000]
    total = engine.instant(Call("count_over_time", (sq,)), 125_000).samples[0].value
    assert total == 3


def test_absent_and_absent_over_time(store, engine):
    res = engine.instant(Call("absent", (sel("nope", job="x"),)), 0)
    assert as_dict(res) == {L(job="x"): 1.0}
    write(store, {"__name__": "here"}, [(0, 1)])
    assert len(engine.instant(Call("absent", (sel("here"),)), 0)) == 0
    res = engine.instant(Call("absent_over_time", (rng(sel("here"), M),)), 5 * M)
    assert as_dict(res) == {(): 1.0}


# ---- operators ----------------------------------------------------------------------------------------------
def test_vector_scalar_arith_drops_name_and_comparison_filters(http, engine):
    res = as_dict(engine.instant(BinaryExpr("*", sel("reqs"), num(2)), 10 * M))
    assert res == {L(instance="a", job="api"): 200.0, L(instance="b", job="api"): 400.0}
    res = as_dict(engine.instant(BinaryExpr(">", sel("reqs"), num(150)), 10 * M))
    assert res == {L(__name__="reqs", instance="b", job="api"): 200.0}
    res = as_dict(engine.instant(BinaryExpr(">", num(150), sel("reqs"), return_bool=True), 10 * M))
    assert res == {L(instance="a", job="api"): 1.0, L(instance="b", job="api"): 0.0}


def test_one_to_one_and_group_left(store, engine):
    write(store, {"__name__": "used", "node": "n1", "mode": "x"}, [(0, 30)])
    write(store, {"__name__": "used", "node": "n1", "mode": "y"}, [(0, 10)])
    write(store, {"__name__": "total", "node": "n1", "rack": "r9"}, [(0, 100)])
    on_node = VectorMatching(card="many-to-one", on=True, labels=("node",), include=("rack",))
    res = as_dict(engine.instant(BinaryExpr("/", sel("used"), sel("total"), matching=on_node), 0))
    assert res == {L(mode="x", node="n1", rack="r9"): 0.3, L(mode="y", node="n1", rack="r9"): 0.1}
    one = VectorMatching(card="one-to-one", on=True, labels=("node",))
    with pytest.raises(EvalError) as err:
        engine.instant(BinaryExpr("/", sel("used"), sel("total"), matching=one), 0)
    assert err.value.kind == "execution" and "many-to-one matching must be explicit" in err.value.message
    rev = VectorMatching(card="one-to-one", on=True, labels=("node",))
    with pytest.raises(EvalError) as err:
        engine.instant(BinaryExpr("/", sel("total"), sel("used"), matching=rev), 0)
    assert "found duplicate series for the match group" in err.value.message


def test_set_operators(http, engine):
    a, b = sel("reqs", instance="a"), sel("reqs")
    m = VectorMatching(card="many-to-many")
    assert len(engine.instant(BinaryExpr("and", b, a, matching=m), M)) == 1
    assert len(engine.instant(BinaryExpr("unless", b, a, matching=m), M)) == 1
    assert len(engine.instant(BinaryExpr("or", a, b, matching=m), M)) == 2


def test_unary_minus_duplicate_labelset(store, engine):
    write(store, {"__name__": "m1", "k": "v"}, [(0, 1)])
    write(store, {"__name__": "m2", "k": "v"}, [(0, 2)])
    both = VectorSelector(None, (Matcher("__name__", "=~", "m1|m2"),))
    with pytest.raises(EvalError) as err:
        engine.instant(UnaryExpr("-", both), 0)
    assert err.value.message == "vector cannot contain metrics with the same labelset"


def test_scalar_scalar_and_atan2(engine):
    assert engine.instant(BinaryExpr("^", num(2), BinaryExpr("^", num(3), num(2))), 0).value == 512
    assert engine.instant(BinaryExpr("atan2", num(1), num(1)), 0).value == pytest.approx(math.pi / 4)
    assert engine.instant(BinaryExpr("%", num(-7), num(3)), 0).value == -1      # Go's math.Mod sign


# ---- aggregations -------------------------------------------------------------------------------------------
def test_sum_avg_count_by_without(http, engine):
    s = as_dict(engine.instant(AggregateExpr("sum", sel("reqs"), grouping=("job",)), 10 * M))
    assert s == {L(job="api"): 300.0}
    w = as_dict(engine.instant(AggregateExpr("avg", sel("reqs"), grouping=("instance",), without=True), 10 * M))
    assert w == {L(job="api"): 150.0}
    c = as_dict(engine.instant(AggregateExpr("count", sel("reqs")), 10 * M))
    assert c == {(): 2.0}


def test_topk_bottomk_order_and_quantile(http, engine):
    res = engine.instant(AggregateExpr("topk", sel("reqs"), param=num(1)), 10 * M)
    assert [dict(s.labels)["instance"] for s in res] == ["b"]
    res = engine.instant(AggregateExpr("bottomk", sel("reqs"), param=num(2)), 10 * M)
    assert [s.value for s in res] == [100.0, 200.0]
    q = engine.instant(AggregateExpr("quantile", sel("reqs"), param=num(0.5)), 10 * M).samples[0].value
    assert q == 150.0


def test_count_values_stddev_group(store, engine):
    for i, v in enumerate([1, 1, 2.5]):
        write(store, {"__name__": "v", "i": str(i)}, [(0, v)])
    res = as_dict(engine.instant(AggregateExpr("count_values", sel("v"), param=StringLiteral("val")), 0))
    assert res == {L(val="1"): 2.0, L(val="2.5"): 1.0}
    sd = engine.instant(AggregateExpr("stddev", sel("v")), 0).samples[0].value
    assert sd == pytest.approx(np.std([1, 1, 2.5]))
    assert as_dict(engine.instant(AggregateExpr("group", sel("v")), 0)) == {(): 1.0}


# ---- instant functions --------------------------------------------------------------------------------------
def test_label_replace_and_join(store, engine):
    write(store, {"__name__": "up", "instance": "host:9090"}, [(0, 1)])
    lr = Call("label_replace", (sel("up"), StringLiteral("host"), StringLiteral("$1"),
                                StringLiteral("instance"), StringLiteral("(.*):.*")))
    res = engine.instant(lr, 0).samples[0]
    assert dict(res.labels) == {"__name__": "up", "instance": "host:9090", "host": "host"}
    lj = Call("label_join", (sel("up"), StringLiteral("both"), StringLiteral("-"), StringLiteral("__name__"),
                             StringLiteral("instance")))
    assert dict(engine.instant(lj, 0).samples[0].labels)["both"] == "up-host:9090"
    bad = Call("label_replace", (sel("up"), StringLiteral("a-b"), StringLiteral(""), StringLiteral("x"),
                                 StringLiteral(".*")))
    with pytest.raises(EvalError):
        engine.instant(bad, 0)


def test_histogram_quantile(store, engine):
    for le, c in (("0.1", 10), ("0.5", 60), ("1", 90), ("+Inf", 100)):
        write(store, {"__name__": "h_bucket", "le": le}, [(0, c)])
    res = engine.instant(Call("histogram_quantile", (num(0.5), sel("h_bucket"))), 0)
    assert as_dict(res) == {(): pytest.approx(0.1 + 0.4 * (40 / 50))}
    res = engine.instant(Call("histogram_quantile", (num(0.99), sel("h_bucket"))), 0)
    assert res.samples[0].value == 1.0      # falls in +Inf: the upper bound of the bucket before


def test_time_functions_and_scalar(engine):
    t = 1_700_000_000_000   # 2023-11-14T22:13:20Z, a Tuesday
    val = lambda f: engine.instant(Call(f, ()), t).samples[0].value
    assert (val("year"), val("month"), val("day_of_month"), val("hour"), val("minute")) == (2023, 11, 14, 22, 13)
    assert val("day_of_week") == 2 and val("days_in_month") == 30 and val("day_of_year") == 318
    assert engine.instant(Call("time", ()), t).value == 1_700_000_000
    assert math.isnan(engine.instant(Call("scalar", (sel("nothing"),)), t).value)


def test_sort_and_clamp_round(http, engine):
    res = engine.instant(Call("sort_desc", (sel("reqs"),)), 10 * M)
    assert [s.value for s in res] == [200.0, 100.0]
    res = as_dict(engine.instant(Call("clamp", (sel("reqs"), num(120), num(150))), 10 * M))
    assert sorted(res.values()) == [120.0, 150.0]
    assert len(engine.instant(Call("clamp", (sel("reqs"), num(5), num(1))), 10 * M)) == 0
    r = engine.instant(Call("round", (BinaryExpr("/", sel("reqs", instance="a"), num(40)),)), 10 * M)
    assert r.samples[0].value == 3.0     # 2.5 rounds half up


def test_timestamp_uses_sample_time(store, engine):
    write(store, {"__name__": "x"}, [(10_000, 1)])
    assert engine.instant(Call("timestamp", (sel("x"),)), 60_000).samples[0].value == 10
    inner = Call("timestamp", (BinaryExpr("+", sel("x"), num(0)),))
    assert engine.instant(inner, 60_000).samples[0].value == 60


# ---- text queries, errors, limits ---------------------------------------------------------------------------
def test_text_queries_go_through_the_parser(http, engine):
    res = engine.instant('sum by (job) (rate(reqs{job="api"}[5m]))', 10 * M)
    assert as_dict(res) == {L(job="api"): pytest.approx(0.5)}
    assert isinstance(engine.instant('"hello"', 0), String)
    assert isinstance(engine.instant("1 + 1", 0), Scalar)


def test_errors_have_kinds(http, engine):
    with pytest.raises(EvalError) as err:
        engine.instant("sum(", 0)
    assert err.value.kind == "bad_data"
    with pytest.raises(EvalError) as err:
        engine.range(rng(sel("reqs"), M), 0, M, 1000)
    assert err.value.kind == "bad_data" and "range vector" in err.value.message
    with pytest.raises(EvalError) as err:
        engine.range(sel("reqs"), 0, M, 0)
    assert err.value.kind == "bad_data"


def test_max_samples_limit(http, store):
    eng = Engine(lambda: Querier(store, "t"), max_samples=10)
    with pytest.raises(EvalError) as err:
        eng.range(Call("rate", (rng(sel("reqs"), 5 * M),)), 0, 20 * M, M)
    assert err.value.kind == "execution"


def test_scalar_range_query_is_a_matrix(engine):
    mat = engine.range(Call("time", ()), 0, 2 * M, M)
    assert mat.series[0].labels == () and mat.series[0].values.tolist() == [0, 60, 120]


def test_large_range_query_is_vectorised(store, engine):
    sids = 200
    ts = np.arange(0, 6 * 3600_000, 15_000, dtype=np.int64)
    labels = [tuple(sorted({"__name__": "big", "i": str(i)}.items())) for i in range(sids)]
    store.write_labels("t", [l for l in labels for _ in ts], np.tile(ts, sids),
                       np.tile(np.arange(len(ts), dtype=np.float64), sids))
    import time as _t
    t0 = _t.perf_counter()
    mat = engine.range("sum(rate(big[5m]))", 3600_000, 6 * 3600_000 - 15_000, 15_000)
    assert _t.perf_counter() - t0 < 10
    assert mat.series[0].values == pytest.approx(np.full(len(mat.series[0].values), sids / 15.0))


@pytest.mark.parametrize("v,s", [(1.0, "1"), (0.1, "0.1"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"),
                                 (-2.5, "-2.5"), (math.inf, "+Inf"), (math.nan, "NaN")])
def test_format_go_float(v, s):
    assert format_go_float(v) == s


def test_cancel_and_timeout(http, store):
    eng = Engine(lambda: Querier(store, "t"))
    eng.cancel()
    with pytest.raises(EvalError) as err:
        eng.instant("reqs", 0)
    assert err.value.kind == "canceled"
    eng = Engine(lambda: Querier(store, "t"), timeout_s=1e-9)
    with pytest.raises(EvalError) as err:
        eng.range("sum(rate(reqs[5m]))", 0, 20 * M, 1000)
    assert err.value.kind == "timeout"


# ---- behaviours pinned against a real Prometheus 2.42 (differential runs) ------------------------------------
def test_topk_ties_follow_prometheus_heap(store, engine):
    for i, v in enumerate([216, 216, 300]):
        write(store, {"__name__": "c", "i": str(i)}, [(0, v)])
    res = engine.instant("topk(2, c)", 0)
    # 2.42 pops the heap root (the first 216) when 300 arrives, keeping the later tie
    assert [dict(s.labels)["i"] for s in res] == ["2", "1"]
    res = engine.instant("topk(1, c{i!='2'})", 0)
    assert [dict(s.labels)["i"] for s in res] == ["0"]


def test_topk_nan_param_is_an_error(http, engine):
    with pytest.raises(EvalError) as err:
        engine.instant("topk(scalar(nothing), reqs)", 0)
    assert err.value.message == "Scalar value NaN overflows int64"


def test_round_drops_name_and_nan_dates(store, engine):
    write(store, {"__name__": "x"}, [(0, 1.4)])
    assert engine.instant("round(x)", 0).samples[0].labels == ()
    assert engine.instant("minute(vector(NaN))", 0).samples[0].value == 30      # Go's int64(NaN) date
    assert engine.instant("year(vector(Inf))", 0).samples[0].value == 292277026596


def test_predict_linear_at_window_drifts_in_range_queries(store, engine):
    write(store, {"__name__": "lin"}, [(i * M, float(i)) for i in range(30)])
    q = "predict_linear(lin[5m] @ 600, 0)"
    inst = engine.instant(q, 20 * M).samples[0].value
    assert inst == pytest.approx(20.0)                  # extrapolated to the evaluation time
    mat = engine.range(q, 20 * M, 22 * M, M)
    assert mat.series[0].values[0] == pytest.approx(inst)


def test_window_gathering_in_chunks_gives_the_same_answer(store, engine, monkeypatch):
    from prom_bridge.promql import functions
    write(store, {"__name__": "g"}, [(i * 15_000, float(i % 17)) for i in range(400)])
    q = "quantile_over_time(0.3, g[7m]) + avg_over_time(g[3m]) + stddev_over_time(g[2m])"
    whole = engine.range(q, 10 * M, 90 * M, 45_000).series[0].values
    monkeypatch.setattr(functions, "_GATHER_CELLS", 50)
    chunked = engine.range(q, 10 * M, 90 * M, 45_000).series[0].values
    assert np.array_equal(whole, chunked)
