"""Transform family, time-axis part (graphite-web 1.1.10 semantics): bucketing (summarize, smartSummarize,
hitcount, compressPeriodicGaps), shifting (delay, timeShift, timeStack), slicing (timeSlice), running totals reset
per interval (integralByInterval) and the generators sin/time.

Functions that need data from another window (timeShift, timeStack, smartSummarize's alignTo, hitcount's
alignToInterval) take their arguments unevaluated and re-evaluate the first one with `evaluate_in_window`, as
graphite-web re-runs `evaluateTarget` on `requestContext['args'][0]`.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from ..consolidation import get_aggregator
from ..series import Series
from ..target import grammar as g
from ..timeparse import TimeParseError, parse_interval, parse_offset, parse_time
from .registry import (AGG_FUNC, BOOLEAN, DATE, INTEGER, INTERVAL, REGISTRY, SERIES_LIST, STRING,
                       FunctionError, Param, bind, register)

_SL = Param("seriesList", SERIES_LIST, required=True)

# graphite-web's aggFuncs + aggFuncAliases: summarize/smartSummarize call getAggFunc directly, so unlike
# aggregate() they do not accept the deprecated `<name>Series` spelling (nor metrictank's extra names)
AGG_FUNCS = ["average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min", "multiply",
             "range", "rangeOf", "stddev", "sum", "total"]
_UNITS = ["years", "months", "weeks", "days", "hours", "minutes", "seconds"]
_DAY, _HOUR, _MINUTE = 86400, 3600, 60


# --- helpers ---------------------------------------------------------------------------------------------------

def _tag_str(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _set_tags(series: Series, **tags) -> None:
    series.tags = {**series.tags, **{k: _tag_str(v) for k, v in tags.items()}}


def _interval(text, func: str, param: str = "intervalString") -> int:
    """graphite-web's `delta.seconds + delta.days * 86400` of parseTimeOffset; must be positive to bucket."""
    try:
        seconds = parse_interval(text)
    except TimeParseError as exc:
        raise FunctionError(f"{func}: parameter '{param}': {exc}") from None
    if seconds <= 0:
        # graphite-web loops forever (negative) or divides by zero (0)
        raise FunctionError(f"{func}: parameter '{param}' must be a positive interval, got {text!r}")
    return seconds


def _guard(ctx, n: int, func: str) -> None:
    """Bucket and generator sizes come from user intervals: keep them under the request's point limit."""
    from ..fetch import FetchLimitError
    limit = getattr(getattr(ctx, "fetch", None), "max_points", None)
    if isinstance(limit, int) and n > limit:
        raise FetchLimitError(f"{func}: would produce {n} points, over the limit of {limit}")


def _agg(func: str, where: str):
    if func not in AGG_FUNCS:
        raise FunctionError(f"{where}: Unsupported aggregation function: {func}")
    return get_aggregator(func)


def _zone(ctx):
    name = (ctx.params or {}).get("tz") if ctx is not None else None
    if not name or str(name).upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(str(name))
    except Exception:          # graphite-web ignores an unknown tz
        return timezone.utc


def _eval(ctx, node):
    # the evaluator keeps an enclosing consolidateBy in ctx.consolidate for raw-argument functions
    from ..evaluator import evaluate
    return evaluate(ctx, node)


def _eval_window(ctx, node, start: int, end: int):
    from ..evaluator import evaluate_in_window
    return evaluate_in_window(ctx, node, int(start), int(end))


