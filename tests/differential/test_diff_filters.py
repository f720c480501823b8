"""Filter Series, Filter Data and Sorting agree with graphite-web 1.1.10 (names, tags, values, order)."""
import pytest

from .conftest import assert_same

ALL4 = "{app,sys}.*.*.*"          # gaps, negatives, a counter reset (graphite-web's *.*.*.* also sees _tagged/)
NULLED = "removeAboveValue(app.*.requests.count, -1)"     # every value null: aggregates are None

FILTER_SERIES = [
    # thresholds on an aggregate
    "averageAbove(app.*.*.*, 10)",
    "averageAbove(seriesByTag('name=disk.used'), 60)",
    "averageBelow({ALL4}, 10)",
    "averageBelow(neg.values, 59.5)",
    "currentAbove(app.*.*.*, 50)",
    "currentBelow(sys.*.net.bytes, 300)",
    "currentBelow(empty.mostly, 3)",
    "maximumAbove({ALL4}, 100)",
    "maximumBelow(app.*.*.*, 16)",
    "minimumAbove(app.*.*.*, 0)",
    "minimumBelow({ALL4}, -4.5)",
    "maximumAbove(misc.slow, 200)",
    f"averageBelow({NULLED}, 0)",
    f"averageAbove({NULLED}, -1000)",
    # filterSeries: every operator, every aggregation (and their aliases)
    "filterSeries(app.*.*.*, 'max', '>', 50)",
    "filterSeries({ALL4}, 'sum', '<=', 1000)",
    "filterSeries(app.*.*.*, 'last', '!=', 0)",
    "filterSeries(app.*.*.*, 'count', '=', 120)",
    "filterSeries({ALL4}, 'count', '<', 120)",
    "filterSeries(sys.*.net.bytes, 'multiply', '<', 0)",
    "filterSeries(sys.*.net.bytes, 'multiply', '>', 0)",
    "filterSeries({ALL4}, 'avg_zero', '>=', 100)",
    "filterSeries({ALL4}, 'median', '>', 50)",
    "filterSeries({ALL4}, 'diff', '<', -1000)",
    "filterSeries({ALL4}, 'stddev', '>=', 30)",
    "filterSeries({ALL4}, 'range', '>', 50)",
    "filterSeries({ALL4}, 'rangeOf', '<=', 50)",
    "filterSeries({ALL4}, 'total', '>', 5000)",
    "filterSeries({ALL4}, 'current', '>=', 200)",
    "filterSeries({ALL4}, 'avg', '<', 5)",
    "filterSeries({ALL4}, 'min', '=', 0)",
    "filterSeries(seriesByTag('name=disk.used'), 'average', '>', 55)",
    f"filterSeries({NULLED}, 'max', '=', 1)",
    f"filterSeries({NULLED}, 'count', '=', 0)",
    f"filterSeries({NULLED}, 'avg_zero', '=', 0)",
    "filterSeries(app.*.*.*, func='max', operator='>', threshold=50)",
    # ranking
    "highest(app.*.*.*, 2)",
    "highest(app.*.*.*, 3, 'max')",
    "highest({ALL4}, -2, 'sum')",
    "highest({ALL4}, 0)",
    "highest({ALL4}, 100, 'stddev')",
    "highest(app.*.*.*, n=2, func='last')",
    "highest(unique(misc.slow, app.web1.requests.count, neg.values), 2, 'sum')",
    f"highest({NULLED}, 1)",
    "lowest(app.*.*.*, 2)",
    "lowest({ALL4}, 3, 'stddev')",
    "lowest({ALL4}, 4, 'count')",
    "lowest({ALL4}, 3, 'multiply')",
    f"lowest({NULLED}, 2, 'sum')",
    "highestAverage({ALL4}, 3)",
    "highestCurrent({ALL4}, 3)",
    "highestMax({ALL4}, 2)",
    "lowestAverage({ALL4}, 3)",
    "lowestCurrent({ALL4}, 3)",
    "highestCurrent(unique(empty.mostly, zero.series, neg.values), 2)",
    "mostDeviant(app.*.*.*, 2)",
    "mostDeviant({ALL4}, 3)",
    "mostDeviant(unique(empty.mostly, zero.series, misc.slow), 5)",
    f"mostDeviant({NULLED}, 2)",
    "limit(app.*.*.*, 2)",
    "limit(app.*.*.*, -1)",
    "limit(app.*.*.*, 0)",
    "limit(app.*.*.*, 100)",
    # percentile bands
    "averageOutsidePercentile(app.*.*.*, 30)",
    "averageOutsidePercentile({ALL4}, 80)",
    "averageOutsidePercentile({ALL4}, 50)",
    "averageOutsidePercentile(seriesByTag('name=disk.used'), 10)",
    "removeBetweenPercentile(app.*.latency.mean, 30)",
    "removeBetweenPercentile(app.web{1,3}.requests.count, 10)",
    "removeBetweenPercentile(unique(app.web1.requests.count, app.web3.requests.count, neg.values, "
    "zero.series, app.web1.latency.mean), 40)",
    "removeBetweenPercentile(unique(app.web1.requests.count, app.web3.requests.count, neg.values, "
    "zero.series, app.web1.latency.mean), 95)",
    # names
    "exclude(app.*.*.*, 'web[12]')",
    "exclude(app.*.*.*, 'latency$')",
    "exclude({ALL4}, '^sys')",
    "grep(app.*.*.*, 'web2')",
    "grep({ALL4}, 'requests|bytes')",
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
    "consolidateBy(useSeriesAbove(zero.series, -1, 'zero', 'neg'), 'max')",
    # the new name is a whole target: a function call in it is evaluated
    "useSeriesAbove(removeAboveValue(app.web1.requests.count, 100), 5, 'web1', 'web3')",
]

