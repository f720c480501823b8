"""The Graphite HTTP surface of a real `plumbago serve`, used as clients use it."""
import pickle
import time

import msgpack
import pytest

from graphite_api.ingest import encode_metrics_snappy

NOW = int(time.time()) // 60 * 60 - 600     # aligned, in the recent past


def post_json(client, metrics, path="/metrics"):
    return client.post(path, json=metrics, headers={"Content-Type": "application/json"})


def metric(name, value, ts, interval=10, tags=()):
    return {"name": name, "interval": interval, "value": value, "time": ts, "mtype": "gauge", "tags": list(tags)}


@pytest.fixture(scope="module")
def loaded(server):
    with server.client() as c:
        batch = []
        for i in range(30):
            ts = NOW + 10 * i
            batch += [metric("app.web1.requests", float(i), ts), metric("app.web2.requests", float(2 * i), ts),
                      metric("app.web1.errors", 1.0, ts),
                      metric("disk.used", 50.0 + i, ts, tags=["dc=east", "host=h1"]),
                      metric("disk.used", 70.0 + i, ts, tags=["dc=west", "host=h2"])]
        r = post_json(c, batch)
        assert r.status_code == 200, r.text
        assert r.json()["Published"] == len(batch) and r.json()["Invalid"] == 0
    return server


def render(c, target, **params):
    q = {"target": target, "from": str(NOW), "until": str(NOW + 290), "format": "json", "maxDataPoints": "0"}
    q.update(params)
    return c.get("/render", params=q)


def test_render_plain_path(loaded):
    with loaded.client() as c:
        r = render(c, "app.web1.requests")
        assert r.status_code == 200, r.text
        (s,) = r.json()
        assert s["target"] == "app.web1.requests" and s["tags"] == {"name": "app.web1.requests"}
        # from is exclusive, until inclusive, on interval multiples
        assert s["datapoints"][0] == [1.0, NOW + 10] and s["datapoints"][-1] == [29.0, NOW + 290]
        assert len(s["datapoints"]) == 29


def test_render_glob_and_graphite_prefix(loaded):
    with loaded.client() as c:
        r = c.get("/graphite/render", params={"target": "app.*.requests", "from": str(NOW), "until": str(NOW + 290),
                                              "maxDataPoints": "0"})
        assert [s["target"] for s in r.json()] == ["app.web1.requests", "app.web2.requests"]
        r = render(c, "app.web{1,2}.err*")
        assert [s["target"] for s in r.json()] == ["app.web1.errors"]


def test_render_series_by_tag(loaded):
    with loaded.client() as c:
        r = render(c, "seriesByTag('name=disk.used','dc=east')")
        (s,) = r.json()
        assert s["target"] == "disk.used;dc=east;host=h1"
        assert s["tags"] == {"name": "disk.used", "dc": "east", "host": "h1"}
        r = render(c, "seriesByTag('dc=~.*')")
        assert r.status_code == 400 and "empty string" in r.text


def test_render_post_form_like_grafana(loaded):
    with loaded.client() as c:
        r = c.post("/render", data={"target": "app.web1.requests", "from": str(NOW), "until": str(NOW + 290),
                                    "format": "json", "maxDataPoints": "10"})
        assert r.status_code == 200
        (s,) = r.json()
        assert len(s["datapoints"]) <= 10


def test_render_max_data_points_default_consolidates(loaded):
    with loaded.client() as c:
        r = c.get("/render", params={"target": "app.web1.requests", "from": str(NOW), "until": str(NOW + 290),
                                     "maxDataPoints": "5"})
        pts = r.json()[0]["datapoints"]
        assert 1 <= len(pts) <= 5


def test_render_consolidate_by(loaded):
    with loaded.client() as c:
        r = render(c, "consolidateBy(app.web1.requests,'max')", maxDataPoints="3")
        (s,) = r.json()
        assert s["target"] == 'consolidateBy(app.web1.requests,"max")'
        assert max(v for v, _ in s["datapoints"] if v is not None) == 29.0


@pytest.mark.parametrize("fmt,ctype", [("csv", "text/csv"), ("msgpack", "application/x-msgpack"),
                                       ("pickle", "application/pickle"), ("msgp", "application/msgpack")])
