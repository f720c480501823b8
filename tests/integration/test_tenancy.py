"""Tenants, authentication, scopes and limits over HTTP: the auth matrix, the isolation matrix, limits."""
import base64
import time

import pytest

NOW = int(time.time()) // 60 * 60 - 600
CONFIG = """
tenancy: {enabled: true, org_id_header: true}
auth:
  enabled: true
  policies:
    - {name: a-read, user: "1001", token: read-a, tenant: team-a, scopes: [metrics:read]}
    - {name: a-write, user: "1001", token: write-a, tenant: team-a, scopes: [metrics:write]}
    - {name: a-admin, user: "1009", token: admin-a, tenant: team-a, scopes: [admin]}
    - {name: b-all, user: "1002", token: all-b, tenant: team-b, scopes: [metrics:read, metrics:write]}
    - {name: federated, user: "7", token: fed, scopes: [metrics:read]}
limits:
  defaults: {max_labels_per_series: 5}
  tenants:
    team-c: {max_series: 3}
    team-d: {ingestion_rate: 10, ingestion_burst: 100}
"""
CREDS = {
    "none": {},
    "wrong": {"Authorization": "Bearer 1001:nope"},
    "read": {"Authorization": "Basic " + base64.b64encode(b"1001:read-a").decode()},
    "write": {"Authorization": "Bearer 1001:write-a"},
    "admin": {"Authorization": "Bearer admin-a"},
}
B = {"Authorization": "Bearer 1002:all-b"}
A_ADMIN = CREDS["admin"]


def metric(name, value, tags=(), t=None):
    return {"name": name, "interval": 10, "value": value, "time": t or NOW + 10, "tags": list(tags)}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.conftest import Server
    s = Server(tmp_path_factory.mktemp("tenancy") / "data", config=CONFIG).start()
    with s.client() as c:
        assert c.post("/metrics", json=[metric("shared.name", 1.0), metric("iso.a", 1.0, ["team=a"]),
                                        metric("only.a.x", 1.0)], headers=A_ADMIN).status_code == 200
        assert c.post("/metrics", json=[metric("shared.name", 2.0), metric("iso.b", 2.0, ["team=b"]),
                                        metric("only.b.y", 2.0)], headers=B).status_code == 200
        schemas = "[a]\npattern = .*\nretentions = 10s:2d\n"
        assert c.post("/graphite/config/storageSchemas", content=schemas.encode(), headers=A_ADMIN).status_code == 200
    yield s
    s.stop()


READS = [
    ("GET", "/render", {"target": "shared.name", "from": str(NOW), "until": str(NOW + 60)}),
    ("GET", "/graphite/render", {"target": "shared.name", "from": str(NOW), "until": str(NOW + 60)}),
    ("GET", "/metrics/find", {"query": "*"}),
    ("GET", "/metrics/expand", {"query": "*"}),
    ("GET", "/metrics/index.json", {}),
    ("GET", "/tags", {}),
    ("GET", "/tags/team", {}),
    ("GET", "/tags/findSeries", {"expr": "team=~.+"}),
    ("GET", "/tags/autoComplete/tags", {}),
    ("GET", "/tags/autoComplete/values", {"tag": "team"}),
    ("GET", "/graphite/config/storageSchemas", {}),
    ("GET", "/functions", {}),
    ("GET", "/api/v1/user_stats", {}),
    ("GET", "/api/v1/query", {"query": '{__name__="shared.name"}', "time": str(NOW + 20)}),
    ("GET", "/prometheus/api/v1/series", {"match[]": '{team=~".+"}'}),
    ("GET", "/api/v1/labels", {}),
    ("GET", "/api/v1/label/team/values", {}),
    ("GET", "/api/v1/metadata", {}),
    ("POST", "/api/v1/read", "remote-read"),
    ("POST", "/prometheus/api/v1/read", "remote-read"),
    ("GET", "/api/v1/query_range", {"query": "up", "start": str(NOW), "end": str(NOW + 60), "step": "15"}),
    ("POST", "/api/v1/query", {"query": "up", "time": str(NOW)}),
    ("GET", "/api/v1/query_exemplars", {"query": "up", "start": str(NOW), "end": str(NOW + 60)}),
    ("GET", "/api/v1/format_query", {"query": "up"}),
    ("GET", "/api/v1/status/buildinfo", {}),
    ("GET", "/api/v1/status/tsdb", {}),
    ("GET", "/graphite/metrics/find", {"query": "*", "format": "completer"}),
    ("POST", "/metrics/find", {"query": "*"}),
    ("POST", "/render", {"target": "shared.name", "from": str(NOW)}),
    ("GET", "/graphite/tags/autoComplete/tags", {}),
    ("GET", "/events/get_data", {"from": str(NOW)}),
    ("GET", "/graphite/config/storageAggregations", {}),
    ("GET", "/version", {}),
]
WRITES = [
    ("POST", "/metrics", [metric("w.x", 1.0)]),
    ("POST", "/api/v1/push", "remote-write"),
    ("POST", "/graphite/config/storageAggregations", "[x]\npattern = .*\nxFilesFactor = 0\naggregationMethod = max\n"),
    ("POST", "/tags/tagSeries", {"path": "w.tagged;k=v"}),
    ("POST", "/graphite/metrics", [metric("w.y", 1.0)]),
    ("POST", "/api/v1/write", "remote-write"),
    ("POST", "/api/v1/prom/remote/write", "remote-write"),
    ("POST", "/graphite/config/storageAggregation", "[y]\npattern = .*\nxFilesFactor = 0\naggregationMethod = sum\n"),
    ("POST", "/tags/tagMultiSeries", {"path": ["w.m;k=v"]}),
    ("POST", "/events", "event"),
    ("POST", "/metrics/delete", {"query": "nothing.here"}),
    ("POST", "/tags/delSeries", {"path": "nothing;k=v"}),
]
ADMINS = [("GET", "/compactor/delete_tenant_status", {})]


