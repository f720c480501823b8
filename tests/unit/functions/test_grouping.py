"""Combine family, grouping half (graphite_api/functions/grouping.py): *WithWildcards, groupByNode(s), groupByTags,
mapSeries/reduceSeries and applyByNode, with graphite-web 1.1.10's keys, order, names and tags."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import graphite_api.functions  # noqa: F401  (registers every family)
from graphite_api.evaluator import EvalContext, evaluate_targets
from graphite_api.fetch import FetchContext
from graphite_api.functions.grouping import parse_tagged_name
from graphite_api.functions.registry import REGISTRY, FunctionError, bind
from graphite_api.series import Series
from graphite_api.target.grammar import parse_target
from storage.engine import EngineOptions, Storage

NAN = math.nan


def S(name, values, start=600, step=60, tags=None, **kw):
    if tags is None and ";" in name:
        tags = parse_tagged_name(name)
    return Series(name, start, step, np.array(values, dtype=np.float64), tags=tags or {}, **kw)


def call(name, *args, **kwargs):
    spec = REGISTRY[name]
    args, kwargs = bind(spec, list(args), kwargs)
    return spec.func(SimpleNamespace(params={}, start=540, end=780), *args, **kwargs)


def same(a, b):
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)


def hosts():
    return [S("srv.h1.cpu.user", [1, 2, NAN]), S("srv.h1.cpu.sys", [3, NAN, NAN]),
            S("srv.h2.cpu.user", [5, 6, 7]), S("srv.h2.mem.used", [-1, 0, 1])]


# --- *WithWildcards -------------------------------------------------------------------------------------------------

def test_sum_series_with_wildcards():
    out = call("sumSeriesWithWildcards", hosts(), 1)
    assert [s.name for s in out] == ["srv.cpu.user", "srv.cpu.sys", "srv.mem.used"]   # first-seen order
    assert same(out[0].values, [6, 8, 7]) and same(out[1].values, [3, NAN, NAN])
    # the name tag is still aggregate's, as in graphite-web
    assert out[0].tags == {"name": "sumSeries(srv.h1.cpu.user,srv.h2.cpu.user)", "aggregatedBy": "sum"}
    out = call("sumSeriesWithWildcards", hosts(), 1, 3)
    assert [s.name for s in out] == ["srv.cpu", "srv.mem"] and same(out[0].values, [9, 8, 7])
    out = call("sumSeriesWithWildcards", hosts())
    assert [s.name for s in out] == [s.name for s in hosts()]
    assert call("sumSeriesWithWildcards", []) == []


def test_average_and_multiply_with_wildcards_and_aggregate():
    out = call("averageSeriesWithWildcards", hosts(), 1, 2)
    assert [s.name for s in out] == ["srv.user", "srv.sys", "srv.used"] and same(out[0].values, [3, 4, 7])
    out = call("multiplySeriesWithWildcards", hosts(), 3)
    assert [s.name for s in out] == ["srv.h1.cpu", "srv.h2.cpu", "srv.h2.mem"]
    assert same(out[0].values, [3, NAN, NAN]) and same(out[2].values, [-1, 0, 1])
    out = call("aggregateWithWildcards", hosts(), "max", 1)
    assert out[0].tags["aggregatedBy"] == "max" and same(out[0].values, [5, 6, 7])
    # negative positions never match a node index, as in graphite-web
    assert [s.name for s in call("aggregateWithWildcards", hosts(), "sum", -1)] == [s.name for s in hosts()]
    with pytest.raises(FunctionError):
        call("aggregateWithWildcards", hosts(), "nosuch", 1)


# --- groupByNode(s) -------------------------------------------------------------------------------------------------

def test_group_by_node_default_average_and_order():
    out = call("groupByNode", hosts(), 1)
    assert [s.name for s in out] == ["h1", "h2"]
    assert same(out[0].values, [2, 2, NAN]) and same(out[1].values, [2, 3, 4])
    assert out[0].tags["aggregatedBy"] == "average"
    assert out[0].path_expression == "averageSeries(srv.h1.cpu.user,srv.h1.cpu.sys)"


def test_group_by_node_callbacks():
    # a render function name is called with the group; "sum" and "avg" are render functions in graphite-web
    out = call("groupByNode", hosts(), 1, "avg")
    assert out[0].tags["aggregatedBy"] == "average"
    out = call("groupByNode", hosts(), 1, "sumSeries")
    assert same(out[0].values, [4, 2, NAN]) and out[0].tags["aggregatedBy"] == "sum"
    out = call("groupByNode", hosts(), 1, "countSeries")
    assert same(out[1].values, [2, 2, 2])
    out = call("groupByNode", hosts(), 1, "asPercent")                      # the first series of the result
    assert same(out[0].values, [25, 100, NAN]) and out[0].name == "h1"
    out = call("groupByNode", hosts(), 1, "total")
    assert out[0].tags["aggregatedBy"] == "total"
    out = call("groupByNode", hosts(), -1, "median")
    assert [s.name for s in out] == ["user", "sys", "used"]
    with pytest.raises(FunctionError):
        call("groupByNode", hosts(), 1, "nosuch")


def test_group_by_nodes_and_tags_as_nodes():
    out = call("groupByNodes", hosts(), "sum", 1, 2)
    assert [s.name for s in out] == ["h1.cpu", "h2.cpu", "h2.mem"]
    assert [s.name for s in call("groupByNodes", hosts(), "sum")] == [""]
    tagged = [S("disk;dc=east;host=a", [1]), S("disk;dc=west;host=b", [2]), S("disk;dc=east;host=c", [4])]
    out = call("groupByNodes", tagged, "max", "dc", 0)
    assert [s.name for s in out] == ["east.disk", "west.disk"] and same(out[0].values, [4])
    assert out[0].tags == {"name": "disk", "dc": "east", "aggregatedBy": "max"}
    # names that are function calls use their first path expression for nodes
    out = call("groupByNode", [S("sumSeries(a.b.*)", [1]), S("sumSeries(a.c.*)", [2])], 1, "sum")
    assert [s.name for s in out] == ["b", "c"]


# --- groupByTags ----------------------------------------------------------------------------------------------------

def test_group_by_tags():
    tagged = [S("disk;dc=east;host=a", [1, 2]), S("disk;dc=west;host=b", [2, NAN]),
              S("disk;dc=east;host=c", [4, 4])]
    out = call("groupByTags", tagged, "sum", "dc")
    assert [s.name for s in out] == ["disk;dc=east", "disk;dc=west"]
    assert out[0].path_expression == "disk;dc=east"
    assert out[0].tags == {"name": "disk", "dc": "east"} and same(out[0].values, [5, 6])
    out = call("groupByTags", tagged, "avg", "host", "dc")
    assert out[0].name == "disk;dc=east;host=a"


def test_group_by_tags_names_by_callback_or_own_name():
    tagged = [S("disk;dc=east", [1]), S("cpu;dc=east", [2]), S("cpu;dc=west", [3])]
    out = call("groupByTags", tagged, "max", "dc")
    assert [s.name for s in out] == ["max;dc=east", "max;dc=west"]
    assert out[0].tags == {"name": "max", "dc": "east"} and same(out[0].values, [2])
    out = call("groupByTags", tagged, "sumSeries", "name")
    assert [s.name for s in out] == ["disk", "cpu"] and same(out[1].values, [5])
    # a missing tag gives an empty value, which graphite-web's tag parser rejects
    with pytest.raises(FunctionError, match="may not be empty"):
        call("groupByTags", tagged + [S("mem", [1])], "sum", "dc")
    with pytest.raises(FunctionError, match="missing required parameter 'tags'"):
        call("groupByTags", tagged, "sum")


def test_parse_tagged_name():
    assert parse_tagged_name("a.b;x=1;y=2") == {"name": "a.b", "x": "1", "y": "2"}
    assert parse_tagged_name("~a;x=1") == {"name": "a", "x": "1"}
    for bad in ("a;x", "a;=1", ";x=1", "a;x=~1", "a;x="):
        with pytest.raises(FunctionError):
            parse_tagged_name(bad)


# --- mapSeries / reduceSeries ---------------------------------------------------------------------------------------

def test_map_series():
    groups = call("mapSeries", hosts(), 1)
    assert [[s.name for s in g] for g in groups] == [["srv.h1.cpu.user", "srv.h1.cpu.sys"],
                                                     ["srv.h2.cpu.user", "srv.h2.mem.used"]]
    assert len(call("map", hosts(), 1, 2)) == 3
    assert call("mapSeries", [], 1) == []


def test_reduce_series():
    data = [S("s.h1.disk.used", [1, 2]), S("s.h1.disk.total", [4, 4]),
            S("s.h2.disk.total", [10, 0]), S("s.h2.disk.used", [5, 5]), S("s.h2.disk.other", [7, 7])]
    mapped = call("mapSeries", data, 1)
    out = call("reduceSeries", mapped, "asPercent", 3, "used", "total")
    assert [s.name for s in out] == ["s.h1.disk.reduce.asPercent", "s.h2.disk.reduce.asPercent"]
    assert same(out[0].values, [25, 50]) and same(out[1].values, [50, NAN])
    out = call("reduce", mapped, "divideSeries", 3, "total", "used")
    assert same(out[0].values, [4, 2])
    with pytest.raises(FunctionError, match="no series matches 'nosuch'"):
        call("reduceSeries", mapped, "sumSeries", 3, "used", "nosuch")
    with pytest.raises(FunctionError, match="no node 9"):
        call("reduceSeries", mapped, "sumSeries", 9, "used")
    with pytest.raises(FunctionError, match="unknown function"):
        call("reduceSeries", mapped, "nosuchFunction", 3, "used")
    with pytest.raises(FunctionError, match="list of series lists"):
        call("reduceSeries", data, "sumSeries", 3, "used")


# --- applyByNode and the whole pipeline ----------------------------------------------------------------------------

T0 = 1_700_000_040


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    st = Storage(str(tmp_path_factory.mktemp("grouping")), None, EngineOptions(flush_interval=3600))
    data = {"srv.h1.disk.used": [1, 2, 3], "srv.h1.disk.free": [3, 2, 1], "srv.h2.disk.used": [5, NAN, 5],
            "srv.h2.disk.free": [5, 5, 15], "srv.h3.cpu.load": [1, 1, 1]}
    for name, values in data.items():
        vals = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(vals)
        ts = ((T0 + 60 * np.arange(len(vals)))[ok] * 1000).astype(np.int64)
        st.write("anonymous", [name] * int(ok.sum()), ts, vals[ok], intervals=np.full(int(ok.sum()), 60))

    def run(target):
        fctx = FetchContext(storage=st, tenant="anonymous", start=T0 - 60, end=T0 + 120, now=T0 + 3600)
        return evaluate_targets(EvalContext(fetch=fctx), [parse_target(target)])

    yield run
    st.close()


def test_apply_by_node(render):
    out = render("applyByNode(srv.*.disk.used,1,'divideSeries(%.disk.used,sumSeries(%.disk.*))')")
    assert [s.name for s in out] == ["divideSeries(srv.h1.disk.used,sumSeries(srv.h1.disk.*))",
                                     "divideSeries(srv.h2.disk.used,sumSeries(srv.h2.disk.*))"]
    assert [s.path_expression for s in out] == ["srv.h1", "srv.h2"]
    assert same(out[0].values, [0.25, 0.5, 0.75]) and same(out[1].values, [0.5, NAN, 0.25])
    out = render("applyByNode(srv.*.*.*,1,'sumSeries(%.*.*)','%.total')")
    assert [s.name for s in out] == ["srv.h1.total", "srv.h2.total", "srv.h3.total"]
    assert same(out[1].values, [10, 5, 20])
    out = render("applyByNode(srv.h2.disk.*,newName='%.x',nodeNum=3,templateFunction='%')")
    assert [s.name for s in out] == ["srv.h2.disk.free.x", "srv.h2.disk.used.x"]
    assert render("applyByNode(no.such.*,1,'sumSeries(%.*)')") == []


def test_apply_by_node_bad_arguments(render):
    with pytest.raises(FunctionError, match="missing required parameter 'templateFunction'"):
        render("applyByNode(srv.*.disk.used,1)")
    with pytest.raises(FunctionError, match="must be a node number"):
        render("applyByNode(srv.*.disk.used,'x','sumSeries(%)')")


def test_pipeline_group_by_and_map_reduce(render):
    out = render("groupByNode(srv.*.disk.*,1,'sum')")
    assert [s.name for s in out] == ["h1", "h2"] and same(out[1].values, [10, 5, 20])
    out = render("reduceSeries(mapSeries(srv.*.disk.*,1),'diffSeries',3,'free','used')")
    assert [s.name for s in out] == ["srv.h1.disk.reduce.diffSeries", "srv.h2.disk.reduce.diffSeries"]
    assert same(out[0].values, [2, 0, -2]) and same(out[1].values, [0, 5, 10])


def test_map_series_outside_reduce_is_a_bad_request(render):
    # graphite-web answers 500 for these; here they are argument errors
    with pytest.raises(FunctionError, match="list of series lists"):
        render("mapSeries(srv.*.disk.*,1)")
    with pytest.raises(FunctionError, match="list of series lists"):
        render("sumSeries(mapSeries(srv.*.disk.*,1))")
    with pytest.raises(FunctionError, match="list of series lists"):
        render("group(srv.h1.disk.used,map(srv.*.disk.*,1))")
