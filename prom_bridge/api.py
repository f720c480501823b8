"""The Prometheus HTTP API (`/api/v1/*`, also under Mimir's `/prometheus` prefix) and the remote write/read
endpoints, as thin Starlette adapters over `remote.py`, the PromQL engine and the storage querier.

Responses follow Prometheus 2.42: the `{"status": ..., "data": ...}` envelope, error types mapped to 400/422/503,
sample values as strings ("NaN", "+Inf"), sample timestamps as seconds with exactly three decimals when the
milliseconds are not zero. Query results are serialised by hand because a JSON library cannot write `1.500`.
"""
from __future__ import annotations

import asyncio
import calendar
import math
import os
import platform
import re
import time
from datetime import datetime, timezone

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from storage.labels import NAME
from storage.matchers import EQ, NEQ, NRE, RE, BadRegex, Matcher
from storage.querier import Querier, SeriesData

from . import remote
from .metadata import stores_for

VERSION = "2.42.0"                       # the Prometheus API level served (Grafana reads it from buildinfo)
MAX_BODY_BYTES = 64 << 20
MAX_POINTS = 11_000
DEFAULT_TIMEOUT_S = 120.0                # Prometheus' --query.timeout default is 2m
_START_TIME = datetime.now(timezone.utc)
_STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 503, "internal": 500,
           "not_found": 404, "unavailable": 500}

# Go's min/max time as Prometheus formats them (the defaults of start/end on metadata endpoints).
MIN_TIME_MS = (-9223372036854775 + 62135596801) * 1000
MAX_TIME_MS = (9223372036854775 - 62135596801) * 1000 + 999
MIN_TIME_FORMATTED = "-292273086-05-16T16:47:06Z"
MAX_TIME_FORMATTED = "292277026596-12-04T15:30:07.999999999Z"


class APIError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def invalid_param(name: str, message: str) -> APIError:
    return APIError("bad_data", f'invalid parameter "{name}": {message}')


# ---- envelope ---------------------------------------------------------------------------------------------

def success(data, warnings=None) -> Response:
    body = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    return Response(orjson.dumps(body), 200, media_type="application/json")


def success_raw(data_json: bytes, warnings=None) -> Response:
    """Envelope around pre-serialised data JSON."""
    tail = b',"warnings":' + orjson.dumps(list(warnings)) if warnings else b""
    return Response(b'{"status":"success","data":' + data_json + tail + b"}", 200, media_type="application/json")


def error(kind: str, message: str) -> Response:
    body = {"status": "error", "errorType": kind, "error": message}
    return Response(orjson.dumps(body), _STATUS.get(kind, 500), media_type="application/json")


# ---- parameters --------------------------------------------------------------------------------------------

class Params:
    """URL parameters merged with a urlencoded POST form (form values first, as Go's FormValue does)."""

    def __init__(self, items: list[tuple[str, str]]):
        self.items = items

    def get(self, name: str, default: str = "") -> str:
        for k, v in self.items:
            if k == name:
                return v
        return default

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.items if k == name]


async def read_params(request: Request) -> Params:
    items: list[tuple[str, str]] = []
    if request.method == "POST":
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.form()
            except Exception as exc:
                raise APIError("bad_data", f"error parsing form values: {exc}") from None
            items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    items += list(request.query_params.multi_items())
    return Params(items)


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F.]+(?:[pP][+-]?\d+)?"
                    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])$")


def _go_float(s: str) -> float | None:
    """strconv.ParseFloat's accepted syntax (decimal, hex, inf/nan); None when it is not a float."""
    if not _FLOAT.match(s):
        return None
    try:
        return float.fromhex(s) if "x" in s.lower() else float(s)
    except (ValueError, OverflowError):
        return None


