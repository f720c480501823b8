"""Special functions (graphite-web 1.1.10 group "Special"): consolidateBy (also steers the rollup read),
seriesByTag (resolved by the evaluator's prefetch; registered here so it is listed and its arguments
checked), cactiStyle, changed, constantLine, cumulative, events, fallbackSeries, randomWalk,
setXFilesFactor and substr.

Also the helpers other families use to build series that did not come from storage: `tags_from_name`
(graphite-web parses a new series' name for tags) and `request_xff`.
"""
from __future__ import annotations

import math
import re

import numpy as np

from storage import events as event_store   # defines the events table before the engine's create_all

from ..series import Series
from .registry import FLOAT, INTEGER, NODE, SERIES_LIST, STRING, FunctionError, Param, register

CONSOLIDATE_FUNCS = ["sum", "average", "avg", "avg_zero", "min", "max", "first", "last"]

# --- helpers ------------------------------------------------------------------------------------------------------

_CALL_NAME = re.compile(r"^[a-z]+[(].+[)]$", re.IGNORECASE | re.DOTALL)
_OPENMETRICS_TAG = re.compile(r'([^=]+)="((?:[\\]["\\]|[^"\\])+)"(:?,|$)')


def _valid_tag(tag: str, value: str) -> bool:
    return bool(tag) and bool(value) and not any(c in tag for c in ";!^=") and ";" not in value \
        and value[0] != "~"


def tags_from_name(name) -> dict:
    """The tags graphite-web gives a series built from a bare name (`TimeSeries(name, ...)`): names that
    look like a call keep only `name`; others are parsed as `metric;k=v` (or OpenMetrics `metric{k="v"}`)
    and fall back to `{"name": name}` when they do not parse. Values are strings, as graphite-web's `Tags`."""
    if name is None:
        return {"name": "None"}
    name = str(name)
    fallback = {"name": name}
    if _CALL_NAME.match(name):
        return fallback
    tags: dict = {}
    if name[-2:] == '"}' and "{" in name:
        metric, raw = name[:-1].split("{", 1)
        if not metric:
            return fallback
        while raw:
            m = _OPENMETRICS_TAG.match(raw)
            if not m:
                return fallback
            value = m.group(2).replace(r"\"", '"').replace(r"\\", "\\")
            if not _valid_tag(m.group(1), value):
                return fallback
            tags[m.group(1)] = value
            raw = raw[len(m.group(0)):]
    else:
        metric, *segments = name.split(";")
        if not metric:
            return fallback
        for segment in segments:
            tag, sep, value = segment.partition("=")
            if not sep or not tag or not _valid_tag(tag, value):
                return fallback
            tags[tag] = value
    clean = metric.lstrip("~")
    if not clean:
        return fallback
    tags["name"] = clean
    return tags