def test_render_formats(loaded, fmt, ctype):
    with loaded.client() as c:
        r = render(c, "app.web1.requests", format=fmt)
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype)
        if fmt == "csv":
            first = r.text.splitlines()[0].split(",")
            assert first[0] == "app.web1.requests" and first[2] == "1.0"
        elif fmt == "msgpack":
            (s,) = msgpack.unpackb(r.content)
            assert s["name"] == "app.web1.requests" and s["step"] == 10 and s["values"][0] == 1.0
        elif fmt == "pickle":
            (s,) = pickle.loads(r.content)
            assert s["name"] == "app.web1.requests" and s["start"] == NOW + 10


def test_render_jsonp(loaded):
    with loaded.client() as c:
        r = render(c, "app.web1.requests", jsonp="cb")
        assert r.text.startswith("cb([") and r.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("params,status,needle", [
    ({"target": "nosuch(app.web1.requests)"}, 400, "unknown function"),
    ({"target": "sumSeries(app.web1.requests"}, 400, ""),
    ({"target": "app.web1.requests", "from": "yesterdayish"}, 400, ""),
    ({"target": "app.web1.requests", "from": "-1h", "until": "-2h"}, 400, "time range"),
    ({"target": "app.web1.requests", "format": "png2"}, 400, "format"),
    ({"target": "app.web1.requests", "maxDataPoints": "x"}, 400, "maxDataPoints"),
    ({}, 400, "target"),
    ({"target": "a.{b"}, 400, "{"),
    ({"target": "a." + "{a,b,c,d}" * 12}, 400, "glob"),
    ({"target": "seriesByTag('name=~(a*)*b')"}, 200, ""),
])
def test_render_bad_input_is_4xx(loaded, params, status, needle):
    with loaded.client() as c:
        r = c.get("/render", params=params)
        assert r.status_code == status, r.text
        assert needle in r.text


def test_render_unknown_series_is_empty_list(loaded):
    with loaded.client() as c:
        assert render(c, "does.not.exist").json() == []


def test_find_treejson_and_completer(loaded):
    with loaded.client() as c:
        r = c.get("/metrics/find", params={"query": "app.*"})
        assert r.status_code == 200
        assert [(n["text"], n["leaf"], n["expandable"]) for n in r.json()] == [("web1", 0, 1), ("web2", 0, 1)]
        r = c.post("/metrics/find", data={"query": "app.web1.*"})
        assert [(n["id"], n["leaf"]) for n in r.json()] == [("app.web1.errors", 1), ("app.web1.requests", 1)]
        r = c.get("/metrics/find", params={"query": "app.web1.r", "format": "completer"})
        assert r.json()["metrics"] == [{"path": "app.web1.requests", "name": "requests", "is_leaf": "1"}]
        r = c.get("/metrics/find", params={"query": "app.*", "format": "msgpack", "from": str(NOW),
                                           "until": str(NOW + 300)})
        assert {e["path"] for e in msgpack.unpackb(r.content)} == {"app.web1", "app.web2"}
        assert c.get("/metrics/find").status_code == 400


def test_expand_and_index(loaded):
    with loaded.client() as c:
        r = c.get("/metrics/expand", params={"query": "app.*.requests"})
        assert r.json() == {"results": ["app.web1.requests", "app.web2.requests"]}
        r = c.get("/metrics/expand", params=[("query", "app.*"), ("query", "disk"), ("groupByExpr", "1")])
        assert r.json() == {"results": {"app.*": ["app.web1", "app.web2"], "disk": []}}
        names = c.get("/metrics/index.json").json()
        assert "app.web1.requests" in names and all(";" not in n for n in names)


def test_tags_endpoints(loaded):
    with loaded.client() as c:
        assert {"tag": "dc"} in c.get("/tags").json()
        r = c.get("/tags/dc")
        assert r.json() == {"tag": "dc", "values": [{"count": 1, "value": "east"}, {"count": 1, "value": "west"}]}
        assert c.get("/tags/findSeries", params={"expr": "dc=east"}).json() == ["disk.used;dc=east;host=h1"]
        r = c.get("/tags/findSeries", params={"expr": "name=disk.used", "format": "lastts-json"})
        assert [s["val"] for s in r.json()["series"]] == ["disk.used;dc=east;host=h1", "disk.used;dc=west;host=h2"]
        assert c.get("/tags/autoComplete/tags", params={"expr": "name=disk.used"}).json() == ["dc", "host"]
        assert c.get("/tags/autoComplete/tags", params={"tagPrefix": "h"}).json() == ["host"]
        r = c.get("/tags/autoComplete/values", params={"tag": "dc", "expr": "host=h2"})
        assert r.json() == ["west"]
        assert c.get("/tags/autoComplete/values").status_code == 400
        r = c.get("/tags/findSeries", params={"expr": "dc!=east"})
        assert r.status_code == 400 and "error" in r.json()