def parse_time(s: str) -> int:
    """Unix seconds (float, rounded to ms) or RFC3339 -> ms; ValueError with Prometheus' message otherwise."""
    f = _go_float(s)
    if f is not None:
        if not math.isfinite(f) or abs(f) > 9.2e15:
            raise ValueError(f'cannot parse "{s}" to a valid timestamp')
        whole = math.trunc(f)
        frac = f - whole
        ms = math.copysign(math.floor(abs(frac) * 1000 + 0.5), frac)   # Go's math.Round: half away from zero
        return int(whole) * 1000 + int(ms)
    m = _RFC3339.match(s)
    if m:
        year, mon, day, hh, mm, ss = (int(x) for x in m.groups()[:6])
        try:
            datetime(year, mon, day, hh, mm, min(ss, 59))
        except ValueError:
            m = None
        if m and ss < 60:
            secs = calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0))
            tz = m.group(8)
            if tz != "Z":
                sign = 1 if tz[0] == "+" else -1
                secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
            frac_ms = int((m.group(7) or "0").ljust(9, "0")[:3])
            return secs * 1000 + frac_ms
    if s == MIN_TIME_FORMATTED:
        return MIN_TIME_MS
    if s == MAX_TIME_FORMATTED:
        return MAX_TIME_MS
    raise ValueError(f'cannot parse "{s}" to a valid timestamp')


_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)


def parse_duration_ns(s: str) -> int:
    """Float seconds or a Prometheus duration (`1h30m`) -> nanoseconds, as Prometheus' parseDuration."""
    f = _go_float(s)
    if f is not None:
        ns = f * 1e9
        if not math.isfinite(ns) or abs(ns) >= 9.223372036854775807e18:
            raise ValueError(f'cannot parse "{s}" to a valid duration. It overflows int64')
        return int(ns)
    m = _DURATION.match(s)
    if s and m and s != "":
        return sum(int(g) * u for g, u in zip(m.groups(), _UNIT_MS) if g) * 1_000_000
    raise ValueError(f'cannot parse "{s}" to a valid duration')


def time_param(params: Params, name: str, default: int) -> int:
    val = params.get(name)
    if val == "":
        return default
    try:
        return parse_time(val)
    except ValueError as exc:
        raise invalid_param(name, f"Invalid time value for '{name}': {exc}") from None


# ---- series selectors (match[]) -------------------------------------------------------------------------------

_SEL_TOKEN = re.compile(r"""\s*(?:(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)|(?P<op>=~|!~|!=|=)|(?P<punct>[{},])|"""
                        r"""(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`))""")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_OPS = {"=": EQ, "!=": NEQ, "=~": RE, "!~": NRE}


def _unquote(tok: str) -> str:
    if tok[0] == "`":
        return tok[1:-1]
    body = tok[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
              '"': '"', "'": "'"}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "xuU01234567":
            width = {"x": 2, "u": 4, "U": 8}.get(nxt, 3)
            start = i + 2 if nxt in "xuU" else i + 1
            digits = body[start:start + width]
            try:
                out.append(chr(int(digits, 8 if nxt not in "xuU" else 16)))
            except ValueError:
                raise ValueError(f"invalid escape sequence in {tok}") from None
            i = start + width
        else:
            raise ValueError(f"unknown escape sequence \\{nxt}")
    return "".join(out)


