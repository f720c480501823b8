"""Several processes sharing one database: each catches up with the series, deletions, flushed chunks and
configs of the others by reading the rows added since its last look (`Storage.refresh_index`)."""
from __future__ import annotations

import time

import numpy as np
from sqlalchemy import func, select

from . import sql


class IndexRefresher:
    """The refresh state of one Storage: how far the series and chunk tables have been read."""

    def __init__(self, storage):
        self.storage = storage
        self.series_seen = IdWatermark()    # series rows read from SQL (refresh reads those above it)
        self.chunks_seen = IdWatermark()    # chunk rows whose max_ts refresh has applied to sid_last
        self.intervals_seen = IdWatermark()  # interval_changes rows applied to sid_interval

    def refresh(self) -> int:
        """Catch up with other processes sharing the database: add the series they created (new tenants
        included), drop the series they deleted, take the newest sample times of the chunks they flushed (so
        their series pass the from/until filter), the interval changes and the configs they stored. Series
        rows are read by id above a watermark; ids below the newest one read that did not show up yet (a
        transaction still open) are read again for a minute. Deletions are found by comparing counts; only a
        mismatch costs a scan of the series ids. Returns the number of series added or removed."""
        st = self.storage
        s, c = sql.series.c, sql.chunks.c
        epoch = (st._delete_epoch, st._config_epoch)
        with st.db.connect() as conn:
            rows = conn.execute(select(s.id, s.tenant, s.key, s.interval).where(s.id > self.series_seen.low)
                                .order_by(s.id)).all()
            configs = conn.execute(select(sql.configs.c.tenant, sql.configs.c.kind, sql.configs.c.text)).all()
        changed = self._add_series_rows(rows, epoch[0])
        if changed is None:
            return 0                     # a local deletion raced with the read: the next round reads again
        self.series_seen.advance(np.fromiter((r.id for r in rows), np.int64, len(rows)), time.monotonic())
        top = self.series_seen.high
        known = int(np.count_nonzero(st.sid_tenant[:top + 1] >= 0))
        with st.db.connect() as conn:
            in_sql = conn.execute(select(func.count()).select_from(sql.series).where(s.id <= top)).scalar()
            if in_sql != known and (in_sql < known or not self.series_seen.pending):
                changed += self._resync_series(conn, top)
            news = conn.execute(select(c.id, c.series_id, c.max_ts).where(c.id > self.chunks_seen.low)
                                .order_by(c.id)).all()
            ic = sql.interval_changes.c
            intervals = conn.execute(select(ic.id, ic.series_id, ic.interval)
                                     .where(ic.id > self.intervals_seen.low).order_by(ic.id)).all()
        if news:
            ids, sids, last = (np.array(col, np.int64) for col in zip(*news))
            with st.create_lock:
                ok = sids < len(st.sid_tenant)
                ok[ok] = st.sid_tenant[sids[ok]] >= 0
                np.maximum.at(st.sid_last, sids[ok], last[ok])
                np.maximum.at(st.sid_flushed, sids[ok], last[ok])
            self.chunks_seen.advance(ids, time.monotonic())
        if intervals:
            self._apply_intervals(intervals)
        if st._config_epoch == epoch[1]:
            texts = {(r.tenant, r.kind): r.text for r in configs}
            for key in set(texts) | set(st._config_texts):
                if texts.get(key) != st._config_texts.get(key):
                    if key in texts:
                        st._config_texts[key] = texts[key]
                    else:
                        st._config_texts.pop(key, None)
                    st._configs.pop(key[0], None)
        st.stats["index_refreshes"] += 1
        return changed

    def _apply_intervals(self, rows) -> None:
        """Set the intervals other processes changed (rows in id order: the newest change of a series wins)."""
        st = self.storage
        ids, sids, intervals = (np.array(col, np.int64) for col in zip(*rows))
        last = len(sids) - 1 - np.unique(sids[::-1], return_index=True)[1]
        sids, intervals = sids[last], intervals[last]
        with st.create_lock:
            ok = sids < len(st.sid_tenant)
            ok[ok] = st.sid_tenant[sids[ok]] >= 0
            st.sid_interval[sids[ok]] = intervals[ok]
        self.intervals_seen.advance(ids, time.monotonic())

    def _add_series_rows(self, rows, delete_epoch: int) -> int | None:
        """Index series rows read from SQL that are not known yet; None when a local deletion happened since the
        rows were read (they could bring a deleted series back)."""
        st = self.storage
        with st.create_lock:
            if st._delete_epoch != delete_epoch:
                return None
            fresh = [r for r in rows if r.id >= len(st.sid_tenant) or st.sid_tenant[r.id] < 0]
            if not fresh:
                return 0
            st._grow(max(r.id for r in fresh))
            for r in fresh:
                idx = st.index.tenant(r.tenant)
                if r.key in idx.by_key:       # (cannot happen: one id per tenant and key)
                    continue
                st._index_row(r)
        st.load_newest_times([r.id for r in fresh])
        st.stats["index_series_added"] += len(fresh)
        return len(fresh)

    def _resync_series(self, conn, top: int) -> int:
        """Full comparison of the series ids up to `top` with SQL: forget the series deleted elsewhere, index
        the ones never seen (ids read again too late). Returns how many changed."""
        st = self.storage
        s = sql.series.c
        epoch = st._delete_epoch
        known = np.flatnonzero(st.sid_tenant[:top + 1] >= 0)      # before the read: all of them committed
        in_sql = np.fromiter(conn.execute(select(s.id).where(s.id <= top)).scalars(), np.int64)
        unseen = np.setdiff1d(in_sql, known, assume_unique=True)
        gone = np.setdiff1d(known, in_sql, assume_unique=True)
        changed = 0
        if len(unseen):
            rows = []
            for lo in range(0, len(unseen), sql.IN_CHUNK):
                rows.extend(conn.execute(select(s.id, s.tenant, s.key, s.interval)
                                         .where(s.id.in_(unseen[lo:lo + sql.IN_CHUNK].tolist()))).all())
            changed += self._add_series_rows(rows, epoch) or 0
        if len(gone):
            with st.create_lock:
                gone = gone[st.sid_tenant[gone] >= 0]
                for no, tenant in enumerate(st._tenant_names):
                    ids = gone[st.sid_tenant[gone] == no].tolist()
                    if ids:
                        st.index.tenant(tenant).remove(ids)
                st._forget(gone)
            st._changed(gone)
            st.stats["index_series_removed"] += len(gone)
            changed += len(gone)
        return changed


