"""Differential tests against graphite-web 1.1.10 (../shared/tools/graphite-reference).

One dataset is written both into graphite-web's whisper files and into a real `plumbago serve`; each test
renders the same target on both and compares point by point (relative tolerance 1e-6, names exact).
The whole directory skips when the reference venv is not installed (run .ci/run or
`sh ../shared/tools/graphite-reference/setup.sh .gwref-venv`).
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("GWREF_TOOL") or ROOT.parent / "shared" / "tools" / "graphite-reference")
VENV = os.environ.get("GWREF_VENV") or str(ROOT / ".gwref-venv")
if TOOL.is_dir():
    sys.path.insert(0, str(TOOL))
try:
    import gwref
except ImportError:
    gwref = None
GWREF_MISSING = ("graphite-web reference missing (sh ../shared/tools/graphite-reference/setup.sh .gwref-venv)"
                 if gwref is None or not gwref.available(VENV) else None)


def pytest_collection_modifyitems(config, items):
    """Tests that need graphite-web skip without it; the Prometheus differential tests in this folder do not."""
    if GWREF_MISSING is None:
        return
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here and "prometheus" not in item.name \
                and "prometheus" not in Path(str(item.fspath)).name:
            item.add_marker(pytest.mark.skip(reason=GWREF_MISSING))

STEP = 60
END = int(time.time()) // 3600 * 3600 - 3600       # aligned to the hour, an hour in the past
N = 240                                           # 4 hours of 60 s points
TS = [END - STEP * (N - 1 - i) for i in range(N)]
FROM, UNTIL = TS[119], TS[-1]                     # the last 2 hours; the 2 hours before feed moving windows


def _dataset() -> dict:
    import random
    rnd = random.Random(42)
    pts: dict[str, list] = {}

    def put(name, values):
        pts[name] = [[t, v] for t, v in zip(TS, values)]

    put("app.web1.requests.count", [float(i % 17) for i in range(N)])
    put("app.web2.requests.count", [None if i % 10 == 3 else float(i) for i in range(N)])
    put("app.web3.requests.count", [float(rnd.randint(0, 100)) for _ in range(N)])
    put("app.web1.latency.mean", [round(rnd.uniform(-5, 20), 3) for _ in range(N)])
    put("app.web2.latency.mean", [None if 50 <= i < 60 else round(rnd.uniform(0, 10), 2) for i in range(N)])
    counter, values = 0.0, []
    for i in range(N):
        counter = 0.0 if i in (70, 180) else counter + rnd.randint(1, 9)   # counter resets
        values.append(counter)
    put("sys.host1.net.bytes", values)
    put("sys.host2.net.bytes", [float(i * 3) if i % 7 else None for i in range(N)])
    put("neg.values", [float(i - N // 2) for i in range(N)])
    put("zero.series", [0.0] * N)
    put("empty.mostly", [None] * (N - 3) + [1.0, 2.0, 3.0])
    put("disk.used;dc=east;host=h1", [50.0 + (i % 13) for i in range(N)])
    put("disk.used;dc=west;host=h2", [70.0 - (i % 11) for i in range(N)])
    put("disk.used;dc=east;host=h3", [None if i % 5 == 0 else 10.0 + i for i in range(N)])
    put("cpu.load;dc=east;host=h1", [rnd.uniform(0, 4) for _ in range(N)])
    pts["misc.slow"] = [[t, float(i)] for i, t in enumerate(TS) if t % 120 == 0]
    return {"step": STEP, "points": pts, "steps": {"misc.slow": 120},
            "retentions": {"misc.slow": "120s:30d"}}


DATASET = _dataset()


@pytest.fixture(scope="session")
def reference():
    with gwref.Reference(VENV, DATASET, retentions="60s:30d") as ref:
        yield ref


DEFAULT_CONFIG = ("storage_schemas: |\n  [slow]\n  pattern = ^misc\\.slow$\n  retentions = 120s:30d\n"
                  "  [default]\n  pattern = .*\n  retentions = 60s:30d\n")


def start_plumbago(dataset: dict, data_dir, config: str = DEFAULT_CONFIG):
    """A `plumbago serve` holding `dataset` (gwref's format), ingested over POST /metrics. Caller stops it."""
    from tests.conftest import Server
    srv = Server(data_dir, config=config).start()
    metrics = []
    for name, points in dataset["points"].items():
        base, *tags = name.split(";")
        step = dataset.get("steps", {}).get(name, dataset["step"])
        metrics += [{"name": base, "tags": tags, "interval": step, "value": v, "time": t, "mtype": "gauge"}
                    for t, v in points if v is not None]
    with srv.client() as c:
        for i in range(0, len(metrics), 5000):
            r = c.post("/metrics", json=metrics[i:i + 5000])
            assert r.status_code == 200 and r.json()["Invalid"] == 0, r.text
    return srv


def dataset_fixtures(dataset: dict, retentions: str, config: str = DEFAULT_CONFIG, name: str = "extra"):
    """A module-scoped (graphite-web reference, plumbago) fixture pair over a dataset of a test module's own."""
    @pytest.fixture(scope="module")
    def reference_fixture():
        with gwref.Reference(VENV, dataset, retentions=retentions) as ref:
            yield ref

    @pytest.fixture(scope="module")
    def plumbago_fixture(tmp_path_factory):
        srv = start_plumbago(dataset, tmp_path_factory.mktemp(name) / "data", config)
        yield srv
        srv.stop()

    return reference_fixture, plumbago_fixture


@pytest.fixture(scope="session")
def plumbago(tmp_path_factory):
    srv = start_plumbago(DATASET, tmp_path_factory.mktemp("diff") / "data")
    yield srv
    srv.stop()


def render_plumbago(srv, target: str, frm: int = FROM, until: int = UNTIL, **params):
    import httpx
    q = {"target": target, "from": str(frm), "until": str(until), "format": "json", "maxDataPoints": "0", **params}
    r = httpx.get(srv.url + "/render", params=q, timeout=60)
    return r


def assert_same(reference, plumbago, target: str, frm: int = FROM, until: int = UNTIL, tags: bool = False):
    want = reference.render([target], frm, until)
    r = render_plumbago(plumbago, target, frm, until)
    assert r.status_code == 200, f"{target}: plumbago {r.status_code} {r.text[:300]}"
    diff = gwref.compare(want, r.json(), tags=tags)
    assert diff is None, f"{target}: {diff}"