FILTER_DATA = [
    "removeAbovePercentile(app.*.*.*, 50)",
    "removeAbovePercentile(sys.*.net.bytes, 90.5)",
    "removeAbovePercentile(seriesByTag('name=disk.used'), 75)",
    "removeAbovePercentile(misc.slow, 100)",
    "removeAbovePercentile(app.web1.requests.count, 150)",
    "removeAbovePercentile(app.*.requests.count, 250)",       # rank past the end: renamed, values untouched
    "removeAbovePercentile(app.web1.requests.count, -5)",     # negative ranks index from the end, as in Python
    "removeBelowPercentile(app.web3.requests.count, -30)",
    f"removeAbovePercentile({NULLED}, 50)",
    "removeBelowPercentile(app.*.*.*, 25)",
    "removeBelowPercentile(empty.mostly, 50)",
    "removeBelowPercentile(neg.values, 1e-3)",
    "removeAboveValue(neg.values, -10)",
    "removeAboveValue(app.*.*.*, 12.5)",
    "removeAboveValue(seriesByTag('dc=east'), 55)",
    "removeBelowValue(app.web2.requests.count, 150)",
    "removeBelowValue({ALL4}, 0)",
    "removeBelowValue(misc.slow, 200)",
    "removeBelowValue(removeAboveValue(app.web3.requests.count, 80), 20)",
]

SORTING = [
    "sortBy(app.*.*.*)",
    "sortBy(app.*.*.*, 'max', true)",
    "sortBy({ALL4}, 'count')",
    "sortBy({ALL4}, 'multiply')",
    "sortBy({ALL4}, 'stddev', reverse=true)",
    "sortBy({ALL4}, 'diff')",
    "sortBy({ALL4}, 'median')",
    "sortBy({ALL4}, 'avg_zero')",
    "sortBy(unique(empty.mostly, zero.series, neg.values, misc.slow), 'last')",
    f"sortBy({NULLED}, 'average', true)",
    "sortBy(app.*.requests.count, 'min')",                       # web1 and web3 tie at 0: input order
    "sortBy(app.*.requests.count, 'min', true)",
    # avg_zero of an all-null series is 0, not None: it sorts above a negative average
    f"sortBy(unique({NULLED}, removeAboveValue(app.web1.latency.mean, 0)), 'avg_zero')",
    f"lowest(unique({NULLED}, removeAboveValue(app.web1.latency.mean, 0)), 1, 'avg_zero')",
    "sortByMaxima({ALL4})",
    "sortByMaxima(unique(empty.mostly, zero.series, neg.values, misc.slow))",
    "sortByMinima({ALL4})",
    "sortByMinima(unique(empty.mostly, zero.series, neg.values, misc.slow))",
    "sortByMinima(seriesByTag('name=disk.used'))",
    "sortByName({ALL4})",
    "sortByName({ALL4}, true)",
    "sortByName({ALL4}, natural=true, reverse=true)",
    "sortByName(seriesByTag('dc=~.+'), false, true)",
    "sortByTotal({ALL4})",
    "sortByTotal(unique(empty.mostly, zero.series, neg.values, misc.slow))",
    "sortByTotal(seriesByTag('name=disk.used'))",
]


def _expand(targets):
    return [t.replace("{ALL4}", ALL4) for t in targets]


@pytest.mark.parametrize("target", _expand(FILTER_SERIES))
def test_filter_series(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", _expand(FILTER_DATA))
def test_filter_data(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", _expand(SORTING))
def test_sorting(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


def _python_aggregates(values):
    """The aggregates as graphite-web's safe functions compute them (Python's left-to-right sum)."""
    present = [v for v in values if v is not None]
    mean = sum(present) / len(present)
    return {
        "sum": sum(present),
        "average": mean,
        "avg_zero": sum(0 if v is None else v for v in values) / len(values),
        "diff": sum([present[0]] + [-v for v in present[1:]]),
        "stddev": (sum((v - mean) * (v - mean) for v in present) / len(present)) ** 0.5,
    }


@pytest.mark.parametrize("name", ["app.web1.latency.mean", "app.web2.latency.mean", "sys.host2.net.bytes"])
def test_exact_threshold_matches_summation_order(reference, plumbago, name):
    # an aggregate compared for equality with its own repr only matches when both servers add in the same order
    from .conftest import FROM, UNTIL
    values = [v for v, _ in reference.render([name], FROM, UNTIL)[0]["datapoints"]]
    for func, value in _python_aggregates(values).items():
        target = f"filterSeries({name}, '{func}', '=', {value!r})"
        assert_same(reference, plumbago, target, tags=True)
        assert len(reference.render([target], FROM, UNTIL)) == 1, target