class IdWatermark:
    """Progress through a table read repeatedly by `id > low`. Ids below the highest one read that did not show
    up (the transaction of another process still open, or a row rolled back or deleted) are gaps: they are read
    again, as part of `id > low`, for `grace` seconds, then given up."""

    def __init__(self, grace: float = 60.0):
        self.grace = grace
        self.low = 0            # every id <= low was read or given up
        self.high = 0           # the highest id read
        self.gaps = np.empty(0, np.int64)
        self.gap_seen = np.empty(0)

    def start(self, high: int) -> None:
        self.low = self.high = int(high)

    @property
    def pending(self) -> bool:
        return len(self.gaps) > 0

    def advance(self, ids: np.ndarray, now: float) -> None:
        """`ids`: the ids the last `id > low` read returned."""
        top = int(ids.max()) if len(ids) else self.high
        keep = (now - self.gap_seen < self.grace) & ~np.isin(self.gaps, ids)
        gaps, seen = [self.gaps[keep]], [self.gap_seen[keep]]
        if top > self.high and top - self.high <= 1_000_000:    # (a jump beyond that is not tracked)
            span = np.arange(self.high + 1, top + 1, dtype=np.int64)
            new = span[~np.isin(span, ids)]
            gaps.append(new)
            seen.append(np.full(len(new), now))
        self.gaps, self.gap_seen = np.concatenate(gaps), np.concatenate(seen)
        self.high = max(self.high, top)
        self.low = int(self.gaps.min()) - 1 if len(self.gaps) else self.high
