"""Render speed: sumSeries and a glob over 1,000 series x 24 h at 10 s, plumbago vs graphite-web 1.1.10
on whisper files of the same data, measured in the same run. Target: plumbago >= 20x faster.

plumbago is timed end to end over HTTP after a restart (all data read from compressed SQL chunks);
graphite-web in-process through Django's test client (no HTTP cost on its side).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import GWREF_VENV, Plumbago, gwref_module, report, timed  # noqa: E402

from graphite_api.ingest import encode_metrics_snappy  # noqa: E402

SERIES, STEP, HOURS = int(os.environ.get("BENCH_SERIES", 1000)), 10, 24
N = HOURS * 3600 // STEP
END = int(time.time()) // STEP * STEP - 60
START = END - (N - 1) * STEP
FROM, UNTIL = START - STEP, END          # from is exclusive: every point is in the window

WHISPER_WRITER = r"""
import json, os, sys, whisper
root, series, n, start, step, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
import random
for i in range(series):
    rnd = random.Random(seed + i)
    path = os.path.join(root, "whisper", "bench", "h%04d" % i, "cpu.wsp")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    whisper.create(path, [(step, n * 2)], xFilesFactor=0.0, aggregationMethod="average")
    base = rnd.uniform(0, 100)
    pts = [(start + k * step, round(base + (k % 60) * 0.25, 2)) for k in range(n)]
    whisper.update_many(path, pts)
"""


def values_for(i: int) -> np.ndarray:
    import random
    base = random.Random(42 + i).uniform(0, 100)
    return np.round(base + (np.arange(N) % 60) * 0.25, 2)


def load_plumbago(srv: Plumbago) -> None:
    """Carbon plaintext, time-major like a live feed (the fastest way to put 8.6M points in)."""
    import socket
    ts = (START + STEP * np.arange(N)).astype(str)
    columns = [np.char.add(np.char.add(f"bench.h{i:04d}.cpu ", values_for(i).astype(str)), " ") for i in range(SERIES)]
    with socket.create_connection(("127.0.0.1", srv.carbon_port)) as s:
        for k in range(0, N, 60):
            lines = []
            for col in columns:
                lines.extend(np.char.add(np.char.add(col[k:k + 60], ts[k:k + 60]), "\n").tolist())
            s.sendall("".join(lines).encode())
    expected = SERIES * N
    deadline = time.time() + 900
    while time.time() < deadline:
        text = httpx.get(srv.url + "/metrics").text
        done = [float(l.split()[1]) for l in text.splitlines() if l.startswith("plumbago_samples_written_total ")]
        if done and done[0] >= expected:
            return
        time.sleep(0.5)
    raise RuntimeError("plumbago did not take every point")


def main() -> int:
    gwref = gwref_module()
    work = tempfile.mkdtemp(prefix="bench-render-")
    storage = os.path.join(work, "graphite")
    t0 = time.time()
    subprocess.run([str(GWREF_VENV / "bin" / "python"), "-c", WHISPER_WRITER,
                    storage, str(SERIES), str(N), str(START), str(STEP), "42"], check=True)
    print(f"# whisper files written in {time.time() - t0:.1f}s", flush=True)
    config = ("storage_schemas: |\n  [bench]\n  pattern = .*\n  retentions = 10s:2d,1m:30d\n"
              "storage:\n  flush_interval: 2\n")
    from common import free_port
    srv = Plumbago(os.path.join(work, "plumbago"), config=config, carbon_port=free_port()).start()
    t0 = time.time()
    load_plumbago(srv)
    print(f"# plumbago loaded {SERIES * N} points in {time.time() - t0:.1f}s", flush=True)
    srv.stop()
    srv = Plumbago(srv.data_dir, config=config).start()     # every sample now comes from SQL chunks
    time.sleep(20)                                          # let maintenance compact closed blocks
    cases = [("sumSeries", "sumSeries(bench.*.cpu)", 0), ("glob_mdp800", "bench.*.cpu", 800),
             ("sumSeries_mdp800", "sumSeries(bench.*.cpu)", 800)]
    if os.environ.get("BENCH_RAW_GLOB"):
        cases.append(("glob_raw", "bench.*.cpu", 0))
    ok = True
    with gwref.Reference(str(GWREF_VENV), storage_dir=storage) as ref, \
            httpx.Client(base_url=srv.url, timeout=300) as client:
        for name, target, mdp in cases:
            params = {"target": target, "from": str(FROM), "until": str(UNTIL), "format": "json",
                      "maxDataPoints": str(mdp)}
            t0 = time.perf_counter()
            first = client.get("/render", params=params)
            cold = time.perf_counter() - t0
            got = first.json()
            want = ref.render([target], FROM, UNTIL, max_data_points=mdp or None)
            points = sum(len(s["datapoints"]) for s in got)
            assert len(got) == len(want), (name, len(got), len(want))
            ours = timed(lambda: client.get("/render", params=params).raise_for_status(), repeat=3)
            theirs = timed(lambda: ref.render_raw([target], FROM, UNTIL, max_data_points=mdp or None), repeat=3)
            report(f"render_{name} ({len(got)} series, {points} points out)", ours * 1000, theirs * 1000, "ms",
                   f"target >= 20x faster; first request after restart {cold * 1000:.0f} ms = "
                   f"{theirs / cold:.1f}x", higher_is_better=False)
            ok &= theirs / ours >= 20
    srv.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
