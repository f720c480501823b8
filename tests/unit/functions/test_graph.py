"""Graph functions: names, tags and (stacked) values as graphite-web 1.1.10 leaves them in JSON."""
from __future__ import annotations

import math

import numpy as np
import pytest

from graphite_api.evaluator import evaluate_targets
from graphite_api.functions.registry import FunctionError
from graphite_api.target.grammar import parse_target

from .test_special import NAN, T0, FakeCtx, Pipe, call, mk, vals


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("graph") / "data")
    yield p
    p.close()


@pytest.mark.parametrize("target", ['alpha(a.b.c, 0.5)', 'color(a.b.c, "red")', 'lineWidth(a.b.c, 2)'])
def test_drawing_options_leave_series_alone(pipe, target):
    [s] = pipe.render(target)
    assert s.name == "a.b.c" and s.tags == {"name": "a.b.c"} and vals(s) == vals(pipe.render("a.b.c")[0])


def test_drawing_options_check_arguments(pipe):
    with pytest.raises(FunctionError, match="alpha"):
        pipe.render('alpha(a.b.c, "x")')
    with pytest.raises(FunctionError, match="theColor"):
        pipe.render("color(a.b.c)")


@pytest.mark.parametrize("target, name, tag", [
    ("drawAsInfinite(a.b.c)", "drawAsInfinite(a.b.c)", ("drawAsInfinite", "1")),
    ("secondYAxis(a.b.c)", "secondYAxis(a.b.c)", ("secondYAxis", "1")),
    ("dashed(a.b.c)", "dashed(a.b.c, 5)", ("dashed", "5")),
    ("dashed(a.b.c, 12)", "dashed(a.b.c, 12)", ("dashed", "12")),
    ("dashed(a.b.c, dashLength=3)", "dashed(a.b.c, 3)", ("dashed", "3")),
])
def test_renaming_graph_functions(pipe, target, name, tag):
    [s] = pipe.render(target)
    assert s.name == name and s.tags == {"name": "a.b.c", tag[0]: tag[1]}
    assert s.path_expression == "a.b.c"


def test_dashed_rejects_non_integer(pipe):
    with pytest.raises(FunctionError, match="dashLength"):
        pipe.render("dashed(a.b.c, 2.5)")


def test_area_between(pipe):
    lower, upper = pipe.render("areaBetween(a.b.*)")
    assert lower.name == upper.name == "areaBetween(a.b.*)"
    assert lower.tags == upper.tags == {"name": "a.b.d", "areaBetween": "1"}
    assert vals(lower) == vals(pipe.render("a.b.c")[0])


def test_area_between_needs_two_series(pipe):
    with pytest.raises(FunctionError, match="exactly"):
        pipe.render("areaBetween(a.b.c)")
    with pytest.raises(FunctionError, match="exactly"):
        pipe.render("areaBetween(no.such)")


def test_stacked_default_stack(pipe):
    a, b = pipe.render("stacked(a.b.*)")
    assert (a.name, b.name) == ("stacked(a.b.c)", "stacked(a.b.d)")
    assert a.tags == {"name": "a.b.c", "stacked": "__DEFAULT__"}
    assert vals(a) == [0.0, None, 2.0, 3.0, 4.0, 0.0, 1.0, 2.0, None, 4.0]
    assert vals(b) == [0.0, 1.0, 4.0, 6.0, 8.0, 5.0, 7.0, 9.0, 8.0, 13.0]


def test_stacked_named_stack_keeps_names_and_spans_targets(pipe):
    out = pipe.render('stacked(a.b.c, "s")', 'stacked(a.b.d, "s")', "stacked(a.b.d)")
    assert [s.name for s in out] == ["a.b.c", "a.b.d", "stacked(a.b.d)"]
    assert out[0].tags == {"name": "a.b.c"}
    assert vals(out[1]) == [0.0, 1.0, 4.0, 6.0, 8.0, 5.0, 7.0, 9.0, 8.0, 13.0]
    assert vals(out[2]) == [float(i) for i in range(10)]      # another stack starts from zero


def test_stacked_positional_with_different_lengths():
    ctx = FakeCtx()
    a, b = call("stacked", [mk("a", [1, 2, 3]), mk("b", [10, NAN, 10, 10, 10], start=T0)], ctx=ctx)
    assert vals(a) == [1, 2, 3] and vals(b) == [11, None, 13, 10, 10]
    assert call("stacked", [], ctx=ctx) == []


def test_threshold(pipe):
    [s] = pipe.render('threshold(1.5, "limit", "red")')
    assert s.name == "limit" and s.tags == {"name": "1.5"} and s.path_expression == "constantLine(1.5)"
    assert vals(s) == [1.5] * 3 and list(s.timestamps) == [T0, T0 + 300, T0 + 600]
    [s] = pipe.render("threshold(2)")
    assert s.name == "2.0"
    [s] = pipe.render('threshold(-1, label="a;b=c")')
    assert s.name == "a;b=c" and s.tags == {"name": "-1.0"}


def test_vertical_line(pipe):
    [s] = pipe.render(f'verticalLine("{T0 + 60}", "deploy", "blue")')
    assert s.name == "deploy" and s.tags == {"name": "deploy"}
    assert s.start == T0 + 60 and vals(s) == [1.0]
    [s] = pipe.render(f'verticalLine("{T0}")')       # the range bounds are inclusive
    assert s.name is None and s.tags == {"name": "None"}
    [s] = pipe.render(f"verticalLine({T0 + 600})")
    assert s.start == T0 + 600
    [s] = pipe.render('verticalLine("-5min")', params={})
    assert s.start == T0 + 600 + 60 - 300                 # relative to the request's now


def test_vertical_line_outside_range(pipe):
    with pytest.raises(FunctionError, match="before start of range"):
        pipe.render(f'verticalLine("{T0 - 1}")')
    with pytest.raises(FunctionError, match="after end of range"):
        pipe.render(f'verticalLine("{T0 + 601}")')
    with pytest.raises(FunctionError, match="ts"):
        pipe.render('verticalLine("not a time")')


def test_graph_functions_on_empty_lists(pipe):
    for target in ["alpha(no.such, 1)", "dashed(no.such)", "drawAsInfinite(no.such)", "secondYAxis(no.such)",
                   "stacked(no.such)"]:
        assert pipe.render(target) == []


def test_stacked_state_is_per_request(pipe):
    first = pipe.render("stacked(a.b.d)")
    again = evaluate_targets(pipe.ctx(), [parse_target("stacked(a.b.d)")])
    assert vals(first[0]) == vals(again[0]) == [float(i) for i in range(10)]
    assert not math.isnan(np.nansum(first[0].values))
