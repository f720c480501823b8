"""An acknowledged write survives kill -9; a restart restores index, data and configs."""
import pickle
import socket
import struct
import threading
import time

import httpx

from graphite_api.ingest import encode_metrics_snappy
from tests.conftest import free_port

NOW = int(time.time()) // 60 * 60 - 600


def test_acknowledged_writes_survive_kill_9(server_factory, tmp_path):
    srv = server_factory(tmp_path / "d1")
    acked = []
    with srv.client() as c:
        for i in range(50):
            m = [{"name": f"dur.s{j}", "interval": 10, "value": float(i), "time": NOW + 10 * i, "tags": []}
                 for j in range(20)] + [{"name": "dur.tagged", "interval": 10, "value": float(i),
                                         "time": NOW + 10 * i, "tags": ["k=v"]}]
            r = c.post("/metrics", json=m)
            assert r.status_code == 200
            acked.append(i)
        schemas = "[d]\npattern = .*\nretentions = 10s:1d,1m:7d\n"
        assert c.post("/graphite/config/storageSchemas", content=schemas.encode()).status_code == 200
    srv.kill()                       # SIGKILL: no flush, no clean shutdown
    srv2 = server_factory(tmp_path / "d1")
    with srv2.client() as c:
        r = c.get("/render", params={"target": "dur.s*", "from": str(NOW), "until": str(NOW + 500),
                                     "maxDataPoints": "0"})
        series = r.json()
        assert len(series) == 20
        for s in series:
            assert [v for v, _ in s["datapoints"] if v is not None] == [float(i) for i in acked[1:]]
        r = c.get("/render", params={"target": "seriesByTag('k=v')", "from": str(NOW), "until": str(NOW + 500),
                                     "maxDataPoints": "0"})
        assert r.json()[0]["target"] == "dur.tagged;k=v"
        assert c.get("/graphite/config/storageSchemas").text.startswith("[d]")
        assert "dur" in [n["text"] for n in c.get("/metrics/find", params={"query": "*"}).json()]


def test_concurrent_acknowledged_batches_survive_kill_9_mid_stream(server_factory, tmp_path):
    """Writers sharing fsyncs (group commit): every batch answered 200 before the kill is there after it."""
    srv = server_factory(tmp_path / "dc")
    acked = {w: [] for w in range(4)}
    stop = threading.Event()

    def writer(w):
        with srv.client() as c:
            for i in range(10_000):
                if stop.is_set():
                    return
                body = encode_metrics_snappy([{"name": f"gc.w{w}.s{j:03d}", "interval": 10, "value": float(i),
                                               "time": NOW + 10 * i} for j in range(250)])   # columnar batches
                try:
                    r = c.post("/metrics", content=body, headers={"Content-Type": "rt-metric-binary-snappy"})
                except httpx.HTTPError:
                    return                       # the server is gone: this batch was not acknowledged
                assert r.status_code == 200 and r.json()["Published"] == 250
                acked[w].append(i)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while min(len(a) for a in acked.values()) < 5 and time.time() < deadline:
        time.sleep(0.05)
    srv.kill()                                   # while the writers are still sending
    stop.set()
    for t in threads:
        t.join()
    assert all(len(a) >= 5 for a in acked.values())
    srv2 = server_factory(tmp_path / "dc")
    with srv2.client() as c:
        for w, done in acked.items():
            r = c.get("/render", params={"target": f"gc.w{w}.s*", "from": str(NOW - 10),
                                         "until": str(NOW + 10 * (done[-1] + 5)), "maxDataPoints": "0"})
            series = r.json()
            assert len(series) == 250
            for s in series:
                got = [v for v, _ in s["datapoints"] if v is not None]
                assert got[:len(done)] == [float(i) for i in done]       # every acknowledged batch


def test_sigterm_flushes_and_restart_reads_from_sql(server_factory, tmp_path):
    srv = server_factory(tmp_path / "d2")
    with srv.client() as c:
        m = [{"name": "flush.me", "interval": 10, "value": float(i), "time": NOW + 10 * i} for i in range(30)]
        assert c.post("/metrics", json=m).status_code == 200
    assert srv.stop() == 0
    wal = list((tmp_path / "d2" / "wal").glob("*.wal"))
    assert sum(f.stat().st_size for f in wal) == 0     # everything went to SQL; the WAL holds nothing
    srv2 = server_factory(tmp_path / "d2")
    with srv2.client() as c:
        r = c.get("/render", params={"target": "flush.me", "from": str(NOW - 10), "until": str(NOW + 300),
                                     "maxDataPoints": "0"})
        assert [v for v, _ in r.json()[0]["datapoints"] if v is not None] == [float(i) for i in range(30)]


def test_carbon_plaintext_listener(server_factory, tmp_path):
    port = free_port()
    srv = server_factory(tmp_path / "d3", extra_args=["--carbon-port", str(port)])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"carbon.a 1.5 {NOW + 60}\nthis is bad\ncarbon.b;dc=x 2 {NOW + 60}\n".encode())
    deadline = time.time() + 10
    with srv.client() as c:
        while time.time() < deadline:
            r = c.get("/render", params={"target": "carbon.a", "from": str(NOW), "until": str(NOW + 60),
                                         "maxDataPoints": "0"})
            if r.json():
                break
            time.sleep(0.1)
        assert [v for v, _ in r.json()[0]["datapoints"] if v is not None] == [1.5]
        assert c.get("/tags/findSeries", params={"expr": "dc=x"}).json() == ["carbon.b;dc=x"]
        assert "plumbago_carbon_lines_invalid_total 1.0" in c.get("/metrics").text


def test_carbon_lines_sent_right_before_sigterm_survive_restart(server_factory, tmp_path):
    port, pickle_port = free_port(), free_port()
    srv = server_factory(tmp_path / "d4", extra_args=["--carbon-port", str(port), "--pickle-port", str(pickle_port)])
    plain = b"".join(b"last.p%d %d %d\n" % (i % 10, i, NOW + 10 * (i // 10)) for i in range(500))
    frame = pickle.dumps([(f"last.k{i % 10}", (NOW + 10 * (i // 10), float(i))) for i in range(500)], protocol=2)
    with socket.create_connection(("127.0.0.1", port)) as s, socket.create_connection(("127.0.0.1", pickle_port)) as k:
        s.sendall(plain + b"last.partial 1 ")        # a line cut short by the shutdown is not stored
        k.sendall(struct.pack(">I", len(frame)) + frame)
        assert srv.stop() == 0                       # SIGTERM at once, both connections still open
    wal = list((tmp_path / "d4" / "wal").glob("*.wal"))
    assert sum(f.stat().st_size for f in wal) == 0   # the carbon lines were written before the final flush
    srv2 = server_factory(tmp_path / "d4")
    with srv2.client() as c:
        r = c.get("/render", params={"target": "last.*", "from": str(NOW - 10), "until": str(NOW + 500),
                                     "maxDataPoints": "0"})
        got = {s["target"]: [v for v, _ in s["datapoints"] if v is not None] for s in r.json()}
        expected = {f"last.{kind}{j}": [float(i) for i in range(j, 500, 10)] for kind in "pk" for j in range(10)}
        assert got == expected
