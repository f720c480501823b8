import math

import numpy as np
import pytest

from graphite_api.consolidation import (
    AGGREGATORS, aggregate, apply_max_data_points, apply_max_data_points_graphite_web, canonical_name,
    consolidate, get_aggregator, normalize, normalize_with_bounds,
)
from graphite_api.series import Series

nan = float("nan")


def points(series: Series) -> list:
    """[[value|None, ts], ...] like a json render."""
    return [[None if math.isnan(v) else v, int(t)] for v, t in zip(series.values.tolist(), series.timestamps)]


# --- aggregators --------------------------------------------------------------------------------------------------

ROWS = np.array([
    [1.0, nan, 3.0, 4.0],
    [nan, nan, nan, nan],
    [2.0, 2.0, nan, 8.0],
    [nan, 5.0, nan, nan],
])


@pytest.mark.parametrize("name, expected", [
    ("sum", [8.0, nan, 12.0, 5.0]),
    ("average", [8 / 3, nan, 4.0, 5.0]),
    ("avg_zero", [2.0, nan, 3.0, 1.25]),
    ("max", [4.0, nan, 8.0, 5.0]),
    ("min", [1.0, nan, 2.0, 5.0]),
    ("first", [1.0, nan, 2.0, 5.0]),
    ("last", [4.0, nan, 8.0, 5.0]),
    ("median", [3.0, nan, 2.0, 5.0]),
    ("multiply", [nan, nan, nan, nan]),          # null as soon as one factor is null
    ("diff", [1.0 - 3.0 - 4.0, nan, 2.0 - 2.0 - 8.0, 5.0]),
    ("stddev", [np.std([1, 3, 4]), nan, np.std([2, 2, 8]), 0.0]),
    ("range", [3.0, nan, 6.0, 0.0]),
    ("count", [3.0, nan, 3.0, 1.0]),             # an all-null bucket is null, not 0
])
def test_aggregators_skip_nulls(name, expected):
    np.testing.assert_allclose(AGGREGATORS[name](ROWS, axis=1), expected, equal_nan=True)


def test_multiply_without_nulls():
    np.testing.assert_allclose(AGGREGATORS["multiply"](np.array([[2.0, 3.0, 4.0]]), axis=1), [24.0])


def test_median_even_count_averages_middle_values():
    np.testing.assert_allclose(AGGREGATORS["median"](np.array([[4.0, 1.0, nan, 3.0, 2.0]]), axis=1), [2.5])


def test_aliases_share_implementations():
    for alias, target in [("avg", "average"), ("rangeOf", "range"), ("total", "sum"), ("lst", "last"),
                          ("current", "last"), ("mult", "multiply"), ("med", "median")]:
        assert AGGREGATORS[alias] is AGGREGATORS[target]
    assert canonical_name("sumSeries") == "sum"        # graphite-web's deprecated spelling
    assert get_aggregator("avg") is AGGREGATORS["average"]
    with pytest.raises(ValueError, match="Unsupported aggregation function: bogus"):
        get_aggregator("bogus")


def test_axis_zero_aggregates_across_rows():
    np.testing.assert_allclose(aggregate(ROWS, "sum", axis=0), [3.0, 7.0, 3.0, 12.0])


def test_xfiles_factor():
    a = np.array([[1.0, nan, nan, 4.0], [1.0, 2.0, 3.0, nan]])
    np.testing.assert_allclose(AGGREGATORS["sum"](a, axis=1, xff=0.5), [5.0, 6.0])
    np.testing.assert_allclose(AGGREGATORS["sum"](a, axis=1, xff=0.75), [nan, 6.0], equal_nan=True)
    np.testing.assert_allclose(AGGREGATORS["sum"](a, axis=1, xff=1.0), [nan, nan], equal_nan=True)
    # the denominator can be larger than the slice (graphite-web's partial last bucket)
    np.testing.assert_allclose(AGGREGATORS["sum"](a, axis=1, xff=0.5, total=8), [nan, nan], equal_nan=True)


def test_empty_axis_is_null():
    assert np.isnan(AGGREGATORS["max"](np.empty((2, 0)), axis=1)).all()


# --- consolidate (graphite-web TimeSeries.consolidate) --------------------------------------------------------------

