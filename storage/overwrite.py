"""Flushed samples that overwrite timestamps already in SQL: their rollup buckets are recomputed, not added to."""
from __future__ import annotations

import numpy as np
from sqlalchemy import and_, select

from . import codec, rollup, sql


def rewrite_overwritten(storage, sids, ts, values, rollup_rows: list[dict]) -> list[int]:
    """Rollup pieces add up, which is right for new samples but counts a sample twice when a timestamp that
    is already in SQL is written again (raw reads keep only the later write). For such overwrites among the
    samples being flushed (sorted by id, ts), the whole buckets they fall in are recomputed from the raw data
    (SQL chunks, then these samples: the later write wins per timestamp), and every rollup row of each
    touched rollup block, this flush's piece included, is folded into one row holding the recomputed
    buckets. `rollup_rows` is edited in place; returns the ids of the rollup rows the new ones replace.

    The common case costs one vectorised comparison: a sample newer than every raw sample of its series in
    SQL (`sid_flushed`) is no overwrite. Late samples that are not overwrites are found with one read of
    the raw chunks they fall in and keep being added. A bucket whose raw samples are no longer all in SQL
    (retention: the raw count differs from the stored bucket count) cannot be recomputed and is added to,
    as before."""
    if not len(sids):
        return []
    maybe = ts <= storage.sid_flushed[sids]
    if not maybe.any():
        return []
    archives = {sid: storage._archive_intervals(sid) for sid in np.unique(sids[maybe]).tolist()}
    cand = [sid for sid, ivs in archives.items() if ivs]
    if not cand:
        return []
    spans = dict(zip(cand, zip(np.searchsorted(sids, cand, "left").tolist(),
                               np.searchsorted(sids, cand, "right").tolist())))
    # 1. which samples overwrite a timestamp already in SQL
    ranges = {}
    for sid, (a, b) in spans.items():
        t = ts[a:b][maybe[a:b]]
        ranges[sid] = (int(t[0]), int(t[-1]))
    with storage.db.connect() as conn:
        stored = _sql_raw_pieces(conn, ranges)
    dups: dict[int, np.ndarray] = {}
    for sid, pieces in stored.items():
        a, b = spans[sid]
        t = ts[a:b][maybe[a:b]]
        d = t[np.isin(t, np.concatenate([p[0] for p in pieces]))]
        if len(d):
            dups[sid] = d
    if not dups:
        return []
    # 2. the buckets holding overwrites, per archive; their raw samples and their rollup blocks' rows
    touched: dict[tuple[int, int], np.ndarray] = {}
    ranges = {}
    for sid, d in dups.items():
        for iv in archives[sid]:
            buckets = np.unique(rollup.bucket_of(d, iv * 1000))
            touched[(sid, iv)] = buckets
            lo, hi = int(buckets[0]) - iv * 1000 + 1, int(buckets[-1])
            old = ranges.get(sid)
            ranges[sid] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    block_points = storage.options.rollup_block_points
    wanted = {(sid, iv, int(blk)) for (sid, iv), buckets in touched.items()
              for blk in np.unique(buckets // (iv * 1000 * block_points) * (iv * 1000 * block_points)).tolist()}
    with storage.db.connect() as conn:
        stored = _sql_raw_pieces(conn, ranges)
        existing = _rollup_block_rows(conn, wanted)
    by_key = {(r["series_id"], r["interval"], r["block_start"]): i for i, r in enumerate(rollup_rows)}
    replaced: list[int] = []
    drop: set[int] = set()
    for (sid, iv), buckets in touched.items():
        a, b = spans[sid]
        old_ts, old_vals = last_write_wins(stored.get(sid, []))
        new_ts, new_vals = last_write_wins([(old_ts, old_vals), (ts[a:b], values[a:b])])
        iv_ms, span = iv * 1000, iv * 1000 * block_points
        counted = rollup.bucket_of(old_ts[~np.isnan(old_vals)], iv_ms)     # sorted
        raw_count = np.searchsorted(counted, buckets, "right") - np.searchsorted(counted, buckets, "left")
        blocks = buckets // span * span
        for blk in np.unique(blocks).tolist():
            ids, pieces = existing.get((sid, iv, blk), ([], []))
            ets, ecols = rollup.merge([p[0] for p in pieces], [p[1] for p in pieces])
            in_blk = blocks == blk
            here = buckets[in_blk]
            at = np.minimum(np.searchsorted(ets, here), max(len(ets) - 1, 0))
            stored_count = (np.where(ets[at] == here, ecols[1][at], 0) if len(ets)
                            else np.zeros(len(here)))
            redo = here[raw_count[in_blk] == stored_count]
            if not len(redo):
                continue       # raw samples of these buckets are gone: keep adding
            keep = np.isin(rollup.bucket_of(new_ts, iv_ms), redo)
            _, rts, rcols = rollup.aggregate(np.full(int(keep.sum()), sid), new_ts[keep], new_vals[keep], iv_ms)
            parts = [(ets, ecols), (rts, rcols)]
            j = by_key.get((sid, iv, blk))
            if j is not None:
                parts.append(codec.decode_columns(rollup_rows[j]["data"]))
                drop.add(j)
            ts_parts, col_parts = [], []
            for k, (pts, pcols) in enumerate(parts):
                if k != 1:        # the recomputed buckets replace these buckets of the other parts
                    mask = ~np.isin(pts, redo)
                    pts, pcols = pts[mask], [c[mask] for c in pcols]
                if len(pts):
                    ts_parts.append(pts)
                    col_parts.append(pcols)
            replaced.extend(ids)
            storage.stats["rollup_blocks_rewritten"] += 1
            if ts_parts:
                mts, mcols = rollup.merge(ts_parts, col_parts)
                rollup_rows.append({"series_id": sid, "interval": iv, "block_start": blk, "min_ts": int(mts[0]),
                                    "max_ts": int(mts[-1]), "count": len(mts),
                                    "data": codec.encode_columns(mts, mcols)})
    if drop:
        rollup_rows[:] = [r for i, r in enumerate(rollup_rows) if i not in drop]
    return replaced


def correct_rollup_read(storage, sid: int, interval_ms: int, mem_ts: np.ndarray, mem_vals: np.ndarray,
                        ts: np.ndarray, cols: list):
    """A rollup read of one series adds its in-memory samples (mem_ts, mem_vals: merged, later write wins) to
    the SQL rollups (ts, cols). A memory sample that overwrites a raw sample already in SQL would count both:
    its buckets are recomputed from the raw samples here, as the next flush will store them (same rule as
    `rewrite_overwritten`: only while raw retention still holds every sample of the bucket)."""
    late = mem_ts[mem_ts <= storage.sid_flushed[sid]]
    if not len(late):
        return ts, cols
    lo = int(rollup.bucket_of(late[:1], interval_ms)[0]) - interval_ms + 1
    hi = int(rollup.bucket_of(late[-1:], interval_ms)[0])
    with storage.db.connect() as conn:
        old_ts, old_vals = last_write_wins(_sql_raw_pieces(conn, {sid: (lo, hi)}).get(sid, []))
    dups = late[np.isin(late, old_ts)]
    if not len(dups):
        return ts, cols                  # late samples, not overwrites: adding them is right
    buckets = np.unique(rollup.bucket_of(dups, interval_ms))
    at = np.minimum(np.searchsorted(ts, buckets), max(len(ts) - 1, 0))
    read_count = np.where(ts[at] == buckets, cols[1][at], 0) if len(ts) else np.zeros(len(buckets))
    stored_count = read_count - _count_in(buckets, mem_ts[~np.isnan(mem_vals)], interval_ms)
    redo = buckets[_count_in(buckets, old_ts[~np.isnan(old_vals)], interval_ms) == stored_count]
    if not len(redo):
        return ts, cols
    new_ts, new_vals = last_write_wins([(old_ts, old_vals), (mem_ts, mem_vals)])
    keep = np.isin(rollup.bucket_of(new_ts, interval_ms), redo)
    _, rts, rcols = rollup.aggregate(np.full(int(keep.sum()), sid), new_ts[keep], new_vals[keep], interval_ms)
    mask = ~np.isin(ts, redo)
    return rollup.merge([ts[mask], rts], [[c[mask] for c in cols], rcols])


def _count_in(buckets: np.ndarray, sorted_ts: np.ndarray, interval_ms: int) -> np.ndarray:
    """How many of sorted_ts fall in each bucket."""
    b = rollup.bucket_of(sorted_ts, interval_ms)
    return np.searchsorted(b, buckets, "right") - np.searchsorted(b, buckets, "left")


def _sql_raw_pieces(conn, ranges: dict) -> dict[int, list]:
    """sid -> decoded raw chunk pieces (write order) overlapping that series' (lo, hi) range."""
    c = sql.chunks.c
    out: dict[int, list] = {}
    sids = sorted(ranges)
    for lo in range(0, len(sids), sql.IN_CHUNK):
        group = sids[lo:lo + sql.IN_CHUNK]
        first = min(ranges[s][0] for s in group)
        last = max(ranges[s][1] for s in group)
        for r in conn.execute(select(c.series_id, c.min_ts, c.max_ts, c.data)
                              .where(and_(c.series_id.in_(group), c.max_ts >= first, c.min_ts <= last))
                              .order_by(c.series_id, c.id)):
            a, b = ranges[r.series_id]
            if r.max_ts >= a and r.min_ts <= b:
                out.setdefault(r.series_id, []).append(codec.decode(r.data))
    return out


def _rollup_block_rows(conn, wanted: set) -> dict[tuple, tuple[list, list]]:
    """(sid, interval, block_start) -> (row ids, decoded pieces), oldest row first."""
    c = sql.rollups.c
    out: dict[tuple, tuple[list, list]] = {}
    sids = sorted({w[0] for w in wanted})
    ivs = sorted({w[1] for w in wanted})
    first, last = min(w[2] for w in wanted), max(w[2] for w in wanted)
    for lo in range(0, len(sids), sql.IN_CHUNK):
        for r in conn.execute(select(c.id, c.series_id, c.interval, c.block_start, c.data)
                              .where(and_(c.series_id.in_(sids[lo:lo + sql.IN_CHUNK]), c.interval.in_(ivs),
                                          c.block_start >= first, c.block_start <= last))
                              .order_by(c.series_id, c.id)):
            key = (r.series_id, r.interval, r.block_start)
            if key in wanted:
                ids, pieces = out.setdefault(key, ([], []))
                ids.append(r.id)
                pieces.append(codec.decode_columns(r.data))
    return out


def last_write_wins(pieces: list):
    """(ts, values) pieces in write order -> one sorted piece keeping the last write of each timestamp."""
    pieces = [p for p in pieces if len(p[0])]
    if not pieces:
        return np.empty(0, np.int64), np.empty(0)
    ts = np.concatenate([p[0] for p in pieces])
    vals = np.concatenate([p[1] for p in pieces])
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    keep = np.r_[ts[1:] != ts[:-1], True]
    return ts[keep], vals[keep]
