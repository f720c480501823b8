
import numpy as np
import pytest

from storage.engine import SCHEMAS, EngineOptions, Storage
from tests.conftest import empty_postgres_url

T0 = 1_700_000_000_000   # ms, on a 2 h block boundary? (not required)


def open_storage(path, url=None, **opts):
    return Storage(str(path), url, EngineOptions(flush_interval=3600, **opts))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return None
    return empty_postgres_url()


def write_series(st, names, n, step_ms=10_000, start=T0, tenant="anonymous"):
    for i in range(n):
        ts = np.full(len(names), start + i * step_ms, np.int64)
        st.write(tenant, names, ts, np.arange(len(names), dtype=float) + i, intervals=np.full(len(names), 10))


def test_write_read_head_then_flushed(tmp_path, db_url):
    st = open_storage(tmp_path, db_url)
    write_series(st, ["a.b", "a.c;dc=east"], 100)
    sids = st.resolve("anonymous", ["a.b", "a.c;dc=east"])
    before = st.read_raw(sids, T0, T0 + 99 * 10_000)
    assert [len(ts) for ts, _ in before] == [100, 100]
    st.flush(everything=True)
    assert len(st.head) == 0
    after = st.read_raw(sids, T0, T0 + 99 * 10_000)
    for (t1, v1), (t2, v2) in zip(before, after):
        assert t1.tolist() == t2.tolist() and v1.tolist() == v2.tolist()
    st.close()


def test_restart_restores_index_data_and_configs(tmp_path, db_url):
    st = open_storage(tmp_path, db_url)
    write_series(st, ["x.y"], 10)
    st.flush(everything=True)
    write_series(st, ["x.y"], 5, start=T0 + 10 * 10_000)   # in the WAL only
    st.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 10s:1d,1m:7d\n")
    st.wal.close()                                            # no flush: simulate a crash
    st2 = open_storage(tmp_path, db_url)
    sid = st2.resolve("anonymous", ["x.y"])
    (ts, vals), = st2.read_raw(sid, T0, T0 + 10**9)
    assert len(ts) == 15 and vals[9] == 9 and vals[-1] == 4
    assert st2.config_text("anonymous", SCHEMAS).startswith("[all]")
    assert [r.interval for r in st2.storage_config("anonymous").schema_for("x.y").retentions] == [10, 60]
    st2.close()


def test_last_write_wins_across_flush(tmp_path):
    st = open_storage(tmp_path)
    st.write("anonymous", ["m"], np.array([T0]), np.array([1.0]))
    st.flush(everything=True)
    st.write("anonymous", ["m"], np.array([T0]), np.array([2.0]))
    sid = st.resolve("anonymous", ["m"])
    assert st.read_raw(sid, T0, T0)[0][1].tolist() == [2.0]
    st.flush(everything=True)
    assert st.read_raw(sid, T0, T0)[0][1].tolist() == [2.0]
    assert st.compact(now_ms=T0 + 10**9) >= 1
    assert st.read_raw(sid, T0, T0)[0][1].tolist() == [2.0]
    st.close()


