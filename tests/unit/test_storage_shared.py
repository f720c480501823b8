"""Several Storage instances (processes) on one database: each picks up the series, data, deletions and configs
of the others with `refresh_index` (run by the maintenance loop every `index_refresh_seconds`)."""
import time

import numpy as np
import pytest

from storage.engine import SCHEMAS, EngineOptions, Storage
from storage.refresh import IdWatermark
from tests.conftest import empty_postgres_url

T0 = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'plumbago.db'}"
    return empty_postgres_url()


def open_storage(path, url, **opts):
    return Storage(str(path), url, EngineOptions(flush_interval=3600, **opts))


def write(st, names, ts, values, tenant="anonymous"):
    st.write(tenant, names, np.asarray(ts, np.int64), np.asarray(values, float))


def test_private_store_is_only_the_data_dir_sqlite(tmp_path):
    st = Storage(str(tmp_path / "a"))
    assert st.private_store and st.sql_max_ts is not None
    st.close()
    st = Storage(str(tmp_path / "a"), f"sqlite:///{tmp_path / 'a' / 'plumbago.db'}")
    assert st.private_store
    st.close()
    st = Storage(str(tmp_path / "b"), f"sqlite:///{tmp_path / 'a' / 'plumbago.db'}")
    assert not st.private_store and st.sql_max_ts is None    # another data dir's file: maybe shared
    st.close()


def test_refresh_finds_series_created_elsewhere(tmp_path, shared_url):
    a = open_storage(tmp_path / "a", shared_url)
    write(a, ["old.one"], [T0], [1.0])
    a.flush(everything=True)
    b = open_storage(tmp_path / "b", shared_url)
    assert "old.one" in b.index.tenant("anonymous").by_key        # at start-up, as before
    # created by A after B started: B's own series get ids in between, new tenant included
    write(a, ["new.one", "new.two;dc=east"], [T0 + 10_000] * 2, [2.0, 3.0])
    write(b, ["b.own"], [T0], [9.0])
    write(a, ["t2.series"], [T0], [4.0], tenant="t2")
    write(a, ["old.one"], [T0 + 20_000], [5.0])
    a.flush(everything=True)
    a.set_config_text("anonymous", SCHEMAS, "[all]\npattern = .*\nretentions = 10s:1d,60s:30d\n")
    assert "new.one" not in b.index.tenant("anonymous").by_key
    assert b.refresh_index() == 3
    idx = b.index.tenant("anonymous")
    assert {"new.one", "new.two;dc=east", "b.own", "old.one"} <= set(idx.by_key)
    assert "t2.series" in b.index.tenant("t2").by_key
    sids = b.resolve("anonymous", ["new.one", "new.two;dc=east", "old.one"])
    assert sids.tolist() == a.resolve("anonymous", ["new.one", "new.two;dc=east", "old.one"]).tolist()
    got = b.read_raw(sids, T0, T0 + 60_000)
    assert [v.tolist() for _, v in got] == [[2.0], [3.0], [1.0, 5.0]]
    # newest sample times follow A's flushes, so the series pass render's from/until filter (rollup rows may
    # count too, as at start-up: their bucket stamps can be later than the samples)
    assert (b.last_times(sids) >= [T0 + 10_000, T0 + 10_000, T0 + 20_000]).all()
    t2 = b.resolve("t2", ["t2.series"])
    assert b.read_raw(t2, T0, T0)[0][1].tolist() == [4.0]
    assert b.series_tenant(int(t2[0])) == "t2"
    from storage.matchers import Matcher
    assert b.index.tenant("anonymous").select([Matcher("dc", "=", "east")]).tolist() == [sids[1]]
    assert [r.interval for r in b.storage_config("anonymous").schema_for("x").retentions] == [10, 60]
    assert b.refresh_index() == 0                                  # nothing new
    a.close()
    b.close()


def test_refresh_drops_series_deleted_elsewhere(tmp_path, shared_url):
    a = open_storage(tmp_path / "a", shared_url)
    write(a, ["d.a", "d.b", "d.c"], [T0] * 3, [1.0, 2.0, 3.0])
    a.flush(everything=True)
    b = open_storage(tmp_path / "b", shared_url)
    gone = a.resolve("anonymous", ["d.a", "d.c"])
    assert a.delete_series("anonymous", gone) == 2
    assert b.refresh_index() == 2
    idx = b.index.tenant("anonymous")
    assert set(idx.by_key) == {"d.b"}
    assert (b.sid_tenant[gone] == -1).all() and (b.last_times(gone) == 0).all()
    # a write to the deleted name on B makes a new series, as on A
    write(b, ["d.a"], [T0 + 1000], [7.0])
    assert b.resolve("anonymous", ["d.a"])[0] not in gone.tolist()
    assert b.refresh_index() == 0
    a.close()
    b.close()


