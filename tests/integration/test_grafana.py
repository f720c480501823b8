"""The requests Grafana's Graphite data source sends (graphite-api.md §10), answered as Grafana expects."""
import time

import pytest

NOW = int(time.time()) // 60 * 60 - 300


@pytest.fixture(scope="module")
def grafana_srv(server):
    with server.client() as c:
        m = [{"name": f"gf.web{h}.requests", "interval": 10, "value": float(i + h), "time": NOW - 600 + 10 * i,
              "tags": []} for h in (1, 2) for i in range(60)]
        m += [{"name": "gf.disk", "interval": 10, "value": 5.0, "time": NOW - 100, "tags": ["dc=east", "host=a"]}]
        assert c.post("/metrics", json=m).status_code == 200
        r = c.post("/events", json={"what": "deploy", "tags": ["deploy", "web"], "when": NOW - 300, "data": "v1"})
        assert r.status_code == 200
    return server


def test_frontend_query_wrapped_in_alias_sub(grafana_srv):
    form = {"target": ['aliasSub(sumSeries(gf.*.requests), "(^.*$)", "\\1 A")',
                       'aliasSub(gf.web1.requests, "(^.*$)", "\\1 B")'],
            "from": "-15min", "until": "now", "format": "json", "maxDataPoints": "100", "cacheTimeout": "0"}
    with grafana_srv.client() as c:
        r = c.post("/render", data=form)
        assert r.status_code == 200, r.text
        out = r.json()
        assert [s["target"] for s in out] == ["sumSeries(gf.*.requests) A", "gf.web1.requests B"]
        name, ref = out[0]["target"].rsplit(" ", 1)      # Grafana splits at the last space
        assert ref == "A" and name == "sumSeries(gf.*.requests)"
        assert all(p[1] is not None for p in out[1]["datapoints"])


def test_backend_alerting_query(grafana_srv):
    with grafana_srv.client() as c:
        r = c.post("/render", data={"target": "gf.web1.requests", "from": str(NOW - 900), "until": str(NOW),
                                    "format": "json", "maxDataPoints": "50"})
        (s,) = r.json()
        assert s["tags"]["name"] == "gf.web1.requests"
        assert all(isinstance(ts, int) for _, ts in s["datapoints"])


def test_health_check_constant_line(grafana_srv):
    with grafana_srv.client() as c:
        r = c.get("/render", params={"target": "constantLine(100)", "from": "-1h", "until": "now",
                                     "format": "json", "maxDataPoints": "100"})
        assert r.status_code == 200
        (s,) = r.json()
        assert s["target"] == "100.0" and {v for v, _ in s["datapoints"]} == {100.0}


def test_metric_tree_expand_tags_functions_version_annotations(grafana_srv):
    with grafana_srv.client() as c:
        r = c.post("/metrics/find?from=-1h&until=now", data={"query": "gf.*"})
        assert all({"text", "expandable"} <= set(n) for n in r.json())
        assert {n["text"] for n in r.json()} == {"web1", "web2"}          # tagged series are not in the tree
        r = c.get("/metrics/expand", params={"query": "gf.*.requests", "from": "-1h", "until": "now"})
        assert r.json()["results"] == ["gf.web1.requests", "gf.web2.requests"]
        r = c.get("/tags/autoComplete/tags", params=[("expr", "name=gf.disk"), ("tagPrefix", ""), ("limit", "10000")])
        assert r.json() == ["dc", "host"]
        r = c.get("/tags/autoComplete/values", params={"expr": "name=gf.disk", "tag": "dc", "valuePrefix": "",
                                                       "limit": "100"})
        assert r.json() == ["east"]
        text = c.get("/functions").text
        import json
        functions = json.loads(text.replace('"default": Infinity', '"default": 1e9999'))
        assert "aliasSub" in functions and "seriesByTag" in functions and len(functions) >= 154
        assert c.get("/version").text == "1.1.10"
        events = c.get("/events/get_data", params={"from": str(NOW - 900), "until": str(NOW)}).json()
        assert events[0]["what"] == "deploy" and events[0]["when"] == NOW - 300
        assert c.get("/graphite/events/get_data", params={"from": str(NOW - 900), "until": str(NOW),
                                                           "tags": "deploy"}).json()[0]["data"] == "v1"


def test_grafana_time_units(grafana_srv):
    with grafana_srv.client() as c:
        r = c.get("/render", params={"target": "summarize(gf.web1.requests, '5min', 'sum')", "from": "-20min",
                                     "until": "now", "maxDataPoints": "0"})
        assert r.status_code == 200 and r.json()[0]["target"] == 'summarize(gf.web1.requests, "5min", "sum")'
        r = c.get("/render", params={"target": "gf.web1.requests", "from": "-20m"})    # bare m: graphite-web's 400
        assert r.status_code == 400 and "m" in r.text
