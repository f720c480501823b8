"""The Combine group (aggregate family, series-list arithmetic, groupBy*, map/reduce, applyByNode) agrees with
graphite-web 1.1.10: values, nulls, names and tags."""
import httpx
import pytest

from .conftest import dataset_fixtures, FROM, UNTIL, assert_same, gwref, render_plumbago

AGG_FUNCS = ["average", "avg", "avg_zero", "median", "sum", "total", "min", "max", "diff", "stddev", "count",
             "range", "rangeOf", "multiply", "last", "current"]

ALIASES = [
    "sumSeries(app.*.requests.count)",
    "sum(app.*.requests.count)",
    "sumSeries(app.web1.requests.count,app.web2.requests.count)",
    "sumSeries(app.*.requests.count,sys.*.net.bytes)",
    "averageSeries(app.*.latency.mean)",
    "avg(app.*.requests.count,neg.values)",
    "diffSeries(app.web3.requests.count,app.web1.requests.count,app.web2.requests.count)",
    "diffSeries(app.web2.requests.count,app.web1.requests.count)",
    "minSeries(app.*.latency.mean,neg.values)",
    "maxSeries(sys.*.net.bytes)",
    "stddevSeries(app.*.requests.count)",
    "rangeOfSeries(app.*.latency.mean)",
    "multiplySeries(app.web1.requests.count,neg.values)",
    "multiplySeries(app.web2.requests.count,app.web1.latency.mean)",
    "multiplySeries(app.web2.requests.count)",                 # a single series comes back as it is
    "sumSeries(empty.mostly,app.web2.requests.count)",
    "sumSeries(empty.mostly)",
    "sumSeries(no.such.metric)",
    "sumSeries(no.such.metric,app.web1.requests.count)",
    "averageSeries(app.web1.requests.count,misc.slow)",        # lcm normalisation: 60 s + 120 s
    "sumSeries(sys.*.net.bytes,misc.slow)",
    "sumSeries(seriesByTag('name=disk.used'))",
    "averageSeries(seriesByTag('dc=east'))",
    "maxSeries(seriesByTag('name=disk.used','dc=east'))",
    "sumSeries(sumSeries(app.*.requests.count),misc.slow)",
    "sumSeries(app.web1.requests.count,app.web1.requests.count)",
]


