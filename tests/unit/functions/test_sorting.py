"""Sorting functions: graphite-web 1.1.10 order (stable, None as -inf), on hand-built series and whole targets."""
import math

import numpy as np
import pytest

import graphite_api.functions  # noqa: F401  (registers every family)
from graphite_api.functions.registry import REGISTRY, FunctionError
from graphite_api.series import Series

from .test_filters import pipeline  # noqa: F401  (module fixture: storage + evaluator)

NAN = math.nan


def S(name, values, step=60):
    return Series(name, 600, step, np.array(values, dtype=np.float64))


def call(name, *args, **kwargs):
    return REGISTRY[name].func(None, *args, **kwargs)


def names(series_list):
    return [s.name for s in series_list]


LIST = [S("b", [1, 5, NAN]), S("none", [NAN, NAN, NAN]), S("a", [3, 3, 3]), S("c", [-4, 9, 1]),
        S("d", [2, 2, 2, 2, 3], step=30)]


def test_sort_by_average_ascending_with_none_first():
    # averages b 3, none None, a 3, c 2, d 2.2
    assert names(call("sortBy", LIST)) == ["none", "c", "d", "b", "a"]


def test_sort_by_reverse_keeps_ties_in_input_order():
    assert names(call("sortBy", LIST, "average", True)) == ["b", "a", "d", "c", "none"]
    assert names(call("sortBy", LIST, reverse=True)) == ["b", "a", "d", "c", "none"]


@pytest.mark.parametrize("func,want", [
    ("max", ["none", "a", "d", "b", "c"]),           # a 3 == d 3: input order
    ("min", ["none", "c", "b", "d", "a"]),
    ("sum", ["none", "b", "c", "a", "d"]),           # b 6, c 6 tie keeps input order
    ("count", ["none", "b", "a", "c", "d"]),
    ("last", ["none", "c", "a", "d", "b"]),           # b's last non-null is 5
    ("range", ["none", "a", "d", "b", "c"]),
    ("multiply", ["b", "none", "c", "a", "d"]),       # b has a null: None; c -36, a 27, d 48
    ("avg_zero", ["none", "b", "c", "d", "a"]),       # none is 0 (not None); b 6/3 = 2 == c 2: input order
])
def test_sort_by_each_aggregation(func, want):
    assert names(call("sortBy", LIST, func)) == want


def test_sort_by_rejects_unknown_functions():
    with pytest.raises(FunctionError, match="Unsupported aggregation function: nope"):
        call("sortBy", LIST, "nope")


def test_sort_by_total_maxima_minima():
    assert names(call("sortByTotal", LIST)) == ["d", "a", "b", "c", "none"]
    assert names(call("sortByMaxima", LIST)) == ["c", "b", "a", "d", "none"]
    # sortByMinima keeps only series whose maximum is above 0, ascending by minimum
    lst = LIST + [S("zero", [0, 0]), S("negative", [-1, -2])]
    assert names(call("sortByMinima", lst)) == ["c", "b", "d", "a"]
    assert call("sortByTotal", []) == []


def test_sort_by_name_alphabetical_and_natural():
    lst = [S(n, [1]) for n in ["server11", "server2", "server1", "Server3", "server12.cpu2", "server12.cpu10"]]
    assert names(call("sortByName", lst)) == ["Server3", "server1", "server11", "server12.cpu10", "server12.cpu2",
                                              "server2"]
    assert names(call("sortByName", lst, True)) == ["Server3", "server1", "server2", "server11", "server12.cpu2",
                                                    "server12.cpu10"]
    assert names(call("sortByName", lst, natural=True, reverse=True)) == [
        "server12.cpu10", "server12.cpu2", "server11", "server2", "server1", "Server3"]
    assert names(call("sortByName", lst, False, True)) == ["server2", "server12.cpu2", "server12.cpu10", "server11",
                                                           "server1", "Server3"]


def test_sorting_through_targets(pipeline):  # noqa: F811
    assert names(pipeline("sortByName(a.*, reverse=true)")) == ["a.gap", "a.c", "a.b"]
    assert names(pipeline("sortBy(a.*, 'max')")) == ["a.b", "a.c", "a.gap"]
    assert names(pipeline("sortByMaxima(a.*)")) == ["a.gap", "a.c", "a.b"]
    assert names(pipeline("sortByTotal(x.*)")) == ["x.b", "x.c"]
    assert names(pipeline("sortByMinima(x.*)")) == ["x.b"]                 # x.c is all zeros
    for bad in ["sortBy(a.*, 'bogus')", "sortBy(a.*, 'max', 'yes')", "sortByName(a.*, 1)", "sortByTotal()"]:
        with pytest.raises(FunctionError):
            pipeline(bad)
