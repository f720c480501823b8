"""The storage engine: index + WAL + head + SQL chunks and rollups, and the background maintenance loop.

write:  keys -> ids (new series committed to SQL first) -> WAL append (fsync) -> head
flush:  closed blocks leave the head as compressed chunks plus rollup buckets in one SQL transaction;
        then the WAL is checkpointed (what is still only in memory) and older segments are dropped
read:   SQL chunk pieces + samples being flushed + head, merged per series with last write winning
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import codec, rollup, slots, sql
from .cache import ChunkCache
from .head import Head
from .index import Index, TenantIndex
from .labels import key_to_labels, metric_name, series_key
from .limits import Limits
from .overwrite import correct_rollup_read, last_write_wins, rewrite_overwritten
from .refresh import IndexRefresher
from .schemas import DEFAULT_AGGREGATIONS_TEXT, DEFAULT_SCHEMAS_TEXT, StorageConfig
from .wal import WAL

log = logging.getLogger("plumbago.storage")
NO_TS = -(1 << 62)    # "no sample" in the per-series time arrays that need an ordering below every timestamp
_IN_CHUNK = sql.IN_CHUNK    # ids per SQL IN list
INTERVAL_CHANGES_KEPT_MS = 86_400_000   # other processes read interval changes within seconds; a day is plenty
SCHEMAS, AGGREGATIONS = "storage-schemas", "storage-aggregation"


@dataclass
class EngineOptions:
    block_seconds: int = 7200             # raw chunk span
    rollup_block_points: int = 1440       # buckets per rollup chunk
    flush_interval: float = 60.0          # background loop period (s)
    flush_grace: int = 300                # a block is closed this long after its end (late samples)
    max_head_samples: int = 20_000_000    # above this the whole head is flushed, open blocks included
    flush_slice_samples: int = 1_000_000  # a flush writes (and commits) whole series in slices of about this many
    retention_interval: float = 3600.0
    wal_fsync: bool = True
    chunk_cache_bytes: int = 256 << 20    # decoded chunks kept for repeated reads (0 = off)
    compaction_spans: tuple = (43200, 86400)   # closed raw blocks are merged into these windows (s)
    index_refresh_seconds: float = 10.0   # shared database: pick up series other processes created (0 = off)


@dataclass
class DeferredSync:
    needed: bool = False      # some write of the block is not on disk yet: call Storage.sync() before answering


class Storage:
    def __init__(self, data_dir: str, database_url: str | None = None, options: EngineOptions | None = None):
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.options = options or EngineOptions()
        self.database_url = database_url or f"sqlite:///{os.path.join(self.data_dir, 'plumbago.db')}"
        # Only the SQLite file in our own data dir is private; any other URL may be shared with other processes.
        self.private_store = _is_private(self.database_url, self.data_dir)
        self.db = sql.connect(self.database_url)
        self.index = Index()
        self.head = Head()
        self.flushing = Head()           # samples between head and committed SQL rows stay readable here
        self.wal = WAL(os.path.join(self.data_dir, "wal"), fsync=self.options.wal_fsync)
        self.write_lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.create_lock = threading.Lock()
        self._tenant_names: list[str] = []
        self._tenant_no: dict[str, int] = {}
        self.sid_tenant = np.full(1024, -1, np.int32)
        self.sid_interval = np.zeros(1024, np.int32)
        self.sid_last = np.zeros(1024, np.int64)   # last sample time (ms) per series, 0 = none
        self.sid_version = np.zeros(1024, np.int64)   # bumped whenever a series' SQL rows change
        self.sid_flushed = np.full(1024, NO_TS, np.int64)   # newest raw sample time in SQL chunks per series
        self._chunk_dir: OrderedDict = OrderedDict()  # (table, sid, interval) -> (version, row headers)
        self._chunk_dir_lock = threading.Lock()
        self._configs: dict[str, StorageConfig] = {}
        self._config_texts: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = 0.0
        self.stats = {"samples_written": 0, "flushes": 0, "chunks_written": 0, "compaction_rounds": 0,
                      "compaction_last_merged": -1, "rollup_blocks_rewritten": 0, "index_refreshes": 0,
                      "index_series_added": 0, "index_series_removed": 0}
        self.limits = Limits()
        self.cache = ChunkCache(self.options.chunk_cache_bytes)
        self.sql_max_ts = None    # newest sample time in SQL (None = unknown): reads after it skip the SQL query
        self._rate_windows: dict[str, list] = {}   # tenant -> [window start, samples in window, last rate]
        self._refresher = IndexRefresher(self)
        self._deferred = threading.local()    # per thread: the DeferredSync of a deferred_sync() block
        self._delete_epoch = 0                # bumped by delete_series / set_config_text: a refresh that read
        self._config_epoch = 0                # SQL before such a change does not undo it
        self._load()

    # ---- start-up -----------------------------------------------------------------------------------
    def _load(self) -> None:
        with self.db.connect() as conn:
            for row in conn.execute(select(sql.configs)):
                self._config_texts[(row.tenant, row.kind)] = row.text
            rows = conn.execute(select(sql.series.c.id, sql.series.c.tenant, sql.series.c.key,
                                       sql.series.c.interval)).all()
        if rows:
            self._grow(max(r.id for r in rows))
            self._refresher.series_seen.start(max(r.id for r in rows))
        for r in rows:
            self._index_row(r)
        self._load_last_times()
        replayed = 0
        for sids, ts, values in self.wal.replay():
            known = sids < len(self.sid_tenant)
            known[known] = self.sid_tenant[sids[known]] >= 0
            sids, ts, values = sids[known], ts[known], values[known]
            if len(sids):
                self.head.append(sids, ts, values)
                np.maximum.at(self.sid_last, sids, ts)
                replayed += len(sids)
        log.info("loaded %d series, replayed %d samples from the WAL", len(rows), replayed)

    def _load_last_times(self) -> None:
        from sqlalchemy import func
        with self.db.connect() as conn:
            newest = [conn.execute(select(func.max(t.c.max_ts))).scalar() for t in (sql.chunks, sql.rollups)]
            known = [v for v in newest if v is not None]
            # With a shared database another process may write too: only a private SQLite file allows the shortcut.
            if self.private_store:
                self.sql_max_ts = max(known) if known else NO_TS
            self._refresher.chunks_seen.start(conn.execute(select(func.max(sql.chunks.c.id))).scalar() or 0)
            self._refresher.intervals_seen.start(
                conn.execute(select(func.max(sql.interval_changes.c.id))).scalar() or 0)
        self.load_newest_times(None)

    def load_newest_times(self, sids: list[int] | None) -> None:
        """sid_last (and sid_flushed, from raw chunks) of `sids`, or of every series, from the newest chunk and
        rollup rows in SQL."""
        from sqlalchemy import func
        found = []
        with self.db.connect() as conn:
            for table in (sql.chunks, sql.rollups):
                query = select(table.c.series_id, func.max(table.c.max_ts)).group_by(table.c.series_id)
                groups = [None] if sids is None else [sids[i:i + _IN_CHUNK]
                                                      for i in range(0, len(sids), _IN_CHUNK)]
                for group in groups:
                    rows = conn.execute(query if group is None else query.where(table.c.series_id.in_(group)))
                    found.extend((table is sql.chunks, sid, last) for sid, last in rows)
        with self.create_lock:
            for raw, sid, last in found:
                if sid < len(self.sid_tenant) and self.sid_tenant[sid] >= 0:
                    self.sid_last[sid] = max(self.sid_last[sid], last)
                    if raw:
                        self.sid_flushed[sid] = max(self.sid_flushed[sid], last)

    def _index_row(self, row) -> None:
        """Index one series row read from SQL (id, tenant, key, interval)."""
        self.index.tenant(row.tenant).add(row.id, row.key)
        self.sid_tenant[row.id] = self._tenant_id(row.tenant)
        self.sid_interval[row.id] = row.interval

    def _tenant_id(self, tenant: str) -> int:
        no = self._tenant_no.get(tenant)
        if no is None:
            no = self._tenant_no[tenant] = len(self._tenant_names)
            self._tenant_names.append(tenant)
        return no

    def _grow(self, max_sid: int) -> None:
        size = len(self.sid_tenant)
        if max_sid < size:
            return
        new = max(size * 2, max_sid + 1)
        self.sid_tenant = np.concatenate([self.sid_tenant, np.full(new - size, -1, np.int32)])
        self.sid_interval = np.concatenate([self.sid_interval, np.zeros(new - size, np.int32)])
        self.sid_last = np.concatenate([self.sid_last, np.zeros(new - size, np.int64)])
        self.sid_version = np.concatenate([self.sid_version, np.zeros(new - size, np.int64)])
        self.sid_flushed = np.concatenate([self.sid_flushed, np.full(new - size, NO_TS, np.int64)])

    # ---- configs --------------------------------------------------------------------------------------
    def config_text(self, tenant: str, kind: str) -> str | None:
        return self._config_texts.get((tenant, kind))

    def storage_config(self, tenant: str) -> StorageConfig:
        cfg = self._configs.get(tenant)
        if cfg is None:
            cfg = StorageConfig.from_texts(
                self._config_texts.get((tenant, SCHEMAS)) or self._default_texts[0],
                self._config_texts.get((tenant, AGGREGATIONS)) or self._default_texts[1])
            self._configs[tenant] = cfg
        return cfg

    _default_texts = (DEFAULT_SCHEMAS_TEXT, DEFAULT_AGGREGATIONS_TEXT)

    def set_default_config_texts(self, schemas_text: str | None, aggregations_text: str | None) -> None:
        """Server-wide defaults from the config file (validated by the caller)."""
        self._default_texts = (schemas_text or DEFAULT_SCHEMAS_TEXT, aggregations_text or DEFAULT_AGGREGATIONS_TEXT)
        self._configs.clear()

    def set_config_text(self, tenant: str, kind: str, text: str) -> None:
        """Store a validated config; it applies to reads at once (retroactively)."""
        now = int(time.time() * 1000)
        with self.db.begin() as conn:
            conn.execute(delete(sql.configs).where(and_(sql.configs.c.tenant == tenant, sql.configs.c.kind == kind)))
            conn.execute(insert(sql.configs).values(tenant=tenant, kind=kind, text=text, updated_ms=now))
        self._config_texts[(tenant, kind)] = text
        self._configs.pop(tenant, None)
        self._config_epoch += 1

    # ---- write path -------------------------------------------------------------------------------------
    def resolve(self, tenant: str, keys: list[str], intervals=None, units=None, mtypes=None) -> np.ndarray:
        """Series ids for index keys, creating the missing series (committed before they are used)."""
        idx = self.index.tenant(tenant)
        by_key = idx.by_key
        found = list(map(by_key.get, keys))
        if None in found:
            with self.create_lock:
                missing: dict[str, int] = {}
                for i, sid in enumerate(found):
                    if sid is None:
                        sid = by_key.get(keys[i])
                        if sid is None:
                            missing.setdefault(keys[i], i)
                        else:
                            found[i] = sid
                if missing:
                    self._create(tenant, idx, missing, intervals, units, mtypes)
                found = [s if s is not None else by_key[keys[i]] for i, s in enumerate(found)]
        sids = np.fromiter(found, dtype=np.int64, count=len(found))
        if intervals is not None and len(sids):
            changed = self.sid_interval[sids] != intervals
            if changed.any():
                self._update_intervals(sids[changed], np.asarray(intervals)[changed])
        return sids

    def _create(self, tenant: str, idx: TenantIndex, missing: dict[str, int], intervals, units, mtypes) -> None:
        now = int(time.time() * 1000)
        rows = []
        for key, i in missing.items():
            rows.append({"tenant": tenant, "key_hash": sql.key_hash(key), "key": key,
                         "interval": int(intervals[i]) if intervals is not None else 0,
                         "unit": units[i] if units is not None else "",
                         "mtype": mtypes[i] if mtypes is not None else "", "created_ms": now})
        self.limits.check_new_series(tenant, len(idx), [key_to_labels(k) for k in missing])
        created = []
        try:
            with self.db.begin() as conn:
                result = conn.execute(insert(sql.series).returning(sql.series.c.id, sort_by_parameter_order=True), rows)
                created = [(row.id, r) for row, r in zip(result, rows)]
        except IntegrityError:
            # Another process sharing the database created some of them: take each one by one.
            created = [(self._create_one(r), r) for r in rows]
        self._grow(max(sid for sid, _ in created))
        tno = self._tenant_id(tenant)
        for sid, r in created:
            self.sid_tenant[sid] = tno
            self.sid_interval[sid] = r["interval"]
            idx.add(sid, r["key"])

    def _create_one(self, row: dict) -> int:
        cond = and_(sql.series.c.tenant == row["tenant"], sql.series.c.key_hash == row["key_hash"])
        with self.db.begin() as conn:
            existing = conn.execute(select(sql.series.c.id).where(cond)).scalar()
            if existing is not None:
                return existing
            return conn.execute(insert(sql.series).returning(sql.series.c.id), row).scalar()

    def _update_intervals(self, sids: np.ndarray, intervals: np.ndarray) -> None:
        now = int(time.time() * 1000)
        with self.db.begin() as conn:
            for sid, iv in zip(sids.tolist(), intervals.tolist()):
                conn.execute(update(sql.series).where(sql.series.c.id == sid).values(interval=iv))
            conn.execute(insert(sql.interval_changes), [{"series_id": sid, "interval": iv, "changed_ms": now}
                                                       for sid, iv in zip(sids.tolist(), intervals.tolist())])
        self.sid_interval[sids] = intervals

    def write(self, tenant: str, keys: list[str], ts_ms: np.ndarray, values: np.ndarray,
              intervals=None, units=None, mtypes=None) -> int:
        """Durably store one sample per key. Returns the number of samples written."""
        if not keys:
            return 0
        self.limits.take_ingestion(tenant, len(keys))
        sids = self.resolve(tenant, keys, intervals, units, mtypes)
        self._count_ingest(tenant, len(keys))
        return self.write_ids(sids, ts_ms, values)

    def _count_ingest(self, tenant: str, n: int) -> None:
        now = time.monotonic()
        w = self._rate_windows.setdefault(tenant, [now, 0, 0.0])
        if now - w[0] >= 10:
            w[2] = w[1] / (now - w[0])
            w[0], w[1] = now, 0
        w[1] += n

    def ingestion_rate(self, tenant: str) -> float:
        """Samples/s over the last complete 10 s window."""
        w = self._rate_windows.get(tenant)
        if w is None:
            return 0.0
        now = time.monotonic()
        return w[1] / (now - w[0]) if now - w[0] >= 10 else w[2]

    def write_labels(self, tenant: str, label_sets: list, ts_ms: np.ndarray, values: np.ndarray) -> int:
        """Durably store one sample per label set (each a sorted tuple of (name, value) with `__name__`)."""
        if not label_sets:
            return 0
        return self.write(tenant, [series_key(ls) for ls in label_sets], ts_ms, values)

    @contextlib.contextmanager
    def deferred_sync(self):
        """Writes of this thread inside the block fsync only when no other fsync is running; otherwise they
        return before their WAL records are on disk and `state.needed` is set: the caller must then call sync()
        (off this thread) before acknowledging them. Lets a few decoding threads go on with the next request
        instead of queueing behind a slow disk, at no extra cost when the disk keeps up."""
        state = DeferredSync()
        self._deferred.state = state
        try:
            yield state
        finally:
            self._deferred.state = None

    def sync(self) -> None:
        """Return once every write made so far is durable (one fsync shared with concurrent callers)."""
        self.wal.sync_all()

    def write_ids(self, sids: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> int:
        ts_ms = np.asarray(ts_ms, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        with self.write_lock:                    # WAL order is head order
            ticket = self.wal.write(sids, ts_ms, values)
            self.head.append(sids, ts_ms, values)
        deferred = getattr(self._deferred, "state", None)
        if deferred is None:
            self.wal.sync(ticket)                # acknowledged only once durable; fsyncs shared across writers
        elif not self.wal.try_sync(ticket):
            deferred.needed = True
        np.maximum.at(self.sid_last, sids, ts_ms)
        self.stats["samples_written"] += len(sids)
        return len(sids)

    # ---- read path --------------------------------------------------------------------------------------
    def last_times(self, sids: np.ndarray) -> np.ndarray:
        return self.sid_last[sids]

    def interval_of(self, sids: np.ndarray) -> np.ndarray:
        return self.sid_interval[sids]

    def read_raw(self, sids: np.ndarray, start_ms: int, end_ms: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per id: (ts, values) with start_ms <= ts <= end_ms, sorted, one value per timestamp."""
        sids = np.asarray(sids, dtype=np.int64)
        parts: list[list] = [[] for _ in range(len(sids))]
        pos = {sid: i for i, sid in enumerate(sids.tolist())}
        for row, piece in self._read_table(sql.chunks, sids, start_ms, end_ms, None):
            parts[pos[row[1]]].append(piece)
        for i, ts, vals in self._memory_pieces(sids, start_ms, end_ms):
            parts[i].append((ts, vals))
        return [_merge_pieces(p, start_ms, end_ms) for p in parts]

    def read_raw_pieces(self, sids: np.ndarray, start_ms: int, end_ms: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(row, ts, values) pieces of the ids, each sorted and cut to [start_ms, end_ms], in write order (older
        chunks first, the head last) and not merged: for callers that place samples into slots, where the
        later write wins. Pieces may be read-only views of cached chunks."""
        sids = np.asarray(sids, dtype=np.int64)
        pos = {sid: i for i, sid in enumerate(sids.tolist())}
        out = []
        for (_, sid, min_ts, max_ts, _), (ts, vals) in self._read_table(sql.chunks, sids, start_ms, end_ms, None):
            if min_ts < start_ms or max_ts > end_ms:
                a, b = np.searchsorted(ts, (start_ms, end_ms + 1))
                ts, vals = ts[a:b], vals[a:b]
            out.append((pos[sid], ts, vals))
        return out + self._memory_pieces(sids, start_ms, end_ms)

    def read_raw_slots(self, sids: np.ndarray, first_ms: int, step_ms: int, matrix: np.ndarray) -> None:
        """Fill matrix[i, k] (NaN-initialised) with the raw sample of sids[i] in slot first_ms + k*step_ms, as
        storage/slots.py defines slots; chunks are placed through their cached grid forms."""
        n = matrix.shape[1]
        start_ms, end_ms = first_ms - step_ms + 1, first_ms + (n - 1) * step_ms
        sids = np.asarray(sids, dtype=np.int64)
        pos = {sid: i for i, sid in enumerate(sids.tolist())}
        chunks = self._read_table(sql.chunks, sids, start_ms, end_ms, None)
        keys = [("g", step_ms, *row) for row, _ in chunks]
        forms = self.cache.get_many(keys)
        grids = []
        for key, (row, (ts, vals)), form in zip(keys, chunks, forms):
            if form is None:
                form = slots.grid_form(ts, vals, step_ms)
                self.cache.put(key, form, form[1].nbytes)    # counted even when shared with the chunk: a bound
            grids.append((pos[row[1]], form[0], form[1]))
        pieces = self._memory_pieces(sids, start_ms, end_ms)
        slots.place(matrix, first_ms, step_ms, grids, pieces, lambda: self.read_raw_pieces(sids, start_ms, end_ms))

    def _memory_pieces(self, sids: np.ndarray, start_ms: int, end_ms: int) -> list:
        """(row, ts, values) of the samples not yet in SQL: being flushed, then the head (write order)."""
        out = []
        for store in (self.flushing, self.head):
            for i, (ts, vals) in enumerate(store.read(sids, start_ms, end_ms)):
                if len(ts):
                    out.append((i, ts, vals))
        return out

    def read_rollup(self, sids: np.ndarray, interval: int, start_ms: int, end_ms: int):
        """Per id: (bucket_ts, [sum, cnt, min, max, last]) of the archive with `interval` seconds. Buckets
        not yet rolled up (still in the head) are computed from raw samples on the fly."""
        sids = np.asarray(sids, dtype=np.int64)
        interval_ms = interval * 1000
        ts_parts: list[list] = [[] for _ in range(len(sids))]
        col_parts: list[list] = [[] for _ in range(len(sids))]
        pos = {sid: i for i, sid in enumerate(sids.tolist())}
        for row, (ts, cols) in self._read_table(sql.rollups, sids, start_ms, end_ms, interval):
            ts_parts[pos[row[1]]].append(ts)
            col_parts[pos[row[1]]].append(cols)
        # The memory's samples (being flushed, then the head: later write wins) have not been rolled up yet.
        lo_ms = start_ms - interval_ms
        memory: list = [None] * len(sids)
        for i, pieces in enumerate(zip(self.flushing.read(sids, lo_ms, end_ms), self.head.read(sids, lo_ms, end_ms))):
            ts, vals = _merge_pieces(pieces, None, None)
            if len(ts):
                memory[i] = (ts, vals)
                _, bts, cols = rollup.aggregate(np.full(len(ts), sids[i]), ts, vals, interval_ms)
                if len(bts):
                    ts_parts[i].append(bts)
                    col_parts[i].append(cols)
        flushed = self.sid_flushed[sids]
        out = []
        for i, (tsp, colp) in enumerate(zip(ts_parts, col_parts)):
            ts, cols = rollup.merge(tsp, colp)
            if memory[i] is not None and memory[i][0][0] <= flushed[i]:     # rewrites of flushed samples?
                ts, cols = correct_rollup_read(self, int(sids[i]), interval_ms, *memory[i], ts, cols)
            keep = (ts >= start_ms) & (ts <= end_ms)
            out.append((ts[keep], [c[keep] for c in cols]))
        return out

    def _read_table(self, table, sids: np.ndarray, start_ms: int, end_ms: int, interval: int | None):
        """(row header, decoded piece) of the chunk or rollup rows overlapping the range, oldest row first per
        series; a header is (id, series_id, min_ts, max_ts, count). Row headers are read first; only rows
        missing from the cache have their data fetched."""
        c = table.c
        if self.sql_max_ts is not None and start_ms > self.sql_max_ts:
            return []          # everything that recent is still in memory
        kind = "r" if interval is not None else "c"
        with self.db.connect() as conn:
            rows = self._row_headers(conn, table, kind, sids, start_ms, end_ms, interval)
            hits = self.cache.get_many([(kind, *row) for row in rows])
            decoded: dict[int, object] = {row[0]: hit for row, hit in zip(rows, hits) if hit is not None}
            missing = [row[0] for row, hit in zip(rows, hits) if hit is None]
            for lo in range(0, len(missing), _IN_CHUNK):
                for row in conn.execute(select(c.id, c.series_id, c.min_ts, c.max_ts, c.count, c.data)
                                        .where(c.id.in_(missing[lo:lo + _IN_CHUNK]))):
                    if interval is None:
                        piece = codec.decode(row.data)
                        size = piece[0].nbytes + piece[1].nbytes
                    else:
                        piece = codec.decode_columns(row.data)
                        size = piece[0].nbytes + sum(col.nbytes for col in piece[1])
                    decoded[row.id] = piece
                    self.cache.put((kind, row.id, row.series_id, row.min_ts, row.max_ts, row.count), piece, size)
        return [(row, decoded[row[0]]) for row in rows if row[0] in decoded]

    def _row_headers(self, conn, table, kind: str, sids: np.ndarray, start_ms: int, end_ms: int, interval):
        """(id, series_id, min_ts, max_ts, count) of the rows overlapping the range, by series then id. With a
        private store the per-series row lists are kept in memory, checked against `sid_version`, so a repeated
        read costs no SQL query."""
        c = table.c
        extra = [c.interval == interval] if interval is not None else []
        cols = (c.id, c.series_id, c.min_ts, c.max_ts, c.count)
        if self.sql_max_ts is None:        # shared database: other processes change rows behind our back
            rows = []
            for lo in range(0, len(sids), _IN_CHUNK):
                cond = [c.series_id.in_(sids[lo:lo + _IN_CHUNK].tolist()), c.max_ts >= start_ms,
                        c.min_ts <= end_ms, *extra]
                rows.extend(tuple(r) for r in conn.execute(select(*cols).where(and_(*cond))
                                                           .order_by(c.series_id, c.id)))
            return rows
        out, need = [], []
        with self._chunk_dir_lock:
            for sid in sids.tolist():
                entry = self._chunk_dir.get((kind, sid, interval))
                if entry is not None and entry[0] == self.sid_version[sid]:
                    out.extend(r for r in entry[1] if r[3] >= start_ms and r[2] <= end_ms)
                else:
                    need.append(sid)
        if need:
            versions = {sid: int(self.sid_version[sid]) for sid in need}   # before the query: a change during
            found: dict[int, list] = {sid: [] for sid in need}             # it makes the entry stale at once
            for lo in range(0, len(need), _IN_CHUNK):
                cond = [c.series_id.in_(need[lo:lo + _IN_CHUNK]), *extra]
                for r in conn.execute(select(*cols).where(and_(*cond)).order_by(c.series_id, c.id)):
                    found[r[1]].append(tuple(r))
            with self._chunk_dir_lock:
                for sid, headers in found.items():
                    self._chunk_dir[(kind, sid, interval)] = (versions[sid], headers)
                    out.extend(r for r in headers if r[3] >= start_ms and r[2] <= end_ms)
                while len(self._chunk_dir) > 200_000:
                    self._chunk_dir.popitem(last=False)
        return out

    def _changed(self, sids) -> None:
        """Row lists of these series changed in SQL (call after the commit)."""
        self.sid_version[np.asarray(list(sids) if not isinstance(sids, np.ndarray) else sids, dtype=np.int64)] += 1

    def has_rollup(self, sid: int, interval: int) -> bool:
        with self.db.connect() as conn:
            return conn.execute(select(sql.rollups.c.id).where(and_(
                sql.rollups.c.series_id == sid, sql.rollups.c.interval == interval)).limit(1)).first() is not None

    def series_tenant(self, sid: int) -> str | None:
        no = int(self.sid_tenant[sid])
        return self._tenant_names[no] if no >= 0 else None

    # ---- flush, compaction, retention -------------------------------------------------------------------
    def flush(self, everything: bool = False, now_ms: int | None = None) -> int:
        """Move closed blocks (or, with everything=True, all samples) from the head into SQL."""
        with self.flush_lock:
            now_ms = now_ms or int(time.time() * 1000)
            block_ms = self.options.block_seconds * 1000
            if everything or len(self.head) > self.options.max_head_samples:
                cutoff = None
            else:
                cutoff = (now_ms - self.options.flush_grace * 1000) // block_ms * block_ms
            with self.write_lock:
                seq = self.wal.rotate()
                sids, ts, values = self.head.take_before(cutoff)
                self.flushing.append(sids, ts, values)
            alive = self.sid_tenant[sids] >= 0           # drop samples of series deleted meanwhile
            if not alive.all():
                sids, ts, values = sids[alive], ts[alive], values[alive]
            done = 0
            try:
                # Slices bound the transient memory of encoding and rollups to a slice, not the whole flush.
                for a, b in _series_slices(sids, self.options.flush_slice_samples):
                    self._write_blocks(sids[a:b], ts[a:b], values[a:b])
                    done = b
            except Exception:
                self.flushing.take_before(None)
                self.head.restore(sids[done:], ts[done:], values[done:])    # committed slices stay in SQL
                raise
            self.flushing.take_before(None)
            self.wal.checkpoint([self.head.snapshot()], before_seq=seq)
            self.stats["flushes"] += 1
            return len(sids)

    def _write_blocks(self, sids, ts, values) -> None:
        block_ms = self.options.block_seconds * 1000
        blocks = ts // block_ms * block_ms
        bounds = np.flatnonzero(np.r_[True, (sids[1:] != sids[:-1]) | (blocks[1:] != blocks[:-1]), True])
        rows = []
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            rows.append({"series_id": int(sids[a]), "block_start": int(blocks[a]), "min_ts": int(ts[a]),
                         "max_ts": int(ts[b - 1]), "count": b - a, "data": codec.encode(ts[a:b], values[a:b])})
        rollup_rows = self._rollup_rows(sids, ts, values)
        replaced = rewrite_overwritten(self, sids, ts, values, rollup_rows)
        if self.sql_max_ts is not None and len(ts):
            # raise the bound before the rows become visible, so no reader can skip them
            newest = int(ts.max())
            if rollup_rows:
                newest = max(newest, max(r["max_ts"] for r in rollup_rows))
            self.sql_max_ts = max(self.sql_max_ts, newest)
        with self.db.begin() as conn:
            for lo in range(0, len(replaced), _IN_CHUNK):
                conn.execute(delete(sql.rollups).where(sql.rollups.c.id.in_(replaced[lo:lo + _IN_CHUNK])))
            if rows:
                conn.execute(insert(sql.chunks), rows)
            if rollup_rows:
                conn.execute(insert(sql.rollups), rollup_rows)
        self._changed(np.unique(sids))
        if len(sids):
            last = np.r_[sids[1:] != sids[:-1], True]       # sorted by (id, ts): the newest sample per series
            ends, newest = sids[last], ts[last]              # (unique ids: no ufunc.at needed)
            with self.create_lock:                          # (_grow replaces the arrays under this lock)
                self.sid_flushed[ends] = np.maximum(self.sid_flushed[ends], newest)
        self.stats["chunks_written"] += len(rows)

    def _archive_intervals(self, sid: int) -> list[int]:
        tenant = self._tenant_names[self.sid_tenant[sid]]
        idx = self.index.tenant(tenant)
        key = idx.key_of.get(sid)
        if key is None:
            return []
        schema = self.storage_config(tenant).schema_for(_schema_name(key))
        return [r.interval for r in schema.retentions[1:]]

    def _rollup_rows(self, sids, ts, values) -> list[dict]:
        if len(sids) == 0:
            return []
        uniq, first = np.unique(sids, return_index=True)
        counts = np.diff(np.r_[first, len(sids)])
        by_interval: dict[int, np.ndarray] = {}
        for j, sid in enumerate(uniq.tolist()):
            for iv in self._archive_intervals(sid):
                by_interval.setdefault(iv, np.zeros(len(uniq), bool))[j] = True
        rows = []
        for iv, series_mask in by_interval.items():
            mask = np.repeat(series_mask, counts)
            b_sids, b_ts, cols = rollup.aggregate(sids[mask], ts[mask], values[mask], iv * 1000)
            if len(b_sids) == 0:
                continue        # nothing but NaN (stale markers): no bucket
            span = iv * 1000 * self.options.rollup_block_points
            blocks = b_ts // span * span
            bounds = np.flatnonzero(np.r_[True, (b_sids[1:] != b_sids[:-1]) | (blocks[1:] != blocks[:-1]), True])
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                rows.append({"series_id": int(b_sids[a]), "interval": iv, "block_start": int(blocks[a]),
                             "min_ts": int(b_ts[a]), "max_ts": int(b_ts[b - 1]), "count": b - a,
                             "data": codec.encode_columns(b_ts[a:b], [c[a:b] for c in cols])})
        return rows

    def compact(self, now_ms: int | None = None, max_groups: int = 10000) -> int:
        """Merge raw chunks: first the pieces of each closed block, then every closed block into its window of
        `compaction_spans` (12 h, then a day) as soon as the block closes, so the window's chunk grows block by
        block and a dashboard's "last 24 h" reads about two chunks per series instead of a dozen. Returns the
        number of merged groups."""
        now_ms = now_ms or int(time.time() * 1000)
        grace = self.options.flush_grace * 1000
        block = self.options.block_seconds * 1000
        closed_blocks = (now_ms - grace) // block * block    # blocks starting before this have ended
        merged = 0
        for span_s in (self.options.block_seconds, *self.options.compaction_spans):
            merged += self._merge_windows(span_s * 1000, closed_blocks, max_groups - merged)
            if merged >= max_groups:
                return merged
        return merged + self._merge_rollup_pieces(now_ms - grace, max_groups - merged)

    def _merge_rollup_pieces(self, closed_at: int, limit: int) -> int:
        """Each flush adds a rollup row per series and archive; fold the rows of finished rollup blocks."""
        from sqlalchemy import func, literal
        c = sql.rollups.c
        block_end = c.block_start + c.interval * literal(1000 * self.options.rollup_block_points)
        with self.flush_lock:
            with self.db.connect() as conn:
                groups = conn.execute(
                    select(c.series_id, c.interval, c.block_start).where(block_end <= closed_at)
                    .group_by(c.series_id, c.interval, c.block_start)
                    .having(func.count() > 1).limit(max(limit, 0))).all()
            for sid, interval, block in groups:
                with self.db.begin() as conn:
                    cond = and_(c.series_id == sid, c.interval == interval, c.block_start == block)
                    pieces = [codec.decode_columns(r.data) for r in
                              conn.execute(select(c.data).where(cond).order_by(c.id))]
                    ts, cols = rollup.merge([p[0] for p in pieces], [p[1] for p in pieces])
                    conn.execute(delete(sql.rollups).where(cond))
                    if len(ts):
                        conn.execute(insert(sql.rollups).values(
                            series_id=sid, interval=interval, block_start=block, min_ts=int(ts[0]),
                            max_ts=int(ts[-1]), count=len(ts), data=codec.encode_columns(ts, cols)))
                self._changed([sid])
        return len(groups)

    def _merge_windows(self, span: int, closed_blocks: int, limit: int) -> int:
        """Fold the rows of each window of `span` holding more than one row of closed blocks into one row.
        Rows are merged in id (write) order, the later write winning, and the whole window at once, so no
        row can jump ahead of an older one it overlaps."""
        from sqlalchemy import case, func, literal
        c = sql.chunks.c
        window = (c.block_start - c.block_start % literal(span)).label("window")
        with self.flush_lock:
            with self.db.connect() as conn:
                # Only closed rows count: rows of a still open block (a forced flush) are merged along, but
                # do not trigger a merge, so a busy head flushed every round cannot rewrite a day each round.
                closed_rows = func.sum(case((c.block_start < closed_blocks, 1), else_=0))
                groups = conn.execute(
                    select(c.series_id, window)
                    .group_by(c.series_id, window)
                    .having(closed_rows > 1)
                    .limit(max(limit, 0))).all()
            for sid, start in groups:
                with self.db.begin() as conn:
                    cond = and_(c.series_id == sid, c.block_start >= start, c.block_start < start + span)
                    pieces = conn.execute(select(c.data).where(cond).order_by(c.id)).all()
                    ts, vals = _merge_pieces([codec.decode(p.data) for p in pieces], None, None)
                    conn.execute(delete(sql.chunks).where(cond))
                    if len(ts):
                        conn.execute(insert(sql.chunks).values(
                            series_id=sid, block_start=int(start), min_ts=int(ts[0]), max_ts=int(ts[-1]),
                            count=len(ts), data=codec.encode(ts, vals)))
                self._changed([sid])
        return len(groups)

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete raw chunks and rollup rows older than their archive's TTL (per series schema)."""
        now_ms = now_ms or int(time.time() * 1000)
        ttl_groups: dict[tuple, list[int]] = {}
        for tenant, idx in list(self.index.tenants.items()):
            cfg = self.storage_config(tenant)
            for sid, key in list(idx.key_of.items()):
                schema = cfg.schema_for(_schema_name(key))
                ttls = tuple((i, r.interval, r.ttl) for i, r in enumerate(schema.retentions))
                ttl_groups.setdefault(ttls, []).append(sid)
        deleted = 0
        with self.db.begin() as conn:
            for ttls, ids in ttl_groups.items():
                for lo in range(0, len(ids), _IN_CHUNK):
                    chunk_ids = ids[lo:lo + _IN_CHUNK]
                    for i, interval, ttl in ttls:
                        cutoff = now_ms - ttl * 1000
                        if i == 0:
                            res = conn.execute(delete(sql.chunks).where(and_(
                                sql.chunks.c.series_id.in_(chunk_ids), sql.chunks.c.max_ts < cutoff)))
                        else:
                            res = conn.execute(delete(sql.rollups).where(and_(
                                sql.rollups.c.series_id.in_(chunk_ids), sql.rollups.c.interval == interval,
                                sql.rollups.c.max_ts < cutoff)))
                        deleted += res.rowcount or 0
            conn.execute(delete(sql.interval_changes).where(
                sql.interval_changes.c.changed_ms < now_ms - INTERVAL_CHANGES_KEPT_MS))
        for ids in ttl_groups.values():
            self._changed(ids)
        return deleted

    # ---- deletion --------------------------------------------------------------------------------------
    def delete_series(self, tenant: str, sids) -> int:
        sids = [int(s) for s in sids]
        if not sids:
            return 0
        with self.create_lock:
            removed = self.index.tenant(tenant).remove(sids)
            self._forget(sids)
            self._delete_epoch += 1
        with self.db.begin() as conn:
            for lo in range(0, len(sids), _IN_CHUNK):
                ids = sids[lo:lo + _IN_CHUNK]
                conn.execute(delete(sql.chunks).where(sql.chunks.c.series_id.in_(ids)))
                conn.execute(delete(sql.rollups).where(sql.rollups.c.series_id.in_(ids)))
                conn.execute(delete(sql.series).where(sql.series.c.id.in_(ids)))
        self._changed(sids)
        return removed

    def _forget(self, sids) -> None:
        """Mark series as gone in the per-series arrays (the caller holds create_lock and updates the index)."""
        self.sid_tenant[sids] = -1
        self.sid_last[sids] = 0
        self.sid_flushed[sids] = NO_TS

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="plumbago-maintenance", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        refresh = self.options.index_refresh_seconds if not self.private_store else 0
        next_flush = time.monotonic() + self.options.flush_interval
        next_refresh = time.monotonic() + refresh if refresh > 0 else float("inf")
        while not self._stop.wait(max(0.0, min(next_flush, next_refresh) - time.monotonic())):
            if time.monotonic() >= next_refresh:
                try:
                    self.refresh_index()
                except Exception:
                    log.exception("index refresh failed")
                next_refresh = time.monotonic() + refresh
            if time.monotonic() < next_flush:
                continue
            try:
                self.flush()
                self.stats["compaction_last_merged"] = self.compact()
                self.stats["compaction_rounds"] += 1
                if time.time() - self._last_retention >= self.options.retention_interval:
                    self.apply_retention()
                    self._last_retention = time.time()
            except Exception:   # keep the loop alive; the next round retries
                log.exception("maintenance round failed")
            next_flush = time.monotonic() + self.options.flush_interval

    # ---- other processes sharing the database ------------------------------------------------------------
    def refresh_index(self) -> int:
        """Catch up with other processes sharing the database; returns the number of series added or removed."""
        return self._refresher.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush(everything=True)
        self.wal.close()
        self.db.dispose()


def _is_private(url: str, data_dir: str) -> bool:
    """Whether the store is the embedded SQLite database of this data dir (or in memory), which no other
    process uses: only then may in-memory summaries of the SQL rows (newest time, row directory) be trusted."""
    if not url.startswith("sqlite"):
        return False
    path = url.split("///", 1)[-1] if "///" in url else ""
    if path in ("", ":memory:"):
        return True
    return os.path.abspath(path) == os.path.join(data_dir, "plumbago.db")


def _schema_name(key: str) -> str:
    """The text storage-schemas patterns are matched against: the Graphite name (tags included)."""
    if key.startswith("\x00"):
        labels = key_to_labels(key)
        return metric_name(labels)
    return key


def _series_slices(sids: np.ndarray, size: int) -> list[tuple[int, int]]:
    """[a, b) ranges of about `size` samples of sids (sorted), never splitting one series' samples."""
    n = len(sids)
    if n <= size:
        return [(0, n)] if n else []
    cuts = np.unique(np.searchsorted(sids, sids[size::size], "left")).tolist()
    bounds = [0] + [c for c in cuts if c > 0] + [n]
    return list(zip(bounds[:-1], bounds[1:]))


def _merge_pieces(pieces: list, start_ms, end_ms):
    if not pieces:
        return np.empty(0, np.int64), np.empty(0)
    by_start = sorted((p for p in pieces if len(p[0])), key=lambda p: p[0][0])
    if len(pieces) == 1:
        ts, vals = pieces[0]
    elif all(a[0][-1] < b[0][0] for a, b in zip(by_start, by_start[1:])):
        # disjoint pieces (the usual case: one chunk per block): order by time, nothing to sort or dedupe
        ts = np.concatenate([p[0] for p in by_start]) if by_start else np.empty(0, np.int64)
        vals = np.concatenate([p[1] for p in by_start]) if by_start else np.empty(0)
    else:
        ts, vals = last_write_wins(pieces)
    if start_ms is not None:
        keep = (ts >= start_ms) & (ts <= end_ms)
        if not keep.all():
            ts, vals = ts[keep], vals[keep]
    return ts, vals


__all__ = ["Storage", "EngineOptions", "series_key", "SCHEMAS", "AGGREGATIONS"]
