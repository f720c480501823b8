"""Point consolidation: aggregation helpers, maxDataPoints and step normalisation.

Everything works on whole numpy arrays: a bucket of points is a row of a 2-D array, so aggregating N buckets is one
reduction, never a Python loop per point. NaN is null throughout.

Two maxDataPoints flavours exist because the two Graphite servers plumbago imitates disagree:

* `apply_max_data_points` is metrictank's runtime consolidation (plumbago's default): buckets are aligned so that
  their timestamps are multiples of the new interval and each bucket is labelled with its *last* point's timestamp.
* `apply_max_data_points_graphite_web` reproduces graphite-web 1.1's `renderViewJson`, including its off-by-one
  "nudge", so that responses can be compared point for point with graphite-web.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from .series import Series, stacked_view

__all__ = [
    "AGGREGATORS",
    "ALIASES",
    "get_aggregator",
    "aggregate",
    "consolidate",
    "apply_max_data_points",
    "apply_max_data_points_graphite_web",
    "normalize",
    "normalize_with_bounds",
]


# --- reductions over the last axis ------------------------------------------------------------------------------
# Each core takes `a` (…, k) plus the precomputed non-null mask and count, and may return anything for rows with no
# non-null value: the null rule in `_with_null_rule` overwrites those rows.

def _first_index(mask: np.ndarray) -> np.ndarray:
    return np.argmax(mask, axis=-1)[..., None]


def _last_index(mask: np.ndarray) -> np.ndarray:
    k = mask.shape[-1]
    return (k - 1 - np.argmax(mask[..., ::-1], axis=-1))[..., None]


def _sum(a, mask, cnt):
    return np.where(mask, a, 0.0).sum(axis=-1)


def _average(a, mask, cnt):
    return _sum(a, mask, cnt) / np.maximum(cnt, 1)


def _avg_zero(a, mask, cnt):
    # graphite-web counts nulls as 0 and divides by every point actually present in the bucket
    return _sum(a, mask, cnt) / max(a.shape[-1], 1)


def _max(a, mask, cnt):
    return np.fmax.reduce(a, axis=-1)            # fmax skips NaN without warnings


def _min(a, mask, cnt):
    return np.fmin.reduce(a, axis=-1)


def _first(a, mask, cnt):
    return np.take_along_axis(a, _first_index(mask), axis=-1)[..., 0]


def _last(a, mask, cnt):
    return np.take_along_axis(a, _last_index(mask), axis=-1)[..., 0]


def _median(a, mask, cnt):
    s = np.sort(a, axis=-1)                      # NaN sorts last, so the first `cnt` entries are the values
    lo = np.maximum((cnt - 1) // 2, 0)[..., None]
    hi = np.maximum(cnt // 2, 0)[..., None]
    vlo = np.take_along_axis(s, lo, axis=-1)[..., 0]
    vhi = np.take_along_axis(s, hi, axis=-1)[..., 0]
    # odd counts take the middle value as is (no (x+x)/2 overflow); even ones average the two middles
    return np.where(lo[..., 0] == hi[..., 0], vlo, (vlo + vhi) / 2)


def _multiply(a, mask, cnt):
    # graphite-web (safeMul) and metrictank (Mult) both return null when any factor is null
    return np.prod(a, axis=-1)


def _diff(a, mask, cnt):
    # first non-null minus every later non-null, accumulated in order like graphite-web's safeDiff
    terms = np.where(mask, -a, 0.0)
    idx = _first_index(mask)
    np.put_along_axis(terms, idx, np.take_along_axis(a, idx, axis=-1), axis=-1)
    return terms.sum(axis=-1)


def _stddev(a, mask, cnt):
    n = np.maximum(cnt, 1)
    mean = _sum(a, mask, cnt) / n
    dev = np.where(mask, a - mean[..., None], 0.0)
    return np.sqrt((dev * dev).sum(axis=-1) / n)  # population standard deviation, as both servers do


def _range(a, mask, cnt):
    return np.fmax.reduce(a, axis=-1) - np.fmin.reduce(a, axis=-1)


def _count(a, mask, cnt):
    return cnt.astype(np.float64)


# Reductions of null-free data need no mask: the common case of full buckets, done without temporaries.
# einsum sums a short last axis ~3x faster than ndarray.sum. NaN propagates through these, so a result
# without NaN proves its inputs had none; otherwise the caller falls back to the masked reduction.
def _sum_last(a: np.ndarray) -> np.ndarray:
    return np.einsum("...k->...", a)


_NO_NULLS: dict[str, Callable] = {
    "_sum": _sum_last,
    "_average": lambda a: _sum_last(a) / a.shape[-1],
    "_max": lambda a: a.max(axis=-1),
    "_min": lambda a: a.min(axis=-1),
}


def _with_null_rule(core) -> Callable:
    """Wrap a core reduction with NaN skipping and graphite-web's xFilesFactor rule.

    A bucket is null when it has no non-null value or when non_null / total < xff, where `total` defaults to the
    bucket width (graphite-web divides by valuesPerPoint even for the trailing partial bucket, so callers pass it).
    """
    def agg(values: np.ndarray, axis: int = -1, xff: float = 0.0, total: int | None = None) -> np.ndarray:
        a = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
        k = a.shape[-1]
        if k == 0:
            return np.full(a.shape[:-1], np.nan)
        fast = _NO_NULLS.get(core.__name__)
        if fast is not None and (not xff or k / (k if total is None else total) >= xff):
            with np.errstate(invalid="ignore", over="ignore"):
                out = np.asarray(fast(a), dtype=np.float64)
            if not np.isnan(out).any():
                return out          # no null among the inputs: nothing to skip, no bucket can be null
        mask = ~np.isnan(a)
        cnt = mask.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            out = np.asarray(core(a, mask, cnt), dtype=np.float64)
            denom = k if total is None else total
            null = cnt == 0
            if xff:
                null |= (cnt / denom) < xff
        if null.any():
            out = np.where(null, np.nan, out)
        return out

    agg.__name__ = core.__name__.lstrip("_")
    agg.__doc__ = f"NaN-skipping {agg.__name__} over `axis` with xFilesFactor support."
    return agg


# graphite-web's names first, then metrictank's aliases (FromConsolidateBy) and graphite-web's aggFuncAliases
_CANONICAL = {
    "sum": _sum, "average": _average, "avg_zero": _avg_zero, "max": _max, "min": _min, "first": _first,
    "last": _last, "median": _median, "multiply": _multiply, "diff": _diff, "stddev": _stddev,
    "range": _range, "count": _count,
}
ALIASES = {
    "avg": "average", "rangeOf": "range", "total": "sum", "lst": "last", "current": "last",
    "mult": "multiply", "med": "median",
}
AGGREGATORS: dict[str, Callable] = {name: _with_null_rule(fn) for name, fn in _CANONICAL.items()}
AGGREGATORS.update({alias: AGGREGATORS[target] for alias, target in ALIASES.items()})


def canonical_name(func: str) -> str:
    """`avg` → `average`, `sumSeries` → `sum` (graphite-web still accepts the deprecated `<name>Series`)."""
    name = func
    if name not in AGGREGATORS and name.endswith("Series") and name[:-6] in AGGREGATORS:
        name = name[:-6]
    if name not in AGGREGATORS:
        raise ValueError(f"Unsupported aggregation function: {func}")
    return ALIASES.get(name, name)


def get_aggregator(func: str) -> Callable:
    """The aggregator for a graphite-web / metrictank function name; ValueError names an unknown one."""
    return AGGREGATORS[canonical_name(func)]


def aggregate(values: np.ndarray, func: str, axis: int = -1, xff: float = 0.0) -> np.ndarray:
    """Aggregate `values` along `axis` with the named function (e.g. across series for sumSeries)."""
    return get_aggregator(func)(values, axis=axis, xff=xff)


# --- consolidation of one series ---------------------------------------------------------------------------------

def _bucket_values(values: np.ndarray, n: int, func: str, xff: float) -> np.ndarray:
    """Aggregate consecutive groups of `n` values from index 0; the last group may be partial."""
    agg = get_aggregator(func)
    size = len(values)
    full = size // n
    head = agg(values[: full * n].reshape(full, n), axis=1, xff=xff, total=n)
    rest = size - full * n
    if not rest:
        return head
    # The partial tail is reduced on its own rather than NaN-padded: padding would be right for every function
    # except avg_zero, which graphite-web divides by the points present. Its xff denominator stays n (graphite-web).
    tail = agg(values[full * n:].reshape(1, rest), axis=1, xff=xff, total=n)
    return np.concatenate([head, tail])


def consolidate(series: Series, points_per_bucket: int, func: str, xff: float) -> Series:
    """graphite-web's `TimeSeries.consolidate`: groups of `points_per_bucket` values from the series start.

    The result keeps `start` (graphite-web labels each bucket with its first slot) and has step * points_per_bucket.
    """
    n = int(points_per_bucket)
    if n <= 1 or len(series.values) == 0:
        return series.copy()
    values = _bucket_values(series.values, n, func, xff)
    return series.copy(step=series.step * n, values=values)


# --- maxDataPoints ------------------------------------------------------------------------------------------------

def apply_max_data_points(series_list: list[Series], max_data_points: int) -> list[Series]:
    """metrictank's runtime consolidation (`ConsolidateStable`), applied per series after all functions ran.

    aggNum = ceil(len / MDP). When there are enough points (len > 2*aggNum) leading points are dropped so every
    bucket starts one interval after a multiple of interval*aggNum; each bucket is then stamped with its last
    point's timestamp ("postmarked"), a trailing partial bucket with the timestamp it would have had if complete.
    MDP 0 (or less) switches it off. Series already within the limit are returned unchanged.
    """
    if not max_data_points or max_data_points <= 0:
        return list(series_list)
    out: list = [None] * len(series_list)
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(series_list):
        size = len(s.values)
        if size <= max_data_points or s.step <= 0:
            out[i] = s
            continue
        agg_num = -(-size // max_data_points)
        start, drop = s.start, 0
        if size > 2 * agg_num:
            # nudge only with enough points, so e.g. MDP=1 still folds every point into one bucket
            remainder = (start - s.step) % (s.step * agg_num)
            if remainder > 0:
                drop = (s.step * agg_num - remainder) // s.step
                start += drop * s.step
        groups.setdefault((size, drop, agg_num, s.consolidation, s.xfiles_factor), []).append(i)
    # Series of one shape (a glob's usual result) are consolidated together as one matrix.
    for (size, drop, agg_num, func, xff), members in groups.items():
        rows = stacked_view([series_list[i].values for i in members])
        matrix = rows[:, drop:] if rows is not None else np.stack([series_list[i].values[drop:] for i in members])
        consolidated = _bucket_rows(matrix, agg_num, func, xff)
        for row, i in enumerate(members):
            s = series_list[i]
            start = s.start + drop * s.step
            out[i] = s.copy(start=start + (agg_num - 1) * s.step, step=s.step * agg_num, values=consolidated[row])
    return out


def _bucket_rows(matrix: np.ndarray, n: int, func: str, xff: float) -> np.ndarray:
    """`_bucket_values` for every row of a matrix at once."""
    agg = get_aggregator(func)
    rows, size = matrix.shape
    full = size // n
    head = agg(matrix[:, : full * n].reshape(rows, full, n), axis=2, xff=xff, total=n)
    rest = size - full * n
    if not rest:
        return head
    tail = agg(matrix[:, full * n:].reshape(rows, 1, rest), axis=2, xff=xff, total=n)
    return np.concatenate([head, tail], axis=1)


def apply_max_data_points_graphite_web(series_list: list[Series], max_data_points: int) -> list[Series]:
    """graphite-web 1.1 `renderViewJson` maxDataPoints handling, bug for bug.

    The number of points is judged on the time range of the whole response (max end - min start), not on the
    series' own length. The start is nudged to the next multiple of the bucket width but one value fewer than the
    shift is dropped, so each output timestamp labels a bucket whose first raw point lies one step before it.
    Consolidation uses each series' own consolidation function and xFilesFactor. MDP 0 (or less) is off.
    """
    series_list = list(series_list)
    if not max_data_points or max_data_points <= 0:
        return series_list
    if not any(len(s.values) for s in series_list):
        return series_list
    time_range = max(s.end for s in series_list) - min(s.start for s in series_list)
    out = []
    for s in series_list:
        size = len(s.values)
        if size == 0 or s.step <= 0:
            out.append(s)
            continue
        if max_data_points == 1:
            values = _bucket_values(s.values, size, s.consolidation, s.xfiles_factor)
            out.append(s.copy(step=s.step * size, values=values))
            continue
        number_of_points = time_range / s.step
        if not max_data_points < number_of_points:
            out.append(s)
            continue
        vpp = math.ceil(number_of_points / max_data_points)
        spp = int(vpp * s.step)
        nudge = spp + (s.start % s.step) - (s.start % spp)
        start = s.start + nudge
        drop = max(int(nudge / s.step) - 1, 0)          # graphite-web deletes range(1, valuesToLose) values
        values = _bucket_values(s.values[drop:], vpp, s.consolidation, s.xfiles_factor) \
            if drop < size else np.empty(0)
        # timestamps are range(start, original end + 1, spp) zipped with the values: the shorter one wins
        n_ts = (s.end - start) // spp + 1 if s.end >= start else 0
        out.append(s.copy(start=start, step=spp, values=values[:n_ts]))
    return out


# --- lcm step normalisation ---------------------------------------------------------------------------------------

def normalize_with_bounds(series_list: Iterable[Series]) -> tuple[list[Series], int, int, int]:
    """graphite-web's `normalize`: consolidate every series to the lcm of all steps.

    Returns (series, start, end, step) with start = min start, end = max end trimmed to a whole number of steps.
    Each series keeps its own start (buckets begin at its first value); graphite-web's combiners then zip rows by
    position, not by timestamp.
    """
    series_list = list(series_list)
    if not series_list:
        return [], 0, 0, 0
    step = math.lcm(*(int(s.step) for s in series_list))
    out = [consolidate(s, step // s.step, s.consolidation, s.xfiles_factor) if s.step != step else s
           for s in series_list]
    start = min(s.start for s in series_list)
    end = max(s.end for s in series_list)
    end -= (end - start) % step
    return out, start, end, step


def normalize(series_list: Iterable[Series]) -> list[Series]:
    """The series of `normalize_with_bounds`, all at the lcm step."""
    return normalize_with_bounds(series_list)[0]
