"""Calculate group (moving windows, EMA, stdev, nPercentile, aggregateLine, identity, linearRegression,
holtWinters*) agrees with graphite-web 1.1.10, on the shared dataset and on an 9-day 600 s dataset that feeds
holtWinters' default 7-day bootstrap."""
import math
import time

import pytest

from .conftest import dataset_fixtures, FROM, UNTIL, VENV, assert_same, gwref, render_plumbago, start_plumbago

MOVING = [
    "movingAverage(app.web1.requests.count,5)",
    "movingAverage(app.web2.requests.count,'5min')",
    "movingAverage(app.web2.latency.mean,'90min',0.9)",          # the gap at 50..59 voids early windows
    "movingAverage(app.web2.latency.mean,'90min')",
    "movingAverage(app.*.requests.count,xFilesFactor=0.5,windowSize=4)",
    "movingAverage(app.web1.requests.count,'90s')",               # window not a multiple of the step
    "movingAverage(app.web1.requests.count,0)",
    "movingAverage(app.web1.requests.count,'-5min')",
    "movingAverage(misc.slow,3)",
    "movingAverage(misc.slow,'10min')",
    "movingAverage({misc,neg}.{slow,values},5)",                    # mixed steps: preview sized by the largest
    "movingAverage(empty.mostly,5)",
    "movingAverage(nothing.here,5)",
    "movingAverage(seriesByTag('name=disk.used'),5)",
    "app.web2.requests.count|movingAverage(3)",
    "movingSum(sys.host2.net.bytes,'10min')",
    "movingSum(movingAverage(app.web1.requests.count,3),'5min')",
    "movingMin(neg.values,3)",
    "movingMax(neg.values,'3min')",
    "movingMax(sys.host1.net.bytes,10,0.5)",
    "movingMedian(app.web3.requests.count,6)",
    "movingMedian(app.web2.requests.count,'5min')",
    "movingWindow(app.web1.requests.count,5)",
    "movingWindow(app.web1.requests.count,5,'sum')",
    "movingWindow(app.web2.requests.count,'5min','median',0.5)",
    "movingWindow(app.web2.requests.count,10,'median',0.9)",
    "movingWindow(sys.host1.net.bytes,'1h','max')",
]
FUNCS = ["average", "avg", "avg_zero", "median", "sum", "total", "min", "max", "diff", "stddev", "count", "range",
         "rangeOf", "multiply", "last", "current"]
MOVING += [f"movingWindow(app.web2.requests.count,4,'{f}')" for f in FUNCS]
MOVING += [f"movingWindow(app.web2.latency.mean,'4min','{f}',0.75)" for f in ("avg_zero", "multiply", "diff")]

EMA = [
    "exponentialMovingAverage(app.web1.requests.count,5)",
    "exponentialMovingAverage(app.web1.requests.count,'5min')",
    "exponentialMovingAverage(app.web2.requests.count,10)",
    "exponentialMovingAverage(app.web2.latency.mean,3)",
    "exponentialMovingAverage(neg.values,'3min')",
    "exponentialMovingAverage(misc.slow,4)",
    "exponentialMovingAverage(empty.mostly,5)",
    "exponentialMovingAverage(app.*.requests.count,1)",
    "exponentialMovingAverage(app.web1.requests.count,'90s')",
    "exponentialMovingAverage({misc,neg}.{slow,values},3)",
    "exponentialMovingAverage(seriesByTag('name=disk.used'),'10min')",
]

STDEV = [
    "stdev(app.web1.requests.count,5)",
    "stdev(app.web2.requests.count,10,0.9)",
    "stdev(app.web2.requests.count,10)",
    "stdev(sys.host2.net.bytes,7,0.0)",
    "stdev(cpu.load;dc=east;host=h1,10)",
    "stdev(app.web1.latency.mean,30)",
    "stdev(empty.mostly,3)",
    "stdev(zero.series,5)",
    "stdev(misc.slow,4)",
    "stdev(app.web1.requests.count,0)",
    "stdev(app.web1.requests.count,1)",
]