def _raw_bind(ctx, node, name: str, skip: dict | None = None, lazy_first: bool = False):
    """Evaluate a raw call's arguments and check them against the spec (uniform 400s).

    Returns (first argument node, positional values, keyword values). `skip` maps a parameter name to its
    position: that argument is taken out before checking and returned under its name in the kwargs (for
    values graphite-web accepts beyond the declared type). With `lazy_first` the series list argument is
    not evaluated (the caller re-evaluates it over another window anyway).
    """
    spec = REGISTRY[name]
    arg_nodes = list(node.args)
    kw_nodes = dict(node.kwargs)
    first = arg_nodes[0] if arg_nodes else kw_nodes.get("seriesList")
    if first is None:
        raise FunctionError(f"{name}: missing required parameter 'seriesList'")
    held = {}
    for pname, pos in (skip or {}).items():
        if pname in kw_nodes:
            held[pname] = kw_nodes.pop(pname)
        elif len(arg_nodes) > pos:
            held[pname] = arg_nodes.pop(pos)

    def value(n):
        if n is first and lazy_first:
            return []
        return _eval(ctx, n)

    args = [value(n) for n in arg_nodes]
    kwargs = {k: value(n) for k, n in kw_nodes.items()}
    args, kwargs = bind(spec, args, kwargs)
    for pname, n in held.items():
        kwargs[pname] = _eval(ctx, n)
    return first, args, kwargs


def _param(args: list, kwargs: dict, index: int, pname: str, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(pname, default)


def _truncate(ts: int, unit: str, zone, weekday: int = 1) -> int:
    """Start of the year/month/week/day/hour/minute/second holding `ts`, in the request's zone."""
    d = datetime.fromtimestamp(ts, zone)
    if unit == "years":
        d = d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "months":
        d = d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "weeks":
        back = d.isoweekday() - weekday
        if back < 0:
            back += 7
        d = d.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=back)
    elif unit == "days":
        d = d.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "hours":
        d = d.replace(minute=0, second=0, microsecond=0)
    elif unit == "minutes":
        d = d.replace(second=0, microsecond=0)
    else:
        d = d.replace(microsecond=0)
    return int(d.timestamp())


def _unit_of(text: str) -> str | None:
    """graphite-web's getUnitString (prefix match)."""
    for prefix, unit in (("s", "seconds"), ("min", "minutes"), ("h", "hours"), ("d", "days"), ("w", "weeks"),
                         ("mon", "months"), ("y", "years")):
        if text.startswith(prefix):
            return unit
    return None


def _bucket_aggregate(values: np.ndarray, bucket: np.ndarray, n_buckets: int, func: str, xff: float,
                      total: float) -> np.ndarray:
    """Aggregate consecutive points by bucket id (non-decreasing, in [0, n_buckets)); empty buckets are null.

    Buckets are reduced in groups of equal size rather than NaN-padded to one width: padding would change
    avg_zero's divisor and multiply's "any null" rule.
    """
    agg = get_aggregator(func)
    out = np.full(n_buckets, np.nan)
    counts = np.bincount(bucket, minlength=n_buckets)[:n_buckets]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    for size in np.unique(counts[counts > 0]):          # a handful of distinct bucket sizes
        ids = np.flatnonzero(counts == size)
        rows = values[starts[ids][:, None] + np.arange(size)]
        out[ids] = agg(rows, axis=1, xff=xff, total=total)
    return out


