"""Carbon listeners in a real server: HTTP stays responsive while a client streams, and many small writes on
one connection are all stored."""
import socket
import threading
import time

from tests.conftest import free_port

NOW = int(time.time()) // 60 * 60 - 3600


def _counter(c, name: str) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _wait(cond, timeout=30.0):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_http_answers_promptly_while_carbon_streams(server_factory, tmp_path):
    port = free_port()
    srv = server_factory(tmp_path / "d", extra_args=["--carbon-port", str(port)])
    lines = 30000                                      # ~1 MiB per chunk, sent over and over
    chunk = b"".join(b"stream.s%d %d %d\n" % (i % 500, i, NOW + 10 * (i // 500)) for i in range(lines))
    stop = threading.Event()
    chunks_sent = [0]

    def stream():
        with socket.create_connection(("127.0.0.1", port)) as s:
            while not stop.is_set():
                s.sendall(chunk)
                chunks_sent[0] += 1

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        with srv.client() as c:
            _wait(lambda: _counter(c, "plumbago_carbon_lines_received_total") >= 2 * lines)   # in full swing
            first = chunks_sent[0]
            slowest, probes = 0.0, 0
            # probe until the client has sent several more chunks meanwhile: the probes overlap the stream
            while probes < 20 or chunks_sent[0] < first + 3:
                assert probes < 2000, "the stream stalled"
                t0 = time.perf_counter()
                assert c.get("/ready").status_code == 200
                r = c.get("/render", params={"target": "stream.s1", "from": str(NOW), "until": str(NOW + 600),
                                             "format": "json"})
                slowest = max(slowest, time.perf_counter() - t0)
                assert r.status_code == 200 and r.json()[0]["target"] == "stream.s1"
                probes += 1
                time.sleep(0.02)
            assert sender.is_alive()
            assert slowest < 1.0, f"an HTTP request took {slowest:.2f}s while carbon streamed"
    finally:
        stop.set()
        sender.join(30)
    assert srv.stop() == 0


def test_many_small_writes_over_one_connection_are_all_stored(server_factory, tmp_path):
    port = free_port()
    srv = server_factory(tmp_path / "d", extra_args=["--carbon-port", str(port)])
    series, points = 20, 100
    with socket.create_connection(("127.0.0.1", port)) as s, srv.client() as c:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in range(points):
            for k in range(series):
                line = b"small.s%d %d %d\n" % (k, p, NOW + 10 * p)
                s.sendall(line[:5])                   # two writes per line: reads end mid-line too
                s.sendall(line[5:])
        _wait(lambda: _counter(c, "plumbago_carbon_lines_received_total") == series * points)
        r = c.get("/render", params={"target": "small.*", "from": str(NOW - 10), "until": str(NOW + 10 * points),
                                     "maxDataPoints": "0"})
        got = {s["target"]: [v for v, _ in s["datapoints"] if v is not None] for s in r.json()}
        assert got == {f"small.s{k}": [float(p) for p in range(points)] for k in range(series)}
        assert _counter(c, "plumbago_carbon_lines_invalid_total") == 0