def parse_selector(text: str) -> list[Matcher]:
    """A series selector (`name{a="b",c=~"d"}`) as Prometheus' ParseMetricSelector accepts it."""
    pos, n = 0, len(text)
    tokens = []
    while pos < n:
        if text[pos:].strip() == "":
            break
        m = _SEL_TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"1:{pos + 1}: parse error: unexpected character {text[pos:].strip()[:1]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    matchers: list[Matcher] = []
    i = 0

    def fail(msg, at=None):
        col = at if at is not None else (tokens[i][2] if i < len(tokens) else n + 1)
        raise ValueError(f"1:{col}: parse error: {msg}")

    if i < len(tokens) and tokens[i][0] == "ident":
        name = tokens[i][1]
        matchers.append(Matcher(NAME, EQ, name))
        i += 1
    if i < len(tokens) and tokens[i][1] == "{":
        i += 1
        while True:
            if i < len(tokens) and tokens[i][1] == "}":
                i += 1
                break
            if i >= len(tokens) or tokens[i][0] not in ("ident", "str"):
                fail("unexpected end of input inside braces" if i >= len(tokens) else
                     f"unexpected {tokens[i][1]!r} in label matching, expected label")
            lname = tokens[i][1] if tokens[i][0] == "ident" else _unquote(tokens[i][1])
            if not _LABEL_NAME.match(lname):
                fail(f"invalid label name {lname!r}")
            i += 1
            if i >= len(tokens) or tokens[i][0] != "op":
                fail("unexpected end of input inside braces" if i >= len(tokens) else
                     f"unexpected {tokens[i][1]!r} in label matching, expected label matching operator")
            op = _OPS[tokens[i][1]]
            i += 1
            if i >= len(tokens) or tokens[i][0] != "str":
                fail("unexpected end of input inside braces" if i >= len(tokens) else
                     f"unexpected {tokens[i][1]!r} in label matching, expected string")
            try:
                value = _unquote(tokens[i][1])
            except ValueError as exc:
                fail(str(exc))
            try:
                matchers.append(Matcher(lname, op, value))
            except BadRegex as exc:
                fail(str(exc))
            i += 1
            if i < len(tokens) and tokens[i][1] == ",":
                i += 1
            elif not (i < len(tokens) and tokens[i][1] == "}"):
                fail("unexpected end of input inside braces" if i >= len(tokens) else
                     f"unexpected {tokens[i][1]!r} in label matching, expected \",\" or \"}}\"")
    if i < len(tokens):
        fail(f"unexpected {tokens[i][1]!r}")
    if not tokens:
        fail("unexpected end of input", 1)
    if not any(not m.matches_empty for m in matchers):
        fail("vector selector must contain at least one non-empty matcher", 1)
    return matchers


def matcher_sets(values: list[str], param: str = "match[]") -> list[list[Matcher]]:
    sets = []
    for v in values:
        try:
            sets.append(parse_selector(v))
        except ValueError as exc:
            raise APIError("bad_data", str(exc)) from None
    return sets


# ---- result formatting ------------------------------------------------------------------------------------------

def format_value(v: float) -> str:
    """A sample value as Prometheus' jsonutil writes it: shortest 'f', or 'e' when |v| < 1e-6 or >= 1e21."""
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "+Inf" if v > 0 else "-Inf"
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return repr(v)                      # Python's repr is shortest, and 'e' in exactly this range
    s = repr(v)
    if "e" in s:
        return np.format_float_positional(v, unique=True, trim="-")
    return s[:-2] if s.endswith(".0") else s


def format_scalar_value(v: float) -> str:
    """Scalars in 2.42 always use 'f' (no exponent)."""
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, unique=True, trim="-")


def format_ts(ms: int) -> str:
    """Sample timestamp: seconds, and `.` plus exactly three digits when the milliseconds are not zero."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    sec, frac = divmod(ms, 1000)
    return f"{sign}{sec}.{frac:03d}" if frac else f"{sign}{sec}"


def format_scalar_ts(ms: int) -> str:
    """Scalar/string timestamps are a float64 of seconds in Go's shortest form."""
    return format_value(ms / 1000.0)


def _values_strings(values: np.ndarray) -> list[str]:
    # Distinct values are formatted once: counters, gauges and 0/1 series repeat a lot.
    uniq, inverse = np.unique(values.view(np.uint64), return_inverse=True)
    strs = [format_value(v) for v in uniq.view(np.float64).tolist()]
    return [strs[i] for i in inverse.ravel().tolist()]


def _labels_json(labels) -> bytes:
    return orjson.dumps(dict(labels))


