"""Rollup buckets: per (series, bucket) sum, cnt, min, max and last, computed without per-sample loops.

A sample at time p belongs to the bucket labelled t, the first multiple of the interval with p <= t
(metrictank quantises forward, so the rollup of (t-R, t] is stamped t). NaN samples (nulls, stale markers)
are not counted. Keeping all five lets the read-time aggregation (avg = sum/cnt, consolidateBy) change
retroactively.
"""
from __future__ import annotations

import numpy as np

COLUMNS = ("sum", "cnt", "min", "max", "last")


def bucket_of(ts_ms: np.ndarray, interval_ms: int) -> np.ndarray:
    return -((-ts_ms) // interval_ms) * interval_ms


def aggregate(sids: np.ndarray, ts_ms: np.ndarray, values: np.ndarray, interval_ms: int):
    """Input sorted by (sid, ts). Returns (sids, bucket_ts, [sum, cnt, min, max, last]) per bucket."""
    ok = ~np.isnan(values)
    sids, ts_ms, values = sids[ok], ts_ms[ok], values[ok]
    if len(sids) == 0:
        empty = np.empty(0)
        return sids, ts_ms, [empty] * 5
    buckets = bucket_of(ts_ms, interval_ms)
    starts = np.flatnonzero(np.r_[True, (sids[1:] != sids[:-1]) | (buckets[1:] != buckets[:-1])])
    ends = np.r_[starts[1:], len(sids)] - 1
    total = np.add.reduceat(values, starts)
    count = np.diff(np.r_[starts, len(sids)]).astype(np.float64)
    low = np.minimum.reduceat(values, starts)
    high = np.maximum.reduceat(values, starts)
    return sids[starts], buckets[starts], [total, count, low, high, values[ends]]


def merge(ts_parts: list[np.ndarray], col_parts: list[list[np.ndarray]]):
    """Combine rollup pieces of one series (older pieces first) into one bucket list."""
    if not ts_parts:
        return np.empty(0, np.int64), [np.empty(0)] * 5
    if len(ts_parts) == 1:
        return ts_parts[0], col_parts[0]
    ts = np.concatenate(ts_parts)
    cols = [np.concatenate([p[i] for p in col_parts]) for i in range(5)]
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    cols = [c[order] for c in cols]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    ends = np.r_[starts[1:], len(ts)] - 1
    return ts[starts], [np.add.reduceat(cols[0], starts), np.add.reduceat(cols[1], starts),
                        np.minimum.reduceat(cols[2], starts), np.maximum.reduceat(cols[3], starts),
                        cols[4][ends]]


def value_of(method: str, cols: list[np.ndarray]) -> np.ndarray:
    """The read-time value of each bucket for a rollup method."""
    total, count, low, high, last = cols
    if method in ("avg", "average"):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)
    if method in ("sum", "total"):
        return total
    if method == "min":
        return low
    if method == "max":
        return high
    if method in ("last", "lst", "current"):
        return last
    if method == "count":
        return count
    raise ValueError(f"unknown rollup method {method!r}")