def remote_write_body():
    from prom_bridge.proto import remote_pb2, types_pb2
    from prom_bridge.remote import snappy_encode
    req = remote_pb2.WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="prom_written")
    ts.samples.add(value=1.0, timestamp=(NOW + 10) * 1000)
    return snappy_encode(req.SerializeToString())


def remote_read_body():
    from prom_bridge.proto import remote_pb2, types_pb2
    from prom_bridge.remote import snappy_encode
    req = remote_pb2.ReadRequest()
    q = req.queries.add(start_timestamp_ms=NOW * 1000, end_timestamp_ms=(NOW + 60) * 1000)
    q.matchers.add(type=types_pb2.LabelMatcher.RE, name="team", value=".+")
    return snappy_encode(req.SerializeToString())


def call(c, method, path, payload, headers):
    if payload == "event":
        return c.post(path, json={"what": "deploy", "tags": ["a"]}, headers=headers)
    if payload == "remote-write":
        return c.post(path, content=remote_write_body(), headers={**headers, "Content-Encoding": "snappy",
                                                                  "Content-Type": "application/x-protobuf"})
    if payload == "remote-read":
        return c.post(path, content=remote_read_body(), headers={**headers, "Content-Encoding": "snappy",
                                                                 "Content-Type": "application/x-protobuf"})
    if method == "GET":
        return c.get(path, params=payload, headers=headers)
    if isinstance(payload, list):
        return c.post(path, json=payload, headers=headers)
    if isinstance(payload, str):
        return c.post(path, content=payload.encode(), headers=headers)
    return c.post(path, data=payload, headers=headers)


@pytest.mark.parametrize("who", list(CREDS))
@pytest.mark.parametrize("kind,method,path,payload",
                         [("read", *r) for r in READS] + [("write", *w) for w in WRITES] +
                         [("admin", *a) for a in ADMINS])
def test_auth_matrix(srv, who, kind, method, path, payload):
    with srv.client() as c:
        r = call(c, method, path, payload, CREDS[who])
    if who in ("none", "wrong"):
        assert r.status_code == 401, (r.status_code, r.text)
        if path.startswith("/api/v1"):
            assert r.json()["status"] == "error"
        assert "nope" not in r.text and "read-a" not in r.text      # tokens are never echoed
    elif who == "admin" or who == kind:
        assert r.status_code < 400, (r.status_code, r.text)
    else:
        assert r.status_code == 403, (r.status_code, r.text)
        assert "scope" in r.text


def test_open_endpoints_need_no_credential(srv):
    with srv.client() as c:
        assert c.get("/ready").status_code == 200
        assert c.get("/metrics").status_code == 200