PERCENTILE = [
    "nPercentile(app.*.requests.count,50)",
    "nPercentile(app.web2.latency.mean,95)",
    "nPercentile(app.web1.latency.mean,99.9)",
    "nPercentile(neg.values,100)",
    "nPercentile(neg.values,1)",
    "nPercentile(neg.values,0.5)",
    "nPercentile(empty.mostly,50)",
    "nPercentile(seriesByTag('name=disk.used'),75)",
    "nPercentile(misc.slow,25)",
]

LINE = [f"aggregateLine(app.web2.latency.mean,'{f}')" for f in FUNCS]
LINE += [f"aggregateLine(app.web2.requests.count,'{f}',true)" for f in FUNCS]
LINE += [
    "aggregateLine(app.*.requests.count)",
    "aggregateLine(empty.mostly,'avg_zero')",
    "aggregateLine(neg.values,'sum',keepStep=true)",
    "aggregateLine(misc.slow,'max',true)",
    "aggregateLine(seriesByTag('name=disk.used'),'max')",
    "identity('the.time')",
    "identity('a.b;x=y')",
    "identity('sumSeries(a.b)')",
]

REGRESSION = [
    "linearRegression(app.web1.requests.count)",
    "linearRegression(app.web2.requests.count)",
    "linearRegression(neg.values)",
    "linearRegression(empty.mostly)",
    "linearRegression(misc.slow)",
    "linearRegression(app.*.latency.mean)",
    "linearRegression(seriesByTag('name=disk.used'))",
    f"linearRegression(sys.host1.net.bytes,'{FROM - 7200}')",
    f"linearRegression(sys.host1.net.bytes,'{FROM - 7200}','{FROM - 3600}')",
    f"linearRegression(app.web3.requests.count,endSourceAt='{FROM + 1800}')",
]

HOLT_SHORT = [
    "holtWintersForecast(app.web1.requests.count,'1h')",
    "holtWintersForecast(app.web2.requests.count,'1h','30min')",
    "holtWintersForecast(app.web2.latency.mean,'2h','20min')",
    "holtWintersForecast(sys.host1.net.bytes,'90min','15min')",
    "holtWintersForecast(misc.slow,'1h','1h')",
    "holtWintersConfidenceBands(app.web3.requests.count,3,'1h')",
    "holtWintersConfidenceBands(app.web2.requests.count,2,'2h','20min')",
    "holtWintersConfidenceBands(app.*.latency.mean,3,'1h','10min')",
    "holtWintersAberration(app.*.requests.count,3,'1h')",
    "holtWintersAberration(app.web2.latency.mean,1,'2h','30min')",
    "holtWintersAberration(sys.host1.net.bytes,2,'2h','10min')",
    "holtWintersConfidenceArea(app.web1.requests.count,3,'1h')",
    "holtWintersConfidenceArea(app.web2.requests.count,delta=1,bootstrapInterval='2h',seasonality='20min')",
    "holtWintersForecast(seriesByTag('name=disk.used'),'1h','30min')",
    "holtWintersForecast(app.web1.requests.count,'7d')",
    "holtWintersForecast(app.web1.requests.count,'90s','10min')",  # bootstrap not a whole number of steps       # the shared data only covers 4 h of the 7 days
]


