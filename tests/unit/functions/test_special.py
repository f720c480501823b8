"""Special functions: consolidateBy, cactiStyle, changed, constantLine, cumulative, events, fallbackSeries,
randomWalk, setXFilesFactor, substr — golden values from graphite-web 1.1.10's behaviour."""
from __future__ import annotations

import math

import numpy as np
import pytest

from graphite_api.evaluator import EvalContext, evaluate_targets
from graphite_api.fetch import FetchContext, FetchLimitError
from graphite_api.functions.registry import REGISTRY, FunctionError
from graphite_api.functions.special import format_units, substr_name, tags_from_name
from graphite_api.series import Series
from graphite_api.target.grammar import parse_target
from storage import events as ev
from storage.engine import EngineOptions, Storage

NAN = math.nan
T0 = 1_700_000_000 // 3600 * 3600          # aligned; data at T0+60 .. T0+600


class Pipe:
    """A real Storage with a few series, and whole-target evaluation through the evaluator."""

    DATA = {
        "a.b.c": [0.0, NAN, 2.0, 3.0, 4.0, 0.0, 1.0, 2.0, NAN, 4.0],
        "a.b.d": [float(i) for i in range(10)],
        "neg.x": [-1.0, -2.5, NAN, -4.0, 5.0, 5.0, NAN, 5.0, -0.5, 0.0],
        "disk.used;dc=east;host=h1": [50.0 + i for i in range(10)],
    }

    def __init__(self, path):
        self.storage = Storage(str(path), None, EngineOptions(flush_interval=3600))
        keys, ts, vals = [], [], []
        for name, values in self.DATA.items():
            for i, v in enumerate(values):
                if not math.isnan(v):
                    keys.append(name)
                    ts.append((T0 + 60 * (i + 1)) * 1000)
                    vals.append(v)
        self.storage.write("anonymous", keys, np.array(ts), np.array(vals), intervals=[60] * len(keys))

    def ctx(self, start=T0, end=T0 + 600, params=None) -> EvalContext:
        fctx = FetchContext(storage=self.storage, tenant="anonymous", start=start, end=end, now=end + 60)
        return EvalContext(fetch=fctx, params=dict(params or {}))

    def render(self, *targets, start=T0, end=T0 + 600, params=None) -> list[Series]:
        return evaluate_targets(self.ctx(start, end, params), [parse_target(t) for t in targets])

    def close(self):
        self.storage.close()


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("special") / "data")
    yield p
    p.close()


def vals(series) -> list:
    return [None if math.isnan(v) else v for v in series.values]


def mk(name, values, start=T0 + 60, step=60, **kw) -> Series:
    return Series(name=name, start=start, step=step, values=np.array(values, dtype=float), **kw)


class FakeCtx:
    def __init__(self, start=T0, end=T0 + 600, params=None):
        self.start, self.end, self.params = start, end, dict(params or {})
        self.fetch = None


def call(name, *args, ctx=None, **kwargs):
    return REGISTRY[name].func(ctx or FakeCtx(), *args, **kwargs)


# --- tags_from_name ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, tags", [
    ("100.0", {"name": "100.0"}),
    ("r.w;t=v", {"name": "r.w", "t": "v"}),
    ("~x;a=b", {"name": "x", "a": "b"}),
    ('m{k="v",j="w\\"x"}', {"name": "m", "k": "v", "j": 'w"x'}),
    ('events("a", "b")', {"name": 'events("a", "b")'}),
    ("bad;tag", {"name": "bad;tag"}),
    ("bad;t=~v", {"name": "bad;t=~v"}),
    ("", {"name": ""}),
    (None, {"name": "None"}),
])
def test_tags_from_name(name, tags):
    assert tags_from_name(name) == tags


# --- consolidateBy / cumulative -------------------------------------------------------------------------------------

def test_consolidate_by_names_tags_and_path_expression(pipe):
    [s] = pipe.render("consolidateBy(a.b.c,'max')")
    assert s.name == 'consolidateBy(a.b.c,"max")'
    assert s.path_expression == s.name
    assert s.tags == {"name": "a.b.c", "consolidateBy": "max"}
    assert s.consolidation == "max"


def test_cumulative_is_consolidate_by_sum(pipe):
    [s] = pipe.render("cumulative(a.b.d)")
    assert s.name == 'consolidateBy(a.b.d,"sum")' and s.consolidation == "sum"
    assert s.tags["consolidateBy"] == "sum"
    assert vals(s) == Pipe.DATA["a.b.d"]


def test_consolidate_by_rejects_unknown_function(pipe):
    with pytest.raises(FunctionError, match="consolidationFunc"):
        pipe.render("consolidateBy(a.b.c,'median')")


# --- changed -------------------------------------------------------------------------------------------------------