@pytest.mark.parametrize("target", ALIASES)
def test_aggregate_aliases(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("func", AGG_FUNCS)
def test_aggregate_every_func(reference, plumbago, func):
    assert_same(reference, plumbago, f"aggregate(group(app.*.requests.count,neg.values),'{func}')", tags=True)
    assert_same(reference, plumbago, f"aggregate(app.*.latency.mean,'{func}')", tags=True)


@pytest.mark.parametrize("target", [
    "aggregate(app.*.requests.count,'sumSeries')",             # deprecated spelling still accepted
    "aggregate(app.*.requests.count,'avgSeries')",
    "aggregate(app.*.latency.mean,'avg',0.6)",
    "aggregate(app.*.latency.mean,'sum',xFilesFactor=1)",
    "aggregate(sys.*.net.bytes,'max',xFilesFactor=0.5)",
    "aggregate(seriesByTag('name=disk.used'),'median',1)",
    "aggregate(group(app.web1.requests.count,misc.slow),'avg_zero')",
    "aggregate(group(empty.mostly,app.web2.requests.count),'count',0.7)",
    "aggregate(no.such.metric,'sum')",
])
def test_aggregate_options(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "sumSeriesLists(app.web{1,2}.requests.count,app.web{1,2}.latency.mean)",
    "diffSeriesLists(app.web{1,2}.requests.count,app.web{1,2}.latency.mean)",
    "multiplySeriesLists(app.web{1,2}.requests.count,app.web{1,2}.latency.mean)",
    "aggregateSeriesLists(app.web{1,2}.requests.count,app.web{1,2}.latency.mean,'max')",
    "aggregateSeriesLists(app.web{1,2}.requests.count,app.web{1,2}.latency.mean,'avg',1)",
    "aggregateSeriesLists(app.web{1,2}.requests.count,sys.host{1,2}.net.bytes,'diff',xFilesFactor=0.5)",
    "sumSeriesLists(seriesByTag('name=disk.used','dc=east'),app.web{1,2}.requests.count)",
    "sumSeriesLists(app.web1.requests.count,misc.slow)",
])
def test_series_lists(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "sumSeriesWithWildcards(app.*.*.*,1)",
    "sumSeriesWithWildcards(app.*.*.*,1,3)",
    "sumSeriesWithWildcards(app.*.requests.count)",
    "averageSeriesWithWildcards(app.*.*.*,1)",
    "averageSeriesWithWildcards(sys.*.net.bytes,1)",
    "multiplySeriesWithWildcards(app.*.*.*,2,3)",
    "multiplySeriesWithWildcards(app.web1.*.*,2)",
    "aggregateWithWildcards(app.*.*.*,'max',1)",
    "aggregateWithWildcards(app.*.*.*,'median',1,2)",
    "aggregateWithWildcards(app.*.requests.count,'sumSeries',1)",
    "aggregateWithWildcards(seriesByTag('name=disk.used'),'sum',1)",
    "aggregateWithWildcards(seriesByTag('name=disk.used'),'last',0)",
    "sumSeriesWithWildcards(app.*.*.*,-1)",
    "sumSeriesWithWildcards(group(app.web1.requests.count,misc.slow),0,1)",
])
def test_with_wildcards(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "divideSeries(app.*.requests.count,app.web1.latency.mean)",
    "divideSeries(app.web2.requests.count,app.web1.requests.count)",      # zeros in the divisor
    "divideSeries(app.*.requests.count,zero.series)",
    "divideSeries(neg.values,sys.host2.net.bytes)",
    "divideSeries(app.*.requests.count,no.such.metric)",
    "divideSeries(app.web1.requests.count,misc.slow)",
    "divideSeries(misc.slow,app.web2.requests.count)",
    "divideSeries(seriesByTag('name=disk.used'),sumSeries(seriesByTag('name=disk.used')))",
    "divideSeriesLists(app.web{1,2}.requests.count,app.web{1,2}.latency.mean)",
    "divideSeriesLists(app.web{2,3}.requests.count,sys.host{1,2}.net.bytes)",
    "divideSeriesLists(app.web1.requests.count,misc.slow)",
])
def test_divide(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "asPercent(app.*.requests.count)",
    "pct(app.*.requests.count)",
    "asPercent(app.*.requests.count,100)",
    "asPercent(app.*.requests.count,2.5)",
    "asPercent(app.*.requests.count,0)",
    "asPercent(app.*.requests.count,app.web3.requests.count)",
    "asPercent(app.*.requests.count,sumSeries(app.*.requests.count))",
    "asPercent(app.web{1,2}.requests.count,app.web{1,2}.latency.mean)",
    "asPercent(app.web{2,1}.requests.count,sys.host{2,1}.net.bytes)",
    "asPercent(app.*.*.*,None,1)",
    "asPercent(app.*.*.*,None,2)",
    "asPercent(app.*.*.*,app.*.requests.count,1)",
    "asPercent(app.web{2,3}.*.*,app.web{1,2}.requests.count,1)",       # MISSING on both sides
    "asPercent(app.web{1,2}.*.*,app.web{1,3}.*.*,1)",
    "asPercent(seriesByTag('name=disk.used'),None,'dc')",
    "asPercent(seriesByTag('name=disk.used'),seriesByTag('name=cpu.load'),'dc')",
    "asPercent(app.web1.requests.count,misc.slow)",
    "asPercent(misc.slow,app.web1.requests.count)",
    "asPercent(app.web{1,2}.requests.count,misc.slow,'nosuchtag')",
    "asPercent(group(app.web1.requests.count,misc.slow))",              # mixed steps, graphite-web's own grid
    "asPercent(group(misc.slow,app.web2.requests.count),50)",
    "asPercent(app.web{1,2}.requests.count,misc.slow)",
    "asPercent(group(app.web1.requests.count,misc.slow),group(misc.slow,app.web3.requests.count))",
    "asPercent(group(app.web1.requests.count,misc.slow,app.web2.requests.count),None,'nosuchtag')",
    "asPercent(neg.values,zero.series)",
    "asPercent(empty.mostly)",
    "asPercent(no.such.metric)",
    "asPercent(no.such.metric,100)",
])
def test_as_percent(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "countSeries(app.*.requests.count)",
    "countSeries(app.*.requests.count,sys.*.net.bytes)",
    "countSeries(app.web1.requests.count,misc.slow)",
    "countSeries(no.such.metric)",
    "countSeries()",
    "group(app.web1.requests.count,sys.*.net.bytes,neg.values)",
    "group()",
    "group(no.such.metric,zero.series)",
    "powSeries(app.web1.requests.count,app.web2.requests.count)",
    "powSeries(neg.values,app.web1.latency.mean)",                      # negative base, fractional exponent
    "powSeries(app.web2.latency.mean,neg.values)",                      # large negative exponents
    "powSeries(zero.series,neg.values)",                                # 0 ** negative
    "powSeries(app.web1.requests.count,app.web3.requests.count)",       # overflow
    "powSeries(app.web2.requests.count,zero.series)",
    "powSeries(app.web1.requests.count)",
    "powSeries(app.web1.requests.count,misc.slow)",
    "powSeries(app.web1.latency.mean,app.web2.latency.mean,app.web1.requests.count)",
    "percentileOfSeries(app.*.requests.count,50)",
    "percentileOfSeries(app.*.requests.count,50,true)",
    "percentileOfSeries(app.*.*.*,90)",
    "percentileOfSeries(app.*.*.*,90,interpolate=true)",
    "percentileOfSeries(app.*.*.*,12.5)",
    "percentileOfSeries(app.*.*.*,12.5,true)",
    "percentileOfSeries(app.*.*.*,100)",
    "percentileOfSeries(app.*.*.*,1)",
    "percentileOfSeries(seriesByTag('name=disk.used'),75)",
    "percentileOfSeries(group(app.web1.requests.count,misc.slow),50)",
    "percentileOfSeries(empty.mostly,50)",
    "percentileOfSeries(no.such.metric,50)",
])
def test_row_functions(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "weightedAverage(app.*.latency.mean,app.web{1,2}.requests.count,1)",
    "weightedAverage(app.web{1,2}.requests.count,app.*.latency.mean,1)",
    "weightedAverage(app.web{1,2}.latency.mean,app.web{1,3}.requests.count,1)",   # one unpaired weight
    "weightedAverage(app.web{1,2}.latency.mean,app.web{2,3}.requests.count,0)",   # one key: the last pair wins
    "weightedAverage(seriesByTag('name=disk.used','dc=east'),seriesByTag('dc=east','host=h1'),'host')",
    "weightedAverage(app.web{1,2}.latency.mean,sys.host{1,2}.net.bytes)",
    "weightedAverage(app.web1.latency.mean,misc.slow,0)",
    "weightedAverage(no.such.metric,no.such.metric,0)",
])
def test_weighted_average(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "groupByNode(app.*.*.*,1)",
    "groupByNode(app.*.*.*,1,'sum')",
    "groupByNode(app.*.*.*,1,'sumSeries')",
    "groupByNode(app.*.*.*,2,'avg')",
    "groupByNode(app.*.*.*,2,'median')",
    "groupByNode(app.*.*.*,2,'max')",
    "groupByNode(app.*.*.*,-1,'countSeries')",
    "groupByNode(app.*.*.*,1,'diffSeries')",
    "groupByNode(app.*.*.*,1,'asPercent')",
    "groupByNode(app.*.*.*,1,'multiplySeries')",
    "groupByNode(app.*.*.*,1,'total')",
    "groupByNode(sys.*.net.bytes,0,'rangeOfSeries')",
    "groupByNode(seriesByTag('name=disk.used'),'dc','sum')",
    "groupByNode(seriesByTag('dc=~.+'),'dc','max')",
    "groupByNode(sumSeries(app.*.requests.count),0)",
    "groupByNode(group(app.web1.requests.count,misc.slow),0,'sum')",
    "groupByNodes(app.*.*.*,'sum',1,2)",
    "groupByNodes(app.*.*.*,'average',2)",
    "groupByNodes(app.*.*.*,'stddevSeries',3,0)",
    "groupByNodes(app.*.*.*,'sum')",
    "groupByNodes(seriesByTag('name=disk.used'),'max','dc',0)",
    "groupByNodes(seriesByTag('name=disk.used'),'last','host')",
    "groupByTags(seriesByTag('name=disk.used'),'sum','dc')",
    "groupByTags(seriesByTag('name=disk.used'),'avg','dc','host')",
    "groupByTags(seriesByTag('dc=east'),'max','dc')",
    "groupByTags(seriesByTag('dc=east'),'sumSeries','name')",
    "groupByTags(seriesByTag('dc=~.+'),'median','name','dc')",
    "groupByTags(seriesByTag('name=disk.used'),'count','dc')",
])
def test_group_by(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "reduceSeries(mapSeries(app.web{1,2}.*.*,1),'asPercent',2,'requests','latency')",
    "reduce(map(app.web{1,2}.*.*,1),'divideSeries',2,'latency','requests')",
    "reduceSeries(mapSeries(app.web{1,2}.*.*,1),'sumSeries',2,'requests','latency')",
    "reduceSeries(mapSeries(app.web{1,2}.*.*,1),'diffSeries',2,'requests','latency')",
    "reduceSeries(mapSeries(sys.*.net.bytes,1),'sumSeries',1,'host1')",
    "reduceSeries(mapSeries(seriesByTag('name=disk.used'),'dc'),'sumSeries',1,'used;dc=east;host=h1')",
])
def test_map_reduce(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "applyByNode(app.*.requests.count,1,'sumSeries(%.*.*)')",
    "applyByNode(app.*.requests.count,1,'sumSeries(%.*.*)','%.total')",
    "applyByNode(app.*.*.*,1,'divideSeries(%.requests.count,sumSeries(%.*.*))','%.share')",
    "applyByNode(app.*.*.*,2,'%.*')",
    "applyByNode(sys.*.net.bytes,1,'asPercent(%.net.bytes,sumSeries(sys.*.net.bytes))')",
    "applyByNode(app.*.requests.count,0,'averageSeries(%.*.latency.mean)','%.lat')",
    "applyByNode(no.such.metric,1,'sumSeries(%.*)')",
])
def test_apply_by_node(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "sumSeries(app.*.requests.count)",
    "averageSeries(app.*.latency.mean)",
    "aggregate(app.*.*.*,'max')",
    "groupByNode(app.*.*.*,1,'sum')",
])
def test_request_xfiles_factor(reference, plumbago, target):
    """The request's xFilesFactor= applies to aggregate's rows when the function has none."""
    for xff in ("0.5", "0.8", "1"):
        want = reference.render([target], FROM, UNTIL, params={"xFilesFactor": xff})
        got = render_plumbago(plumbago, target, xFilesFactor=xff)
        assert got.status_code == 200, got.text
        assert gwref.compare(want, got.json(), tags=True) is None, (xff, gwref.compare(want, got.json(), tags=True))