def format_result(res) -> bytes:
    """`{"resultType": ..., "result": ...}` JSON for an engine result."""
    kind = type(res).__name__
    if kind == "Scalar":
        return b'{"resultType":"scalar","result":[' + format_scalar_ts(res.ts).encode() + b',"' + \
            format_scalar_value(res.value).encode() + b'"]}'
    if kind == "String":
        return b'{"resultType":"string","result":[' + format_scalar_ts(res.ts).encode() + b"," + \
            orjson.dumps(res.value) + b"]}"
    if kind == "Vector":
        items = [b'{"metric":' + _labels_json(s.labels) + b',"value":[' + format_ts(s.ts).encode() + b',"' +
                 format_value(s.value).encode() + b'"]}' for s in res.samples]
        return b'{"resultType":"vector","result":[' + b",".join(items) + b"]}"
    if kind == "Matrix":
        parts = []
        ts_cache: dict[int, str] = {}
        for s in res.series:
            tlist = s.ts.tolist()
            tstrs = [ts_cache.get(t) or ts_cache.setdefault(t, format_ts(t)) for t in tlist]
            vstrs = _values_strings(np.asarray(s.values, dtype=np.float64))
            points = ",".join([f'[{t},"{v}"]' for t, v in zip(tstrs, vstrs)])
            parts.append(b'{"metric":' + _labels_json(s.labels) + b',"values":[' + points.encode() + b"]}")
        return b'{"resultType":"matrix","result":[' + b",".join(parts) + b"]}"
    raise APIError("internal", f"unknown result type {kind}")


# ---- helpers -------------------------------------------------------------------------------------------------

def _tenants(request: Request) -> list[str]:
    tenant = getattr(request.state, "tenant", None) or "anonymous"
    return tenant.split("|")


class NotReady(Exception):
    """Storage not open yet (start-up/shutdown): Prometheus' `ready` wrapper answers a plain-text 503."""


def _storage(request: Request):
    storage = getattr(request.app.state, "storage", None)
    if storage is None:
        raise NotReady()
    return storage


class MultiQuerier:
    """One querier over several tenants (`a|b` reads), merging same-labelled series."""

    def __init__(self, storage, tenants):
        self.parts = [Querier(storage, t) for t in tenants]

    def select(self, matchers, start_ms, end_ms, with_data=True):
        if len(self.parts) == 1:
            return self.parts[0].select(matchers, start_ms, end_ms, with_data)
        merged: dict[tuple, list] = {}
        for q in self.parts:
            for s in q.select(matchers, start_ms, end_ms, with_data):
                merged.setdefault(s.labels, []).append(s)
        out = []
        for labels, group in merged.items():
            if len(group) == 1:
                out.append(group[0])
                continue
            ts = np.concatenate([g.ts for g in group])
            vals = np.concatenate([g.values for g in group])
            order = np.argsort(ts, kind="stable")
            ts, vals = ts[order], vals[order]
            keep = np.append(ts[1:] != ts[:-1], True)
            out.append(SeriesData(labels, ts[keep], vals[keep]))
        return out

    def series_labels(self, matchers, start_ms=None) -> set:
        out = set()
        for q in self.parts:
            sids = q.series_ids(matchers)
            if start_ms is not None and len(sids):
                sids = sids[q.storage.last_times(sids) >= start_ms]
            out.update(q.labels(s) for s in sids.tolist())
        return out

    def label_names(self) -> set:
        return {n for q in self.parts for n in q.label_names()}

    def label_values(self, name) -> set:
        return {v for q in self.parts for v in q.label_values(name)}


def _query_timeout(request: Request, params: Params) -> float:
    limit = DEFAULT_TIMEOUT_S
    storage = getattr(request.app.state, "storage", None)
    limits = getattr(storage, "limits", None)
    if limits is not None:
        limit = min(limit, float(limits.for_tenant(_tenants(request)[0]).query_timeout) or limit)
    to = params.get("timeout")
    if to:
        try:
            ns = parse_duration_ns(to)
        except ValueError as exc:
            raise invalid_param("timeout", str(exc)) from None
        if ns > 0:
            limit = min(limit, ns / 1e9)
    return limit


