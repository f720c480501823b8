"""Filter Series, Filter Data and Sorting agree with graphite-web 1.1.10 (names, tags, values, order)."""
import pytest

from .conftest import assert_same

ALL4 = "*.*.*.*"                  # app.*.*.* and sys.*.net.bytes: gaps, negatives, a counter reset
NULLED = "removeAboveValue(app.*.requests.count, -1)"     # every value null: aggregates are None

FILTER_SERIES = [
    # thresholds on an aggregate
    "averageAbove(app.*.*.*, 10)",
    "averageAbove(seriesByTag('name=disk.used'), 60)",
    "averageBelow(*.*.*.*, 10)",
    "averageBelow(neg.values, 59.5)",
    "currentAbove(app.*.*.*, 50)",
    "currentBelow(sys.*.net.bytes, 300)",
    "currentBelow(empty.mostly, 3)",
    "maximumAbove(*.*.*.*, 100)",
    "maximumBelow(app.*.*.*, 16)",
    "minimumAbove(app.*.*.*, 0)",
    "minimumBelow(*.*.*.*, -4.5)",
    "maximumAbove(misc.slow, 200)",
    f"averageBelow({NULLED}, 0)",
    f"averageAbove({NULLED}, -1000)",
    # filterSeries: every operator, every aggregation (and their aliases)
    "filterSeries(app.*.*.*, 'max', '>', 50)",
    "filterSeries(*.*.*.*, 'sum', '<=', 1000)",
    "filterSeries(app.*.*.*, 'last', '!=', 0)",
    "filterSeries(app.*.*.*, 'count', '=', 120)",
    "filterSeries(*.*.*.*, 'count', '<', 120)",
    "filterSeries(sys.*.net.bytes, 'multiply', '<', 0)",
    "filterSeries(sys.*.net.bytes, 'multiply', '>', 0)",
    "filterSeries(*.*.*.*, 'avg_zero', '>=', 100)",
    "filterSeries(*.*.*.*, 'median', '>', 50)",
    "filterSeries(*.*.*.*, 'diff', '<', -1000)",
    "filterSeries(*.*.*.*, 'stddev', '>=', 30)",
    "filterSeries(*.*.*.*, 'range', '>', 50)",
    "filterSeries(*.*.*.*, 'rangeOf', '<=', 50)",
    "filterSeries(*.*.*.*, 'total', '>', 5000)",
    "filterSeries(*.*.*.*, 'current', '>=', 200)",
    "filterSeries(*.*.*.*, 'avg', '<', 5)",
    "filterSeries(*.*.*.*, 'min', '=', 0)",
    "filterSeries(seriesByTag('name=disk.used'), 'average', '>', 55)",
    f"filterSeries({NULLED}, 'max', '=', 1)",
    f"filterSeries({NULLED}, 'count', '=', 0)",
    f"filterSeries({NULLED}, 'avg_zero', '=', 0)",
    "filterSeries(app.*.*.*, func='max', operator='>', threshold=50)",
    # ranking
    "highest(app.*.*.*, 2)",
    "highest(app.*.*.*, 3, 'max')",
    "highest(*.*.*.*, -2, 'sum')",
    "highest(*.*.*.*, 0)",
    "highest(*.*.*.*, 100, 'stddev')",
    "highest(app.*.*.*, n=2, func='last')",
    "highest({misc.slow,app.web1.requests.count,neg.values}, 2, 'sum')",
    f"highest({NULLED}, 1)",
    "lowest(app.*.*.*, 2)",
    "lowest(*.*.*.*, 3, 'stddev')",
    "lowest(*.*.*.*, 4, 'count')",
    "lowest(*.*.*.*, 3, 'multiply')",
    f"lowest({NULLED}, 2, 'sum')",
    "highestAverage(*.*.*.*, 3)",
    "highestCurrent(*.*.*.*, 3)",
    "highestMax(*.*.*.*, 2)",
    "lowestAverage(*.*.*.*, 3)",
    "lowestCurrent(*.*.*.*, 3)",
    "highestCurrent({empty.mostly,zero.series,neg.values}, 2)",
    "mostDeviant(app.*.*.*, 2)",
    "mostDeviant(*.*.*.*, 3)",
    "mostDeviant({empty.mostly,zero.series,misc.slow}, 5)",
    f"mostDeviant({NULLED}, 2)",
    "limit(app.*.*.*, 2)",
    "limit(app.*.*.*, -1)",
    "limit(app.*.*.*, 0)",
    "limit(app.*.*.*, 100)",
    # percentile bands
    "averageOutsidePercentile(app.*.*.*, 30)",
    "averageOutsidePercentile(*.*.*.*, 80)",
    "averageOutsidePercentile(*.*.*.*, 50)",
    "averageOutsidePercentile(seriesByTag('name=disk.used'), 10)",
    "removeBetweenPercentile(app.*.latency.mean, 30)",
    "removeBetweenPercentile(app.web{1,3}.requests.count, 10)",
    "removeBetweenPercentile({app.web1.requests.count,app.web3.requests.count,neg.values,zero.series,"
    "app.web1.latency.mean}, 40)",
    "removeBetweenPercentile({app.web1.requests.count,app.web3.requests.count,neg.values,zero.series,"
    "app.web1.latency.mean}, 95)",
    # names
    "exclude(app.*.*.*, 'web[12]')",
    "exclude(app.*.*.*, 'latency$')",
    "exclude(*.*.*.*, '^sys')",
    "grep(app.*.*.*, 'web2')",
    "grep(*.*.*.*, 'requests|bytes')",
    "grep(seriesByTag('name=disk.used'), 'host=h[13]')",
    "exclude(seriesByTag('name=disk.used'), 'dc=east')",
    "grep(app.*.*.*, 'nomatch')",
    # emptiness, uniqueness
    "removeEmptySeries(*.*)",
    "removeEmptySeries(*.*, 0.5)",
    "removeEmptySeries(*.*, xFilesFactor=0.02)",
    "removeEmptySeries(sys.*.net.bytes, 0.9)",
    "removeEmptySeries(sys.*.net.bytes, 0.8)",
    f"removeEmptySeries({NULLED})",
    "unique(app.web1.*.*, app.*.requests.count)",
    "unique(app.*.requests.count, app.*.requests.count, neg.values)",
    # useSeriesAbove fetches new targets (inputs without gaps: graphite-web fails on nulls)
    "useSeriesAbove(app.web{1,3}.requests.count, 10, 'requests.count', 'latency.mean')",
    "useSeriesAbove(app.web{1,3}.requests.count, 50, 'requests\\.count', 'latency.mean')",
    "useSeriesAbove(zero.series, -1, 'zero', 'neg')",
    "useSeriesAbove(zero.series, 0, 'zero', 'neg')",
    "useSeriesAbove(app.web1.latency.mean, 0, '^app\\.(web\\d)\\.latency\\.mean$', 'app.\\1.requests.count')",
    "useSeriesAbove(seriesByTag('name=disk.used','host=h1'), 50, 'disk.used', 'cpu.load')",
]