def test_isolation_matrix(srv):
    read_a = CREDS["read"]
    with srv.client() as c:
        def get(path, **params):
            r = c.get(path, params=params, headers=read_a)
            assert r.status_code == 200, (path, r.text)
            return r
        render = get("/render", target="*.*", **{"from": str(NOW), "until": str(NOW + 60), "maxDataPoints": "0"})
        assert "shared.name" in {s["target"] for s in render.json()}
        assert not {s["target"] for s in render.json()} & {"only.b.y", "iso.b"}
        shared = get("/render", target="shared.name", **{"from": str(NOW), "until": str(NOW + 60)}).json()
        assert [v for v, _ in shared[0]["datapoints"] if v is not None] == [1.0]
        assert get("/render", target="only.b.y", **{"from": str(NOW), "until": str(NOW + 60)}).json() == []
        assert get("/render", target="seriesByTag('team=b')", **{"from": str(NOW)}).json() == []
        assert "only" in [n["text"] for n in get("/metrics/find", query="*").json()]
        assert [n["text"] for n in get("/metrics/find", query="only.*").json()] == ["a"]
        assert get("/metrics/expand", query="only.*").json() == {"results": ["only.a"]}
        assert "only.b.y" not in get("/metrics/index.json").json()
        assert get("/tags/team").json()["values"] == [{"count": 1, "value": "a"}]
        assert get("/tags/findSeries", expr="team=~.+").json() == ["iso.a;team=a"]
        assert get("/tags/autoComplete/values", tag="team").json() == ["a"]
        names = get("/tags/autoComplete/values", tag="name").json()
        assert {"iso.a", "only.a.x", "shared.name"} <= set(names) and not {"iso.b", "only.b.y"} & set(names)
        assert get("/graphite/config/storageSchemas").text.startswith("[a]")
        q = get("/api/v1/query", query='{__name__="shared.name"}', time=str(NOW + 20)).json()["data"]["result"]
        assert [r["value"][1] for r in q] == ["1"]
        series = get("/api/v1/series", **{"match[]": '{team=~".+"}'}).json()["data"]
        assert series == [{"__name__": "iso.a", "team": "a"}]
        assert get("/api/v1/label/team/values").json()["data"] == ["a"]
        assert "only.b.y" not in get("/api/v1/label/__name__/values").json()["data"]
        from prom_bridge.proto import remote_pb2
        from prom_bridge.remote import snappy_decode
        r = c.post("/api/v1/read", content=remote_read_body(), headers={**read_a, "Content-Encoding": "snappy",
                                                                      "Content-Type": "application/x-protobuf"})
        resp = remote_pb2.ReadResponse.FromString(snappy_decode(r.content, 1 << 24))
        names = {lb.value for res in resp.results for ts in res.timeseries for lb in ts.labels if lb.name == "__name__"}
        assert names == {"iso.a"}
    with srv.client() as c:
        assert not c.get("/graphite/config/storageSchemas", headers=B).text.startswith("[a]")
        assert c.get("/tags/findSeries", params={"expr": "team=~.+"}, headers=B).json() == ["iso.b;team=b"]
        assert c.get("/api/v1/user_stats", headers=B).json()["numSeries"] == 3


def test_isolation_of_events_and_metadata(srv):
    with srv.client() as c:
        assert c.post("/events", json={"what": "b-only", "tags": ["b"], "when": NOW}, headers=B).status_code == 200
        got = c.get("/events/get_data", params={"from": str(NOW - 60), "until": str(NOW + 60)},
                    headers=CREDS["read"]).json()
        assert "b-only" not in [e["what"] for e in got]
        assert [e["what"] for e in c.get("/events/get_data", params={"from": str(NOW - 60), "until": str(NOW + 60)},
                                         headers=B).json()] == ["b-only"]
        from prom_bridge.proto import remote_pb2
        from prom_bridge.remote import snappy_encode
        req = remote_pb2.WriteRequest()
        md = req.metadata.add()
        md.metric_family_name, md.help, md.type = "b_metric", "only team b", 1
        r = c.post("/api/v1/push", content=snappy_encode(req.SerializeToString()),
                   headers={**B, "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"})
        assert r.status_code < 300
        assert "b_metric" in c.get("/api/v1/metadata", headers=B).json()["data"]
        assert "b_metric" not in c.get("/api/v1/metadata", headers=CREDS["read"]).json()["data"]


