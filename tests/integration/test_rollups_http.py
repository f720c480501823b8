"""Rollup archives over HTTP: archive choice by retention, aggregation changes applied retroactively,
consolidateBy steering the rollup read, and recursive delete."""
import time

import pytest

CONFIG = "storage_schemas: |\n  [all]\n  pattern = .*\n  retentions = 10s:5m,60s:1d\n"
NOW = 0   # set by the fixture: the raw archive only reaches 5 minutes back from the real clock


@pytest.fixture(scope="module")
def rolled(tmp_path_factory):
    from tests.conftest import Server
    global NOW
    NOW = int(time.time()) // 60 * 60 - 120
    srv = Server(tmp_path_factory.mktemp("roll") / "data", config=CONFIG).start()
    start = NOW - 20 * 60
    metrics = [{"name": "roll.me", "interval": 10, "value": float(i % 6), "time": start + 10 * i}
               for i in range(1, 121)]
    with srv.client() as c:
        assert c.post("/metrics", json=metrics).json()["Published"] == 120
    yield srv, start
    srv.stop()


def values(c, target, frm, until):
    r = c.get("/render", params={"target": target, "from": str(frm), "until": str(until), "maxDataPoints": "0"})
    assert r.status_code == 200, r.text
    (s,) = r.json()
    return s["datapoints"]


def test_rollup_archive_and_retroactive_aggregation(rolled):
    srv, start = rolled
    with srv.client() as c:
        # from 20 min back is beyond the 5 min raw retention: the 60 s archive answers
        pts = values(c, "roll.me", start, NOW)
        assert all(ts % 60 == 0 for _, ts in pts) and len(pts) == 20
        assert {v for v, _ in pts} == {2.5}                      # avg of 0..5
        aggs = "[max]\npattern = .*\nxFilesFactor = 0\naggregationMethod = max\n"
        assert c.post("/graphite/config/storageAggregation", content=aggs.encode()).status_code == 200
        assert {v for v, _ in values(c, "roll.me", start, NOW)} == {5.0}   # applied to the stored data
        assert {v for v, _ in values(c, "consolidateBy(roll.me,'sum')", start, NOW)} == {15.0}
        assert {v for v, _ in values(c, "consolidateBy(roll.me,'min')", start, NOW)} == {0.0}
        # a recent window is still served raw at 10 s
        recent = values(c, "roll.me", NOW - 60, NOW)
        assert [ts for _, ts in recent] == [NOW - 50 + 10 * i for i in range(6)]


def test_rollups_survive_flush_and_restart(rolled, tmp_path):
    srv, start = rolled
    with srv.client() as c:
        before = values(c, "consolidateBy(roll.me,'sum')", start, NOW)
    srv.stop()
    srv.start()
    with srv.client() as c:
        assert values(c, "consolidateBy(roll.me,'sum')", start, NOW) == before


def test_metrics_delete_is_recursive(server):
    with server.client() as c:
        now = int(time.time()) - 60
        m = [{"name": n, "interval": 10, "value": 1.0, "time": now} for n in ("del.a.x", "del.a.y", "del.b")]
        assert c.post("/metrics", json=m).json()["Published"] == 3
        r = c.post("/metrics/delete", data={"query": "del.a"})
        assert r.json() == {"deletedDefs": 2}
        assert c.get("/metrics/expand", params={"query": "del.*"}).json() == {"results": ["del.b"]}
        assert c.post("/metrics/delete", data={}).status_code == 400


def test_overwrite_after_flush_is_not_counted_twice(server_factory, tmp_path):
    # raw kept 30 min, so the overwritten samples are still there to recompute the buckets from; a render from
    # 40 min back is served by the 60 s archive
    config = "storage_schemas: |\n  [all]\n  pattern = .*\n  retentions = 10s:30m,60s:1d\n"
    now = int(time.time()) // 60 * 60
    start = now - 20 * 60
    srv = server_factory(tmp_path / "ow", config=config)

    def post(vals):
        m = [{"name": "ow.me", "interval": 10, "value": v, "time": start + 10 * i} for i, v in enumerate(vals, 1)]
        with srv.client() as c:
            assert c.post("/metrics", json=m).json()["Published"] == len(vals)

    post([1.0] * 12)
    srv.stop()                         # SIGTERM flushes the head: the buckets are in SQL
    srv.start()
    post([3.0] * 6)                    # the first minute again, other values
    srv.stop()
    srv.start()
    with srv.client() as c:
        pts = [(v, ts) for v, ts in values(c, "ow.me", now - 40 * 60, now) if v is not None]
        assert pts == [(3.0, start + 60), (1.0, start + 120)]                     # avg
        sums = [v for v, _ in values(c, "consolidateBy(ow.me,'sum')", now - 40 * 60, now) if v is not None]
        assert sums == [18.0, 6.0]
        late = [{"name": "ow.me", "interval": 10, "value": 5.0, "time": start + 115}]   # a new timestamp: added
        assert c.post("/metrics", json=late).json()["Published"] == 1
    srv.stop()
    srv.start()
    with srv.client() as c:
        sums = [v for v, _ in values(c, "consolidateBy(ow.me,'sum')", now - 40 * 60, now) if v is not None]
        assert sums == [18.0, 11.0]
    assert srv.stop() == 0
