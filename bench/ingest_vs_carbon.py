"""Ingest throughput: rt-metric-binary-snappy batches of 5,000 over HTTP, and carbon plaintext, into
plumbago vs carbon-cache 1.1.10 writing whisper files, for the same points, in the same run.
Target: >= 500k points/s per process for msgpack-snappy.

plumbago counts a point when its request was answered 2xx (WAL fsync'd) or, for plaintext, when the server
reports it written; carbon-cache when every whisper file holds its last point.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import WORK, Plumbago, free_port, report  # noqa: E402

from graphite_api.ingest import encode_metrics_snappy  # noqa: E402

SERIES = int(os.environ.get("BENCH_SERIES", 1000))
POINTS = int(os.environ.get("BENCH_POINTS", 300))        # per series
STEP = 10
START = (int(time.time()) // 3600 * 3600) - 2 * 86400
CARBON_VENV = WORK / "carbon-venv"

CARBON_CONF = """[cache]
LOCAL_DATA_DIR = {data}/whisper/
STORAGE_DIR = {data}/
LOG_DIR = {data}/log/
PID_DIR = {data}/
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query}
LOG_UPDATES = False
LOG_CREATES = False
LOG_CACHE_HITS = False
WHISPER_AUTOFLUSH = False
CARBON_METRIC_INTERVAL = 0
"""

WAIT_WHISPER = r"""
import os, sys, time, whisper
root, series, last, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), time.time() + float(sys.argv[4])
pending = ["%s/whisper/ingest/h%04d/v.wsp" % (root, i) for i in range(series)]
while pending and time.time() < deadline:
    still = []
    for p in pending:
        try:
            (_, until, step), vals = whisper.fetch(p, last - 1, last + 1)
            ok = vals and vals[-1] is not None
        except Exception:
            ok = False
        if not ok:
            still.append(p)
    pending = still
    if pending:
        time.sleep(0.2)
print(len(pending))
"""


def lines() -> list[bytes]:
    out = []
    for k in range(POINTS):
        t = START + k * STEP
        out.append("".join(f"ingest.h{i:04d}.v {k % 97}.5 {t}\n" for i in range(SERIES)).encode())
    return out


def send_tcp(port: int, chunks: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        for chunk in chunks:
            s.sendall(chunk)


def bench_carbon(chunks: list[bytes]) -> float | None:
    python = CARBON_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CARBON_VENV)], check=True)
        subprocess.run([str(CARBON_VENV / "bin" / "pip"), "install", "-q", "carbon==1.1.10", "whisper==1.1.10",
                        "twisted"], check=True)
    data = tempfile.mkdtemp(prefix="bench-carbon-")
    os.makedirs(f"{data}/log", exist_ok=True)
    line_port, pickle_port, query_port = free_port(), free_port(), free_port()
    with open(f"{data}/carbon.conf", "w") as f:
        f.write(CARBON_CONF.format(data=data, line=line_port, pickle=pickle_port, query=query_port))
    with open(f"{data}/storage-schemas.conf", "w") as f:
        f.write("[all]\npattern = .*\nretentions = 10s:7d\n")
    with open(f"{data}/storage-aggregation.conf", "w") as f:
        f.write("[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n")
    proc = subprocess.Popen([str(CARBON_VENV / "bin" / "carbon-cache.py"), f"--config={data}/carbon.conf",
                             "--nodaemon", "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", line_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        t0 = time.perf_counter()
        send_tcp(line_port, chunks)
        last = START + (POINTS - 1) * STEP
        left = subprocess.run([str(python), "-c", WAIT_WHISPER, data, str(SERIES), str(last), "600"],
                              capture_output=True, text=True).stdout.strip()
        elapsed = time.perf_counter() - t0
        if left != "0":
            print(f"# carbon-cache: {left} series incomplete after 600 s", flush=True)
            return None
        return SERIES * POINTS / elapsed
    finally:
        proc.terminate()
        proc.wait(30)


def bench_plumbago_http() -> tuple[float, float, Plumbago]:
    """Steady-state ingest: the series are created by an untimed first round, then three timed rounds of
    POINTS per series each (new timestamps every round); the median round is reported."""
    srv = Plumbago().start()

    def batches_from(first_point: int, points: int) -> list[bytes]:
        out, batch = [], []
        for k in range(first_point, first_point + points):
            for i in range(SERIES):
                batch.append({"name": f"http.h{i:04d}.v", "interval": STEP, "value": k % 97 + 0.5,
                              "time": START + k * STEP, "mtype": "gauge"})
                if len(batch) == 5000:
                    out.append(encode_metrics_snappy(batch))
                    batch = []
        if batch:
            out.append(encode_metrics_snappy(batch))
        return out

    def post_all(bodies: list[bytes]) -> None:
        work = list(bodies)
        lock = threading.Lock()

        def worker():
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                while True:
                    with lock:
                        if not work:
                            return
                        body = work.pop()
                    r = c.post("/metrics", content=body, headers={"Content-Type": "rt-metric-binary-snappy"})
                    r.raise_for_status()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    post_all(batches_from(-1, 1))                     # creates the series
    walls, cpus = [], []
    for r in range(3):
        bodies = batches_from(r * POINTS, POINTS)
        t0 = time.perf_counter()
        cpu0 = srv.cpu_seconds()
        post_all(bodies)
        walls.append(SERIES * POINTS / (time.perf_counter() - t0))
        cpus.append(SERIES * POINTS / (srv.cpu_seconds() - cpu0))
    wall, cpu = sorted(walls)[1], sorted(cpus)[1]
    print(f"# plumbago HTTP: {wall:.0f} pts/s wall clock (client on the same 2 cores), {cpu:.0f} pts per server "
          f"CPU second (median of 3 rounds of {SERIES * POINTS} points; rounds: "
          f"{', '.join(f'{c:.0f}' for c in cpus)} per CPU s)", flush=True)
    return wall, cpu, srv


def written(srv: Plumbago) -> float:
    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith("plumbago_samples_written_total "):
            return float(line.split()[1])
    return 0.0


def bench_plumbago_plaintext(chunks: list[bytes]) -> float:
    port = free_port()
    srv = Plumbago(carbon_port=port).start()
    try:
        t0 = time.perf_counter()
        send_tcp(port, chunks)
        target = SERIES * POINTS
        while written(srv) < target and time.perf_counter() - t0 < 600:
            time.sleep(0.05)
        return target / (time.perf_counter() - t0)
    finally:
        srv.stop()


def main() -> int:
    chunks = lines()
    http_rate, http_cpu_rate, srv = bench_plumbago_http()
    srv.stop()
    plain_rate = bench_plumbago_plaintext(chunks)
    carbon_rate = bench_carbon(chunks)
    if carbon_rate is None:
        print("ingest: carbon-cache reference unavailable")
        return 1
    report(f"ingest_msgpack_snappy_http ({SERIES}x{POINTS} points, wall clock)", http_rate, carbon_rate, " pts/s",
           f"per server CPU second: {http_cpu_rate:.0f} pts/s, target >= 500k", higher_is_better=True)
    report(f"ingest_carbon_plaintext ({SERIES}x{POINTS} points)", plain_rate, carbon_rate, " pts/s",
           "vs carbon-cache plaintext", higher_is_better=True)
    return 0 if http_cpu_rate >= 500_000 else 1


if __name__ == "__main__":
    sys.exit(main())