def test_federated_read_and_org_header(srv):
    fed = {"Authorization": "Bearer 7:fed"}
    with srv.client() as c:
        assert c.get("/metrics/index.json", headers=fed).status_code == 401          # no tenant named
        r = c.get("/tags/findSeries", params={"expr": "team=~.+"}, headers={**fed, "X-Scope-OrgID": "team-a|team-b"})
        assert r.json() == ["iso.a;team=a", "iso.b;team=b"]
        r = c.get("/render", params={"target": "shared.name", "from": str(NOW), "until": str(NOW + 60),
                                     "maxDataPoints": "0"}, headers={**fed, "X-Scope-OrgID": "team-a|team-b"})
        assert sorted(v for s in r.json() for v, _ in s["datapoints"] if v is not None) == [1.0, 2.0]


def test_series_limit_rejects_whole_request(tmp_path):
    from tests.conftest import Server
    config = ("tenancy: {enabled: true}\nlimits:\n  defaults: {max_labels_per_series: 5}\n"
              "  tenants:\n    team-c: {max_series: 3}\n    team-d: {ingestion_rate: 10, ingestion_burst: 100}\n"
              "    team-f: {max_series_per_query: 2, max_points_per_render: 100}\n")
    s = Server(tmp_path / "lim", config=config).start()
    try:
        with s.client() as c:
            hc = {"X-Scope-OrgID": "team-c"}
            assert c.post("/metrics", json=[metric(f"c.s{i}", 1.0) for i in range(3)], headers=hc).status_code == 200
            r = c.post("/metrics", json=[metric("c.s0", 2.0, t=NOW + 20), metric("c.s3", 1.0)], headers=hc)
            assert r.status_code == 400 and "err-plumbago-max-series-per-user" in r.text
            got = c.get("/render", params={"target": "c.s0", "from": str(NOW), "until": str(NOW + 60),
                                           "maxDataPoints": "0"}, headers=hc).json()
            assert [v for v, _ in got[0]["datapoints"] if v is not None] == [1.0]     # nothing half-written
            r = c.post("/metrics", json=[metric("e.s0", 3.0, tags=[f"t{i}=v" for i in range(6)])],
                       headers={"X-Scope-OrgID": "team-e"})
            assert r.status_code == 400 and "err-plumbago-max-label-names-per-series" in r.text
            hd = {"X-Scope-OrgID": "team-d"}
            assert c.post("/metrics", json=[metric(f"d.s{i}", 1.0) for i in range(90)], headers=hd).status_code == 200
            r = c.post("/metrics", json=[metric(f"d.s{i}", 1.0) for i in range(50)], headers=hd)
            assert r.status_code == 429 and "err-plumbago-tenant-max-ingestion-rate" in r.text
            assert c.post("/metrics", json=[metric("x", 1.0)]).status_code == 401       # tenancy: tenant required
            hf = {"X-Scope-OrgID": "team-f"}
            assert c.post("/metrics", json=[metric(f"f.s{i}", 1.0) for i in range(3)], headers=hf).status_code == 200
            r = c.get("/api/v1/query", params={"query": '{__name__=~"f.*"}', "time": str(NOW + 10)}, headers=hf)
            assert r.status_code == 422 and "err-plumbago-max-series-per-query" in r.text
            r = c.get("/render", params={"target": "f.*", "from": str(NOW), "until": str(NOW + 60)}, headers=hf)
            assert r.status_code == 422 and "limit" in r.text
            r = c.get("/render", params={"target": "f.s0", "from": str(NOW - 86400), "until": str(NOW + 60),
                                         "maxDataPoints": "0"}, headers=hf)
            assert r.status_code == 422 and "points" in r.text
    finally:
        s.stop()


def test_delete_tenant(srv):
    with srv.client() as c:
        assert c.post("/compactor/delete_tenant", headers=B).status_code == 403     # needs admin
        assert c.post("/compactor/delete_tenant", headers=A_ADMIN).status_code == 200
        assert c.get("/compactor/delete_tenant_status", headers=A_ADMIN).json()["blocks_deleted"] is True
        assert c.get("/metrics/index.json", headers=CREDS["read"]).json() == []
        assert c.get("/metrics/index.json", headers=B).json() != []