def test_consolidate_groups_from_start_with_partial_last_group():
    s = Series("a", 100, 10, [1, 2, 3, 4, 5, 6, 7])
    c = consolidate(s, 3, "sum", 0.0)
    assert (c.start, c.step) == (100, 30)
    assert points(c) == [[6.0, 100], [15.0, 130], [7.0, 160]]
    assert s.values.tolist() == [1, 2, 3, 4, 5, 6, 7]          # input untouched


def test_consolidate_first_last_are_first_last_non_null():
    s = Series("a", 0, 1, [nan, 2, 3, 4, nan, nan])
    assert consolidate(s, 3, "first", 0).values.tolist() == [2.0, 4.0]
    assert consolidate(s, 3, "last", 0).values.tolist() == [3.0, 4.0]


def test_consolidate_xff_denominator_is_bucket_width_even_for_partial_bucket():
    s = Series("a", 0, 1, [1, 2, 3, 4, 5])
    assert points(consolidate(s, 3, "sum", 0.5)) == [[6.0, 0], [9.0, 3]]       # 2/3 >= 0.5
    assert points(consolidate(s, 3, "sum", 0.7)) == [[6.0, 0], [None, 3]]      # 2/3 < 0.7


def test_consolidate_avg_zero_divides_by_points_present():
    s = Series("a", 0, 1, [1, nan, 3, 4, nan])
    # full bucket: (1+0+3)/3, partial bucket [4, null]: (4+0)/2 as graphite-web's generator does
    assert consolidate(s, 3, "avg_zero", 0).values.tolist() == [4 / 3, 2.0]


def test_consolidate_noop_cases():
    s = Series("a", 0, 1, [1.0, 2.0])
    assert consolidate(s, 1, "sum", 0).values.tolist() == [1.0, 2.0]
    assert len(consolidate(Series("e", 0, 1, []), 5, "sum", 0).values) == 0


# --- graphite-web maxDataPoints golden vectors (webapp/tests/test_render.py::test_maxDataPoints) --------------------

def _gw(start, mdp, xff=0.0):
    s = Series("test", start, 1, list(range(start, start + 20)), consolidation="sum", xfiles_factor=xff)
    assert s.end == start + 20
    return points(apply_max_data_points_graphite_web([s], mdp)[0])


def _by_two(start):
    return [[2 * t - 1, t] for t in range(start + 1, start + 20, 2)]


N = None
GOLDEN = {
    # (start, xFilesFactor): {maxDataPoints: datapoints}
    (1, 0): {19: [[3, 2], [7, 4], [11, 6], [15, 8], [19, 10], [23, 12], [27, 14], [31, 16], [35, 18], [39, 20]],
             9: [[9, 3], [18, 6], [27, 9], [36, 12], [45, 15], [54, 18], [20, 21]],
             6: [[18, 4], [34, 8], [50, 12], [66, 16], [39, 20]],
             4: [[30, 5], [55, 10], [80, 15], [39, 20]],
             3: [[63, 7], [112, 14], [20, 21]],
             2: [[135, 10], [39, 20]],
             1: [[210, 1]]},
    (3, 0): {19: [[7, 4], [11, 6], [15, 8], [19, 10], [23, 12], [27, 14], [31, 16], [35, 18], [39, 20], [43, 22]],
             9: [[18, 6], [27, 9], [36, 12], [45, 15], [54, 18], [63, 21]],
             6: [[18, 4], [34, 8], [50, 12], [66, 16], [82, 20]],
             4: [[30, 5], [55, 10], [80, 15], [82, 20]],
             3: [[63, 7], [112, 14], [63, 21]],
             2: [[135, 10], [82, 20]],
             1: [[250, 3]]},
    (5, 0): {19: [[11, 6], [15, 8], [19, 10], [23, 12], [27, 14], [31, 16], [35, 18], [39, 20], [43, 22], [47, 24]],
             9: [[18, 6], [27, 9], [36, 12], [45, 15], [54, 18], [63, 21], [47, 24]],
             6: [[34, 8], [50, 12], [66, 16], [82, 20], [47, 24]],
             4: [[55, 10], [80, 15], [105, 20], [24, 25]],
             3: [[63, 7], [112, 14], [110, 21]],
             2: [[135, 10], [129, 20]],
             1: [[290, 5]]},
    (1, 1): {9: [[9, 3], [18, 6], [27, 9], [36, 12], [45, 15], [54, 18], [N, 21]],
             6: [[18, 4], [34, 8], [50, 12], [66, 16], [N, 20]],
             4: [[30, 5], [55, 10], [80, 15], [N, 20]],
             3: [[63, 7], [112, 14], [N, 21]],
             2: [[135, 10], [N, 20]],
             1: [[210, 1]]},
    (3, 1): {9: [[18, 6], [27, 9], [36, 12], [45, 15], [54, 18], [63, 21]],
             6: [[18, 4], [34, 8], [50, 12], [66, 16], [82, 20]],
             4: [[30, 5], [55, 10], [80, 15], [N, 20]],
             3: [[63, 7], [112, 14], [N, 21]],
             2: [[135, 10], [N, 20]],
             1: [[250, 3]]},
    (5, 1): {9: [[18, 6], [27, 9], [36, 12], [45, 15], [54, 18], [63, 21], [N, 24]],
             6: [[34, 8], [50, 12], [66, 16], [82, 20], [N, 24]],
             4: [[55, 10], [80, 15], [105, 20], [N, 25]],
             3: [[63, 7], [112, 14], [N, 21]],
             2: [[135, 10], [N, 20]],
             1: [[290, 5]]},
    (11, 1): {19: [[23, 12], [27, 14], [31, 16], [35, 18], [39, 20], [43, 22], [47, 24], [51, 26], [55, 28],
                   [59, 30]],
              9: [[36, 12], [45, 15], [54, 18], [63, 21], [72, 24], [81, 27], [N, 30]],
              6: [[50, 12], [66, 16], [82, 20], [98, 24], [114, 28]],
              4: [[80, 15], [105, 20], [130, 25], [N, 30]],
              3: [[112, 14], [161, 21], [N, 28]],
              2: [[235, 20], [N, 30]],
              1: [[410, 11]]},
}
# graphite-web's tables repeat each answer for neighbouring maxDataPoints: 19..10 → 19, 9..7 → 9, 6..5 → 6
SAME_AS = {18: 19, 17: 19, 16: 19, 15: 19, 14: 19, 13: 19, 12: 19, 11: 19, 10: 19, 8: 9, 7: 9, 5: 6}