def test_tag_series_and_delete(server):
    with server.client() as c:
        r = c.post("/tags/tagSeries", data={"path": "t.x;b=2;a=1"})
        assert r.json() == "t.x;a=1;b=2"
        r = c.post("/tags/tagMultiSeries", data={"path": ["t.y;z=1", "t.z"]})
        assert r.json() == ["t.y;z=1", "t.z"]
        assert c.post("/tags/delSeries", data={"path": "t.y;z=1"}).json() is True
        assert c.get("/tags/findSeries", params={"expr": "z=1"}).json() == []


def test_ingest_snappy_binary_like_carbon_relay_ng(server):
    body = encode_metrics_snappy([metric("crng.a", 1.5, NOW + 10), metric("crng.b", 2.5, NOW + 10, tags=["k=v"])])
    with server.client() as c:
        r = c.post("/metrics", content=body, headers={"Content-Type": "rt-metric-binary-snappy",
                                                      "Authorization": "Bearer 1:token"})
        assert r.status_code == 200 and r.json()["Published"] == 2
        assert render(c, "crng.a").json()[0]["datapoints"][0] == [1.5, NOW + 10]


def test_ingest_partial_acceptance_and_errors(server):
    with server.client() as c:
        r = post_json(c, [metric("ok.one", 1.0, NOW + 10), {"name": "", "interval": 10, "value": 1, "time": NOW},
                          {"name": "bad.interval", "interval": 0, "value": 1, "time": NOW}])
        body = r.json()
        assert r.status_code == 200 and body["Published"] == 1 and body["Invalid"] == 2
        assert set(body["ValidationErrors"]) == {"name cannot be empty", "interval cannot be 0"}
        r = c.post("/metrics", content=b"{nope", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        r = c.post("/metrics", content=b"[]", headers={"Content-Type": "text/plain"})
        assert r.status_code == 400 and "content-type" in r.text.lower()
        r = c.post("/metrics", content=b"\x00" * 100, headers={"Content-Type": "rt-metric-binary-snappy"})
        assert r.status_code == 400


def test_config_endpoints(server):
    schemas = "[short]\npattern = ^short\\.\nretentions = 1s:1h,1m:1d\n\n[default]\npattern = .*\nretentions = 10s:1d\n"
    with server.client() as c:
        r = c.post("/graphite/config/storageSchema", content=schemas.encode())
        assert r.status_code == 200, r.text
        assert c.get("/graphite/config/storageSchemas").text == schemas
        assert c.get("/config/storageSchemas").text == schemas
        r = c.post("/graphite/config/storageSchemas", content=b"[x]\npattern = .*\nretentions = 1m:1h,7s:1d\n")
        assert r.status_code == 400 and "retention" in r.text.lower()
        aggs = "[sum]\npattern = \\.count$\nxFilesFactor = 0\naggregationMethod = sum\n"
        assert c.post("/graphite/config/storageAggregation", content=aggs.encode()).status_code == 200
        assert c.get("/graphite/config/storageAggregations").text == aggs
        assert c.post("/graphite/config/storageAggregations", content=b"[x]\naggregationMethod = nope\n").status_code == 400


def test_ops_endpoints(server):
    with server.client() as c:
        assert c.get("/ready").status_code == 200
        r = c.get("/metrics")
        assert r.status_code == 200 and "plumbago_series" in r.text
        assert c.get("/version").text == "1.1.10"


def test_oversize_body_is_413(server):
    with server.client() as c:
        r = c.post("/metrics", content=b"[" + b" " * (65 << 20) + b"]", headers={"Content-Type": "application/json"})
        assert r.status_code == 413


def test_functions_index(server):
    with server.client() as c:
        r = c.get("/functions")
        assert r.status_code == 200
        info = r.json()["consolidateBy"]
        assert info["group"] == "Special" and info["module"] == "graphite.render.functions"
        assert info["params"][0] == {"name": "seriesList", "type": "seriesList", "required": True}
        assert "Special" in c.get("/functions", params={"grouped": "1"}).json()
        assert c.get("/functions/consolidateBy").json()["name"] == "consolidateBy"
        r = c.get("/functions/nosuch")
        assert r.status_code == 404 and r.json() == {"error": "Function not found: nosuch"}
        assert c.get("/graphite/functions", params={"jsonp": "cb"}).text.startswith("cb({")
