"""The /api/v1 HTTP API: envelopes, error codes, parameter parsing, number formatting, metadata endpoints over the
shared Graphite/Prometheus index, and query/query_range through the real PromQL parser and engine."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import snappy

from prom_bridge import api, remote
from prom_bridge.proto import remote_pb2

T0 = 1_700_000_000_000
STALE = struct.unpack("<d", struct.pack("<Q", remote.STALE_NAN_BITS))[0]


def rw(client, series):
    req = remote_pb2.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in labels:
            ts.labels.add(name=k, value=v)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    r = client.post("/api/v1/write", content=snappy.compress(req.SerializeToString()),
                    headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"})
    assert r.status_code == 204, r.text


@pytest.fixture
def seeded(client, storage):
    rw(client, [
        ([("__name__", "up"), ("instance", "a:9100"), ("job", "node")], [(T0 + i * 15000, 1.0) for i in range(41)]),
        ([("__name__", "up"), ("instance", "b:9100"), ("job", "node")], [(T0 + i * 15000, 0.0) for i in range(41)]),
        ([("__name__", "http_requests_total"), ("code", "200"), ("job", "api")],
         [(T0 + i * 15000, float(i * 10)) for i in range(41)]),
    ])
    # A Graphite series, written the way the Graphite ingest path writes it, lives in the same index.
    storage.write("anonymous", ["servers.web1.cpu;dc=east"], np.array([T0], np.int64), np.array([42.5]))
    return client


def ok(r):
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def err(r, code, kind="bad_data"):
    assert r.status_code == code, r.text
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == kind
    return body["error"]


# ---- parameter parsing -----------------------------------------------------------------------------------------

def test_parse_time():
    assert api.parse_time("1700000000") == 1_700_000_000_000
    assert api.parse_time("1700000000.1234") == 1_700_000_000_123
    assert api.parse_time("0.0005") == 1 and api.parse_time("-0.0005") == -1   # math.Round: half away from zero
    assert api.parse_time("-1.5") == -1500
    assert api.parse_time("1e9") == 1_000_000_000_000
    assert api.parse_time("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert api.parse_time("2023-11-14T22:13:20.123456789Z") == 1_700_000_000_123
    assert api.parse_time("2023-11-15T00:13:20+02:00") == 1_700_000_000_000
    assert api.parse_time(api.MIN_TIME_FORMATTED) == api.MIN_TIME_MS
    assert api.parse_time(api.MAX_TIME_FORMATTED) == api.MAX_TIME_MS
    for bad in ("", "yesterday", "2023-11-14", "2023-11-14T22:13:20", "NaN", "Inf", "2023-13-01T00:00:00Z"):
        with pytest.raises(ValueError, match="to a valid timestamp"):
            api.parse_time(bad)


def test_parse_duration():
    assert api.parse_duration_ns("15") == 15 * 10**9
    assert api.parse_duration_ns("0.5") == 5 * 10**8
    assert api.parse_duration_ns("1h30m") == 5400 * 10**9
    assert api.parse_duration_ns("1d") == 86400 * 10**9
    assert api.parse_duration_ns("100ms") == 10**8
    for bad in ("", "1ns", "1.5h", "h", "5m1h", "abc"):
        with pytest.raises(ValueError, match="valid duration"):
            api.parse_duration_ns(bad)


def test_value_and_timestamp_formatting():
    f = api.format_value
    assert [f(x) for x in (1.0, 0.5, -0.0, 0.0, 1e-7, 1e-6, 1e21, 1.5e21, 123456789012345680.0, 1e16, 100.0)] == \
        ["1", "0.5", "-0", "0", "1e-07", "0.000001", "1e+21", "1.5e+21", "123456789012345680", "10000000000000000",
         "100"]
    assert [f(x) for x in (math.nan, math.inf, -math.inf, STALE)] == ["NaN", "+Inf", "-Inf", "NaN"]
    assert api.format_scalar_value(1e-7) == "0.0000001"
    assert api.format_scalar_value(1e21) == "1000000000000000000000"
    assert [api.format_ts(x) for x in (1_700_000_000_000, 1_700_000_000_100, 1_700_000_000_050, -1500, 5)] == \
        ["1700000000", "1700000000.100", "1700000000.050", "-1.500", "0.005"]
    assert api.format_scalar_ts(1_700_000_000_500) == "1700000000.5"
    assert api.format_scalar_ts(1_700_000_000_050) == "1700000000.05"


def test_parse_selector():
    ms = api.parse_selector('up{job="node",instance=~"a.*", x!="y", z!~\'q\'}')
    assert [(m.name, m.op, m.value) for m in ms] == [("__name__", "=", "up"), ("job", "=", "node"),
                                                     ("instance", "=~", "a.*"), ("x", "!=", "y"), ("z", "!~", "q")]
    assert [(m.name, m.value) for m in api.parse_selector('{__name__="a:b", l="\\n\\"x"}')] == \
        [("__name__", "a:b"), ("l", '\n"x')]
    assert api.parse_selector("{a=`raw\\n`}")[0].value == "raw\\n"
    for bad in ("", "{}", '{a=""}', '{a=~".*"}', "up{", 'up{a="b"', "up{a}", 'up{a="b"} x', "1up", "up{a=~\"(\"}"):
        with pytest.raises(ValueError, match="parse error"):
            api.parse_selector(bad)


# ---- series / labels / label values ---------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["/api/v1", "/prometheus/api/v1"])
def test_series(seeded, prefix):
    data = ok(seeded.get(prefix + "/series", params={"match[]": "up"}))
    assert data == [{"__name__": "up", "instance": "a:9100", "job": "node"},
                    {"__name__": "up", "instance": "b:9100", "job": "node"}]
    data = ok(seeded.get(prefix + "/series", params=[("match[]", 'up{instance=~"b.*"}'), ("match[]", '{job="api"}')]))
    assert [d["__name__"] for d in data] == ["http_requests_total", "up"]
    # POST form, and the Graphite series through its labels
    data = ok(seeded.post(prefix + "/series", data={"match[]": '{__name__=~"servers\\\\..*"}'}))
    assert data == [{"__name__": "servers.web1.cpu", "dc": "east"}]
    assert ok(seeded.get(prefix + "/series", params={"match[]": "nothing"})) == []
    # start after the last sample hides a series
    assert ok(seeded.get(prefix + "/series", params={"match[]": "up", "start": str(T0 // 1000 + 10**6)})) == []


def test_series_errors(seeded):
    assert err(seeded.get("/api/v1/series"), 400) == "no match[] parameter provided"
    msg = err(seeded.get("/api/v1/series", params={"match[]": "up{"}), 400)
    assert msg.startswith('invalid parameter "match[]": 1:')
    msg = err(seeded.get("/api/v1/series", params={"match[]": "up", "start": "x"}), 400)
    assert msg == 'invalid parameter "start": Invalid time value for \'start\': cannot parse "x" to a valid timestamp'


def test_labels_and_values(seeded):
    assert ok(seeded.get("/api/v1/labels")) == ["__name__", "code", "dc", "instance", "job"]
    assert ok(seeded.post("/api/v1/labels", data={"match[]": "up"})) == ["__name__", "instance", "job"]
    assert ok(seeded.get("/api/v1/label/job/values")) == ["api", "node"]
    assert ok(seeded.get("/api/v1/label/__name__/values")) == ["http_requests_total", "servers.web1.cpu", "up"]
    assert ok(seeded.get("/api/v1/label/instance/values", params={"match[]": '{job="node"}'})) == ["a:9100", "b:9100"]
    assert ok(seeded.get("/prometheus/api/v1/label/dc/values")) == ["east"]
    assert ok(seeded.get("/api/v1/label/nope/values")) == []
    assert err(seeded.get("/api/v1/label/a-b/values"), 400) == 'invalid label name: "a-b"'
    assert "at least one non-empty matcher" in err(seeded.get("/api/v1/labels", params={"match[]": '{a=~".*"}'}), 400)


def test_multi_tenant_reads(client, storage):
    storage.write("t1", ["a.b"], np.array([T0], np.int64), np.array([1.0]))
    storage.write("t2", ["c.d"], np.array([T0], np.int64), np.array([2.0]))
    assert ok(client.get("/api/v1/label/__name__/values", headers={"X-Scope-OrgID": "t1"})) == ["a.b"]
    assert ok(client.get("/api/v1/label/__name__/values", headers={"X-Scope-OrgID": "t1|t2"})) == ["a.b", "c.d"]


# ---- status -------------------------------------------------------------------------------------------------------

def test_status_endpoints(seeded):
    info = ok(seeded.get("/api/v1/status/buildinfo"))
    assert info["version"] == "2.42.0" and set(info) == {"version", "revision", "branch", "buildUser", "buildDate",
                                                         "goVersion"}
    assert "yaml" in ok(seeded.get("/api/v1/status/config"))
    flags = ok(seeded.get("/prometheus/api/v1/status/flags"))
    assert flags["query.lookback-delta"] == "5m"
    rt = ok(seeded.get("/api/v1/status/runtimeinfo"))
    assert {"startTime", "CWD", "reloadConfigSuccess", "lastConfigTime", "corruptionCount", "goroutineCount",
            "GOMAXPROCS", "GOGC", "GODEBUG", "storageRetention"} <= set(rt)
    tsdb = ok(seeded.get("/api/v1/status/tsdb"))
    assert tsdb["headStats"]["numSeries"] == 4
    assert tsdb["headStats"]["maxTime"] == T0 + 40 * 15000
    assert tsdb["seriesCountByMetricName"][0] == {"name": "up", "value": 2}
    assert {"name": "job=node", "value": 2} in tsdb["seriesCountByLabelValuePair"]
    assert set(tsdb) == {"headStats", "seriesCountByMetricName", "labelValueCountByLabelName",
                         "memoryInBytesByLabelName", "seriesCountByLabelValuePair"}


def test_unknown_path_and_method(seeded):
    assert seeded.get("/api/v1/nope").status_code == 404
    assert seeded.post("/api/v1/label/job/values").status_code == 405
    assert seeded.get("/api/v1/read").status_code == 405


def test_storage_not_ready_is_503():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient
    app = Starlette(routes=api.routes())
    app.state.storage = None
    with TestClient(app) as c:
        r = c.get("/api/v1/labels")
        assert r.status_code == 503 and r.text == "Service Unavailable"
        assert c.post("/api/v1/write", content=b"").status_code == 503


# ---- query / query_range --------------------------------------------------------------------------------------------

def test_instant_query_vector(seeded):
    t = (T0 + 600_000) / 1000
    data = ok(seeded.get("/api/v1/query", params={"query": "up", "time": str(t)}))
    assert data["resultType"] == "vector"
    assert sorted(data["result"], key=lambda x: x["metric"]["instance"]) == [
        {"metric": {"__name__": "up", "instance": "a:9100", "job": "node"}, "value": [1700000600, "1"]},
        {"metric": {"__name__": "up", "instance": "b:9100", "job": "node"}, "value": [1700000600, "0"]}]
    # timestamps keep three decimals in the raw JSON text
    r = seeded.post("/api/v1/query", data={"query": "sum(up)", "time": "1700000600.1"})
    assert b'"value":[1700000600.100,"1"]' in r.content


def test_instant_query_scalar_string_matrix(seeded):
    data = ok(seeded.get("/api/v1/query", params={"query": "1e-7", "time": "1700000000.5"}))
    assert data == {"resultType": "scalar", "result": [1700000000.5, "0.0000001"]}
    r = seeded.get("/api/v1/query", params={"query": '"hello"', "time": "1700000000"})
    assert ok(r) == {"resultType": "string", "result": [1700000000, "hello"]}
    data = ok(seeded.get("/api/v1/query", params={"query": "up{instance=\"a:9100\"}[30s]", "time": str(T0 / 1000 + 30)}))
    assert data["resultType"] == "matrix"
    assert data["result"][0]["values"] == [[1700000000, "1"], [1700000015, "1"], [1700000030, "1"]]


def test_graphite_series_in_promql(seeded):
    data = ok(seeded.get("/api/v1/query", params={"query": '{__name__="servers.web1.cpu"}', "time": str(T0 / 1000)}))
    assert data["result"] == [{"metric": {"__name__": "servers.web1.cpu", "dc": "east"},
                               "value": [1700000000, "42.5"]}]


def test_query_range(seeded):
    params = {"query": "rate(http_requests_total[1m])", "start": str(T0 / 1000 + 60), "end": str(T0 / 1000 + 120),
              "step": "30s"}
    data = ok(seeded.get("/api/v1/query_range", params=params))
    assert data["resultType"] == "matrix"
    [series] = data["result"]
    assert series["metric"] == {"code": "200", "job": "api"}
    assert [p[0] for p in series["values"]] == [1700000060, 1700000090, 1700000120]
    assert all(float(v) == pytest.approx(10 / 15) for _, v in series["values"])
    data = ok(seeded.post("/prometheus/api/v1/query_range", data={**params, "query": "up", "step": "15"}))
    assert [s["metric"]["instance"] for s in data["result"]] == ["a:9100", "b:9100"]   # sorted by labels
    assert len(data["result"][0]["values"]) == 5


def test_query_range_limits_and_errors(seeded):
    base = {"query": "up", "start": "0", "end": "11000", "step": "1"}
    assert ok(seeded.get("/api/v1/query_range", params=base))["resultType"] == "matrix"   # 11001 points: accepted
    msg = err(seeded.get("/api/v1/query_range", params={**base, "end": "11001"}), 400)
    assert msg.startswith("exceeded maximum resolution of 11,000 points per timeseries")
    assert err(seeded.get("/api/v1/query_range", params={**base, "step": "0"}), 400).startswith(
        'invalid parameter "step": zero or negative query resolution step widths are not accepted')
    assert err(seeded.get("/api/v1/query_range", params={**base, "end": "-1"}), 400) == \
        'invalid parameter "end": end timestamp must not be before start time'
    assert err(seeded.get("/api/v1/query_range", params={**base, "start": "x"}), 400) == \
        'invalid parameter "start": cannot parse "x" to a valid timestamp'
    assert err(seeded.get("/api/v1/query_range", params={**base, "step": "1ns"}), 400) == \
        'invalid parameter "step": cannot parse "1ns" to a valid duration'
    assert "parse error" in err(seeded.get("/api/v1/query_range", params={**base, "query": "sum("}), 400)
    assert "range vector" in err(seeded.get("/api/v1/query_range", params={**base, "query": "up[5m]"}), 400)


def test_query_errors(seeded):
    msg = err(seeded.get("/api/v1/query", params={"query": "foo{"}), 400)
    assert msg.startswith('invalid parameter "query": 1:5: parse error')
    assert err(seeded.get("/api/v1/query", params={"query": ""}), 400).startswith('invalid parameter "query"')
    assert err(seeded.get("/api/v1/query", params={"query": "up", "time": "soon"}), 400).startswith(
        'invalid parameter "time"')
    assert err(seeded.get("/api/v1/query", params={"query": "up", "timeout": "x"}), 400).startswith(
        'invalid parameter "timeout"')
    # duplicate label sets after dropping the name: an execution error, 422
    msg = err(seeded.get("/api/v1/query", params={"query": "up{job='node'} * 1 or label_replace(up, 'instance', 'x', '', '')",
                                                   "time": str(T0 / 1000)}), 422, "execution")
    assert msg


def test_query_timeout(seeded, monkeypatch):
    import time as _time
    from prom_bridge.promql import engine as eng
    orig = eng.Engine.instant

    def slow(self, *a, **k):
        _time.sleep(0.5)
        return orig(self, *a, **k)
    monkeypatch.setattr(eng.Engine, "instant", slow)
    r = seeded.get("/api/v1/query", params={"query": "up", "timeout": "50ms"})
    assert err(r, 503, "timeout")


def test_format_query(seeded):
    assert ok(seeded.get("/api/v1/format_query", params={"query": "sum by(job)(rate(up[5m]))"})) == \
        "sum by (job) (rate(up[5m]))"
    assert err(seeded.get("/api/v1/format_query", params={"query": "sum("}), 400).startswith(
        'invalid parameter "query"')


def test_query_exemplars(client, storage):
    req = remote_pb2.WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="req_bucket")
    ts.labels.add(name="le", value="0.5")
    ts.samples.add(timestamp=T0, value=3)
    ex = ts.exemplars.add(value=0.25, timestamp=T0 + 479)
    ex.labels.add(name="trace_id", value="abc")
    client.post("/api/v1/write", content=snappy.compress(req.SerializeToString()))
    r = client.get("/api/v1/query_exemplars", params={"query": "rate(req_bucket[5m])", "start": str(T0 / 1000 - 60),
                                                       "end": str(T0 / 1000 + 60)})
    assert ok(r) == [{"seriesLabels": {"__name__": "req_bucket", "le": "0.5"},
                      "exemplars": [{"labels": {"trace_id": "abc"}, "value": "0.25", "timestamp": 1700000000.479}]}]
    assert ok(client.get("/api/v1/query_exemplars", params={"query": "other"})) == []
    assert err(client.get("/api/v1/query_exemplars", params={"query": "x", "start": "2", "end": "1"}), 400) == \
        "end timestamp must not be before start timestamp"


def test_remote_write_then_promql_and_remote_read_agree(client, storage):
    """The same samples seen through the three read paths."""
    rw(client, [([("__name__", "g"), ("k", "v")], [(T0, 1.5), (T0 + 1000, 2.5)])])
    q = ok(client.get("/api/v1/query_range", params={"query": "g", "start": str(T0 / 1000), "end": str(T0 / 1000 + 1),
                                                     "step": "1"}))
    assert q["result"][0]["values"] == [[1700000000, "1.5"], [1700000001, "2.5"]]
    req = remote_pb2.ReadRequest()
    qq = req.queries.add(start_timestamp_ms=T0, end_timestamp_ms=T0 + 1000)
    qq.matchers.add(name="k", value="v")
    r = client.post("/api/v1/read", content=snappy.compress(req.SerializeToString()))
    resp = remote_pb2.ReadResponse.FromString(snappy.uncompress(r.content))
    assert [(s.timestamp, s.value) for s in resp.results[0].timeseries[0].samples] == [(T0, 1.5), (T0 + 1000, 2.5)]