def test_the_maintenance_loop_refreshes(tmp_path, shared_url):
    a = open_storage(tmp_path / "a", shared_url)
    b = open_storage(tmp_path / "b", shared_url, index_refresh_seconds=0.1)
    b.start()
    try:
        write(a, ["loop.s"], [T0], [1.5])
        a.flush(everything=True)
        deadline = time.time() + 10
        while b.stats["index_series_added"] < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert "loop.s" in b.index.tenant("anonymous").by_key
        sid = b.resolve("anonymous", ["loop.s"])
        assert b.read_raw(sid, T0, T0)[0][1].tolist() == [1.5]
        assert b.stats["flushes"] == 0             # flushing keeps its own period
    finally:
        a.close()
        b.close()


def test_private_store_does_not_refresh_in_the_loop(tmp_path):
    st = Storage(str(tmp_path / "p"), None, EngineOptions(flush_interval=3600, index_refresh_seconds=0.05))
    st.start()
    time.sleep(0.3)
    assert st.stats["index_refreshes"] == 0
    st.close()


def test_id_watermark_rereads_gaps_for_a_while():
    w = IdWatermark(grace=60)
    w.start(10)
    w.advance(np.array([11, 12, 14, 15]), now=0.0)        # 13: a transaction not committed yet
    assert (w.low, w.high, w.pending) == (12, 15, True)
    w.advance(np.array([14, 15, 16]), now=5.0)           # still missing
    assert (w.low, w.high) == (12, 16)
    w.advance(np.array([13, 14, 15, 16]), now=10.0)      # it showed up
    assert (w.low, w.high, w.pending) == (16, 16, False)
    w.advance(np.array([18]), now=20.0)                   # 17 rolled back: given up after the grace period
    assert w.low == 16
    w.advance(np.array([18]), now=79.0)
    assert w.low == 16
    w.advance(np.array([18]), now=81.0)
    assert (w.low, w.pending) == (18, False)
    w.advance(np.empty(0, np.int64), now=90.0)
    assert (w.low, w.high) == (18, 18)


def test_refresh_takes_interval_changes_made_elsewhere(tmp_path, shared_url):
    a = open_storage(tmp_path / "a", shared_url)
    b = open_storage(tmp_path / "b", shared_url)
    a.write("anonymous", ["iv.one", "iv.two"], np.array([T0, T0]), np.array([1.0, 2.0]), intervals=[10, 10])
    b.refresh_index()
    one, two = b.resolve("anonymous", ["iv.one", "iv.two"]).tolist()
    assert b.interval_of(np.array([one, two])).tolist() == [10, 10]
    # A changes iv.one twice (the newest wins) and iv.two once
    a.write("anonymous", ["iv.one", "iv.two"], np.array([T0 + 1] * 2), np.array([1.0, 2.0]), intervals=[30, 60])
    a.write("anonymous", ["iv.one"], np.array([T0 + 2]), np.array([1.0]), intervals=[60])
    b.refresh_index()
    assert b.interval_of(np.array([one, two])).tolist() == [60, 60]
    # B's own change afterwards is kept, and A sees it
    b.write("anonymous", ["iv.two"], np.array([T0 + 3]), np.array([2.0]), intervals=[15])
    b.refresh_index()
    a.refresh_index()
    assert b.interval_of(np.array([two])).tolist() == a.interval_of(np.array([two])).tolist() == [15]
    # a process started later reads intervals from the series rows; the change log is pruned after a day
    c = open_storage(tmp_path / "c", shared_url)
    assert c.interval_of(c.resolve("anonymous", ["iv.one", "iv.two"])).tolist() == [60, 15]
    from sqlalchemy import func, select
    from storage import sql
    c.apply_retention(now_ms=int(time.time() * 1000) + 2 * 86_400_000)
    with c.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sql.interval_changes)).scalar() == 0
    for st in (a, b, c):
        st.close()