def test_changed_golden():
    [s] = call("changed", [mk("x", [NAN, 1, 1, NAN, 2, 2, 1, NAN, 1])])
    assert vals(s) == [0, 0, 0, 0, 1, 0, 1, 0, 0]
    assert s.name == "changed(x)" and s.path_expression == "changed(x)"


def test_changed_empty_and_all_null():
    assert call("changed", []) == []
    [s] = call("changed", [mk("x", [NAN, NAN])])
    assert vals(s) == [0, 0]
    [s] = call("changed", [mk("x", [])])
    assert vals(s) == []


def test_changed_through_pipeline(pipe):
    [s] = pipe.render("changed(neg.x)")
    assert vals(s) == [0, 1, 0, 1, 1, 0, 0, 0, 1, 1]


# --- constantLine --------------------------------------------------------------------------------------------------

def test_constant_line_three_points_from_to_until():
    [s] = call("constantLine", 100, ctx=FakeCtx(T0, T0 + 601, {"xFilesFactor": "0.3"}))
    assert s.name == "100.0" and s.tags == {"name": "100.0"} and s.path_expression == "constantLine(100.0)"
    assert s.start == T0 and s.step == 300 and vals(s) == [100.0] * 3
    assert s.xfiles_factor == 0.3


def test_constant_line_negative_float(pipe):
    [s] = pipe.render("constantLine(-1.5e3)")
    assert s.name == "-1500.0" and vals(s) == [-1500.0] * 3 and list(s.timestamps) == [T0, T0 + 300, T0 + 600]


def test_constant_line_bad_argument(pipe):
    with pytest.raises(FunctionError, match="constantLine"):
        pipe.render("constantLine('x')")
    with pytest.raises(FunctionError, match="value"):
        pipe.render("constantLine()")


# --- fallbackSeries --------------------------------------------------------------------------------------------------

def test_fallback_series(pipe):
    [s] = pipe.render("fallbackSeries(no.such.metric, constantLine(1))")
    assert s.name == "1.0"
    [s] = pipe.render("fallbackSeries(a.b.c, constantLine(1))")
    assert s.name == "a.b.c"


# --- randomWalk ----------------------------------------------------------------------------------------------------

def test_random_walk_shape(pipe):
    [s] = pipe.render('randomWalk("r.w;t=v")')
    assert s.name == "r.w;t=v" and s.tags == {"name": "r.w", "t": "v"}
    assert s.start == T0 and s.step == 60 and len(s.values) == 10
    assert s.values[0] == 0 and np.all(np.abs(np.diff(s.values)) <= 0.5)
    [s] = pipe.render('randomWalkFunction("x", 600)')
    assert len(s.values) == 1
    [s] = pipe.render('randomWalk("x", 7)')
    assert len(s.values) == math.ceil(600 / 7)


def test_random_walk_bad_step(pipe):
    with pytest.raises(FunctionError, match="step"):
        pipe.render('randomWalk("x", 0)')
    with pytest.raises(FunctionError, match="step"):
        pipe.render('randomWalk("x", "a")')


def test_random_walk_point_limit(pipe):
    ctx = pipe.ctx()
    ctx.fetch.max_points = 5
    with pytest.raises(FetchLimitError):
        evaluate_targets(ctx, [parse_target('randomWalk("x")')])


# --- setXFilesFactor -----------------------------------------------------------------------------------------------

def test_set_xfiles_factor_sets_series_tag_and_request(pipe):
    ctx = pipe.ctx()
    [s] = evaluate_targets(ctx, [parse_target("xFilesFactor(a.b.c, 1)")])
    assert s.xfiles_factor == 1.0 and s.tags["xFilesFactor"] == "1.0"
    assert ctx.params["xFilesFactor"] == 1.0
    # later targets of the same request inherit it
    ctx = pipe.ctx()
    out = evaluate_targets(ctx, [parse_target("setXFilesFactor(a.b.c, 0.5)"), parse_target("constantLine(1)")])
    assert out[1].xfiles_factor == 0.5


# --- substr / cactiStyle --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, start, stop, want", [
    ("a.b.c.d", 0, 0, "a.b.c.d"),
    ("a.b.c.d", 1, 3, "b.c"),
    ("a.b.c.d", -1, 0, "d"),
    ("sumSeries(a.b.*)", 1, 0, "b.*"),
    ("sumSeries(a.b.*,x.y)", -1, 0, "y"),
    ("sumSeries(a.b.*,x.y)", 2, 0, "*"),
    ("scale(a.b.c,2)", 0, 2, "a.b"),
    ("f(g(a.b.c))", 1, 0, "b.c"),
    ("a.b", 5, 0, ""),
])
def test_substr_names(name, start, stop, want):
    assert substr_name(name, start, stop) == want