def api_view(fn):
    """Wrap a handler: APIError -> the error envelope."""
    async def view(request: Request) -> Response:
        try:
            return await fn(request)
        except APIError as exc:
            return error(exc.kind, exc.message)
        except NotReady:
            return Response("Service Unavailable", 503, media_type="text/plain")
    view.__name__ = fn.__name__
    return view


async def _in_thread(fn, *args, executor=None):
    """fn(*args) off the event loop, by default in the loop's default executor (the app's request threads): a
    cheaper hop than starlette's run_in_threadpool."""
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


async def _run_query(request, timeout_s, fn, *args):
    from .promql.engine import EvalError
    try:
        return await asyncio.wait_for(_in_thread(fn, *args), timeout_s)
    except asyncio.TimeoutError:
        raise APIError("timeout", "query timed out in expression evaluation") from None
    except EvalError as exc:
        raise APIError(exc.kind if exc.kind in _STATUS else "execution", exc.message) from None
    except BadRegex as exc:
        raise APIError("bad_data", str(exc)) from None


def _engine(request: Request, timeout_s: float):
    from .promql.engine import Engine
    storage = _storage(request)
    tenants = _tenants(request)
    return Engine(lambda: MultiQuerier(storage, tenants), timeout_s=timeout_s)


def _parse_query(text: str):
    from .promql.parser import ParseError, parse_expr
    try:
        return parse_expr(text)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


# ---- query endpoints -------------------------------------------------------------------------------------------

def _checked(name: str, parse, text):
    """`parse(text)`, with a ValueError reported as Prometheus' `invalid parameter "<name>"` error."""
    try:
        return parse(text)
    except ValueError as exc:
        raise invalid_param(name, str(exc)) from None


@api_view
async def query_view(request: Request) -> Response:
    params = await read_params(request)
    t = time_param(params, "time", int(time.time() * 1000))
    timeout_s = _query_timeout(request, params)
    expr = _checked("query", _parse_query, params.get("query"))
    engine = _engine(request, timeout_s)
    res = await _run_query(request, timeout_s, engine.instant, expr, t)
    return success_raw(await _in_thread(format_result, res))