@pytest.mark.parametrize("start, xff", sorted(GOLDEN))
def test_graphite_web_golden_vectors(start, xff):
    table = dict(GOLDEN[(start, xff)])
    table.setdefault(19, _by_two(start))
    for mdp, same in SAME_AS.items():
        table[mdp] = table[same]
    identity = [[v, v] for v in range(start, start + 20)]
    table[20] = table[21] = identity
    for mdp, expected in sorted(table.items()):
        assert _gw(start, mdp, xff) == expected, f"maxDataPoints={mdp}"


def test_graphite_web_time_range_spans_all_series():
    # the short series is consolidated as if it covered the whole response's range
    long = Series("long", 0, 1, [1.0] * 100, consolidation="sum")
    short = Series("short", 90, 1, [1.0] * 10, consolidation="sum")
    out = apply_max_data_points_graphite_web([long, short], 10)
    assert out[1].step == 10 and len(out[1].values) <= 2
    # nudge = 10 steps but only 9 values dropped (graphite-web's off-by-one): [99] alone, labelled 100
    assert points(out[1]) == [[1.0, 100]]


def test_graphite_web_off_and_empty():
    s = Series("a", 0, 1, [1.0, 2.0, 3.0])
    assert apply_max_data_points_graphite_web([s], 0)[0] is s
    e = Series("e", 0, 1, [])
    assert apply_max_data_points_graphite_web([e], 1)[0] is e


def test_graphite_web_uses_series_consolidation():
    s = Series("a", 1, 1, list(range(1, 21)), consolidation="max")
    assert points(apply_max_data_points_graphite_web([s], 9)[0])[:2] == [[4.0, 3], [7.0, 6]]


# --- metrictank runtime consolidation (consolidation/consolidate_test.go) -----------------------------------------

def _mt(start, step, values, mdp, func="sum"):
    s = Series("m", start, step, values, consolidation=func)
    out = apply_max_data_points([s], mdp)[0]
    return points(out), out.step


def test_mt_no_nudge_with_few_points():
    # MDP=1 folds everything into one bucket stamped with the last point, not trimmed to the aligned bucket
    assert _mt(10, 10, [1, 2, 3, 4], 1) == ([[10.0, 40]], 40)
    assert _mt(20, 10, [1, 2, 3, 4], 1) == ([[10.0, 50]], 40)


