"""Alias, Graph and Special functions against graphite-web 1.1.10: names, tags and values.

The shared dataset serves most targets; events() and the events API get their own dataset with events (plumbago's
events are written straight into the server's database, since the HTTP routes are mounted by the app)."""
from __future__ import annotations

import json

import httpx
import pytest

from graphite_api.functions.registry import REGISTRY

from .conftest import FROM, STEP, TS, UNTIL, VENV, assert_same, gwref, render_plumbago, start_plumbago


def needs(*names):
    missing = [n for n in names if n not in REGISTRY]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (another family)")


ALIAS_TARGETS = [
    'alias(app.web1.requests.count, "Large Blue")',
    'alias(app.*.requests.count, "all")',
    "aliasByMetric(app.*.requests.count)",
    "aliasByMetric(seriesByTag('name=disk.used'))",
    "aliasByNode(app.*.requests.count, 1)",
    "aliasByNode(app.*.*.*, 1, -1)",
    'aliasByNode(sys.*.net.bytes, 1, "name", 9)',
    "aliasByNode(seriesByTag('name=disk.used'), 'dc', 'host', 0)",
    "aliasByNode(changed(app.web1.requests.count), 1)",
    "aliasByNode(consolidateBy(app.web2.requests.count, 'max'), 0, 1)",
    "aliasByTags(seriesByTag('name=disk.used'), 'host', 'name')",
    "aliasByTags(seriesByTag('dc=east'), 'name', 'nosuchtag')",
    # Grafana wraps every target like this
    'aliasSub(app.*.requests.count, "(^.*$)", "\\1 A")',
    "aliasSub(seriesByTag('name=disk.used'), \"(^.*$)\", \"\\1 B\")",
    'aliasSub(alias(app.web1.requests.count, "x.y"), "(^.*$)", "\\g<1> C")',
    'aliasSub(app.*.requests.count, "^app\\.([^.]+)\\..*", "\\1")',
    'aliasSub(app.*.requests.count, "web(\\d)", "host-\\g<1>-\\g<0>")',
    'aliasSub(app.web1.requests.count, "x*", "-")',
    'aliasSub(app.web1.requests.count, "$", " end")',
    'aliasSub(app.web1.requests.count, "(?P<tier>web)(?P<n>\\d)", "\\g<n>\\g<tier>\\n")',
    'aliasSub(app.web1.requests.count, "nomatch(x)?", "\\1")',
    'aliasQuery(app.web{1,2}.requests.count, "app\\.(web\\d)\\.requests\\.count", "app.\\1.latency.mean", "%s lat")',
    'aliasQuery(app.web{1,2}.requests.count, "requests\\.count", "latency.mean", "lat %d")',
    'aliasQuery(app.web{1,2}.requests.count, "app\\.web(\\d)\\..*", "app.web\\1.requests.count", "%.3f req")',
    'legendValue(app.*.requests.count, "avg", "max", "min", "last", "total")',
    'legendValue(app.web1.latency.mean, "avg", "sum", "stddev", "median", "diff", "range", "count")',
    'legendValue(app.web2.latency.mean, "avg_zero", "multiply", "current", "rangeOf", "bogus", "sumSeries")',
    'legendValue(app.*.latency.mean, "avg", "max", "si")',
    'legendValue(sys.*.net.bytes, "last", "avg", "binary")',
    'legendValue(empty.mostly, "avg", "count", "si")',
    'legendValue(neg.values, "median", "total")',
    "upper(app.web1.requests.count)",
    "upper(app.web1.requests.count, 0, -1, 99)",
    "lower(upper(app.*.requests.count))",
    'lower(alias(app.web1.requests.count, "ABC.DEF"), 1, -1)',
]

GRAPH_TARGETS = [
    "alpha(app.web1.requests.count, 0.5)",
    'color(app.*.requests.count, "red")',
    "lineWidth(app.web2.requests.count, 3)",
    "dashed(app.web1.requests.count)",
    "dashed(app.*.requests.count, 3)",
    "drawAsInfinite(sys.host2.net.bytes)",
    "secondYAxis(app.*.latency.mean)",
    "stacked(app.*.requests.count)",
    'stacked(app.*.requests.count, "tx")',
    "stacked(app.*.latency.mean)",
    "stacked(misc.slow)",
    "areaBetween(app.web{1,2}.requests.count)",
    "areaBetween(seriesByTag('name=disk.used', 'dc=east'))",
    "threshold(42)",
    'threshold(1.5, "limit", "red")',
    'threshold(-3, label="a;b=c")',
    f'verticalLine("{FROM + 600}", "deploy", "blue")',
    f'verticalLine("{FROM}")',
    f'verticalLine("{UNTIL}", "end")',
]

