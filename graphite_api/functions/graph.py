"""Graph functions (graphite-web 1.1.10 group "Graph"): alpha, areaBetween, color, dashed, drawAsInfinite,
lineWidth, secondYAxis, stacked, threshold, verticalLine.

plumbago renders no images, so the drawing options these set (colour, alpha, line width...) have nowhere to
go; what remains visible in JSON is exactly what graphite-web changes there: names, tags and, for stacked,
the values. threshold and verticalLine build new series.
"""
from __future__ import annotations

import numpy as np

from ..series import Series
from ..timeparse import TimeParseError, parse_time
from .registry import DATE, FLOAT, INTEGER, SERIES_LIST, STRING, FunctionError, Param, register
from .special import constant_line, request_xff, tags_from_name


@register("alpha", [Param("seriesList", SERIES_LIST, required=True), Param("alpha", FLOAT, required=True)],
          group="Graph")
def alpha(ctx, seriesList, alpha):
    """Assigns the given alpha transparency (0..1) to the series (images only)."""
    return seriesList


@register("color", [Param("seriesList", SERIES_LIST, required=True), Param("theColor", STRING, required=True)],
          group="Graph")
def color(ctx, seriesList, theColor):
    """Assigns the given colour to the series (images only)."""
    return seriesList


@register("lineWidth", [Param("seriesList", SERIES_LIST, required=True), Param("width", FLOAT, required=True)],
          group="Graph")
def lineWidth(ctx, seriesList, width):
    """Draws the series with the given line width (images only)."""
    return seriesList


@register("areaBetween", [Param("seriesList", SERIES_LIST, required=True)], group="Graph")
def areaBetween(ctx, seriesList):
    """Draws the area between exactly two series; both are named `areaBetween(<second's pathExpression>)` and
    share the second's tags."""
    if len(seriesList) != 2:
        raise FunctionError("areaBetween series argument must reference *exactly* 2 series")
    lower, upper = seriesList
    upper.tags = {**upper.tags, "areaBetween": "1"}
    lower.tags = upper.tags             # graphite-web gives both the same tags object
    lower.name = upper.name = f"areaBetween({upper.path_expression})"
    return seriesList


@register("dashed", [Param("seriesList", SERIES_LIST, required=True), Param("dashLength", INTEGER, default=5)],
          group="Graph")
def dashed(ctx, seriesList, dashLength=5):
    """Draws the series dashed (images); name `dashed(<name>, <dashLength>)`."""
    for s in seriesList:
        s.tags = {**s.tags, "dashed": str(dashLength)}
        s.name = "dashed(%s, %g)" % (s.name, dashLength)
    return seriesList


@register("drawAsInfinite", [Param("seriesList", SERIES_LIST, required=True)], group="Graph")
def drawAsInfinite(ctx, seriesList):
    """Draws a line at infinity where the value is above zero (images); name `drawAsInfinite(<name>)`."""
    for s in seriesList:
        s.tags = {**s.tags, "drawAsInfinite": "1"}
        s.name = f"drawAsInfinite({s.name})"
    return seriesList


@register("secondYAxis", [Param("seriesList", SERIES_LIST, required=True)], group="Graph")
def secondYAxis(ctx, seriesList):
    """Draws the series on the second Y axis (images); name `secondYAxis(<name>)`."""
    for s in seriesList:
        s.tags = {**s.tags, "secondYAxis": "1"}
        s.name = f"secondYAxis({s.name})"
    return seriesList


DEFAULT_STACK = "__DEFAULT__"


@register("stacked", [Param("seriesList", SERIES_LIST, required=True), Param("stack", STRING)], group="Graph")
def stacked(ctx, seriesList, stack=None):
    """Running sum across the series, point by point (by position, as graphite-web), continued by later
    stacked() calls of the same request with the same stack name. The default stack renames the series
    `stacked(<name>)`."""
    stack = DEFAULT_STACK if stack is None else stack
    totals_by_stack = ctx.__dict__.setdefault("_stacked_totals", {})     # per request, like graphite-web
    total = totals_by_stack.get(stack, np.zeros(0))
    out = []
    for s in seriesList:
        n = len(s.values)
        if len(total) < n:
            total = np.concatenate([total, np.zeros(n - len(total))])
        ok = ~np.isnan(s.values)
        head = total[:n]
        head[ok] += s.values[ok]
        values = np.where(ok, head, np.nan)
        if stack == DEFAULT_STACK:
            s.tags = {**s.tags, "stacked": stack}
            s.name = f"stacked({s.name})"
        s.values = values
        out.append(s)
    totals_by_stack[stack] = total
    return out


@register("threshold", [Param("value", FLOAT, required=True), Param("label", STRING), Param("color", STRING)],
          group="Graph")
def threshold(ctx, value, label=None, color=None):
    """A horizontal line at `value` (constantLine) named `label` when given."""
    series = constant_line(ctx, value)
    if label:
        series.name = label
    return [series]


@register("verticalLine", [Param("ts", DATE, required=True), Param("label", STRING), Param("color", STRING)],
          group="Graph")
def verticalLine(ctx, ts, label=None, color=None):
    """A vertical line at time `ts` (a from/until style time): one point of value 1 named `label` (null when
    there is no label). `ts` must lie within the requested range."""
    try:
        when = parse_time(str(ts) if isinstance(ts, int) else ts, now=ctx.fetch.now, tz=ctx.params.get("tz"))
    except TimeParseError as exc:
        raise FunctionError(f"verticalLine: parameter 'ts': {exc}") from None
    if when < ctx.start:
        raise FunctionError(f"verticalLine(): timestamp {when} exists before start of range")
    if when > ctx.end:
        raise FunctionError(f"verticalLine(): timestamp {when} exists after end of range")
    # graphite-web builds [1.0, 1.0] with start == end == ts; its JSON shows the single point at ts
    return [Series(name=label, start=int(when), step=1, values=np.ones(1), tags=tags_from_name(label),
                   xfiles_factor=request_xff(ctx))]