@pytest.mark.parametrize("target", [
    "aggregate(app.*.requests.count,'nosuch')",
    "aggregateSeriesLists(app.web{1,2}.requests.count,app.web1.latency.mean,'sum')",
    "divideSeries(app.*.requests.count,app.*.latency.mean)",
    "divideSeriesLists(app.web{1,2}.requests.count,app.web1.latency.mean)",
    "asPercent(app.*.requests.count,app.web{1,2}.latency.mean)",
    "asPercent(app.*.requests.count,100,1)",
    "percentileOfSeries(app.*.requests.count,0)",
    "percentileOfSeries(app.*.requests.count,-5)",
    "weightedAverage(app.*.requests.count,app.web1.latency.mean,1)",
    "sumSeriesLists(app.web{1,2}.requests.count,app.web1.latency.mean)",
])
def test_bad_arguments_are_400(reference, plumbago, target):
    status, _ctype, body = reference.render_raw([target], FROM, UNTIL)
    assert status == 400, (status, body[:200])
    r = render_plumbago(plumbago, target)
    assert r.status_code == 400, r.text[:300]
    assert r.text.startswith("Invalid parameters"), r.text[:300]


COMBINE_NAMES = ["aggregate", "aggregateSeriesLists", "aggregateWithWildcards", "applyByNode", "asPercent", "pct",
                 "averageSeries", "avg", "averageSeriesWithWildcards", "countSeries", "diffSeries", "diffSeriesLists",
                 "divideSeries", "divideSeriesLists", "group", "groupByNode", "groupByNodes", "groupByTags",
                 "mapSeries", "map", "maxSeries", "minSeries", "multiplySeries", "multiplySeriesLists",
                 "multiplySeriesWithWildcards", "percentileOfSeries", "powSeries", "rangeOfSeries", "reduceSeries",
                 "reduce", "stddevSeries", "sumSeries", "sum", "sumSeriesLists", "sumSeriesWithWildcards",
                 "weightedAverage"]