SPECIAL_TARGETS = [
    "cactiStyle(app.*.requests.count)",
    'cactiStyle(app.*.latency.mean, "si")',
    'cactiStyle(sys.*.net.bytes, "binary", "B")',
    'cactiStyle(neg.values, None, "u")',
    "cactiStyle(empty.mostly)",
    "changed(app.web2.requests.count)",
    "changed(sys.*.net.bytes)",
    "changed(empty.mostly)",
    "changed(misc.slow)",
    "constantLine(100)",
    "constantLine(-1.5)",
    "constantLine(1e3)",
    "cumulative(app.web1.requests.count)",
    "consolidateBy(app.web1.requests.count, 'max')",
    "consolidateBy(seriesByTag('name=disk.used'), 'sum')",
    "consolidateBy(misc.slow, 'min')",
    "fallbackSeries(no.such.metric, constantLine(1))",
    "fallbackSeries(app.web1.requests.count, constantLine(1))",
    "fallbackSeries(no.such.metric, app.web*.latency.mean)",
    "xFilesFactor(app.web1.requests.count, 0.5)",
    "setXFilesFactor(seriesByTag('dc=west'), 1)",
    "substr(app.web1.requests.count, 1)",
    "substr(app.*.requests.count, 1, 3)",
    "substr(seriesByTag('name=disk.used'), 1)",
    "substr(changed(app.web1.requests.count), 2)",
    "substr(aliasSub(app.web1.requests.count, 'web', 'a,b.web'), 1)",
]