def test_rollups_keep_all_aggregates(tmp_path, db_url):
    st = open_storage(tmp_path, db_url)
    st.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 10s:1d,60s:30d\n")
    start = (T0 // 60_000) * 60_000
    # 12 samples over two minute buckets: values 0..11, one NaN that must not count
    vals = np.arange(12, dtype=float)
    vals[3] = np.nan
    st.write("anonymous", ["r"] * 12, start + 10_000 * np.arange(1, 13), vals)
    sid = st.resolve("anonymous", ["r"])
    live = st.read_rollup(sid, 60, start, start + 120_000)[0]   # computed from the head
    st.flush(everything=True)
    ts, cols = st.read_rollup(sid, 60, start, start + 120_000)[0]
    assert ts.tolist() == [start + 60_000, start + 120_000] == live[0].tolist()
    total, count, low, high, last = cols
    assert total.tolist() == [0 + 1 + 2 + 4 + 5, 6 + 7 + 8 + 9 + 10 + 11]
    assert count.tolist() == [5, 6] and low.tolist() == [0, 6] and high.tolist() == [5, 11]
    assert last.tolist() == [5, 11]
    for a, b in zip(cols, live[1]):
        assert a.tolist() == b.tolist()
    st.close()


def test_retention_deletes_old_chunks(tmp_path):
    st = open_storage(tmp_path)
    st.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 10s:1h,1m:2h\n")
    write_series(st, ["old"], 10)
    st.flush(everything=True)
    sid = st.resolve("anonymous", ["old"])
    assert len(st.read_raw(sid, 0, T0 + 10**9)[0][0]) == 10
    assert st.apply_retention(now_ms=T0 + 3 * 3600_000) >= 2   # raw chunk and rollup rows are gone
    assert len(st.read_raw(sid, 0, T0 + 10**9)[0][0]) == 0
    st.close()


def test_delete_series(tmp_path):
    st = open_storage(tmp_path)
    write_series(st, ["d.a", "d.b"], 3)
    st.flush(everything=True)
    sids = st.resolve("anonymous", ["d.a", "d.b"])
    assert st.delete_series("anonymous", sids[:1]) == 1
    assert "d.a" not in st.index.tenant("anonymous").by_key
    st.close()
    st2 = open_storage(tmp_path)
    assert "d.a" not in st2.index.tenant("anonymous").by_key
    assert "d.b" in st2.index.tenant("anonymous").by_key
    st2.close()


def test_tenants_are_separate(tmp_path):
    st = open_storage(tmp_path)
    st.write("t1", ["same.name"], np.array([T0]), np.array([1.0]))
    st.write("t2", ["same.name"], np.array([T0]), np.array([2.0]))
    s1 = st.resolve("t1", ["same.name"])
    s2 = st.resolve("t2", ["same.name"])
    assert s1[0] != s2[0]
    assert st.read_raw(s1, T0, T0)[0][1].tolist() == [1.0]
    assert st.read_raw(s2, T0, T0)[0][1].tolist() == [2.0]
    st.close()


def test_prometheus_labels_share_the_graphite_index(tmp_path):
    from storage.matchers import Matcher
    from storage.querier import Querier
    st = open_storage(tmp_path)
    st.write_labels("anonymous", [(("__name__", "up"), ("job", "a;b")), (("__name__", "a.b.c"),)],
                    np.array([T0, T0]), np.array([1.0, 2.0]))
    st.write("anonymous", ["a.b.c"], np.array([T0 + 1000]), np.array([3.0]))   # Graphite side, same series
    q = Querier(st, "anonymous")
    got = q.select([Matcher("__name__", "=", "a.b.c")], T0, T0 + 1000)
    assert len(got) == 1 and got[0].values.tolist() == [2.0, 3.0]
    (up,) = q.select([Matcher("job", "=~", "a;.*")], T0, T0)
    assert up.labels == (("__name__", "up"), ("job", "a;b"))
    st.close()


def test_compaction_merges_closed_windows(tmp_path):
    st = open_storage(tmp_path)
    day = 86_400_000
    start = (T0 // day) * day
    # two days of 10-minute samples, flushed block by block (2 h chunks)
    for i in range(0, 288, 12):
        st.write("anonymous", ["cm"] * 12, start + 600_000 * np.arange(i, i + 12), np.arange(i, i + 12, dtype=float))
        st.flush(everything=True)
    sid = st.resolve("anonymous", ["cm"])
    before = st.read_raw(sid, start, start + 2 * day)[0]
    from sqlalchemy import func, select
    from storage import sql
    count = lambda: st.db.connect().execute(select(func.count()).select_from(sql.chunks)).scalar()
    assert count() == 24
    st.compact(now_ms=start + 2 * day + 3_600_000)      # both days are closed
    assert count() == 2
    after = st.read_raw(sid, start, start + 2 * day)[0]
    assert after[0].tolist() == before[0].tolist() and after[1].tolist() == before[1].tolist()
    st.close()


def test_closed_blocks_grow_the_open_window_chunk(tmp_path):
    """Closed 2 h blocks join their day's chunk as they close (rows of a block still open, from a forced
    flush, are merged along but do not trigger a merge); a later write to a merged window still wins."""
    st = open_storage(tmp_path)
    day, block = 86_400_000, 7_200_000
    start = (T0 // day) * day
    from sqlalchemy import select
    from storage import sql
    rows = lambda: st.db.connect().execute(
        select(sql.chunks.c.block_start).order_by(sql.chunks.c.block_start)).scalars().all()
    for b in range(3):                         # three blocks of 10-minute samples, flushed one by one
        st.write("anonymous", ["gw"] * 12, start + b * block + 600_000 * np.arange(12), np.full(12, float(b)))
        st.flush(everything=True)
    assert len(rows()) == 3
    after = start + st.options.flush_grace * 1000 + 60_000    # when a block's end is past the grace
    st.compact(now_ms=after + block)                    # only the first block is closed: nothing to fold
    assert len(rows()) == 3
    st.compact(now_ms=after + 2 * block)                # two closed: folded, the open block's row along
    assert rows() == [start]
    st.compact(now_ms=after + 3 * block)                # one row: nothing more to do
    assert rows() == [start]
    st.write("anonymous", ["gw"], np.array([start + block]), np.array([42.0]))   # a late overwrite
    st.write("anonymous", ["gw"] * 12, start + 3 * block + 600_000 * np.arange(12), np.full(12, 3.0))
    st.flush(everything=True)
    st.compact(now_ms=after + 4 * block)
    assert rows() == [start]
    sid = st.resolve("anonymous", ["gw"])
    ts, vals = st.read_raw(sid, start, start + day)[0]
    assert len(ts) == 48 and vals[12] == 42.0 and vals[:12].tolist() == [0.0] * 12 and vals[-1] == 3.0
    st.close()


def test_rollup_pieces_are_folded(tmp_path):
    st = open_storage(tmp_path)
    st.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 10s:1d,60s:30d\n")
    start = (T0 // 86_400_000) * 86_400_000
    for i in range(4):                      # four flushes: four rollup rows in the same rollup block
        st.write("anonymous", ["rp"] * 6, start + 10_000 * np.arange(6 * i + 1, 6 * i + 7), np.ones(6))
        st.flush(everything=True)
    sid = st.resolve("anonymous", ["rp"])
    before = st.read_rollup(sid, 60, start, start + 3_600_000)[0]
    st.compact(now_ms=start + 3 * 86_400_000)
    from sqlalchemy import func, select
    from storage import sql
    assert st.db.connect().execute(select(func.count()).select_from(sql.rollups)).scalar() == 1
    after = st.read_rollup(sid, 60, start, start + 3_600_000)[0]
    assert after[0].tolist() == before[0].tolist() == [start + 60_000 * k for k in range(1, 5)]
    assert [c.tolist() for c in after[1]] == [c.tolist() for c in before[1]]
    assert after[1][1].tolist() == [6, 6, 6, 6]
    st.close()


def test_in_memory_row_directory_follows_every_change(tmp_path):
    st = open_storage(tmp_path)
    st.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 10s:1h,1m:2h\n")
    sid = st.resolve("anonymous", ["dir.s"])
    read = lambda: st.read_raw(sid, 0, T0 + 10**9)[0][1].tolist()
    st.write("anonymous", ["dir.s"], np.array([T0]), np.array([1.0]))
    st.flush(everything=True)
    assert read() == [1.0]                                   # directory filled from SQL
    st.write("anonymous", ["dir.s"], np.array([T0 + 10_000]), np.array([2.0]))
    st.flush(everything=True)
    assert read() == [1.0, 2.0]                              # a flush of the same series is seen
    st.compact(now_ms=T0 + 10**9)
    assert read() == [1.0, 2.0]                              # rows rewritten by compaction are seen
    st.apply_retention(now_ms=T0 + 3 * 3_600_000)
    assert read() == []                                      # rows deleted by retention are gone
    st.close()


def test_flush_in_slices_of_whole_series(tmp_path, monkeypatch):
    from storage.engine import _series_slices
    sids = np.repeat(np.arange(5), [3, 1, 4, 2, 5])
    for size in (1, 2, 4, 7, 15, 100):
        slices = _series_slices(sids, size)
        assert slices[0][0] == 0 and slices[-1][1] == len(sids)
        assert all(b == c for (_, b), (c, _) in zip(slices, slices[1:]))
        assert all(a == 0 or sids[a] != sids[a - 1] for a, _ in slices)       # no series split
    assert _series_slices(sids[:0], 4) == []
    st = open_storage(tmp_path, flush_slice_samples=25)
    names = [f"sl.{i}" for i in range(10)]
    write_series(st, names, 12)
    calls = []
    real = st._write_blocks
    monkeypatch.setattr(st, "_write_blocks", lambda s, t, v: calls.append(len(s)) or real(s, t, v))
    st.flush(everything=True)
    assert calls == [24, 24, 24, 24, 24] and len(st.head) == 0
    sids = st.resolve("anonymous", names)
    assert [len(t) for t, _ in st.read_raw(sids, T0, T0 + 11 * 10_000)] == [12] * 10
    st.close()


def test_failed_flush_slice_puts_back_only_what_was_not_committed(tmp_path, monkeypatch):
    st = open_storage(tmp_path, flush_slice_samples=20)
    names = [f"fs.{i}" for i in range(6)]
    write_series(st, names, 10)
    real, calls = st._write_blocks, []

    def failing(s, t, v):
        calls.append(len(s))
        if len(calls) == 2:
            raise RuntimeError("database went away")
        real(s, t, v)
    monkeypatch.setattr(st, "_write_blocks", failing)
    with pytest.raises(RuntimeError):
        st.flush(everything=True)
    assert len(st.head) == 60 - calls[0] and len(st.flushing) == 0
    sids = st.resolve("anonymous", names)
    assert [len(t) for t, _ in st.read_raw(sids, T0, T0 + 9 * 10_000)] == [10] * 6
    monkeypatch.setattr(st, "_write_blocks", real)
    st.flush(everything=True)
    got = st.read_raw(sids, T0, T0 + 9 * 10_000)
    assert [v.tolist() for _, v in got] == [[float(j + i) for i in range(10)] for j in range(6)]
    st.close()


def test_deferred_sync_leaves_the_disk_wait_to_the_caller_only_when_an_fsync_is_running(tmp_path, monkeypatch):
    from storage import wal as wal_module
    st = open_storage(tmp_path)
    fsyncs = []
    real = wal_module.os.fsync
    monkeypatch.setattr(wal_module.os, "fsync", lambda fd: fsyncs.append(fd) or real(fd))
    with st.deferred_sync() as deferred:       # the disk is free: synced right away, nothing left to do
        write_series(st, ["ds.a", "ds.b"], 2)
    assert not deferred.needed and len(fsyncs) == 2 and st.wal._synced == st.wal._written
    st.wal._sync_lock.acquire()                # as while another writer's fsync runs
    try:
        with st.deferred_sync() as deferred:
            write_series(st, ["ds.a"], 3, start=T0 + 100_000)
        assert deferred.needed and len(fsyncs) == 2 and st.wal._synced < st.wal._written
    finally:
        st.wal._sync_lock.release()
    st.sync()                                   # the caller's sync: one fsync covers the three writes
    assert len(fsyncs) == 3 and st.wal._synced == st.wal._written
    st.sync()                                   # nothing new: no fsync
    assert len(fsyncs) == 3
    st.close()