FILTER_DATA = [
    "removeAbovePercentile(app.*.*.*, 50)",
    "removeAbovePercentile(sys.*.net.bytes, 90.5)",
    "removeAbovePercentile(seriesByTag('name=disk.used'), 75)",
    "removeAbovePercentile(misc.slow, 100)",
    "removeAbovePercentile(app.web1.requests.count, 150)",
    f"removeAbovePercentile({NULLED}, 50)",
    "removeBelowPercentile(app.*.*.*, 25)",
    "removeBelowPercentile(empty.mostly, 50)",
    "removeBelowPercentile(neg.values, 1e-3)",
    "removeAboveValue(neg.values, -10)",
    "removeAboveValue(app.*.*.*, 12.5)",
    "removeAboveValue(seriesByTag('dc=east'), 55)",
    "removeBelowValue(app.web2.requests.count, 150)",
    "removeBelowValue(*.*.*.*, 0)",
    "removeBelowValue(misc.slow, 200)",
    "removeBelowValue(removeAboveValue(app.web3.requests.count, 80), 20)",
]

SORTING = [
    "sortBy(app.*.*.*)",
    "sortBy(app.*.*.*, 'max', true)",
    "sortBy(*.*.*.*, 'count')",
    "sortBy(*.*.*.*, 'multiply')",
    "sortBy(*.*.*.*, 'stddev', reverse=true)",
    "sortBy(*.*.*.*, 'diff')",
    "sortBy(*.*.*.*, 'median')",
    "sortBy(*.*.*.*, 'avg_zero')",
    "sortBy({empty.mostly,zero.series,neg.values,misc.slow}, 'last')",
    f"sortBy({NULLED}, 'average', true)",
    "sortByMaxima(*.*.*.*)",
    "sortByMaxima({empty.mostly,zero.series,neg.values,misc.slow})",
    "sortByMinima(*.*.*.*)",
    "sortByMinima({empty.mostly,zero.series,neg.values,misc.slow})",
    "sortByMinima(seriesByTag('name=disk.used'))",
    "sortByName(*.*.*.*)",
    "sortByName(*.*.*.*, true)",
    "sortByName(*.*.*.*, natural=true, reverse=true)",
    "sortByName(seriesByTag('name=~.*'), false, true)",
    "sortByTotal(*.*.*.*)",
    "sortByTotal({empty.mostly,zero.series,neg.values,misc.slow})",
    "sortByTotal(seriesByTag('name=disk.used'))",
]


@pytest.mark.parametrize("target", FILTER_SERIES)
def test_filter_series(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", FILTER_DATA)
def test_filter_data(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", SORTING)
def test_sorting(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)