def test_substr_through_pipeline(pipe):
    [s] = pipe.render("substr(a.b.c, 1)")
    assert s.name == "b.c"
    [s] = pipe.render("substr(a.b.c, 1, 2)")
    assert s.name == "b"
    with pytest.raises(FunctionError, match="start"):
        pipe.render("substr(a.b.c, 1.5)")


def test_format_units():
    assert format_units(35802.4662, "si") == (35802.4662 / 1000, "k")
    assert format_units(2048.0, "binary") == (2.0, "Ki")
    assert format_units(2000.0, "si", "b") == (2.0, "kb")
    assert format_units(4.0, "si") == (4.0, "")
    assert format_units(4.0, "si", "b") == (4.0, "b")
    assert format_units(-3e6, "si") == (-3.0, "M")
    with pytest.raises(FunctionError, match="unit system"):
        format_units(1.0, "bogus")


def test_cacti_style_golden():
    series = [mk("a.b.c", [0, NAN, 2, 3, 4, 0, 1, 2, NAN, 4]), mk("a.b.d", [i * 1234.5678 for i in range(20, 30)])]
    out = call("cactiStyle", [s.copy() for s in series])
    assert [s.name for s in out] == ["a.b.c Current:4.00        Max:4.00        Min:0.00        ",
                                     "a.b.d Current:35802.47    Max:35802.47    Min:24691.36    "]
    out = call("cactiStyle", [s.copy() for s in series], "si")
    assert out[1].name == "a.b.d Current:35.80k    Max:35.80k    Min:24.69k    "
    out = call("cactiStyle", [s.copy() for s in series], "si", "b")
    assert out[0].name == "a.b.c Current:4.00 b      Max:4.00 b      Min:0.00 b      "
    assert out[1].name == "a.b.d Current:35.80 kb    Max:35.80 kb    Min:24.69 kb    "
    out = call("cactiStyle", [s.copy() for s in series], None, "b")
    assert out[1].name == "a.b.d Current:35802.47 b    Max:35802.47 b    Min:24691.36 b    "


def test_cacti_style_all_null_and_empty():
    assert call("cactiStyle", []) == []
    [s] = call("cactiStyle", [mk("x", [NAN, NAN])])
    assert s.name == "x Current:nan     Max:nan     Min:nan     "


def test_cacti_style_unknown_system():
    with pytest.raises(FunctionError):
        call("cactiStyle", [mk("x", [1.0])], "bogus")


# --- events --------------------------------------------------------------------------------------------------------

def test_parse_tag_input():
    assert ev.parse_tag_input("web db web") == ["db", "web"]
    assert ev.parse_tag_input("a,b c") == ["a", "b c"]
    assert ev.parse_tag_input('"x, y" z') == ["x, y", "z"]
    assert ev.parse_tag_input('"unclosed a b') == ["a", "b", "unclosed"]
    assert ev.parse_tag_input("") == [] and ev.parse_tag_input(None) == []


@pytest.fixture()
def event_pipe(tmp_path):
    p = Pipe(tmp_path / "data")
    db = p.storage
    ev.add_event(db, "anonymous", "deploy", ["deploy", "web"], T0 + 60.7, "v1")
    ev.add_event(db, "anonymous", "d2", "web db", T0 + 70, "v2")
    ev.add_event(db, "anonymous", "d3", "a,b c", T0 + 300)
    ev.add_event(db, "anonymous", "edge", "e", T0)
    ev.add_event(db, "anonymous", "at-until", "e2", T0 + 600)
    ev.add_event(db, "other", "elsewhere", "web", T0 + 100)
    yield p
    p.close()


def test_get_events_matching(event_pipe):
    db = event_pipe.storage
    whats = lambda **kw: [e["what"] for e in ev.get_events(db, "anonymous", **kw)]
    assert whats() == ["edge", "deploy", "d2", "d3", "at-until"]
    assert whats(start=T0 + 1, end=T0 + 300) == ["deploy", "d2", "d3"]
    assert whats(tags=["web"]) == ["deploy", "d2"]
    assert whats(tags=["web", "db"]) == ["d2"]
    assert whats(tags=["web", "nope"]) == ["deploy", "d2"]         # unknown tags are dropped first
    assert whats(tags=["nope"]) == []
    assert whats(tags=["b c"]) == ["d3"] and whats(tags=["b"]) == []
    assert whats(tags=["db", "deploy"], set_operation="union") == ["deploy", "d2"]
    assert whats(tags=["web", "nope"], set_operation="intersection") == []
    first = ev.get_events(db, "anonymous", tags=["deploy"])[0]
    assert first["tags"] == ["deploy", "web"] and first["when"] == T0 + 60.7 and first["data"] == "v1"
    assert ev.get_events(db, "anonymous", tags=["a"])[0]["tags"] == ["a,b", "c"]