def request_xff(ctx) -> float:
    """The request's xFilesFactor (`xFilesFactor=` parameter, or the last setXFilesFactor()); 0 by default."""
    try:
        value = float((getattr(ctx, "params", None) or {}).get("xFilesFactor") or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def _check_points(ctx, n: int, func: str) -> None:
    """Generated series are sized by the request window: keep them under the per-request point limit."""
    from ..fetch import FetchLimitError
    limit = getattr(getattr(ctx, "fetch", None), "max_points", None)
    if limit is not None and n > limit:
        raise FetchLimitError(f"{func}: would return {n} points, over the limit of {limit}")


# --- consolidateBy / seriesByTag ------------------------------------------------------------------------------------

@register("consolidateBy", [Param("seriesList", SERIES_LIST, required=True),
                            Param("consolidationFunc", STRING, required=True, options=CONSOLIDATE_FUNCS)],
          group="Special")
def consolidate_by(ctx, seriesList, consolidationFunc):
    """Set the function used to consolidate points when there are more than maxDataPoints, and the rollup
    method read from coarser archives."""
    func = consolidationFunc
    for s in seriesList:
        s.consolidation = func
        s.name = f'consolidateBy({s.name},"{func}")'
        s.path_expression = s.name          # graphite-web renames the pathExpression too (aggregate names)
        s.tags = {**s.tags, "consolidateBy": func}
    return seriesList


@register("seriesByTag", [Param("tagExpressions", STRING, required=True, multiple=True)], group="Special")
def series_by_tag(ctx, *exprs):
    """Returns the series matching every tag expression (resolved by the evaluator before functions run)."""
    raise AssertionError("seriesByTag is resolved by the evaluator")


@register("cumulative", [Param("seriesList", SERIES_LIST, required=True)], group="Special")
def cumulative(ctx, seriesList):
    """Alias for consolidateBy(series, 'sum')."""
    return consolidate_by(ctx, seriesList, "sum")


# --- cactiStyle ----------------------------------------------------------------------------------------------------

UNIT_SYSTEMS = {
    "binary": (("Pi", 1024.0 ** 5), ("Ti", 1024.0 ** 4), ("Gi", 1024.0 ** 3), ("Mi", 1024.0 ** 2), ("Ki", 1024.0)),
    "si": (("P", 1000.0 ** 5), ("T", 1000.0 ** 4), ("G", 1000.0 ** 3), ("M", 1000.0 ** 2), ("k", 1000.0)),
    "sec": (("Y", 60 * 60 * 24 * 365), ("M", 60 * 60 * 24 * 30), ("D", 60 * 60 * 24), ("H", 60 * 60), ("m", 60)),
    "msec": (("Y", 60 * 60 * 24 * 365 * 1000), ("M", 60 * 60 * 24 * 30 * 1000), ("D", 60 * 60 * 24 * 1000),
             ("H", 60 * 60 * 1000), ("m", 60 * 1000), ("s", 1000)),
    "none": (),
}


def format_units(v, system: str, units: str | None = None, func: str = "format") -> tuple:
    """graphite-web's `format_units` (glyph.py): value scaled to the largest prefix it reaches, and the prefix."""
    if v is None:
        return v, ""
    if system not in UNIT_SYSTEMS:
        raise FunctionError(f"{func}: unknown unit system {system!r}; use one of {sorted(UNIT_SYSTEMS)}")

    def whole(x):
        # graphite-web drops a fractional part below 1e-11 for values above 1
        if math.isfinite(x) and (x - math.floor(x)) < 0.00000000001 and v > 1:
            return float(math.floor(x))
        return x

    for prefix, size in UNIT_SYSTEMS[system]:
        if abs(v) >= size:
            return whole(v / size), prefix + units if units else prefix
    return whole(v), units or ""


def _nonnull(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def _last(values: np.ndarray):
    ok = _nonnull(values)
    return float(ok[-1]) if len(ok) else None


def _max(values: np.ndarray):
    ok = _nonnull(values)
    return float(ok.max()) if len(ok) else None


def _min(values: np.ndarray):
    ok = _nonnull(values)
    return float(ok.min()) if len(ok) else None


@register("cactiStyle", [Param("seriesList", SERIES_LIST, required=True),
                         Param("system", STRING, options=["si", "binary"]),
                         Param("units", STRING)],
          group="Special")
def cactiStyle(ctx, seriesList, system=None, units=None):
    """Names become column-aligned `name Current:x Max:y Min:z `, optionally with unit prefixes (si/binary)
    and a unit suffix."""
    if not seriesList:
        return seriesList
    if system:
        if units:
            def fmt(x):
                return "%.2f %s" % format_units(x, system, units, "cactiStyle")
        else:
            def fmt(x):
                return "%.2f%s" % format_units(x, system, func="cactiStyle")
    elif units:
        def fmt(x):
            return "%.2f %s" % (x, units)
    else:
        def fmt(x):
            return "%.2f" % x

    def width_of(x):
        # graphite-web sizes the columns from the integer part, with None and 0 counting as 3
        x = x or 3
        return len(fmt(int(x) if math.isfinite(x) else x))

    stats = [(s, _last(s.values), _max(s.values), _min(s.values)) for s in seriesList]
    name_len = max(len(s.name or "") for s in seriesList)
    last_len = max(width_of(st[1]) for st in stats) + 3
    max_len = max(width_of(st[2]) for st in stats) + 3
    min_len = max(width_of(st[3]) for st in stats) + 3
    for s, last, maximum, minimum in stats:
        cols = ["nan" if v is None else fmt(v) for v in (last, maximum, minimum)]
        s.name = "%s Current:%s Max:%s Min:%s " % (
            str(s.name).ljust(name_len), cols[0].ljust(last_len), cols[1].ljust(max_len), cols[2].ljust(min_len))
    return seriesList


# --- changed -------------------------------------------------------------------------------------------------------

@register("changed", [Param("seriesList", SERIES_LIST, required=True)], group="Special")
def changed(ctx, seriesList):
    """1 where a value differs from the previous non-null value, else 0 (nulls and the first value are 0)."""
    for s in seriesList:
        out = np.zeros(len(s.values))
        idx = np.flatnonzero(~np.isnan(s.values))
        vals = s.values[idx]
        out[idx[1:]] = (vals[1:] != vals[:-1]).astype(np.float64)
        s.values = out
        s.name = f"changed({s.name})"
        s.path_expression = s.name
    return seriesList


# --- constantLine --------------------------------------------------------------------------------------------------

def constant_line(ctx, value) -> Series:
    """graphite-web's constantLine series: three points at from, the middle and until."""
    value = float(value)                    # graphite-web coerces float parameters: constantLine(100) is "100.0"
    name = str(value)
    start, end = int(ctx.start), int(ctx.end)
    step = max(int((end - start) / 2.0), 1)
    return Series(name=name, start=start, step=step, values=np.full(3, value), tags=tags_from_name(name),
                  path_expression=f"constantLine({name})", xfiles_factor=request_xff(ctx))


@register("constantLine", [Param("value", FLOAT, required=True)], group="Special")
def constantLine(ctx, value):
    """A horizontal line at `value` across the graph (three points: from, middle, until)."""
    return [constant_line(ctx, value)]


# --- events --------------------------------------------------------------------------------------------------------

@register("events", [Param("tags", STRING, required=True, multiple=True)], group="Special")
def events(ctx, *tags):
    """The number of events per second carrying all of `tags` ("*" = every event), one point per second from
    `from`; seconds without events are null. Usable with drawAsInfinite."""
    name = 'events("' + '", "'.join(tags) + '")'
    wanted = None if tuple(tags) == ("*",) else list(tags)
    start, end = int(ctx.start), int(ctx.end)
    n = max(end - start, 0)
    _check_points(ctx, n, "events")
    found = event_store.get_events(ctx.fetch.storage, ctx.fetch.tenant, start, end, tags=wanted)
    when = np.array([e["when"] for e in found], dtype=np.float64)
    offset = np.floor(when).astype(np.int64) - start
    # graphite-web indexes past its last slot (HTTP 500) for an event exactly at `until`; we leave it out
    offset = offset[(offset >= 0) & (offset < n)]
    counts = np.bincount(offset, minlength=n).astype(np.float64)
    values = np.where(counts > 0, counts, np.nan)
    return [Series(name=name, start=start, step=1, values=values, tags={"name": name}, consolidation="sum",
                   xfiles_factor=request_xff(ctx))]


# --- fallbackSeries ------------------------------------------------------------------------------------------------

@register("fallbackSeries", [Param("seriesList", SERIES_LIST, required=True),
                             Param("fallback", SERIES_LIST, required=True)],
          group="Special")
def fallbackSeries(ctx, seriesList, fallback):
    """`seriesList` when it has any series, else `fallback`."""
    return seriesList if len(seriesList) > 0 else fallback


# --- randomWalk ----------------------------------------------------------------------------------------------------

@register("randomWalkFunction", [Param("name", STRING, required=True), Param("step", INTEGER, default=60)],
          group="Special", aliases=("randomWalk",))
def randomWalkFunction(ctx, name, step=60):
    """A random walk from 0: x(t) = x(t-1) + random() - 0.5, one point per `step` seconds from `from`."""
    if step is None or step <= 0:
        raise FunctionError(f"randomWalk: parameter 'step' must be a positive number of seconds, got {step!r}")
    start, end = int(ctx.start), int(ctx.end)
    n = max(-(-(end - start) // step), 0)
    _check_points(ctx, n, "randomWalk")
    values = np.zeros(n)
    if n > 1:
        values[1:] = np.cumsum(np.random.random(n - 1) - 0.5)
    return [Series(name=name, start=start, step=int(step), values=values, tags=tags_from_name(name),
                   xfiles_factor=request_xff(ctx))]


# --- setXFilesFactor -----------------------------------------------------------------------------------------------

@register("setXFilesFactor", [Param("seriesList", SERIES_LIST, required=True),
                              Param("xFilesFactor", FLOAT, required=True)],
          group="Special", aliases=("xFilesFactor",))
def setXFilesFactor(ctx, seriesList, xFilesFactor):
    """Sets the fraction of non-null values a consolidated interval needs; also the default for every later
    function of this request that takes an xFilesFactor."""
    xff = float(xFilesFactor)               # graphite-web coerces float parameters (the tag reads "1.0")
    # graphite-web stores it in the request context; here the request parameters play that role
    if getattr(ctx, "params", None) is not None:
        ctx.params["xFilesFactor"] = xff
    for s in seriesList:
        s.xfiles_factor = xff
        s.tags = {**s.tags, "xFilesFactor": str(xff)}
    return seriesList


# --- substr --------------------------------------------------------------------------------------------------------

def substr_name(name: str, start: int = 0, stop: int = 0) -> str:
    """graphite-web's substr naming: nodes [start:stop] of the text between the last '(' and the first ')',
    cut at the first ','."""
    left = name.rfind("(") + 1
    right = name.find(")")
    if right < 0:
        right = len(name) + 1
    nodes = name[left:right].split(".")
    picked = nodes[int(start):] if int(stop) == 0 else nodes[int(start):int(stop)]
    return re.sub(",.*$", "", ".".join(picked))


@register("substr", [Param("seriesList", SERIES_LIST, required=True),
                     Param("start", NODE, default=0),
                     Param("stop", NODE, default=0)],
          group="Special")
def substr(ctx, seriesList, start=0, stop=0):
    """Name = the nodes start..stop (stop 0 = to the end) of the innermost path of the name."""
    for s in seriesList:
        s.name = substr_name(s.name, start, stop)
    return seriesList