@pytest.mark.parametrize("target", ALIAS_TARGETS)
def test_alias_functions(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", GRAPH_TARGETS)
def test_graph_functions(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target", SPECIAL_TARGETS)
def test_special_functions(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


@pytest.mark.parametrize("target, needed", [
    ("aliasByNode(sumSeries(app.*.requests.count), 1)", ("sumSeries",)),
    ("aliasByMetric(sumSeries(app.*.requests.count))", ("sumSeries",)),
    ("sumSeries(consolidateBy(app.*.requests.count, 'max'))", ("sumSeries",)),
    ('legendValue(scale(app.web1.latency.mean, 0.1), "avg", "total")', ("scale",)),
    ("cactiStyle(sumSeries(app.*.latency.mean))", ("sumSeries",)),
    ("sumSeries(xFilesFactor(app.web*.requests.count, 1))", ("sumSeries",)),
    ("averageSeries(setXFilesFactor(app.*.latency.mean, 0.6))", ("averageSeries",)),
    ("aliasByNode(averageSeries(sys.*.net.bytes), 1)", ("averageSeries",)),
])
def test_with_other_families(reference, plumbago, target, needed):
    needs(*needed)
    assert_same(reference, plumbago, target, tags=True)


def _render_both(reference, plumbago, targets):
    want = reference.render(targets, FROM, UNTIL)
    r = httpx.get(plumbago.url + "/render", params={"target": targets, "from": str(FROM), "until": str(UNTIL),
                                                    "format": "json", "maxDataPoints": "0"}, timeout=60)
    assert r.status_code == 200, r.text
    return want, r.json()


@pytest.mark.parametrize("targets", [
    ["stacked(app.web1.requests.count)", "stacked(app.web2.requests.count)"],
    ['stacked(app.web1.requests.count, "a")', "stacked(app.web3.requests.count)",
     'stacked(app.web2.requests.count, "a")'],
    ["xFilesFactor(app.web1.requests.count, 0.25)", "constantLine(7)"],
    ["xFilesFactor(app.web1.requests.count, 1)", "sumSeries(app.web*.requests.count)"],
])
def test_request_state_spans_targets(reference, plumbago, targets):
    want, got = _render_both(reference, plumbago, targets)
    assert gwref.compare(want, got, tags=True) is None, gwref.compare(want, got, tags=True)


def test_random_walk_shape(reference, plumbago):
    for target in ['randomWalk("walk.a;t=v")', 'randomWalkFunction("walk.b", 600)', 'randomWalk("w", 7)']:
        want = reference.render([target], FROM, UNTIL)
        got = render_plumbago(plumbago, target).json()
        assert [(s["target"], s["tags"]) for s in got] == [(s["target"], s["tags"]) for s in want]
        assert [[p[1] for p in s["datapoints"]] for s in got] == [[p[1] for p in s["datapoints"]] for s in want]
        assert all(s["datapoints"][0][0] == 0 for s in got)


@pytest.mark.parametrize("target", [
    f'verticalLine("{FROM - 60}")',
    f'verticalLine("{UNTIL + 60}", "late")',
    'aliasQuery(app.web1.requests.count, "web1", "web9", "%d")',
])
def test_user_errors_are_400(reference, plumbago, target):
    status, _, _ = reference.render_raw([target], FROM, UNTIL)
    r = render_plumbago(plumbago, target)
    assert (r.status_code, status) == (400, 400), r.text


# --- events ----------------------------------------------------------------------------------------------------------

EVENTS = [
    {"when": FROM - 30, "what": "before", "tags": ["deploy", "web"], "data": "outside"},
    {"when": FROM, "what": "at-from", "tags": ["deploy"], "data": ""},
    {"when": FROM + 0.5, "what": "half", "tags": "web db", "data": "x"},
    {"when": FROM + 60.7, "what": "deploy", "tags": ["deploy", "web"], "data": "v1.2"},
    {"when": FROM + 61, "what": "twice-1", "tags": ["web"], "data": ""},
    {"when": FROM + 61.9, "what": "twice-2", "tags": ["web", "db"], "data": ""},
    {"when": FROM + 3600, "what": "comma", "tags": "a,b c", "data": ""},
    {"when": UNTIL - 1, "what": "last", "tags": ["deploy"], "data": "late"},
    {"when": UNTIL + 30, "what": "after", "tags": ["deploy"], "data": ""},
]
EVENT_DATASET = {"step": STEP, "points": {"ev.series": [[t, 1.0] for t in TS]}, "events": EVENTS}


@pytest.fixture(scope="module")
def ev_reference():
    with gwref.Reference(VENV, EVENT_DATASET, retentions="60s:30d") as ref:
        yield ref


@pytest.fixture(scope="module")
def ev_plumbago(tmp_path_factory):
    from storage import events as store
    from storage.sql import connect
    data_dir = tmp_path_factory.mktemp("diff-events") / "data"
    srv = start_plumbago(EVENT_DATASET, data_dir)
    engine = connect(f"sqlite:///{data_dir / 'plumbago.db'}")
    for e in EVENTS:
        store.add_event(engine, "anonymous", e["what"], e["tags"], e["when"], e["data"])
    engine.dispose()
    yield srv
    srv.stop()


@pytest.mark.parametrize("target", [
    'events("*")',
    'events("deploy")',
    'events("web")',
    'events("web", "db")',
    'events("web", "nosuchtag")',
    'events("nosuchtag")',
    'events("b c")',
    'drawAsInfinite(events("deploy"))',
    'alias(events("web"), "web events")',
])
def test_events_function(ev_reference, ev_plumbago, target):
    assert_same(ev_reference, ev_plumbago, target, tags=True)


@pytest.fixture(scope="module")
def ev_api(tmp_path_factory):
    """events_api over a Storage holding EVENTS, in process (the app mounts the routes)."""
    import warnings

    from starlette.applications import Starlette

    from graphite_api import events_api
    from storage import events as store
    from storage.engine import EngineOptions, Storage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    class Tenant:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                scope.setdefault("state", {})["tenant"] = "anonymous"
            await self.app(scope, receive, send)

    storage = Storage(str(tmp_path_factory.mktemp("events-api") / "data"), None, EngineOptions(flush_interval=3600))
    app = Starlette(routes=events_api.routes())
    app.add_middleware(Tenant)
    app.state.storage = storage
    with TestClient(app) as client:
        for e in EVENTS:
            assert client.post("/events", content=json.dumps(e)).status_code == 200
        yield client
    storage.close()


@pytest.mark.parametrize("params", [
    {"from": str(FROM), "until": str(UNTIL)},
    {"from": str(FROM - 60)},
    {"from": str(FROM), "until": str(UNTIL), "tags": "deploy"},
    {"tags": "web db"},
    {"tags": "web nosuchtag"},
    {"tags": "web nosuchtag", "set": "intersection"},
    {"tags": "db deploy", "set": "union"},
    {"tags": "b c"},
    {"tags": "a", "jsonp": "cb"},
])
def test_events_get_data(ev_reference, ev_api, params):
    status, ctype, body = ev_reference.get("/events/get_data", params)
    r = ev_api.get("/events/get_data", params=params)
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (status, ctype.split(";")[0])
    assert r.text == body


# --- /functions: the parameter specs Grafana reads ------------------------------------------------------------------

MINE = ("alias aliasByMetric aliasByNode aliasByTags aliasQuery aliasSub legendValue upper lower alpha areaBetween "
        "color dashed drawAsInfinite lineWidth secondYAxis stacked threshold verticalLine cactiStyle changed "
        "constantLine cumulative events fallbackSeries randomWalkFunction randomWalk setXFilesFactor xFilesFactor "
        "substr consolidateBy seriesByTag").split()


@pytest.fixture(scope="module")
def reference_functions(reference):
    return reference.functions()


@pytest.mark.parametrize("name", MINE)
def test_function_specs(reference_functions, name):
    from graphite_api.functions_api import function_info
    want = reference_functions[name]
    got = function_info(name, REGISTRY[name])
    assert (got["name"], got["group"], got["params"]) == (want["name"], want["group"], want["params"])
