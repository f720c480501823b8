"""Helpers shared by the render-function families (graphite-web semantics)."""
from __future__ import annotations

import math

import numpy as np

from ..series import Series


def first_path_expression(name: str) -> str:
    """The first path expression inside a series name such as `sumSeries(a.b.*,c.d)` (graphite-web's
    `_getFirstPathExpression`); the name itself when it is not a function call or cannot be parsed."""
    from ..target import grammar as g
    try:
        tree = g.parse_target(name)
    except (g.TargetSyntaxError, ValueError):
        return name
    stack = [tree]
    while stack:
        node = stack.pop(0)
        if isinstance(node, g.PathExpr):
            return node.text
        if isinstance(node, g.Call):
            stack = list(node.args) + [a for _, a in node.kwargs] + stack
    return name


def node_or_tag(series: Series, n, path_expression: str | None = None) -> str:
    """graphite-web `getNodeOrTag`: node n (negative allowed) of the name without tags, else the tag named n."""
    if isinstance(n, int) and not isinstance(n, bool):
        parts = (path_expression or series.name).split(";", 1)[0].split(".")
        try:
            return parts[n]
        except IndexError:
            pass
    return str(series.tags.get(str(n), ""))


def agg_key(series: Series, nodes, path_expression: str | None = None) -> str:
    """graphite-web `aggKey`: the nodes/tags of a series joined by '.'; names that end in ')' use their
    first inner path expression."""
    if path_expression is None and series.name.endswith(")"):
        path_expression = first_path_expression(series.name)
    return ".".join(node_or_tag(series, n, path_expression) for n in nodes)


def percentile(values: np.ndarray, n: float, interpolate: bool = False) -> float:
    """graphite-web `_getPercentile` (NIST method) over the non-null values; NaN when there are none."""
    data = np.sort(values[~np.isnan(values)])
    if len(data) == 0:
        return math.nan
    fractional_rank = (n / 100.0) * (len(data) + 1)
    rank = int(math.floor(fractional_rank))
    rank_fraction = fractional_rank - rank
    if not interpolate:
        rank += int(math.ceil(rank_fraction))
    if rank == 0:
        value = data[0]
    elif rank - 1 == len(data):
        value = data[-1]
    else:
        value = data[rank - 1]
    if interpolate and 0 < rank < len(data):
        value = value + rank_fraction * (data[rank] - value)
    return float(value)


def format_g(value) -> str:
    """Python's `%g`, as graphite-web uses in names such as `scale(x,2.5)`."""
    return "%g" % value


def unique_path_expressions(series_list: list[Series]) -> str:
    """graphite-web's aggregate naming input: unique pathExpressions in first-seen order, joined by ','."""
    seen = []
    for s in series_list:
        if s.path_expression not in seen:
            seen.append(s.path_expression)
    return ",".join(seen)
