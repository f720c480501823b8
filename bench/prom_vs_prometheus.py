"""The Prometheus bridge against a real Prometheus 2.42 (../shared/tools/prometheus-reference), in the same run.

(a) Remote-write ingest: the same pre-encoded snappy WriteRequests, sent by the same client threads (one per
    "shard", each owning its own series and sending its requests in time order, like a Prometheus sender), to
    plumbago's /api/v1/push and Prometheus' /api/v1/write. Two shapes: 1,000 series x 1 sample per request, and
    1,000 series x 10 samples. Reported: samples/s (target >= 1x Prometheus' receiver) and samples per server CPU
    second (from /proc/<pid>/stat of each server process).
(b) Query latency over 1,000 series x 24 h at 15 s (plus 1,000 histogram bucket series), loaded into both, the
    24 h ending in the past: `sum by (job) (rate(x[5m]))` and
    `histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))`, range = the whole 24 h at step 60 s, median of 5
    runs after a warm-up (target <= 1x Prometheus' latency). Prometheus is restarted empty before (b) and the
    data is sent in time order, so it all takes its ordinary in-order path (the ingest phase moved its head to
    "now": 24 h-old data would otherwise go to the out-of-order head, which 2.42 queries ~20x slower).
    Both answers are also compared (promref.compare_results).

Run with the project venv (it needs httpx, numpy and cramjam): `.venv/bin/python bench/prom_vs_prometheus.py`.
Environment: BENCH_PROM_SHARDS (client threads, default 4), BENCH_PROM_REQUESTS (requests per shard and shape,
default 150), BENCH_PROM_ROUNDS (ingest rounds, default 3), BENCH_PROM_QUERY_SERIES (default 1000),
BENCH_PROM_HOURS (default 24).
Exit status 1 when a target is missed.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import threading
import time

import httpx
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from common import ROOT, Plumbago  # noqa: E402

PROMREF_TOOL = os.environ.get("PROMREF_TOOL") or str(ROOT.parent / "shared" / "tools" / "prometheus-reference")
sys.path.insert(0, PROMREF_TOOL)
import promref  # noqa: E402

import cramjam  # noqa: E402

SHARDS = int(os.environ.get("BENCH_PROM_SHARDS", 4))
REQUESTS = int(os.environ.get("BENCH_PROM_REQUESTS", 150))
SERIES_PER_REQUEST = 1000
QUERY_SERIES = int(os.environ.get("BENCH_PROM_QUERY_SERIES", 1000))
HOURS = float(os.environ.get("BENCH_PROM_HOURS", 24))
ROUNDS = int(os.environ.get("BENCH_PROM_ROUNDS", 3))
STEP_MS = 15_000
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "Prometheus/2.42.0"}
Q_RATE = "sum by (job) (rate(x[5m]))"
Q_HIST = "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"
failed: list[str] = []


# ---- a fast WriteRequest encoder (numpy; the byte layout of promref.encode_write_request) -----------------------
def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _labels_bytes(labels: dict) -> bytes:
    out = bytearray()
    for k in sorted(labels):
        kb, vb = k.encode(), str(labels[k]).encode()
        pair = b"\x0a" + _uvarint(len(kb)) + kb + b"\x12" + _uvarint(len(vb)) + vb
        out += b"\x0a" + _uvarint(len(pair)) + pair
    return bytes(out)


def _samples_bytes(ts: np.ndarray, values: np.ndarray) -> bytes:
    """Samples of one series: each is field 2 {1: double, 2: varint ts}; all ts need 6 varint bytes."""
    ts = np.asarray(ts, np.int64)
    assert ts.min() >= 1 << 35 and ts.max() < 1 << 42, "timestamps must need exactly 6 varint bytes"
    n = len(ts)
    rec = np.empty((n, 18), np.uint8)
    rec[:, 0] = 0x12           # field 2, length-delimited
    rec[:, 1] = 16             # 9 + 7 bytes
    rec[:, 2] = 0x09           # value: field 1, fixed64
    rec[:, 3:11] = np.ascontiguousarray(values, "<f8").view(np.uint8).reshape(n, 8)
    rec[:, 11] = 0x10          # timestamp: field 2, varint
    u = ts.astype(np.uint64)
    for k in range(6):
        byte = (u >> np.uint64(7 * k)) & np.uint64(0x7F)
        rec[:, 12 + k] = byte.astype(np.uint8) | (0x80 if k < 5 else 0)
    return rec.tobytes()


def encode(series) -> bytes:
    """series: [(labels_bytes, ts, values)] -> a snappy-compressed WriteRequest."""
    out = bytearray()
    for lab, ts, vs in series:
        body = lab + _samples_bytes(ts, vs)
        out += b"\x0a" + _uvarint(len(body)) + body
    return bytes(cramjam.snappy.compress_raw(bytes(out)))


def _self_check() -> None:
    labels = {"__name__": "x", "job": "a", "instance": "i"}
    ts = np.array([1_790_000_000_000, 1_790_000_015_000])
    vs = np.array([1.5, promref.STALE_NAN])
    mine = promref.snappy_decompress(encode([(_labels_bytes(labels), ts, vs)]))
    assert mine == promref.encode_write_request([(labels, list(zip(ts.tolist(), vs.tolist())))]), "encoder mismatch"


# ---- processes ----------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pids, quiet: float = 0.05, timeout: float = 180) -> None:
    """Wait until every server uses < `quiet` CPU s per wall s (background compaction, WAL flushes finished)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        before = [cpu_seconds(p) for p in pids]
        time.sleep(1.0)
        if all(cpu_seconds(p) - b < quiet for p, b in zip(pids, before)):
            return
    print(f"  (servers still busy after {timeout:.0f} s; measuring anyway)", flush=True)