@api_view
async def query_range_view(request: Request) -> Response:
    params = await read_params(request)
    start = _checked("start", parse_time, params.get("start"))
    end = _checked("end", parse_time, params.get("end"))
    if end < start:
        raise invalid_param("end", "end timestamp must not be before start time")
    step_ns = _checked("step", parse_duration_ns, params.get("step"))
    if step_ns <= 0:
        raise invalid_param("step", "zero or negative query resolution step widths are not accepted. "
                                    "Try a positive integer")
    if (end - start) * 1_000_000 // step_ns > MAX_POINTS:
        raise APIError("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                                   "Try decreasing the query resolution (?step=XX)")
    step_ms = step_ns // 1_000_000
    if step_ms <= 0:
        raise invalid_param("step", "query resolution steps below one millisecond are not supported")
    timeout_s = _query_timeout(request, params)
    try:
        expr = _parse_query(params.get("query"))
    except ValueError as exc:
        raise APIError("bad_data", str(exc)) from None
    engine = _engine(request, timeout_s)
    res = await _run_query(request, timeout_s, engine.range, expr, start, end, step_ms)
    return success_raw(await _in_thread(format_result, res))


@api_view
async def format_query_view(request: Request) -> Response:
    params = await read_params(request)
    expr = _checked("query", _parse_query, params.get("query"))
    from .promql import printer
    return success(printer.format_expr(expr))


def _extract_selectors(node, out: list) -> list:
    """Matcher lists of every vector selector in an AST (Prometheus' parser.ExtractSelectors)."""
    from .promql import ast
    if isinstance(node, ast.VectorSelector):
        out.append(list(node.matchers))
    elif isinstance(node, (list, tuple)):
        for n in node:
            _extract_selectors(n, out)
    elif hasattr(node, "__dataclass_fields__"):
        for name in node.__dataclass_fields__:
            child = getattr(node, name)
            if not isinstance(child, (str, int, float, type(None))):
                _extract_selectors(child, out)
    return out


@api_view
async def query_exemplars_view(request: Request) -> Response:
    params = await read_params(request)
    start = time_param(params, "start", MIN_TIME_MS)
    end = time_param(params, "end", MAX_TIME_MS)
    if end < start:
        raise APIError("bad_data", "end timestamp must not be before start timestamp")
    try:
        expr = _parse_query(params.get("query"))
    except ValueError as exc:
        raise APIError("bad_data", str(exc)) from None
    selectors = _extract_selectors(expr, [])
    if not selectors:
        return Response(status_code=204)
    _, exemplars = stores_for(_storage(request))
    data = exemplars.query(_tenants(request), selectors, start, end)
    parts = []
    for item in data:
        exs = [b'{"labels":' + orjson.dumps(dict(lab)) + b',"value":"' + format_value(v).encode() +
               b'","timestamp":' + format_ts(t).encode() + b"}" for t, lab, v in item["exemplars"]]
        parts.append(b'{"seriesLabels":' + orjson.dumps(item["seriesLabels"]) + b',"exemplars":[' +
                     b",".join(exs) + b"]}")
    return success_raw(b"[" + b",".join(parts) + b"]")


# ---- metadata endpoints ------------------------------------------------------------------------------------------

@api_view
async def series_view(request: Request) -> Response:
    params = await read_params(request)
    matches = params.getlist("match[]")
    if not matches:
        raise APIError("bad_data", "no match[] parameter provided")
    start = time_param(params, "start", MIN_TIME_MS)
    time_param(params, "end", MAX_TIME_MS)
    try:
        sets = [parse_selector(m) for m in matches]
    except ValueError as exc:
        raise invalid_param("match[]", str(exc)) from None
    q = MultiQuerier(_storage(request), _tenants(request))

    def run():
        found = set()
        for ms in sets:
            found |= q.series_labels(ms, start if start != MIN_TIME_MS else None)
        return [dict(lab) for lab in sorted(found)]
    return success(await _in_thread(run))


def _names_or_values(request, params, label: str | None):
    start = time_param(params, "start", MIN_TIME_MS)
    time_param(params, "end", MAX_TIME_MS)
    sets = matcher_sets(params.getlist("match[]"))
    for ms in sets:
        if all(m.matches_empty for m in ms):
            raise APIError("bad_data", "match[] must contain at least one non-empty matcher")
    q = MultiQuerier(_storage(request), _tenants(request))
    if not sets:
        return sorted(q.label_names() if label is None else q.label_values(label))
    found = set()
    for ms in sets:
        for lab in q.series_labels(ms, start if start != MIN_TIME_MS else None):
            if label is None:
                found.update(n for n, _ in lab)
            else:
                found.update(v for n, v in lab if n == label)
    return sorted(found)


@api_view
async def labels_view(request: Request) -> Response:
    params = await read_params(request)
    return success(await _in_thread(_names_or_values, request, params, None))


@api_view
async def label_values_view(request: Request) -> Response:
    name = request.path_params["name"]
    if not _LABEL_NAME.match(name):
        raise APIError("bad_data", f'invalid label name: "{name}"')
    params = await read_params(request)
    return success(await _in_thread(_names_or_values, request, params, name))


@api_view
async def metadata_view(request: Request) -> Response:
    params = await read_params(request)
    limit = None
    if params.get("limit"):
        try:
            limit = int(params.get("limit"))
        except ValueError:
            raise APIError("bad_data", "limit must be a number") from None
    meta, _ = stores_for(_storage(request))
    return success(meta.query(_tenants(request), params.get("metric") or None, limit))


# ---- status endpoints --------------------------------------------------------------------------------------------

def _settings(request: Request) -> dict:
    return getattr(request.app.state, "settings", None) or {}


@api_view
async def buildinfo_view(request: Request) -> Response:
    return success({"version": VERSION, "revision": "plumbago", "branch": "HEAD", "buildUser": "plumbago",
                    "buildDate": "", "goVersion": f"python{platform.python_version()}"})


@api_view
async def config_view(request: Request) -> Response:
    # Prometheus' own defaults for the parts a PromQL client reads; plumbago's settings are not echoed back
    # because they can hold credentials (database URL, access policies).
    text = ("global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\n  evaluation_interval: 1m\n"
            "remote_write: []\nremote_read: []\n")
    return success({"yaml": text})


@api_view
async def flags_view(request: Request) -> Response:
    settings = _settings(request)
    return success({"query.lookback-delta": "5m", "query.max-samples": "50000000",
                    "query.timeout": "2m", "storage.remote.read-sample-limit": str(remote.READ_SAMPLE_LIMIT),
                    "storage.remote.read-max-bytes-in-frame": str(remote.MAX_BYTES_IN_FRAME),
                    "storage.tsdb.path": str(settings.get("data_dir", "")),
                    "web.enable-remote-write-receiver": "true"})


def _go_time(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@api_view
async def runtimeinfo_view(request: Request) -> Response:
    storage = getattr(request.app.state, "storage", None)
    return success({"startTime": _go_time(_START_TIME), "CWD": os.getcwd(), "reloadConfigSuccess": True,
                    "lastConfigTime": _go_time(_START_TIME), "corruptionCount": 0,
                    "goroutineCount": __import__("threading").active_count(), "GOMAXPROCS": os.cpu_count() or 1,
                    "GOGC": "", "GODEBUG": "", "storageRetention": "per storage-schemas",
                    "timeSeriesCount": storage.index.series_count() if storage is not None else 0})


def _top(counts: dict, n: int = 10) -> list:
    return [{"name": k, "value": v} for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


@api_view
async def tsdb_view(request: Request) -> Response:
    storage = _storage(request)

    def run():
        by_metric, values_per_label, bytes_per_label, pairs = {}, {}, {}, {}
        num_series = num_pairs = 0
        min_t = max_t = None
        for tenant in _tenants(request):
            idx = storage.index.tenant(tenant)
            num_series += len(idx)
            sids = idx.all_ids()
            if len(sids):
                last = storage.last_times(sids)
                last = last[last > 0]
                if len(last):
                    max_t = max(max_t or 0, int(last.max()))
            for name in idx.label_names():
                counts = idx.label_values(name)
                num_pairs += len(counts)
                values_per_label[name] = values_per_label.get(name, 0) + len(counts)
                bytes_per_label[name] = bytes_per_label.get(name, 0) + sum(len(v) * c for v, c in counts.items())
                for v, c in counts.items():
                    pairs[f"{name}={v}"] = pairs.get(f"{name}={v}", 0) + c
                    if name == NAME:
                        by_metric[v] = by_metric.get(v, 0) + c
        head = getattr(storage, "head", None)
        if head is not None and hasattr(head, "min_time"):
            min_t = head.min_time()
        return {"headStats": {"numSeries": num_series, "numLabelPairs": num_pairs,
                              "chunkCount": 0, "minTime": min_t if min_t is not None else (max_t or 0),
                              "maxTime": max_t or 0},
                "seriesCountByMetricName": _top(by_metric), "labelValueCountByLabelName": _top(values_per_label),
                "memoryInBytesByLabelName": _top(bytes_per_label), "seriesCountByLabelValuePair": _top(pairs)}
    return success(await _in_thread(run))


# ---- remote write / read --------------------------------------------------------------------------------------------

async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise remote.RemoteError(f"request body of {length} bytes is over the limit of {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise remote.RemoteError(f"request body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _ingest_limits(request: Request) -> tuple[int, int]:
    ingest = _settings(request).get("ingest") or {}
    return int(ingest.get("max_body_bytes", MAX_BODY_BYTES)), int(ingest.get("max_decompressed_bytes", 4 * MAX_BODY_BYTES))


async def remote_write_view(request: Request) -> Response:
    """Remote write 1.0/2.0: 204 on success; 400 with a plain-text reason when anything was invalid (the valid
    part is kept); 415 for an unsupported content type or encoding; 429/400 from ingest limits."""
    from storage.limits import LimitError
    storage = getattr(request.app.state, "storage", None)
    if storage is None:
        return Response("storage is not ready\n", 503, media_type="text/plain")
    max_body, max_raw = _ingest_limits(request)
    tenant = _tenants(request)[0]
    try:
        body = await _body(request, max_body)
        unsynced = True
        try:
            res, unsynced = await _in_thread(_write_deferred, storage, tenant, body,
                                             request.headers.get("content-type"),
                                             request.headers.get("content-encoding"), max_raw,
                                             executor=getattr(request.app.state, "ingest_threads", None))
        finally:
            if unsynced:                       # what was stored is durable before any answer, 2xx or 400
                await _in_thread(storage.sync)
    except remote.RemoteError as exc:
        result = getattr(exc, "result", None)
        headers = result.headers() if result is not None and getattr(result, "version", 1) == 2 else None
        return Response(exc.message + "\n", exc.status, media_type="text/plain", headers=headers)
    except LimitError as exc:
        return Response(str(exc) + "\n", exc.status, media_type="text/plain")
    return Response(status_code=204, headers=res.headers() if res.version == 2 else None)


def _write_deferred(storage, *args):
    """remote.handle_write on an ingest thread (as Graphite ingest): (result, whether the caller must still
    sync the storage before answering)."""
    with storage.deferred_sync() as deferred:
        res = remote.handle_write(storage, *args)
    return res, deferred.needed


async def remote_read_view(request: Request) -> Response:
    storage = getattr(request.app.state, "storage", None)
    if storage is None:
        return Response("storage is not ready\n", 503, media_type="text/plain")
    max_body, max_raw = _ingest_limits(request)
    try:
        body = await _body(request, max_body)
        ctype, headers, payload = await _in_thread(
            remote.handle_read, storage, _tenants(request), body, request.headers.get("content-encoding"), max_raw)
    except remote.RemoteError as exc:
        return Response(exc.message + "\n", exc.status, media_type="text/plain")
    if isinstance(payload, bytes):
        return Response(payload, 200, headers=headers, media_type=ctype)
    return StreamingResponse(payload, 200, headers=headers, media_type=ctype)


# ---- routing ------------------------------------------------------------------------------------------------------------

# Exactly the write paths graphite_api.tenancy gives the write scope to.
_WRITE_PATHS = ("/api/v1/push", "/api/v1/write", "/api/v1/prom/remote/write", "/api/v1/prom/write")
_READ_PATHS = ("/api/v1/read", "/prometheus/api/v1/read", "/api/v1/prom/remote/read")


def routes() -> list[Route]:
    get_post = ["GET", "POST"]
    api = [
        ("/query", query_view, get_post),
        ("/query_range", query_range_view, get_post),
        ("/query_exemplars", query_exemplars_view, get_post),
        ("/format_query", format_query_view, get_post),
        ("/series", series_view, get_post),
        ("/labels", labels_view, get_post),
        ("/label/{name}/values", label_values_view, ["GET"]),
        ("/metadata", metadata_view, ["GET"]),
        ("/status/buildinfo", buildinfo_view, ["GET"]),
        ("/status/config", config_view, ["GET"]),
        ("/status/flags", flags_view, ["GET"]),
        ("/status/runtimeinfo", runtimeinfo_view, ["GET"]),
        ("/status/tsdb", tsdb_view, ["GET"]),
    ]
    out = []
    for prefix in ("/api/v1", "/prometheus/api/v1"):
        out.extend(Route(prefix + path, fn, methods=methods) for path, fn, methods in api)
    out.extend(Route(p, remote_write_view, methods=["POST"]) for p in _WRITE_PATHS)
    out.extend(Route(p, remote_read_view, methods=["POST"]) for p in _READ_PATHS)
    return out