def test_events_function(event_pipe):
    [s] = event_pipe.render('events("*")')
    assert s.name == 'events("*")' and s.tags == {"name": 'events("*")'}
    assert s.start == T0 and s.step == 1 and len(s.values) == 600 and s.consolidation == "sum"
    got = {int(i): v for i, v in enumerate(s.values) if not math.isnan(v)}
    assert got == {0: 1.0, 60: 1.0, 70: 1.0, 300: 1.0}      # the event at `until` is left out
    [s] = event_pipe.render('events("web", "deploy")')
    assert s.name == 'events("web", "deploy")'
    assert {int(i) for i in np.flatnonzero(~np.isnan(s.values))} == {60}
    [s] = event_pipe.render('events("nope")')
    assert np.isnan(s.values).all()


def test_events_counts_several_per_second(tmp_path):
    p = Pipe(tmp_path / "data")
    try:
        for frac in (0.1, 0.5, 0.9):
            ev.add_event(p.storage, "anonymous", "x", "t", T0 + 5 + frac)
        [s] = p.render('events("t")')
        assert s.values[5] == 3.0 and np.isnan(s.values[4]) and np.isnan(s.values[6])
    finally:
        p.close()


def test_events_requires_a_tag(pipe):
    with pytest.raises(FunctionError, match="tags"):
        pipe.render("events()")


def test_add_event_validates(event_pipe):
    with pytest.raises(ValueError, match="tags"):
        ev.add_event(event_pipe.storage, "anonymous", "x", {"a": 1}, T0)
    with pytest.raises(ValueError, match="time"):
        ev.add_event(event_pipe.storage, "anonymous", "x", None, math.inf)


# --- the events HTTP API -------------------------------------------------------------------------------------------

@pytest.fixture()
def events_client(tmp_path):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from graphite_api import events_api

    class TenantMiddleware:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                scope.setdefault("state", {})["tenant"] = "anonymous"
            await self.app(scope, receive, send)

    storage = Storage(str(tmp_path / "data"), None, EngineOptions(flush_interval=3600))
    app = Starlette(routes=events_api.routes() + events_api.routes("/graphite"),
                    middleware=[Middleware(TenantMiddleware)])
    app.state.storage = storage
    with TestClient(app) as client:
        yield client
    storage.close()


def test_events_api_post_and_get_data(events_client):
    c = events_client
    assert c.post("/events", json={"what": "deploy", "tags": ["deploy", "web"], "when": T0 + 60.7,
                                   "data": "v1"}).status_code == 200
    r = c.post("/graphite/events/", content=b'{"what": "d2", "tags": "web db", "when": %d}' % (T0 + 70))
    assert r.status_code == 200 and r.content == b""
    assert c.post("/events", json={"what": "now", "tags": "later"}).status_code == 200
    r = c.get("/events/get_data", params={"from": str(T0), "until": str(T0 + 600)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.text == ('[{"when": %d, "what": "deploy", "data": "v1", "tags": ["deploy", "web"], "id": 1}, '
                      '{"when": %d, "what": "d2", "data": "", "tags": ["web", "db"], "id": 2}]' % (T0 + 60, T0 + 70))
    r = c.get("/events/get_data", params={"tags": "db", "jsonp": "cb"})
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.text.startswith('cb([{"when": %d, "what": "d2"' % (T0 + 70)) and r.text.endswith("])")
    assert [e["what"] for e in c.get("/events/get_data").json()] == ["deploy", "d2", "now"]
    assert [e["what"] for e in c.get("/events/get_data", params={"tags": "later", "from": "-1h"}).json()] == ["now"]
    assert [e["what"] for e in c.get("/events").json()] == ["deploy", "d2", "now"]
    r = c.get("/events/1/")
    assert r.json() == {"id": 1, "when": _iso_ms(T0 + 60.7), "what": "deploy", "data": "v1",
                        "tags": ["deploy", "web"]}
    assert c.get("/events/99").status_code == 404


def _iso_ms(when: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"tags": "a"}', b'{"what": "x", "tags": 5}',
                                  b'{"what": "x", "when": "soon"}', b'{"what": "x", "when": true}'])
def test_events_api_rejects_bad_events(events_client, body):
    r = events_client.post("/events", content=body)
    assert r.status_code == 400 and "error" in r.json()


def test_events_api_bad_time(events_client):
    assert events_client.get("/events/get_data", params={"from": "-1q"}).status_code == 400


def test_events_are_per_tenant(tmp_path):
    storage = Storage(str(tmp_path / "data"), None, EngineOptions(flush_interval=3600))
    try:
        ev.add_event(storage, "t1", "a", "x", T0)
        ev.add_event(storage.db, "t2", "b", "x", T0)
        assert [e["what"] for e in ev.get_events(storage, "t1")] == ["a"]
        assert ev.get_event(storage, "t2", 1) is None and ev.get_event(storage, "t2", 2)["what"] == "b"
    finally:
        storage.close()
