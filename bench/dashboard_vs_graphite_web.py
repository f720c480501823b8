"""A Grafana-like dashboard: 20 targets with functions over 500 series x 24 h at 60 s, plumbago vs
graphite-web 1.1.10 on whisper files of the same data, in the same run. Target: >= 10x faster.

Each side renders the whole dashboard (20 requests, maxDataPoints 800 as Grafana sends) once to warm up,
then 3 times; the median dashboard time is compared. Results are checked to agree on series names.
"""
from __future__ import annotations

import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (GWREF_VENV, HttpClient, Plumbago, free_port, gwref_module, load_plaintext, report,  # noqa
                    wait_compacted, write_whisper)

HOSTS, METRICS, STEP, N = 50, 10, 60, 1440          # 50 hosts x 10 metrics = 500 series, 24 h at 60 s
END = int(time.time()) // STEP * STEP - 120
START = END - (N - 1) * STEP
FROM, UNTIL = START - STEP, END
METRIC_NAMES = ["cpu.user", "cpu.system", "mem.used", "mem.free", "disk.read", "disk.write", "net.rx", "net.tx",
                "req.count", "req.errors"]
TARGETS = [
    "sumSeries(dash.*.cpu.user)",
    "averageSeries(dash.*.mem.used)",
    "maxSeries(dash.*.cpu.system)",
    "aliasByNode(dash.host0[0-9].cpu.user, 1)",
    "highestAverage(dash.*.cpu.user, 5)",
    "sortByMaxima(dash.host1*.mem.used)",
    "movingAverage(dash.host0*.req.count, 10)",
    "nonNegativeDerivative(dash.host0*.net.rx)",
    "perSecond(dash.host1*.net.tx)",
    "scale(sumSeries(dash.*.req.errors), 60)",
    "asPercent(sumSeries(dash.*.req.errors), sumSeries(dash.*.req.count))",
    "divideSeries(sumSeries(dash.*.disk.read), sumSeries(dash.*.disk.write))",
    "groupByNode(dash.*.cpu.*, 2, 'sumSeries')",
    "summarize(dash.host00.req.count, '1h', 'sum')",
    "percentileOfSeries(dash.*.cpu.user, 95)",
    "removeBelowValue(dash.host2*.mem.free, 10)",
    "keepLastValue(dash.host3*.disk.read)",
    "aliasSub(dash.host4*.cpu.user, 'host(\\d+)', 'h\\1')",
    "timeShift(sumSeries(dash.*.req.count), '1h')",
    "limit(sortByName(dash.*.net.rx), 10)",
]


def dataset() -> dict:
    rnd = random.Random(7)
    series = {}
    for h in range(HOSTS):
        for m in METRIC_NAMES:
            base = rnd.uniform(1, 100)
            if m in ("net.rx", "net.tx", "req.count", "req.errors", "disk.read", "disk.write"):
                total, vals = 0.0, []
                for k in range(N):
                    total += rnd.randint(0, 20)
                    vals.append(None if rnd.random() < 0.01 else total)
            else:
                vals = [None if rnd.random() < 0.01 else round(base + rnd.uniform(-5, 5), 2) for _ in range(N)]
            series[f"dash.host{h:02d}.{m}"] = vals
    return series


def main() -> int:
    gwref = gwref_module()
    work = tempfile.mkdtemp(prefix="bench-dash-")
    data = dataset()
    write_whisper(os.path.join(work, "graphite"), data, N, START, STEP)
    config = "storage_schemas: |\n  [d]\n  pattern = .*\n  retentions = 60s:30d\nstorage:\n  flush_interval: 2\n"
    srv = Plumbago(os.path.join(work, "plumbago"), config=config, carbon_port=free_port()).start()
    load_plaintext(srv, data, N, START, STEP)
    srv.stop()
    srv = Plumbago(srv.data_dir, config=config).start()
    wait_compacted(srv)

    def params(t):
        return {"target": t, "from": str(FROM), "until": str(UNTIL), "format": "json", "maxDataPoints": "800"}

    with gwref.Reference(str(GWREF_VENV), storage_dir=os.path.join(work, "graphite")) as ref, \
            HttpClient(srv.url) as client:
        for t in TARGETS:      # same series names on both sides
            ours = [s["target"] for s in json.loads(client.get_ok("/render", params(t)))]
            theirs = [s["target"] for s in ref.render([t], FROM, UNTIL, max_data_points=800)]
            assert ours == theirs, (t, ours[:3], theirs[:3])

        def dash_plumbago():
            for t in TARGETS:
                client.get_ok("/render", params(t))

        def dash_graphite():
            for t in TARGETS:
                status, _, _ = ref.render_raw([t], FROM, UNTIL, max_data_points=800)
                assert status == 200

        gw_url, gw_proc = ref.serve()
        gw_client = HttpClient(gw_url)

        def dash_graphite_http():
            for t in TARGETS:
                gw_client.get_ok("/render", params(t))

        times = {}
        for name, fn in (("plumbago", dash_plumbago), ("graphite-web", dash_graphite),
                         ("graphite-web-http", dash_graphite_http)):
            fn()
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - t0)
            times[name] = statistics.median(runs)
        gw_client.close()
        os.killpg(gw_proc.pid, signal.SIGTERM)
        gw_proc.wait()
    srv.stop()
    report(f"dashboard_20_targets_http ({HOSTS * METRICS} series x 24 h at 60 s; both over HTTP, graphite-web "
           f"on Django's server)", times["plumbago"] * 1000, times["graphite-web-http"] * 1000, "ms",
           "target >= 10x faster", higher_is_better=False)
    report("dashboard_20_targets_vs_inprocess (graphite-web without any HTTP cost)", times["plumbago"] * 1000,
           times["graphite-web"] * 1000, "ms", "conservative", higher_is_better=False)
    return 0 if times["graphite-web-http"] / times["plumbago"] >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