def test_function_index_params(reference, plumbago):
    """/functions describes every Combine function's parameters exactly as graphite-web does."""
    want = reference.functions(grouped=True)["Combine"]
    assert sorted(want) == sorted(COMBINE_NAMES)
    for name in COMBINE_NAMES:
        got = httpx.get(f"{plumbago.url}/functions/{name}", timeout=30).json()
        assert got["group"] == "Combine", name
        assert got["params"] == want[name]["params"], name


# --- three steps (60 s, 180 s, 300 s: lcm 900 s) with gaps and different first points -----------------------------

def _mixed_dataset() -> dict:
    from .conftest import END
    pts: dict = {}
    span = 4 * 3600

    def put(name, step, fn):
        first = END - span + step
        pts[name] = [[t, fn(i)] for i, t in enumerate(range(first, END + 1, step))]

    put("mix.fast.a", 60, lambda i: None if i % 4 == 1 or 40 <= i % 90 < 52 else float(i % 23) - 5.0)
    put("mix.fast.b", 60, lambda i: float((i * 7) % 31) if i % 15 < 4 else None)          # sparse: 4 of 15
    put("mix.mid.c", 180, lambda i: None if i % 5 == 2 else float(i % 9) + 0.5)
    put("mix.slow.d", 300, lambda i: float(100 - i) if i % 3 else None)
    # starts one hour into the window: graphite-web zips rows by position, not by time
    pts["mix.late.e"] = [[t, float(i)] for i, t in enumerate(range(END - 3600 + 60, END + 1, 60))]
    return {"step": 60, "points": pts, "steps": {"mix.mid.c": 180, "mix.slow.d": 300},
            "retentions": {"mix.mid.c": "180s:30d", "mix.slow.d": "300s:30d"}}