def test_mt_nudge_and_postmark():
    assert _mt(20, 10, [1, 2, 3, 4, 5, 6], 3) == ([[5.0, 40], [9.0, 60], [6.0, 80]], 20)
    # one step later the middle buckets are identical: that is the point of nudging
    assert _mt(30, 10, [2, 3, 4, 5, 6, 7], 3) == ([[5.0, 40], [9.0, 60], [13.0, 80]], 20)


def test_mt_nudge_drops_incomplete_leading_bucket():
    assert _mt(20, 10, list(range(2, 15)), 3) == ([[40.0, 100], [50.0, 150]], 50)
    assert _mt(10, 10, list(range(1, 15)), 3) == ([[15.0, 50], [40.0, 100], [50.0, 150]], 50)


def test_mt_trailing_partial_bucket_timestamp():
    # too few points to nudge; the leftover bucket gets its first ts + (aggNum-1)*interval (even spacing)
    ts0 = 1449178131
    assert _mt(ts0, 10, [1, 2, 3], 2, "avg") == ([[1.5, ts0 + 10], [3.0, ts0 + 30]], 20)
    assert _mt(ts0, 10, [1, 2, 3, 4, 5], 2, "avg") == ([[2.0, ts0 + 20], [4.5, ts0 + 50]], 30)
    # with a nudge: 7 points, aggNum 3, first kept point at 40 since (40 - 10) % 30 == 0
    assert _mt(20, 10, [1, 2, 3, 4, 5, 6, 7], 3, "sum") == ([[12.0, 60], [13.0, 90]], 30)


def test_mt_consolidators():
    assert _mt(10, 10, [1, 2, 3, 4], 2, "avg")[0] == [[1.5, 20], [3.5, 40]]
    assert _mt(10, 10, [1, 2, 3, 4], 2, "count")[0] == [[2.0, 20], [2.0, 40]]
    assert _mt(10, 10, [1, 2, 3, 4], 2, "lst")[0] == [[2.0, 20], [4.0, 40]]
    assert _mt(10, 10, [1, 2, 3, 4], 2, "min")[0] == [[1.0, 20], [3.0, 40]]
    assert _mt(10, 10, [1, 2, 3, 4], 2, "max")[0] == [[2.0, 20], [4.0, 40]]
    assert _mt(10, 10, [1, 2, 3, 4], 2, "total")[0] == [[3.0, 20], [7.0, 40]]
    assert _mt(10, 10, [1, nan, nan, nan], 2, "sum")[0] == [[1.0, 20], [None, 40]]


@pytest.mark.parametrize("n, mdp, agg", [
    (1, 1, 1), (2, 2, 1), (3, 2, 2), (4, 2, 2), (5, 2, 3), (80, 80, 1), (81, 80, 2), (160, 80, 2), (161, 80, 3),
])
def test_mt_agg_every(n, mdp, agg):
    s = Series("m", 10, 10, np.ones(n))
    assert apply_max_data_points([s], mdp)[0].step == 10 * agg


def test_mt_within_limit_or_off_is_untouched():
    s = Series("m", 10, 10, np.arange(800.0))
    assert apply_max_data_points([s], 800)[0] is s
    assert apply_max_data_points([s], 0)[0] is s
    assert apply_max_data_points([s], 799)[0] is not s


def test_mt_default_mdp_bounds_output():
    s = Series("m", 1_700_000_010, 10, np.arange(8640.0))
    out = apply_max_data_points([s], 800)[0]
    assert len(out.values) <= 800
    assert out.step == 110
    assert (out.timestamps % out.step == 0).all()             # postmarked buckets land on multiples


# --- normalize ------------------------------------------------------------------------------------------------------

def test_normalize_to_lcm_step():
    a = Series("a", 0, 10, np.arange(12.0), consolidation="sum")
    b = Series("b", 0, 15, np.arange(8.0))
    out, start, end, step = normalize_with_bounds([a, b])
    assert step == 30 and start == 0 and end == 120
    assert points(out[0]) == [[3.0, 0], [12.0, 30], [21.0, 60], [30.0, 90]]
    assert points(out[1]) == [[0.5, 0], [2.5, 30], [4.5, 60], [6.5, 90]]
    assert [s.step for s in normalize([a, b])] == [30, 30]


def test_normalize_same_step_keeps_series():
    a = Series("a", 0, 10, [1.0])
    assert normalize([a])[0] is a
    assert normalize([]) == []