@pytest.mark.parametrize("target", MOVING)
def test_moving(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", EMA)
def test_exponential_moving_average(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", STDEV)
def test_stdev(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", PERCENTILE)
def test_n_percentile(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", LINE)
def test_aggregate_line_identity(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", REGRESSION)
def test_linear_regression(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", HOLT_SHORT)
def test_holt_winters_short_bootstrap(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", [
    "movingWindow(app.web1.requests.count,5,'bogus')",
    "movingWindow(app.web1.requests.count,5,'first')",
    "aggregateLine(app.web1.requests.count,'nosuch')",
])
def test_bad_arguments_are_400_on_both(reference, plumbago, target):
    status, _, _ = reference.render_raw([target], FROM, UNTIL)
    assert status == 400
    r = render_plumbago(plumbago, target)
    assert r.status_code == 400, r.text


# --- holtWinters with its default 7-day bootstrap: 9 days of 600 s data --------------------------------------

HW_STEP = 600
HW_END = int(time.time()) // 3600 * 3600 - 3600
HW_N = 9 * 144
HW_TS = [HW_END - HW_STEP * (HW_N - 1 - i) for i in range(HW_N)]
HW_FROM, HW_UNTIL = HW_END - 86400, HW_END


def _hw_dataset() -> dict:
    import random
    rnd = random.Random(7)
    day = 86400.0

    def wave(t, amp=10.0, phase=0.0):
        return amp * math.sin(2 * math.pi * (t % day) / day + phase)

    pts = {
        "hw.sine": [[t, round(50 + wave(t) + rnd.uniform(-1, 1), 3)] for t in HW_TS],
        "hw.trend": [[t, round(i * 0.05 + wave(t, 5, 1.0) + rnd.uniform(-2, 2), 3)] for i, t in enumerate(HW_TS)],
        "hw.gappy": [[t, None if (i % 37 == 5 or 600 <= i < 640) else round(20 + wave(t, 3), 2)]
                     for i, t in enumerate(HW_TS)],
        "hw.neg": [[t, round(-30 + wave(t, 20, 2.0) + (25 if i == HW_N - 50 else 0), 2)] for i, t in enumerate(HW_TS)],
        "hw.tagged;dc=east": [[t, float(i % 144)] for i, t in enumerate(HW_TS)],
    }
    return {"step": HW_STEP, "points": pts}


HW_DATASET = _hw_dataset()
HW_CONFIG = ("storage_schemas: |\n  [hw]\n  pattern = ^hw\\.\n  retentions = 600s:30d\n"
             "  [default]\n  pattern = .*\n  retentions = 60s:30d\n")


hw_reference, hw_plumbago = dataset_fixtures(HW_DATASET, "600s:30d", HW_CONFIG, "diff-hw")


@pytest.mark.parametrize("target", [
    "holtWintersForecast(hw.*)",
    "holtWintersForecast(hw.sine,'3d','12h')",
    "holtWintersConfidenceBands(hw.*)",
    "holtWintersConfidenceBands(hw.trend,2,'5d')",
    "holtWintersAberration(hw.*)",
    "holtWintersAberration(hw.neg,1)",
    "holtWintersAberration(hw.gappy,2,'7d','6h')",
    "holtWintersConfidenceArea(hw.sine)",
    "holtWintersConfidenceArea(hw.gappy,2)",
    "holtWintersForecast(seriesByTag('name=hw.tagged'))",
    "holtWintersConfidenceBands(seriesByTag('dc=east'),3,'2d','1d')",
    "movingAverage(hw.sine,'1d')",
    "exponentialMovingAverage(hw.trend,'6h')",
    f"linearRegression(hw.trend,'{HW_FROM - 8 * 86400}')",
])
def test_holt_winters_week_bootstrap(hw_reference, hw_plumbago, target):
    assert_same(hw_reference, hw_plumbago, target, HW_FROM, HW_UNTIL, tags=True)


@pytest.mark.parametrize("target", [
    "consolidateBy(movingAverage(app.web1.requests.count,5),'sum')",
    "consolidateBy(linearRegression(app.web2.requests.count),'max')",
    "consolidateBy(holtWintersAberration(app.web1.requests.count,3,'1h'),'max')",
    "consolidateBy(exponentialMovingAverage(app.web1.requests.count,'5min'),'min')",
])
def test_raw_functions_inside_consolidate_by(reference, plumbago, target):
    """Raw-argument functions re-fetch their input when the request prefetch was keyed by consolidateBy."""
    assert_same(reference, plumbago, target, tags=True)


CALCULATE = ["aggregateLine", "exponentialMovingAverage", "holtWintersAberration", "holtWintersConfidenceArea",
             "holtWintersConfidenceBands", "holtWintersForecast", "identity", "linearRegression", "movingAverage",
             "movingMax", "movingMedian", "movingMin", "movingSum", "movingWindow", "nPercentile", "stdev"]


@pytest.mark.parametrize("name", CALCULATE)
def test_functions_endpoint_params(reference, plumbago, name):
    want = reference.functions(name)
    import httpx
    got = httpx.get(plumbago.url + f"/functions/{name}", timeout=30).json()
    assert (got["name"], got["group"]) == (want["name"], want["group"])
    assert got["params"] == want["params"]