MIXED = _mixed_dataset()
# graphite-web gives fetched series the request's xFilesFactor (0), which governs lcm consolidation; plumbago takes it
# from storage-aggregation, so the same 0 is configured here
MIXED_CONFIG = ("storage_schemas: |\n  [mid]\n  pattern = ^mix\\.mid\\.\n  retentions = 180s:30d\n"
                "  [slow]\n  pattern = ^mix\\.slow\\.\n  retentions = 300s:30d\n"
                "  [default]\n  pattern = .*\n  retentions = 60s:30d\n"
                "storage_aggregation: |\n  [default]\n  pattern = .*\n  xFilesFactor = 0\n"
                "  aggregationMethod = average\n")


mixed_reference, mixed_plumbago = dataset_fixtures(MIXED, "60s:30d", MIXED_CONFIG, "mixed")


@pytest.mark.parametrize("target", [
    "mix.*.*",
    "sumSeries(mix.*.*)",
    "averageSeries(mix.fast.*,mix.mid.c)",
    "aggregate(mix.*.*,'median')",
    "aggregate(mix.*.*,'avg_zero')",
    "aggregate(mix.*.*,'last',0.5)",
    "aggregate(mix.*.*,'count',0.75)",
    "aggregate(mix.*.*,'multiply')",
    "aggregate(mix.*.*,'diff')",
    "maxSeries(mix.fast.a,mix.late.e)",
    "sumSeries(mix.fast.b,mix.slow.d)",
    "minSeries(consolidateBy(mix.fast.*,'max'),mix.slow.d)",
    "sumSeries(consolidateBy(mix.fast.b,'sum'),mix.mid.c)",
    "sumSeriesLists(mix.fast.{a,b},group(mix.mid.c,mix.slow.d))",
    "divideSeries(mix.fast.*,mix.mid.c)",
    "divideSeries(mix.slow.d,mix.late.e)",
    "divideSeriesLists(mix.fast.{a,b},group(mix.slow.d,mix.late.e))",
    "asPercent(mix.*.*)",
    "asPercent(mix.fast.*,mix.slow.d)",
    "asPercent(mix.fast.*,group(mix.mid.c,mix.slow.d))",
    "asPercent(mix.*.*,None,1)",
    "asPercent(mix.*.*,mix.{fast,slow}.*,1)",              # MISSING series on the last grid,
    "asPercent(mix.*.*,7)",
    "countSeries(mix.*.*)",
    "powSeries(mix.mid.c,mix.fast.a)",
    "percentileOfSeries(mix.*.*,50)",
    "percentileOfSeries(mix.*.*,30,true)",
    "weightedAverage(mix.fast.*,group(mix.mid.c,mix.slow.d),0)",
    "groupByNode(mix.*.*,0,'sum')",
    "groupByNode(mix.*.*,1,'avg')",
    "groupByNodes(mix.*.*,'median',0)",
    "sumSeriesWithWildcards(mix.*.*,1,2)",
    "applyByNode(mix.*.*,1,'sumSeries(%.*)','%.sum')",
    "reduceSeries(mapSeries(mix.*.*,0),'divideSeries',1,'fast','slow')",
])
def test_mixed_steps(mixed_reference, mixed_plumbago, target):
    assert_same(mixed_reference, mixed_plumbago, target, tags=True)


@pytest.mark.parametrize("xff", ["0.3", "0.5", "1"])
def test_mixed_steps_request_xff(mixed_reference, mixed_plumbago, xff):
    # same-step inputs only: with mixed steps graphite-web also applies the request's xFilesFactor to the lcm
    # consolidation of fetched series, which in plumbago follows storage-aggregation (a fetch matter)
    for target in ["sumSeries(mix.fast.*,mix.late.e)", "aggregate(mix.fast.*,'max')",
                   "groupByNode(group(mix.fast.*,mix.late.e),1,'sum')", "aggregate(mix.fast.*,'sum',0.25)"]:
        want = mixed_reference.render([target], FROM, UNTIL, params={"xFilesFactor": xff})
        got = render_plumbago(mixed_plumbago, target, xFilesFactor=xff)
        assert got.status_code == 200, got.text
        diff = gwref.compare(want, got.json(), tags=True)
        assert diff is None, (target, xff, diff)