def post_all(url: str, per_shard: list[list[bytes]]) -> tuple[float, int]:
    """Send each shard's requests in order from its own thread; return (seconds, failures)."""
    errors = [0]

    def run(bodies):
        with httpx.Client(timeout=120) as c:
            for body in bodies:
                r = c.post(url, content=body, headers=HEADERS)
                if r.status_code // 100 != 2:
                    errors[0] += 1
                    if errors[0] < 3:
                        print(f"  {url}: HTTP {r.status_code} {r.text[:200]}", flush=True)

    threads = [threading.Thread(target=run, args=(b,)) for b in per_shard]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, errors[0]


def report(name, ours, ref, unit, target, higher_is_better, goal=1.0):
    ratio = ours / ref if higher_is_better else ref / ours
    print(f"{name}: plumbago={ours:.4g}{unit} reference={ref:.4g}{unit} ratio={ratio:.2f}x (target {target})",
          flush=True)
    if ratio < goal:
        failed.append(name)


# ---- (a) ingest ---------------------------------------------------------------------------------------------------
def ingest_requests(name: str, samples_per_series: int, end_ms: int) -> tuple[list[list[bytes]], int]:
    per_shard, total = [], 0
    n_req = REQUESTS if samples_per_series == 1 else max(1, REQUESTS // samples_per_series * 2)
    first = end_ms - n_req * samples_per_series * STEP_MS
    rng = np.random.default_rng(1)
    for shard in range(SHARDS):
        labels = [_labels_bytes({"__name__": name, "job": f"job{i % 10}", "instance": f"host{i // 10:03d}:9100",
                                 "shard": str(shard), "path": f"/api/v{i % 3}/items"})
                  for i in range(SERIES_PER_REQUEST)]
        base = rng.uniform(0, 1e6, SERIES_PER_REQUEST)
        bodies = []
        for r in range(n_req):
            ts = first + (r * samples_per_series + np.arange(samples_per_series)) * STEP_MS
            bodies.append(encode([(lab, ts, base[i] + ts / 1000.0) for i, lab in enumerate(labels)]))
            total += SERIES_PER_REQUEST * samples_per_series
        per_shard.append(bodies)
    return per_shard, total


def bench_ingest(ref, plum) -> None:
    """ROUNDS rounds per shape, the servers' order swapped between them (fresh series each round, so every write is
    in order and new); each server's best round counts."""
    now_ms = (int(time.time()) - 600) * 1000
    for shape, per_series, metric in (("1 sample/series", 1, "ingest_a"), ("10 samples/series", 10, "ingest_b")):
        res: dict[str, tuple] = {}
        servers = [("reference", ref.url + "/api/v1/write", ref.pid),
                   ("plumbago", plum.url + "/api/v1/push", plum.proc.pid)]
        for rnd in range(ROUNDS):
            per_shard, total = ingest_requests(f"{metric}_{rnd}", per_series, now_ms)
            nreq = sum(len(b) for b in per_shard)
            for who, url, pid in (servers if rnd % 2 == 0 else servers[::-1]):
                wait_idle([ref.pid, plum.proc.pid], timeout=60)
                c0 = cpu_seconds(pid)
                secs, errs = post_all(url, per_shard)
                cpu = cpu_seconds(pid) - c0
                if errs:
                    print(f"  {who}: {errs} of {nreq} requests failed", flush=True)
                    failed.append(f"ingest {shape} ({who}: failed requests)")
                print(f"  ingest {shape}, round {rnd + 1}, {who}: {nreq} requests x "
                      f"{SERIES_PER_REQUEST * per_series} samples from {SHARDS} client threads: {secs:.2f} s wall, "
                      f"{cpu:.2f} s server CPU, {total / secs:,.0f} samples/s", flush=True)
                if who not in res or total / secs > res[who][0]:
                    res[who] = (total / secs, total / max(cpu, 1e-9))
        tag = "" if per_series == 1 else "_10"
        report(f"prom_remote_write{tag}", res["plumbago"][0], res["reference"][0], " samples/s",
               ">= 1x Prometheus", True)
        report(f"prom_remote_write{tag}_per_cpu", res["plumbago"][1], res["reference"][1], " samples/cpu-s",
               "informational", True, goal=0)


# ---- (b) query latency --------------------------------------------------------------------------------------------
def query_dataset(end_ms: int):
    """x{job, instance}: counters with a reset or two; x_bucket{instance, le}: a classic histogram."""
    n = int(HOURS * 3600_000 // STEP_MS)
    ts = end_ms - (n - 1 - np.arange(n, dtype=np.int64)) * STEP_MS
    rng = np.random.default_rng(7)
    out = []
    for i in range(QUERY_SERIES):
        inc = rng.uniform(0, 10 * (1 + i % 7), n)
        v = np.cumsum(inc)
        if i % 5 == 0:
            k = int(rng.integers(n // 4, n - n // 4))
            v[k:] -= v[k - 1]
        out.append((_labels_bytes({"__name__": "x", "job": f"job{i % 10}", "instance": f"host{i:04d}:9100"}), v))
    les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    for h in range(max(1, QUERY_SERIES // len(les))):
        obs = rng.poisson(20, (n, len(les)))
        cum = np.cumsum(np.cumsum(obs, axis=1), axis=0).astype(np.float64)   # cumulative over le and over time
        for b, le in enumerate(les):
            out.append((_labels_bytes({"__name__": "x_bucket", "job": f"job{h % 10}", "instance": f"host{h:04d}:9100",
                                       "le": le}), cum[:, b]))
    return ts, out


def load_query_data(ref, plum, end_ms: int) -> int:
    ts, series = query_dataset(end_ms)
    chunk = 240                                     # 1 h per request window, all series in time order
    bodies = []
    for lo in range(0, len(ts), chunk):
        t = ts[lo:lo + chunk]
        for s in range(0, len(series), 100):
            bodies.append(encode([(lab, t, v[lo:lo + chunk]) for lab, v in series[s:s + 100]]))
    total = len(ts) * len(series)
    for who, url in (("reference", ref.url + "/api/v1/write"), ("plumbago", plum.url + "/api/v1/push")):
        # one thread, in time order: every sample stays within Prometheus' in-order window (its head max - 1 h),
        # so none takes the slower out-of-order path
        secs, errs = post_all(url, [bodies])
        print(f"  loaded {total:,} samples into {who} in {secs:.1f} s" + (f" ({errs} failed requests)" if errs else ""),
              flush=True)
    return total


def timed_query(url: str, expr: str, start: float, end: float, repeat: int = 5) -> tuple[float, dict]:
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "60"}
    with httpx.Client(timeout=300) as c:
        r = c.get(url + "/api/v1/query_range", params=params)       # warm-up
        body = r.json()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = c.get(url + "/api/v1/query_range", params=params)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text[:300]
    return statistics.median(times), body


def ooo_samples(ref) -> float:
    text = httpx.get(ref.url + "/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("prometheus_tsdb_head_out_of_order_samples_appended_total"))


def bench_query(ref, plum) -> None:
    # a fresh Prometheus: the ingest phase moved its head to "now", which would send all 24 h of this data down
    # the out-of-order path (much slower to query in 2.42) instead of the ordinary head/blocks
    ref.restart_empty()
    end_ms = (int(time.time()) // 60 * 60 - 300) * 1000
    load_query_data(ref, plum, end_ms)
    print(f"  Prometheus out-of-order samples appended: {ooo_samples(ref):.0f}", flush=True)
    wait_idle([ref.pid, plum.proc.pid])
    end = end_ms / 1000
    start = end - HOURS * 3600
    for name, expr in (("prom_query_sum_rate", Q_RATE), ("prom_query_histogram_quantile", Q_HIST)):
        t_ref, a = timed_query(ref.url, expr, start, end)
        t_plum, b = timed_query(plum.url, expr, start, end)
        diffs = promref.compare_results(a, b)
        npoints = sum(len(s["values"]) for s in a["data"]["result"])
        print(f"  {expr}: {len(a['data']['result'])} series, {npoints} points; answers "
              + ("agree" if not diffs else f"DIFFER: {diffs[:2]}"), flush=True)
        if diffs:
            failed.append(name + " (answers differ)")
        report(name, t_plum * 1000, t_ref * 1000, " ms", "<= 1x Prometheus' latency", False)


def main() -> int:
    if not promref.available(install=False):
        print("prom_vs_prometheus: Prometheus is not installed (../shared/tools/prometheus-reference/prom-ref.sh "
              "install); skipped")
        return 0
    _self_check()
    t0 = time.time()
    ref = promref.Reference(install=False).start()
    plum = Plumbago().start()
    try:
        print(f"Prometheus {promref.version()} pid {ref.pid} at {ref.url}; plumbago pid {plum.proc.pid} at {plum.url}",
              flush=True)
        if os.environ.get("BENCH_PROM_SKIP_INGEST") != "1":
            bench_ingest(ref, plum)
        if os.environ.get("BENCH_PROM_SKIP_QUERY") != "1":
            bench_query(ref, plum)
    finally:
        plum.stop()
        ref.stop()
        shutil.rmtree(plum.data_dir, ignore_errors=True)
    print(f"prom_vs_prometheus: {time.time() - t0:.0f} s; missed targets: {', '.join(failed) or 'none'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
