"""Differential tests of the Prometheus bridge against a real Prometheus 2.42 (../shared/tools/prometheus-reference).

One remote-write dataset (a few hundred series, 2 h at 15 s, ending minutes in the past) goes into a throwaway
Prometheus 2.42 and into a real `plumbago serve`, both as the same snappy WriteRequest bytes. Each query runs on
both, as instant queries at three times and as range queries at steps of 60 s and 15 s, and the answers are
compared with `promref.compare` (labels exact, timestamps to the ms, values within a relative 1e-6, NaN == NaN;
shared/reference/prometheus.md §5.2). The metadata endpoints and error answers (status + errorType) are compared
too. The module skips when promref cannot be imported or Prometheus is not installed (it never installs it).

KNOWN_DIFFERENCES lists a query whose difference is understood and deliberate, with the reason; it is expected to
stay empty.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("PROMREF_TOOL") or ROOT.parent / "shared" / "tools" / "prometheus-reference")
if TOOL.is_dir():
    sys.path.insert(0, str(TOOL))
promref = pytest.importorskip("promref", reason=f"promref not importable (looked in {TOOL})")
if not promref.available(install=False):
    pytest.skip("Prometheus 2.42 is not installed (../shared/tools/prometheus-reference/prom-ref.sh install)",
                allow_module_level=True)
if not (promref.version() or "").startswith("2.42"):
    pytest.skip(f"the reference must be Prometheus 2.42, found {promref.version()!r}", allow_module_level=True)

# query -> reason. A query listed here is reported as xfail instead of failing. Expected: empty.
KNOWN_DIFFERENCES: dict[str, str] = {}

STEP_S = 15
N = 480                                              # 2 h at 15 s
END = int(time.time()) // 60 * 60 - 180              # data ends 3 minutes ago: never write the future
START = END - STEP_S * (N - 1)
TS = [(START + STEP_S * i) * 1000 for i in range(N)]

# evaluation times: the end, an unaligned time in the middle, and one near a stale marker / gap
T_INSTANT = [END, END - 2237, END - 3600 - 90]
RANGE_60 = dict(start=END - 5400, end=END, step=60)              # 1.5 h at 60 s
RANGE_15 = dict(start=END - 1800 - 7, end=END - 7, step=15)      # 30 min at 15 s, unaligned


def _dataset():
    """[(labels, [(ts_ms, value | "stale")])] - counters with resets, gauges, classic histograms, gaps, stale."""
    rnd = random.Random(20261130)
    out = []
    jobs = {"api": 6, "web": 5, "db": 3}
    for job, n_inst in jobs.items():
        for i in range(n_inst):
            inst = f"10.0.{len(job)}.{i}:9100"
            # counters: http_requests_total{method, code}; a few reset, one has a gap, one goes stale
            for method in ("GET", "POST"):
                for code in ("200", "500"):
                    rate = rnd.uniform(0.5, 20.0) * (0.05 if code == "500" else 1.0)
                    resets = {rnd.randrange(50, N - 50)} if rnd.random() < 0.3 else set()
                    v, pts = rnd.uniform(0, 1000), []
                    gap = (200, 240) if (method, code, i) == ("POST", "500", 1) else None
                    for k, t in enumerate(TS):
                        v = rnd.uniform(0, 5) if k in resets else v + rate * STEP_S * rnd.uniform(0.5, 1.5)
                        if gap and gap[0] <= k < gap[1]:
                            continue
                        pts.append((t, v))
                    if (job, i, method, code) == ("web", 2, "GET", "500"):
                        cut = N - 100                                  # stale marker, then nothing
                        pts = pts[:cut] + [(TS[cut], "stale")]
                    out.append(({"__name__": "http_requests_total", "job": job, "instance": inst,
                                 "method": method, "code": code}, pts))
            # classic histogram
            les = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
            counts = [0.0] * len(les)
            ssum, bucket_pts, sum_pts, count_pts = 0.0, [[] for _ in les], [], []
            scale = rnd.uniform(0.1, 1.5)
            reset_at = rnd.randrange(100, N - 100) if i == 0 else -1
            for k, t in enumerate(TS):
                if k == reset_at:
                    counts, ssum = [0.0] * len(les), 0.0
                n_obs = rnd.randint(0, 30)
                for _ in range(n_obs):
                    x = rnd.expovariate(1 / scale)
                    ssum += x
                    for b, le in enumerate(les):
                        if x <= float(le):
                            counts[b] += 1
                for b in range(len(les)):
                    bucket_pts[b].append((t, counts[b]))
                sum_pts.append((t, ssum))
                count_pts.append((t, counts[-1]))
            base = {"job": job, "instance": inst}
            for b, le in enumerate(les):
                out.append(({"__name__": "http_request_duration_seconds_bucket", **base, "le": le}, bucket_pts[b]))
            out.append(({"__name__": "http_request_duration_seconds_sum", **base}, sum_pts))
            out.append(({"__name__": "http_request_duration_seconds_count", **base}, count_pts))
            # gauges
            for zone in ("cpu", "gpu", "board"):
                mid = rnd.uniform(30, 70)
                pts = [(t, mid + 10 * math.sin(k / 40 + i) + rnd.uniform(-2, 2)) for k, t in enumerate(TS)]
                out.append(({"__name__": "node_temperature_celsius", **base, "zone": zone}, pts))
            pts = []
            for k, t in enumerate(TS):
                if i == 1 and 300 <= k < 330:                      # a 7.5-minute gap (longer than the lookback)
                    continue
                if i == 2 and k == 360:                            # stale marker, then samples again
                    pts.append((t, "stale"))
                    continue
                pts.append((t, float(rnd.randint(0, 50)) + k * 0.01 * (i + 1) + round(rnd.random(), 3)))  # no ties
            out.append(({"__name__": "queue_depth", **base}, pts))
            out.append(({"__name__": "memory_bytes", **base},
                        [(t, 1e9 * (1 + i) + 1e6 * k + rnd.uniform(0, 1e5)) for k, t in enumerate(TS)]))
            out.append(({"__name__": "build_info", **base, "version": f"1.{i % 3}.0", "branch": "main"},
                        [(t, 1.0) for t in TS]))
        out.append(({"__name__": "up", "job": job}, [(t, 1.0) for t in TS]))
    # an odd one: NaN and +Inf values, a series that only lives in the first hour
    out.append(({"__name__": "odd_values", "kind": "nan"},
                [(t, float("nan") if k % 7 == 0 else float(k)) for k, t in enumerate(TS)]))
    out.append(({"__name__": "odd_values", "kind": "inf"},
                [(t, float("inf") if k % 11 == 0 else -float(k)) for k, t in enumerate(TS)]))
    out.append(({"__name__": "early_only", "job": "api"}, [(t, float(k)) for k, t in enumerate(TS[:200])]))
    return out


SERIES = _dataset()


def _bodies(series, per=40):
    for i in range(0, len(series), per):
        yield promref.snappy_compress(promref.encode_write_request(series[i:i + per]))


HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture(scope="module")
def reference():
    with promref.Reference(install=False) as ref:
        for body in _bodies(SERIES):
            r = httpx.post(ref.url + "/api/v1/write", content=body, headers=HEADERS, timeout=60)
            assert r.status_code == 204, r.text
        yield ref.url


@pytest.fixture(scope="module")
def plumbago(tmp_path_factory):
    from tests.conftest import Server
    srv = Server(tmp_path_factory.mktemp("promdiff") / "data").start()
    try:
        for body in _bodies(SERIES):
            r = httpx.post(srv.url + "/api/v1/push", content=body, headers=HEADERS, timeout=60)
            assert r.status_code == 204, r.text
        yield srv.url
    finally:
        srv.stop()


# ---- the queries ------------------------------------------------------------------------------------------------
C = "http_requests_total"
B = "http_request_duration_seconds_bucket"
G = "node_temperature_celsius"
Q = "queue_depth"

QUERIES = [
    # selectors: the four matcher types, offset, @
    C, f'{C}{{job="api"}}', f'{C}{{job!="api"}}', f'{C}{{job=~"a.*|db"}}', f'{C}{{job!~"a.*",code="500"}}',
    f'{{__name__=~"http_.*_count|queue_depth"}}', f'{C}{{method=~"(?i)get"}}', f'{C}{{method=~"get|post"}}',
    f'{C}{{code=""}}',
    f'{Q} offset 5m', f'{Q} offset -2m', f'{G}{{zone="cpu"}} @ {END - 600}', f'{Q} @ end()', f'{Q} @ start()',
    f'{Q}{{job="api"}} offset 1h', 'early_only', 'odd_values', 'up',
    # counters and range functions
    f'rate({C}[5m])', f'rate({C}[1m])', f'rate({C}[10m] offset 10m)', f'irate({C}[5m])',
    f'increase({C}[15m])', f'increase({C}{{job="web"}}[1h])', f'delta({G}[10m])', f'deriv({G}[10m])',
    f'idelta({G}[5m])', f'resets({C}[1h])', f'changes({Q}[30m])', f'rate({C}[5m] @ {END - 1200})',
    f'rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])',
    # *_over_time
    f'avg_over_time({G}[10m])', f'min_over_time({G}[10m])', f'max_over_time({G}[10m])',
    f'sum_over_time({Q}[5m])', f'count_over_time({Q}[10m])', f'last_over_time({Q}[10m])',
    f'stddev_over_time({G}[15m])', f'stdvar_over_time({G}[15m])', f'quantile_over_time(0.9, {G}[20m])',
    f'quantile_over_time(0.25, {Q}[10m])', f'present_over_time({Q}[2m])', f'absent_over_time({Q}{{job="none"}}[5m])',
    f'absent_over_time({Q}[5m])', 'avg_over_time(odd_values[5m])', 'max_over_time(odd_values[2m])',
    # histograms
    f'histogram_quantile(0.9, sum by (le) (rate({B}[5m])))',
    f'histogram_quantile(0.5, sum by (job, le) (rate({B}[10m])))',
    f'histogram_quantile(0.99, rate({B}[5m]))', f'histogram_quantile(0, sum by (le) (rate({B}[5m])))',
    f'histogram_quantile(1, sum by (le) (rate({B}[5m])))', f'histogram_quantile(1.5, sum by (le) (rate({B}[5m])))',
    f'histogram_quantile(0.75, sum without (instance) (increase({B}[15m])))',
    # aggregations
    f'sum({C})', f'sum by (job) (rate({C}[5m]))', f'sum without (instance, method) (rate({C}[5m]))',
    f'avg by (zone) ({G})', f'min by (job) ({G})', f'max without (zone) ({G})', f'count by (code) ({C})',
    f'group by (job) ({C})', f'stddev by (job) ({G})', f'stdvar({G})', f'topk(3, {G})', f'bottomk(2, {G})',
    f'topk by (job) (2, rate({C}[5m]))', f'bottomk without (zone, instance) (1, {G})',
    f'quantile(0.9, {G})', f'quantile by (zone) (0.1, {G})', f'quantile(0.5, rate({C}[5m]))',
    f'count_values("v", {Q})', f'count_values by (job) ("ver", build_info)', f'count(count by (job) ({C}))',
    f'sum by (job, instance) ({B})', 'sum(odd_values)', f'avg({Q}) by (job)',
    # binary operators
    f'{G} * 2', f'2 - {G}', f'{G} / {G}', f'{G} % 7', f'{G} ^ 0.5', f'{G} > 50', f'{G} > bool 50',
    f'{G} == bool {G}', f'{Q} <= 10', f'{Q} != 0', f'1 < bool 2',
    f'rate({C}[5m]) / ignoring(code) group_left sum without (code) (rate({C}[5m]))',
    f'sum by (job, instance) (rate({C}[5m])) * on (job, instance) group_left(version) build_info',
    f'build_info * on (job, instance) group_right(version) sum by (job, instance) ({G})',
    f'{Q} + on (job, instance) memory_bytes', f'{Q} - ignoring (zone) {G}{{zone="cpu"}}',
    f'sum by (job) ({Q}) / on (job) group_left count by (job) ({Q})',
    f'{Q} > on (job, instance) group_left {G}{{zone="cpu"}} - 30',
    # set operators
    f'{Q} and {Q} > 20', f'{Q} or {G}{{zone="gpu"}}', f'{Q} unless {Q} < 10',
    f'{C}{{code="500"}} and on (job) up', f'{G} unless ignoring (zone) {Q} > 25',
    # subqueries
    f'max_over_time(rate({C}[5m])[30m:1m])', f'avg_over_time({G}[10m:])', f'min_over_time(sum({Q})[20m:30s])',
    f'rate({C}{{job="db"}}[5m:15s])', f'max_over_time(deriv({G}[5m])[15m:2m] offset 5m)',
    f'sum_over_time({Q}[10m:1m] @ {END - 900})',
    # absent, label manipulation, sort, scalar/vector
    f'absent({C}{{job="nope"}})', f'absent({C})', 'absent(nonexistent{a="b", c=~"d"})', 'absent(sum(nothing))',
    f'label_replace({Q}, "host", "$1", "instance", "(.*):.*")',
    f'label_replace({Q}, "job", "x-$1", "job", "(a.*)")', f'label_replace({Q}, "", "$1", "instance", ".*")',
    f'label_join({Q}, "ji", "/", "job", "instance")', f'label_join(up, "j", "", "job")',
    f'sort({G})', f'sort_desc(rate({C}[5m]))', f'scalar(sum({Q}))', f'scalar({Q})', 'vector(1)',
    f'vector(scalar(count({G})))', f'sum({Q}) * scalar(count(up))',
    # math functions
    f'abs(2 - {G} / 10)', f'ceil({G})', f'floor({G})', f'round({G})', f'round({G}, 5)', f'exp({G} / 20)',
    f'ln({G})', f'log2({Q})', f'log10({G})', f'sqrt({Q})', f'clamp({G}, 40, 60)', f'clamp_min({G}, 45)',
    f'clamp_max({G}, 45)', f'sgn({G} - 50)', f'sin({G})', f'{G} atan2 {G} offset 5m', f'deg(cos({Q}))',
    'pi() * 2', f'-{G}', 'abs(odd_values)',
    # time functions
    'time()', f'timestamp({Q})', f'timestamp({G} offset 3m)', f'day_of_week()', f'hour(timestamp({Q}))',
    f'minute()', f'month(vector(time()))', f'year()', f'day_of_month()', f'days_in_month()', f'day_of_year()',
    # prediction
    f'predict_linear({G}[10m], 600)', f'predict_linear(memory_bytes[30m], 3600)',
    f'holt_winters({G}[10m], 0.5, 0.5)', f'holt_winters({Q}[15m], 0.1, 0.9)',
    # literals and misc
    '1', '2 ^ 3 ^ 2', '"a string"', '(1 + 2) * 3', '1 > 2', '1 > bool 2', 'scalar(up{job="api"}) == bool 1',
    # edge cases
    f'count_values("le", {B})', f'quantile(-0.5, {G})', f'quantile(2, {G})', f'topk(0, {G})',
    f'topk(2, rate({C}[5m]))', f'bottomk(3, sum by (job, instance) ({Q}))', f'-{C}',
    f'sum by (job) (rate({C}[5m])) > bool 1', f'irate({C}{{job="api"}}[1m])', f'last_over_time({C}[5m])',
    f'predict_linear({Q}[10m] @ {END - 300}, 60)', f'timestamp({Q} @ start())', f'rate({Q}[30s])',
    f'histogram_quantile(0.9, {B})', f'sum by (le) ({B}{{le=~"0.*"}})', f'changes({G}[1m:15s])',
    f'{G}{{zone="cpu"}} and on (instance) {Q} > 30', f'group without (le) ({B})',
    f'max by (job) (max_over_time({Q}[1h] offset 30m))', f'absent_over_time(early_only[10m])',
    f'count({C} offset 2h)', f'sum(rate({C}[2h]))', f'deriv({Q}[20m]) * 60',
]

ERROR_QUERIES = [
    "sum(", f'rate({C})', f'{C}{{', '1 +', 'histogram_quantile(0.9)', f'{C}[5m] + 1',
    f'label_replace({Q}, "a", "b", "c", "(")', f'{C} + on (job) {C}', f'label_replace({Q}, "job", "x", "", "")',
    'unknown_function(x)',
    f'sum by (job, code) (rate({C}[5m])) / on (job) group_left sum by (job, method) (rate({C}[5m]))',
    f'label_replace({Q}, "instance", "x", "", "")', f'{{job=~".*"}}', 'sum(1)', 'rate(1[5m])',
    f'{C} @ start() offset', f'topk(x, {G})', f'{{__name__=""}}', '1 offset 5m',
]
RANGE_ONLY_ERRORS = [f'{C}[5m]', '"s"']           # valid as instant queries; a range query must be scalar or vector


def _ids(q):
    return q if len(q) < 90 else q[:87] + "..."


def _check(query, diffs_by_case):
    if not diffs_by_case:
        return
    text = "\n".join(f"[{case}] " + "\n    ".join(d) for case, d in diffs_by_case)
    if query in KNOWN_DIFFERENCES:
        pytest.xfail(f"known difference: {KNOWN_DIFFERENCES[query]}")
    pytest.fail(f"{query}\n{text}")


@pytest.mark.parametrize("query", QUERIES, ids=_ids)
def test_instant(reference, plumbago, query):
    found = []
    for t in T_INSTANT:
        d = promref.compare(reference, plumbago, query, time=t)
        if d:
            found.append((f"time={t}", d))
    _check(query, found)


@pytest.mark.parametrize("step", [60, 15])
@pytest.mark.parametrize("query", QUERIES, ids=_ids)
def test_range(reference, plumbago, query, step):
    rng = RANGE_60 if step == 60 else RANGE_15
    d = promref.compare(reference, plumbago, query, **rng)
    _check(query, [(f"range {rng}", d)] if d else [])


@pytest.mark.parametrize("query", ERROR_QUERIES + RANGE_ONLY_ERRORS, ids=_ids)
def test_errors(reference, plumbago, query):
    found = []
    cases = [("range", dict(**RANGE_60))]
    if query not in RANGE_ONLY_ERRORS:
        cases.insert(0, ("instant", dict(time=END)))
    for name, kw in cases:
        sa, a = promref.query(reference, query, **kw)
        sb, b = promref.query(plumbago, query, **kw)
        if sa != sb:
            found.append((name, [f"HTTP {sb}, reference {sa} ({str(b)[:200]})"]))
            continue
        d = promref.compare_results(a, b)
        if d:
            found.append((name, d))
    _check(query, found)


BAD_PARAMS = [
    ("/api/v1/query", {"query": "up", "time": "yesterday"}),
    ("/api/v1/query_range", {"query": "up", "start": str(END - 60), "end": str(END), "step": "0"}),
    ("/api/v1/query_range", {"query": "up", "start": str(END), "end": str(END - 60), "step": "15"}),
    ("/api/v1/query_range", {"query": "up", "start": str(END - 10 ** 6), "end": str(END), "step": "1"}),
    ("/api/v1/query_range", {"query": "up", "start": str(END - 60), "end": str(END)}),
    ("/api/v1/query", {}),
    ("/api/v1/series", {}),
    ("/api/v1/series", {"match[]": "up{"}),
    ("/api/v1/labels", {"match[]": '{job=""}'}),
    ("/api/v1/label/job/values", {"match[]": "}"}),
]


@pytest.mark.parametrize("path,params", BAD_PARAMS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_PARAMS)])
def test_bad_parameters(reference, plumbago, path, params):
    ra = httpx.get(reference + path, params=params, timeout=30)
    rb = httpx.get(plumbago + path, params=params, timeout=30)
    assert rb.status_code == ra.status_code, \
        f"{path} {params}: {rb.status_code} {rb.text[:200]}, reference {ra.text[:200]}"
    ja, jb = ra.json(), rb.json()
    assert (jb.get("status"), jb.get("errorType")) == (ja.get("status"), ja.get("errorType")), (jb, ja)


# ---- metadata endpoints -------------------------------------------------------------------------------------------
META = [
    ("/api/v1/series", [("match[]", "up")]),
    ("/api/v1/series", [("match[]", f'{C}{{job="web", code="500"}}')]),
    ("/api/v1/series", [("match[]", f'{G}{{zone=~"c.*"}}'), ("match[]", "build_info")]),
    ("/api/v1/series", [("match[]", f'{{__name__=~"{B}", le="+Inf", job!="db"}}')]),
    ("/api/v1/series", [("match[]", f'{Q}{{instance!~"10.0.3.*"}}')]),
    ("/api/v1/series", [("match[]", "nothing_here")]),
    ("/api/v1/labels", []),
    ("/api/v1/labels", [("match[]", G)]),
    ("/api/v1/labels", [("match[]", "up"), ("match[]", "build_info")]),
    ("/api/v1/label/__name__/values", []),
    ("/api/v1/label/job/values", []),
    ("/api/v1/label/le/values", []),
    ("/api/v1/label/instance/values", [("match[]", f'{C}{{job="db"}}')]),
    ("/api/v1/label/zone/values", [("match[]", f'{G}{{job="web"}}')]),
    ("/api/v1/label/nope/values", []),
]


def _normal(data):
    if data and isinstance(data[0], dict):
        return sorted(tuple(sorted(d.items())) for d in data)
    return sorted(data or [])


@pytest.mark.parametrize("path,params", META, ids=[f"{p}-{i}" for i, (p, _) in enumerate(META)])
def test_metadata(reference, plumbago, path, params):
    ra = httpx.get(reference + path, params=params, timeout=30)
    rb = httpx.get(plumbago + path, params=params, timeout=30)
    assert rb.status_code == ra.status_code, rb.text[:300]
    ja, jb = ra.json(), rb.json()
    assert jb["status"] == ja["status"]
    assert _normal(jb.get("data")) == _normal(ja.get("data"))


def test_query_count():
    assert len(QUERIES) >= 120 and len(set(QUERIES)) == len(QUERIES)
