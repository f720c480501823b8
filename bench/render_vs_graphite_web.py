"""Render speed: sumSeries and a glob over 1,000 series x 24 h at 10 s, plumbago vs graphite-web 1.1.10
on whisper files of the same data, measured in the same run. Target: plumbago >= 20x faster.

plumbago is timed end to end over HTTP after a restart (all data read from compressed SQL chunks);
graphite-web in-process through Django's test client (no HTTP cost on its side).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (GWREF_VENV, HttpClient, Plumbago, free_port, gwref_module, load_plaintext, report,  # noqa: E402
                    timed, wait_compacted, write_whisper)

SERIES, STEP, HOURS = int(os.environ.get("BENCH_SERIES", 1000)), 10, 24
N = HOURS * 3600 // STEP
END = int(time.time()) // STEP * STEP - 60
START = END - (N - 1) * STEP
FROM, UNTIL = START - STEP, END          # from is exclusive: every point is in the window

def dataset() -> dict:
    import random
    out = {}
    for i in range(SERIES):
        base = random.Random(42 + i).uniform(0, 100)
        out[f"bench.h{i:04d}.cpu"] = np.round(base + (np.arange(N) % 60) * 0.25, 2).tolist()
    return out


def main() -> int:
    gwref = gwref_module()
    work = tempfile.mkdtemp(prefix="bench-render-")
    storage = os.path.join(work, "graphite")
    data = dataset()
    t0 = time.time()
    write_whisper(storage, data, N, START, STEP)
    print(f"# whisper files written in {time.time() - t0:.1f}s", flush=True)
    config = ("storage_schemas: |\n  [bench]\n  pattern = .*\n  retentions = 10s:2d,1m:30d\n"
              "storage:\n  flush_interval: 2\n")
    srv = Plumbago(os.path.join(work, "plumbago"), config=config, carbon_port=free_port()).start()
    t0 = time.time()
    load_plaintext(srv, data, N, START, STEP)
    print(f"# plumbago loaded {SERIES * N} points in {time.time() - t0:.1f}s", flush=True)
    srv.stop()
    srv = Plumbago(srv.data_dir, config=config).start()     # every sample now comes from SQL chunks
    wait_compacted(srv)                                     # no measurement races background compaction
    cases = [("sumSeries", "sumSeries(bench.*.cpu)", 0), ("glob_mdp800", "bench.*.cpu", 800),
             ("sumSeries_mdp800", "sumSeries(bench.*.cpu)", 800)]
    if os.environ.get("BENCH_RAW_GLOB"):
        cases.append(("glob_raw", "bench.*.cpu", 0))
    ok = True
    with gwref.Reference(str(GWREF_VENV), storage_dir=storage) as ref, \
            HttpClient(srv.url) as client:
        for name, target, mdp in cases:
            params = {"target": target, "from": str(FROM), "until": str(UNTIL), "format": "json",
                      "maxDataPoints": str(mdp)}
            t0 = time.perf_counter()
            first = client.get_ok("/render", params)
            cold = time.perf_counter() - t0
            got = json.loads(first)
            want = ref.render([target], FROM, UNTIL, max_data_points=mdp or None)
            points = sum(len(s["datapoints"]) for s in got)
            assert len(got) == len(want), (name, len(got), len(want))
            ours = timed(lambda: client.get_ok("/render", params), repeat=3)
            theirs = timed(lambda: ref.render_raw([target], FROM, UNTIL, max_data_points=mdp or None), repeat=3)
            report(f"render_{name} ({len(got)} series, {points} points out)", ours * 1000, theirs * 1000, "ms",
                   f"target >= 20x faster; first request after restart {cold * 1000:.0f} ms = "
                   f"{theirs / cold:.1f}x", higher_is_better=False)
            ok &= theirs / ours >= 20
    srv.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