def summarize_values(series: Series, func: str, interval: int, new_start: int | None = None,
                     new_end: int | None = None) -> tuple[np.ndarray, int]:
    """graphite-web `_summarizeValues`: buckets [t, t+interval) from new_start while t < new_end.

    A bucket is func(points in it) when its non-null count / (interval / step) reaches the series'
    xFilesFactor, else null. Points before new_start are dropped. Returns (values, end of the last bucket).
    """
    if new_start is None:
        new_start = series.start
    if new_end is None:
        new_end = series.end
    n = max(0, -(-(new_end - new_start) // interval))
    aligned_end = new_start + n * interval
    ts = series.timestamps
    bucket = (ts - new_start) // interval
    keep = (ts >= new_start) & (bucket < n)
    values = _bucket_aggregate(series.values[keep], bucket[keep], n, func, series.xfiles_factor,
                               interval / series.step)
    return values, aligned_end


# --- summarize family ------------------------------------------------------------------------------------------

_INTERVAL_PARAM = Param("intervalString", INTERVAL, required=True, suggestions=["10min", "1h", "1d"])
_FUNC_PARAM = Param("func", AGG_FUNC, default="sum", options=AGG_FUNCS)


@register("summarize", [_SL, _INTERVAL_PARAM, _FUNC_PARAM, Param("alignToFrom", BOOLEAN, default=False)],
          group="Transform")
def summarize(ctx, series_list, intervalString, func="sum", alignToFrom=False):
    """Aggregates the points of each interval bucket with `func` (sum by default). Buckets start at
    multiples of the interval; with alignToFrom=true they start at the series' first point."""
    interval = _interval(intervalString, "summarize")
    _agg(func, "summarize")
    out = []
    for s in series_list:
        if alignToFrom:
            new_start, new_end = s.start, s.end
        else:
            new_start = s.start - s.start % interval
            new_end = s.end - s.end % interval + interval
        _guard(ctx, (new_end - new_start) // interval + 1, "summarize")
        values, _ = summarize_values(s, func, interval, new_start, new_end)
        _set_tags(s, summarize=intervalString, summarizeFunction=func)
        name = 'summarize(%s, "%s", "%s"%s)' % (s.name, intervalString, func, ", true" if alignToFrom else "")
        out.append(s.copy(name=name, path_expression=name, start=new_start, step=interval, values=values,
                          values_per_point=1))
    return out


@register("smartSummarize", [_SL, _INTERVAL_PARAM, _FUNC_PARAM,
                             Param("alignTo", STRING, options=[None, *_UNITS, True, False])],
          group="Transform", raw_args=True)
def smart_summarize(ctx, node):
    """Like summarize(), with buckets starting at the series' first point. alignTo (years, months,
    weeks, days, hours, minutes, seconds) first moves `from` back to the start of that unit and re-fetches; the
    old boolean value is accepted and ignored."""
    align_node = node.kwarg("alignTo") if node.kwarg("alignTo") is not None else (
        node.args[3] if len(node.args) > 3 else None)
    align_given = align_node is not None and not isinstance(align_node, (g.Bool, g.NoneLit))
    first, args, kwargs = _raw_bind(ctx, node, "smartSummarize", skip={"alignTo": 3}, lazy_first=align_given)
    interval_text = _param(args, kwargs, 1, "intervalString")
    func = _param(args, kwargs, 2, "func", "sum")
    align_to = kwargs.pop("alignTo", None)
    interval = _interval(interval_text, "smartSummarize")
    _agg(func, "smartSummarize")
    series_list = args[0] if args else kwargs.get("seriesList", [])
    if align_given:
        if not isinstance(align_to, str) or _unit_of(align_to) is None:
            raise FunctionError(f"smartSummarize: parameter 'alignTo' must be one of {', '.join(_UNITS)}, "
                                f"got {align_to!r}")
        unit = _unit_of(align_to)
        weekday = 1 if align_to[-1].isalpha() else int(align_to[-1])
        start = _truncate(ctx.start, unit, _zone(ctx), weekday)
        series_list = _eval_window(ctx, first, start, ctx.end)
    out = []
    for s in series_list:
        _guard(ctx, (s.end - s.start) // interval + 1, "smartSummarize")
        values, _ = summarize_values(s, func, interval)
        _set_tags(s, smartSummarize=interval_text, smartSummarizeFunction=func)
        name = 'smartSummarize(%s, "%s", "%s")' % (s.name, interval_text, func)
        out.append(s.copy(name=name, path_expression=name, step=interval, values=values, values_per_point=1))
    return out


def _hitcount_values(values: np.ndarray, start: int, step: int, end: int, interval: int):
    """graphite-web's hitcount buckets: values are per-second rates; each point spreads value x seconds over
    the buckets its [t, t+step) overlaps. Buckets end at `end`. Returns (bucket start, values)."""
    count = int(math.ceil(float(end - start) / interval))
    new_start = int(end - count * interval)
    idx = np.flatnonzero(~np.isnan(values))
    v = values[idx]
    t0 = start + idx * step
    sb, sm = np.divmod(t0 - new_start, interval)
    eb, em = np.divmod(t0 + step - new_start, interval)
    clamp = eb >= count
    eb = np.where(clamp, count - 1, eb)
    em = np.where(clamp, interval, em)
    same = sb == eb
    # (bucket, hits, point) for every contribution; the per-bucket order must follow the points, as
    # graphite-web appends to each bucket in point order and sums the list left to right
    parts_b = [sb[same], sb[~same]]
    parts_w = [v[same] * (em[same] - sm[same]), v[~same] * (interval - sm[~same])]
    parts_p = [idx[same], idx[~same]]
    spread = ~same
    n_mid = np.maximum(eb[spread] - sb[spread] - 1, 0)
    if n_mid.sum():
        owner = np.repeat(np.arange(len(n_mid)), n_mid)
        offset = np.arange(n_mid.sum()) - np.repeat(np.cumsum(n_mid) - n_mid, n_mid)
        parts_b.append(sb[spread][owner] + 1 + offset)
        parts_w.append(v[spread][owner] * interval)
        parts_p.append(idx[spread][owner])
    tail = spread & (em > 0)
    parts_b.append(eb[tail])
    parts_w.append(v[tail] * em[tail])
    parts_p.append(idx[tail])
    b = np.concatenate(parts_b).astype(np.int64)
    w = np.concatenate(parts_w)
    p = np.concatenate(parts_p)
    order = np.argsort(p, kind="stable")
    b, w = b[order], w[order]
    ok = b >= 0
    sums = np.bincount(b[ok], weights=w[ok], minlength=count)[:count]
    hits = np.bincount(b[ok], minlength=count)[:count]
    return new_start, np.where(hits > 0, sums, np.nan)


@register("hitcount", [_SL, _INTERVAL_PARAM, Param("alignToInterval", BOOLEAN, default=False)],
          group="Transform", raw_args=True)
def hitcount(ctx, node):
    """Counts hits per interval from points that are rates per second: each point adds value x seconds
    to the buckets its step overlaps, so series of any resolution give comparable totals. Buckets end at the
    series' end; alignToInterval=true starts the data at the day/hour/minute boundary before `from`."""
    align_node = node.kwarg("alignToInterval") or (node.args[2] if len(node.args) > 2 else None)
    lazy = isinstance(align_node, g.Bool) and align_node.value
    first, args, kwargs = _raw_bind(ctx, node, "hitcount", lazy_first=lazy)
    interval_text = _param(args, kwargs, 1, "intervalString")
    align = _param(args, kwargs, 2, "alignToInterval", False)
    interval = _interval(interval_text, "hitcount")
    series_list = args[0] if args else kwargs.get("seriesList", [])
    ends = None
    if align:
        start = ctx.start
        if interval >= _DAY:
            start = _truncate(start, "days", _zone(ctx))
        elif interval >= _HOUR:
            start = _truncate(start, "hours", _zone(ctx))
        elif interval >= _MINUTE:
            start = _truncate(start, "minutes", _zone(ctx))
        series_list = _eval_window(ctx, first, start, ctx.end)
        # graphite-web stretches each series' end to one whole interval past the last full one
        ends = [s.start + (s.end - s.start) // interval * interval + interval for s in series_list]
    out = []
    for i, s in enumerate(series_list):
        end = ends[i] if ends else s.end
        _guard(ctx, (end - s.start) // interval + 1, "hitcount")
        _guard(ctx, len(s.values) * (s.step // interval + 2), "hitcount")      # contributions when step > interval
        new_start, values = _hitcount_values(s.values, s.start, s.step, end, interval)
        _set_tags(s, hitcount=interval_text)
        name = 'hitcount(%s, "%s"%s)' % (s.name, interval_text, ", true" if align else "")
        out.append(s.copy(name=name, path_expression=name, start=new_start, step=interval, values=values,
                          values_per_point=1))
    return out


def _compress(series: Series) -> Series:
    """graphite-web `_compressPeriodicGaps`: guess the real interval from the first values (zeros count as
    missing, and a value at index 0 is skipped by its scan) and re-bucket with 'last'; unchanged otherwise."""
    v = series.values
    n = len(v)
    seen = np.flatnonzero(~np.isnan(v) & (v != 0))
    if len(seen) and seen[0] == 0:
        seen = seen[1:]                     # graphite-web's `firstSeen > 0` test never accepts index 0
    first = int(seen[0]) if len(seen) > 0 else 0
    second = int(seen[1]) if len(seen) > 1 else 0
    guess = second - first
    third = second + guess
    interval = None
    if guess > 1 and third <= n - 2:
        if not np.isnan(v[third]) and v[third] != 0 and np.isnan(v[third - 1]) and np.isnan(v[third + 1]):
            interval = guess * series.step
    if not interval:
        return series
    new_start = series.start + first * series.step
    values, _ = summarize_values(series, "last", interval, new_start, series.end)
    return series.copy(start=new_start, step=interval, values=values, values_per_point=1)


@register("compressPeriodicGaps", [_SL], group="Transform")
def compress_periodic_gaps(ctx, series_list):
    """For series written at a coarser interval than their storage step (values separated by
    regular nulls): detects that interval from the first values and re-buckets with 'last' at that interval.
    Series without such a pattern are returned unchanged."""
    out = []
    for s in series_list:
        s.name = f"compressPeriodicGaps({s.name})"
        s.path_expression = s.name
        out.append(_compress(s))
    return out


# --- shifting and slicing --------------------------------------------------------------------------------------

@register("delay", [_SL, Param("steps", INTEGER, required=True)], group="Transform")
def delay(ctx, series_list, steps):
    """Moves every point `steps` steps later (earlier when negative), padding with nulls; a time shift
    counted in points rather than in time."""
    out = []
    for s in series_list:
        v = s.values
        n = len(v)
        if steps < 0:
            values = np.concatenate((v[-steps:], np.full(min(-steps, n), np.nan)))
        else:
            # graphite-web slices `series[:-steps]`: a delay of 0 leaves no values at all
            values = np.concatenate((np.full(min(steps, n), np.nan), v[:-steps] if steps else v[:0]))
        _set_tags(s, delay=steps)
        name = "delay(%s,%d)" % (s.name, steps)
        out.append(s.copy(name=name, path_expression=name, values=values, values_per_point=1))
    return out


@register("integralByInterval", [_SL, Param("intervalUnit", STRING, required=True)], group="Transform")
def integral_by_interval(ctx, series_list, intervalUnit):
    """Running total that restarts from zero at every `intervalUnit` boundary counted from
    `from`, e.g. totals per day with from=midnight."""
    try:
        duration = abs(parse_interval(intervalUnit))
    except TimeParseError as exc:
        raise FunctionError(f"integralByInterval: parameter 'intervalUnit': {exc}") from None
    if duration == 0:
        raise FunctionError(f"integralByInterval: parameter 'intervalUnit' must not be zero, got {intervalUnit!r}")
    origin = ctx.start
    out = []
    for s in series_list:
        n = len(s.values)
        values = np.zeros(n)
        if n:
            period = (s.timestamps - origin) // duration
            new_seg = np.concatenate(([True], period[1:] != period[:-1]))
            seg = np.cumsum(new_seg) - 1
            seg_start = np.flatnonzero(new_seg)
            pos = np.arange(n) - seg_start[seg]
            # one row per period, cumsum along the rows: each total restarts from 0.0 exactly as graphite-web's
            # running `current` does (a null adds nothing and repeats the total)
            grid = np.zeros((len(seg_start), int(pos.max()) + 1))
            grid[seg, pos] = np.where(np.isnan(s.values), 0.0, s.values)
            values = np.cumsum(grid, axis=1)[seg, pos]
        _set_tags(s, integralByInterval=intervalUnit)
        name = "integralByInterval(%s,'%s')" % (s.name, intervalUnit)
        out.append(s.copy(name=name, path_expression=name, values=values, values_per_point=1))
    return out


def _shift_text(text, func: str, param: str) -> str:
    if not isinstance(text, str) or not text:
        raise FunctionError(f"{func}: parameter '{param}' must be an interval such as '1d', got {text!r}")
    # graphite-web: an unsigned shift means into the past
    return "-" + text if text[0].isdigit() else text


def _shift_seconds(text: str, func: str, param: str) -> int:
    try:
        return parse_offset(text)
    except TimeParseError as exc:
        raise FunctionError(f"{func}: parameter '{param}': {exc}") from None


def _relabel(shifted: Series, base: Series, reset_end: bool) -> Series:
    """Move a shifted series onto the base series' start. graphite-web keeps the values and sets `end`
    (the base series' end with resetEnd); a renderer lists range(start, end + 1, step), so at most
    (end - start) // step + 1 values stay visible."""
    shifted.start = base.start
    if reset_end:
        visible = max(0, (base.end - base.start) // shifted.step + 1)
        shifted.values = shifted.values[:visible]
    return shifted


def _dst(ts: int, zone) -> bool:
    delta = datetime.fromtimestamp(ts, zone).dst()
    return bool(delta)


@register("timeShift", [_SL, Param("timeShift", INTERVAL, required=True,
                                   suggestions=["1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d"]),
                        Param("resetEnd", BOOLEAN, default=True), Param("alignDst", BOOLEAN, default=False)],
          group="Transform", raw_args=True)
def time_shift(ctx, node):
    """The series as they were `timeShift` earlier (an unsigned shift goes back; '+1h' goes forward),
    drawn on the current time range. resetEnd=false keeps the shifted range's own end."""
    if any(k == "alignDST" for k, _ in node.kwargs):
        # graphite-web's Python argument is alignDST while its declared parameter is alignDst: accept both
        node = g.Call(node.name, node.args, tuple(("alignDst" if k == "alignDST" else k, v)
                                                  for k, v in node.kwargs), raw=node.raw)
    first, args, kwargs = _raw_bind(ctx, node, "timeShift")
    text = _shift_text(_param(args, kwargs, 1, "timeShift"), "timeShift", "timeShift")
    reset_end = _param(args, kwargs, 2, "resetEnd", True)
    align_dst = _param(args, kwargs, 3, "alignDst", False)
    delta = _shift_seconds(text, "timeShift", "timeShift")
    series_list = args[0] if args else kwargs.get("seriesList", [])
    start, end = ctx.start + delta, ctx.end + delta
    if align_dst:
        # graphite-web compares the DST flags of both windows (in the server's zone; here the request's)
        zone = _zone(ctx)
        req = (_dst(ctx.start, zone), _dst(ctx.end, zone))
        mine = (_dst(start, zone), _dst(end, zone))
        if all(req) and not any(mine):
            start, end = start + 3600, end + 3600
        elif not any(req) and all(mine):
            start, end = start - 3600, end - 3600
    if not series_list:
        return []
    base = series_list[0]
    out = []
    for s in _eval_window(ctx, first, start, end):
        _set_tags(s, timeShift=text)
        s.name = 'timeShift(%s, "%s")' % (s.name, text)      # pathExpression kept, as graphite-web does
        out.append(_relabel(s, base, reset_end))
    return out


@register("timeStack", [_SL, Param("timeShiftUnit", INTERVAL, default="1d",
                                   suggestions=["1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d"]),
                        Param("timeShiftStart", INTEGER, default=0), Param("timeShiftEnd", INTEGER, default=7)],
          group="Transform", raw_args=True)
def time_stack(ctx, node):
    """One time-shifted copy of the series per multiplier in [timeShiftStart, timeShiftEnd), each shifted
    by multiplier x timeShiftUnit, all drawn on the current time range (e.g. the same hour on each past day)."""
    first, args, kwargs = _raw_bind(ctx, node, "timeStack")
    text = _shift_text(_param(args, kwargs, 1, "timeShiftUnit", "1d"), "timeStack", "timeShiftUnit")
    shift_start = int(_param(args, kwargs, 2, "timeShiftStart", 0))
    shift_end = int(_param(args, kwargs, 3, "timeShiftEnd", 7))
    delta = _shift_seconds(text, "timeStack", "timeShiftUnit")
    series_list = args[0] if args else kwargs.get("seriesList", [])
    if not series_list:
        return []
    base = series_list[0]
    out = []
    for shift in range(shift_start, shift_end):         # one re-evaluation per shifted window
        for s in _eval_window(ctx, first, ctx.start + delta * shift, ctx.end + delta * shift):
            _set_tags(s, timeShiftUnit=text, timeShift=shift)
            s.name = "timeShift(%s, %s, %s)" % (s.name, text, shift)
            s.path_expression = s.name
            out.append(_relabel(s, base, True))
    return out


def _date(ctx, value, func: str, param: str) -> int:
    try:
        return parse_time(value if isinstance(value, str) else str(int(value)), now=ctx.fetch.now)
    except (TimeParseError, ValueError, OverflowError) as exc:
        raise FunctionError(f"{func}: parameter '{param}': {exc}") from None


@register("timeSlice", [_SL, Param("startSliceAt", DATE, required=True), Param("endSliceAt", DATE, default="now")],
          group="Transform")
def time_slice(ctx, series_list, startSliceAt, endSliceAt="now"):
    """Nulls every point outside [startSliceAt, endSliceAt] (both inclusive, any from/until time
    syntax; the end defaults to now)."""
    start = _date(ctx, startSliceAt, "timeSlice", "startSliceAt")
    end = _date(ctx, endSliceAt, "timeSlice", "endSliceAt")
    for s in series_list:
        _set_tags(s, timeSliceStart=start, timeSliceEnd=end)
        s.name = "timeSlice(%s, %d, %d)" % (s.name, start, end)
        # graphite-web walks the points from the request's `from`, not from the series' first timestamp
        curr = ctx.start + s.step * np.arange(len(s.values), dtype=np.int64)
        s.values = np.where((curr < start) | (curr > end), np.nan, s.values)
    return series_list


# --- generators ------------------------------------------------------------------------------------------------

_FUNCTION_NAME = re.compile(r"^[a-z]+[(].+[)]$", re.IGNORECASE)


def _name_tags(name: str) -> dict:
    """graphite-web's TimeSeries tags for a new name: a carbon `name;k=v` path is parsed, anything else
    (and anything invalid) is just {'name': name}."""
    if _FUNCTION_NAME.match(name):
        return {"name": name}
    metric, *segments = name.split(";")
    if not metric:
        return {"name": name}
    tags = {}
    for seg in segments:
        key, sep, value = seg.partition("=")
        if not sep or not key or not value or any(c in key for c in ";!^") or value[0] == "~":
            return {"name": name}
        tags[key] = value
    tags["name"] = metric.lstrip("~") or metric
    return tags


def _request_xff(ctx) -> float:
    try:
        return float((ctx.params or {}).get("xFilesFactor") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _generator(ctx, name: str, step: int, func: str, make) -> list[Series]:
    if step <= 0:
        # graphite-web never leaves its `while when < endTime` loop
        raise FunctionError(f"{func}: parameter 'step' must be a positive number of seconds, got {step!r}")
    count = max(0, -(-(ctx.end - ctx.start) // step))
    _guard(ctx, count, func)
    ts = ctx.start + step * np.arange(count, dtype=np.int64)
    return [Series(name=name, start=ctx.start, step=step, values=make(ts.astype(np.float64)),
                   tags=_name_tags(name), xfiles_factor=_request_xff(ctx))]


@register("timeFunction", [Param("name", STRING, required=True), Param("step", INTEGER, default=60)],
          group="Transform", aliases=("time",))
def time_function(ctx, name, step=60):
    """Short alias: time(). A series named `name` whose value is its own timestamp, one point every `step`
    seconds (60) from `from` to before `until`."""
    return _generator(ctx, name, step, "timeFunction", lambda ts: ts)


@register("sinFunction", [Param("name", STRING, required=True), Param("amplitude", INTEGER, default=1),
                          Param("step", INTEGER, default=60)], group="Transform", aliases=("sin",))
def sin_function(ctx, name, amplitude=1, step=60):
    """Short alias: sin(). A series named `name` with amplitude x sin(timestamp), one point every `step`
    seconds (60) from `from` to before `until`."""
    return _generator(ctx, name, step, "sinFunction", lambda ts: np.sin(ts) * amplitude)
