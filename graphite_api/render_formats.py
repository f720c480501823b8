"""`/render` output encoders: each is `(series_list, params) -> (bytes, content_type)`.

`params` is the parsed render request (a dict or an object with attributes); encoders read only what they need:
`jsonp`, `noNullPoints`, `pretty`, `meta` (json); `from`/`until` (pickle, msgpack, msgp when a series has no
points); `maxDataPoints` (msgp); `tz` (csv). Series are `Series` (NaN = null) on a regular grid.

Formats follow graphite-web 1.1 (json, csv, raw, pickle, msgpack) and metrictank (`meta=true`, msgp).
"""
from __future__ import annotations

import datetime as _dt
import json
import pickle
import re
import zoneinfo
from collections import deque
from itertools import repeat
from typing import Any, Callable

import msgpack
import numpy as np
import orjson

from .series import Series

__all__ = ["ENCODERS", "CONTENT_TYPES", "encode", "encode_json", "encode_msgpack", "encode_pickle", "encode_msgp",
           "encode_csv", "encode_raw"]

_OPT_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# a JSONP callback is echoed into text/javascript: only accept a (dotted) identifier so it cannot inject script
_JSONP_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")


# --- parameter access ---------------------------------------------------------------------------------------------

_MISSING = object()


def _param(params: Any, *names: str, default: Any = None) -> Any:
    """First present parameter among `names` (dict keys or attributes; graphite and snake_case spellings)."""
    if params is None:
        return default
    for name in names:
        if isinstance(params, dict):
            value = params.get(name, _MISSING)
        else:
            value = getattr(params, name, _MISSING)
        if value is not _MISSING and value is not None:
            return value
    return default


def _flag(params: Any, *names: str) -> bool:
    value = _param(params, *names, default=False)
    if isinstance(value, str):
        # graphite-web enables noNullPoints by mere presence; only an explicit false/0 turns a flag off here
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _int_param(params: Any, *names: str) -> int:
    value = _param(params, *names, default=0)
    if isinstance(value, _dt.datetime):
        return int(value.timestamp())
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _query_bounds(params: Any) -> tuple[int, int]:
    return (_int_param(params, "from", "from_", "start", "startTime", "start_time"),
            _int_param(params, "until", "until_", "end", "endTime", "end_time", "to"))


# --- shared value helpers -----------------------------------------------------------------------------------------

def _with_nulls(items: list, values: np.ndarray, null: Any) -> list:
    """Put `null` into `items` wherever `values` is NaN (a C-level map over the null positions only)."""
    nulls = np.flatnonzero(np.isnan(values))
    if len(nulls):
        deque(map(items.__setitem__, nulls.tolist(), repeat(null)), maxlen=0)
    return items


def _values_with_none(values: np.ndarray) -> list:
    """Values as a Python list with None for null (what pickle / msgpack consumers expect)."""
    return _with_nulls(values.tolist(), values, None)


def _reprs(values: np.ndarray, null: str) -> list:
    """Python's repr of each value (what graphite-web's csv and raw write), `null` for NaN."""
    return _with_nulls(list(map(repr, values.tolist())), values, null)


def _tags(series: Series) -> dict:
    return {str(k): str(v) for k, v in series.tags.items()}


# --- json ---------------------------------------------------------------------------------------------------------

class _TimestampTokens:
    """`,<ts>],[` byte tokens per distinct (start, step, length) grid, built once per response.

    Most responses put every series on the same grid, so timestamps are formatted once, not once per series.
    Returns the tokens both as a list (fast slice assignment) and an object array (masking for noNullPoints).
    """

    def __init__(self):
        self._cache: dict[tuple[int, int, int], tuple[list, np.ndarray]] = {}

    def get(self, series: Series) -> tuple[list, np.ndarray]:
        key = (int(series.start), int(series.step), len(series.values))
        tokens = self._cache.get(key)
        if tokens is None:
            if len(series.values):
                ts = orjson.dumps(series.timestamps, option=_OPT_NUMPY)[1:-1].split(b",")
                as_list = list(map(b"".join, zip(repeat(b","), ts, repeat(b"],["))))
            else:
                as_list = []
            as_array = np.empty(len(as_list), dtype=object)
            as_array[:] = as_list
            tokens = self._cache[key] = (as_list, as_array)
        return tokens


def _series_json(series: Series, values: np.ndarray, ts_tokens: list, tail: bytes) -> bytes:
    """`{"target":..,"tags":{..},"datapoints":[[v,ts],...]` + tail for one series, copied by a single join.

    orjson formats all values in one call (shortest round-trip repr, `1.0` for integral floats, NaN and inf as
    null); the value tokens are interleaved with the cached timestamp tokens by slice assignment, so no Python
    code runs per point.
    """
    # key order target, tags, datapoints (graphite-web and metrictank)
    head = orjson.dumps({"target": series.name, "tags": _tags(series)})[:-1] + b',"datapoints":['
    n = len(values)
    if n == 0:
        return head + b"]" + tail
    tokens = orjson.dumps(values, option=_OPT_NUMPY)[1:-1].split(b",")
    inf = np.isinf(values)
    if inf.any():
        # orjson writes inf as null; graphite-web's text replacement turns Infinity into 1e9999
        patched = np.array(tokens, dtype=object)
        patched[inf & (values > 0)] = b"1e9999"
        patched[inf & (values < 0)] = b"-1e9999"
        tokens = patched.tolist()
    out = [None] * (2 * n + 2)
    out[0] = head + b"["                    # opens the first point; later ones are opened by ",ts],["
    out[1:2 * n:2] = tokens
    out[2:2 * n + 1:2] = ts_tokens
    out[2 * n] = ts_tokens[-1][:-2]         # the last point closes with ",ts]" only
    out[2 * n + 1] = b"]" + tail
    return b"".join(out)


def _pretty_json(series_list: list[Series], no_null: bool, with_meta: bool) -> bytes:
    """graphite-web's `pretty=1`: json.dumps(indent=2) then its NaN/Infinity text replacement. Human use only."""
    data = []
    for s in series_list:
        values = s.values
        ts = s.timestamps.tolist()
        vals = _values_with_none(values)
        points = [[v, t] for v, t in zip(vals, ts) if not (no_null and v is None)]
        if no_null and not points:
            continue
        item = {"target": s.name, "tags": _tags(s), "datapoints": points}
        if with_meta:
            item["meta"] = []
        data.append(item)
    text = json.dumps(data, indent=2).replace("NaN,", "null,").replace("Infinity,", "1e9999,")
    return text.encode()


def encode_json(series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    """graphite-web's json (metrictank's `meta=true` envelope on request), optionally wrapped for JSONP.

    The body is assembled as one list of pieces and copied once by a final join: with 10^7 points every extra
    concatenation of the whole text costs tens of milliseconds.
    """
    series_list = list(series_list)
    no_null = _flag(params, "noNullPoints", "no_null_points")
    with_meta = _flag(params, "meta")
    callback = _param(params, "jsonp")
    if callback and not _JSONP_CALLBACK.match(str(callback)):
        raise ValueError(f"invalid jsonp callback {callback!r}: must be a JavaScript identifier")
    # graphite-web answers [] when every series is empty (its `if any(data)` guard)
    if not any(len(s.values) for s in series_list):
        series_list = []

    pieces = []
    if callback:
        pieces.append(str(callback).encode() + b"(")
    if with_meta:
        stats = _param(params, "meta_stats", "stats", default={}) or {}
        pieces.append(b'{"version":"v0.1","meta":{"stats":' + orjson.dumps(stats) + b'},"series":')
    if _flag(params, "pretty"):
        pieces.append(_pretty_json(series_list, no_null, with_meta))
    else:
        pieces.append(b"[")
        grids = _TimestampTokens()
        tail = b',"meta":[]}' if with_meta else b"}"
        first = True
        for s in series_list:
            values = s.values
            tokens, token_array = grids.get(s)
            if no_null:
                keep = ~np.isnan(values)
                if not keep.all():
                    values = values[keep]
                    tokens = token_array[keep].tolist()
                if len(values) == 0:
                    continue
            if not first:
                pieces.append(b",")
            pieces.append(_series_json(s, values, tokens, tail))
            first = False
        pieces.append(b"]")
    if with_meta:
        pieces.append(b"}")
    if callback:
        pieces.append(b")")
        return b"".join(pieces), "text/javascript"
    return b"".join(pieces), "application/json"


# --- pickle / msgpack (graphite-web's getInfo shape) --------------------------------------------------------------

def _graphite_info(series_list: list[Series], params: Any) -> list[dict]:
    """graphite-web's `TimeSeries.getInfo()` per series; an empty series reports the query's from/until."""
    q_from, q_until = _query_bounds(params)
    info = []
    for s in series_list:
        empty = len(s.values) == 0
        info.append({
            "name": s.name,
            "start": q_from if empty else int(s.start),
            "end": q_until if empty else int(s.end),
            "step": int(s.step),
            "values": _values_with_none(s.values),
            "pathExpression": s.path_expression,
            "valuesPerPoint": int(s.values_per_point),
            "consolidationFunc": s.consolidation,
            "xFilesFactor": float(s.xfiles_factor or 0.0),
        })
    return info


def encode_pickle(series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    return pickle.dumps(_graphite_info(list(series_list), params), protocol=pickle.HIGHEST_PROTOCOL), \
        "application/pickle"


def encode_msgpack(series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    return msgpack.packb(_graphite_info(list(series_list), params), use_bin_type=True), "application/x-msgpack"


# --- msgp (metrictank's internal models.Series) -------------------------------------------------------------------

# metrictank's consolidation.Consolidator enum, encoded as an int by its msgp code
_MT_CONSOLIDATOR = {
    "average": 1, "avg": 1, "sum": 2, "total": 2, "last": 3, "lst": 3, "current": 3, "max": 4, "min": 5,
    "count": 6, "multiply": 7, "mult": 7, "median": 8, "med": 8, "diff": 9, "stddev": 10, "range": 11,
    "rangeOf": 11,
}
# one msgp Datapoint: fixmap(2) "Val" float64 "Ts" uint32, big endian, 22 bytes
_MSGP_POINT = np.dtype([("map", "u1"), ("kval", "S4"), ("f64", "u1"), ("val", ">f8"),
                        ("kts", "S3"), ("u32", "u1"), ("ts", ">u4")])


def _msgp_datapoints(series: Series) -> bytes:
    n = len(series.values)
    points = np.empty(n, dtype=_MSGP_POINT)
    points["map"] = 0x82
    points["kval"] = b"\xa3Val"
    points["f64"] = 0xcb
    points["val"] = series.values               # NaN stays a float, as metrictank sends it
    points["kts"] = b"\xa2Ts"
    points["u32"] = 0xce
    points["ts"] = series.timestamps.astype(np.uint32)
    return _msgpack_array_header(n) + points.tobytes()


def _msgpack_array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_msgp(series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    """metrictank's `format=msgp`: models.Series maps, Datapoints packed from numpy (no per-point objects)."""
    series_list = list(series_list)
    q_from, q_until = _query_bounds(params)
    mdp = _int_param(params, "maxDataPoints", "max_data_points")
    pack = msgpack.Packer(use_bin_type=True).pack
    parts = [_msgpack_array_header(len(series_list))]
    for s in series_list:
        head = {
            "Target": s.name,
            "Tags": _tags(s),
            "Interval": int(s.step) & 0xFFFFFFFF,
            "QueryPatt": s.path_expression,
            "QueryFrom": q_from & 0xFFFFFFFF,
            "QueryTo": q_until & 0xFFFFFFFF,
            "QueryCons": 0,                                 # 0 = "use the configured default"
            "Consolidator": _MT_CONSOLIDATOR.get(s.consolidation, 0),
            "QueryMDP": mdp & 0xFFFFFFFF,
            "QueryPNGroup": 0,
            "Meta": [],
        }
        parts.append(b"\x8c")                               # fixmap of 12 entries, Datapoints last
        for key, value in head.items():
            parts.append(pack(key) + pack(value))
        parts.append(pack("Datapoints") + _msgp_datapoints(s))
    return b"".join(parts), "application/msgpack"


# --- csv ----------------------------------------------------------------------------------------------------------

def _tzinfo(params: Any) -> _dt.tzinfo:
    tz = _param(params, "tzinfo", "tz")
    if isinstance(tz, _dt.tzinfo):
        return tz
    if tz:
        try:
            return zoneinfo.ZoneInfo(str(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass                                    # graphite-web ignores an unknown tz
    return _dt.timezone.utc


def _utc_offsets(ts: np.ndarray, tz: _dt.tzinfo) -> np.ndarray:
    """UTC offset in seconds for each (sorted) timestamp, asking `tz` only around offset changes.

    Offsets are probed at most a week apart and transitions are located by bisection, so the Python work is per
    week of range and per DST change, not per point.
    """
    def offset(t: int) -> int:
        return int(_dt.datetime.fromtimestamp(t, tz).utcoffset().total_seconds())

    n = len(ts)
    first, last = int(ts[0]), int(ts[-1])
    probes = list(range(first, last, 7 * 86400)) + [last]
    changes = []                                    # (first second of a new offset, offset)
    prev_t, prev_off = probes[0], offset(probes[0])
    for t in probes[1:]:
        off = offset(t)
        if off != prev_off:
            lo, hi = prev_t, t                      # offset(lo) == prev_off, offset(hi) != prev_off
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) == prev_off:
                    lo = mid
                else:
                    hi = mid
            changes.append((hi, offset(hi)))
        prev_t, prev_off = t, off
    offsets = np.full(n, offset(first), dtype=np.int64)
    for at, off in changes:
        offsets[np.searchsorted(ts, at):] = off
    return offsets


def _csv_quote(field: str) -> str:
    # csv.writer's excel dialect (QUOTE_MINIMAL): quote fields holding the delimiter, a quote or a line break
    if any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def encode_csv(series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    """graphite-web's csv: `name,YYYY-MM-DD HH:MM:SS,value\\r\\n` per point; null is an empty field."""
    tz = _tzinfo(params)
    grids: dict[tuple[int, int, int], list] = {}
    chunks = []
    for s in series_list:
        n = len(s.values)
        if n == 0:
            continue
        key = (int(s.start), int(s.step), n)
        stamps = grids.get(key)
        if stamps is None:
            ts = s.timestamps
            local = ts if tz is _dt.timezone.utc else ts + _utc_offsets(ts, tz)
            text = np.datetime_as_string(local.astype("datetime64[s]"), unit="s")
            stamps = grids[key] = np.char.add(np.char.replace(text, "T", " "), ",").tolist()
        values = _reprs(s.values, "")          # csv.writer prints floats with str() == repr()
        out = [None] * (4 * n)
        out[0::4] = [_csv_quote(s.name or "") + ","] * n
        out[1::4] = stamps
        out[2::4] = values
        out[3::4] = ["\r\n"] * n
        chunks.append("".join(out))
    return "".join(chunks).encode(), "text/csv"


# --- raw ----------------------------------------------------------------------------------------------------------

def encode_raw(series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    """graphite-web's rawData: `name,start,end,step|v1,v2,...\\n` with Python reprs (`None` for null)."""
    lines = []
    for s in series_list:
        values = _reprs(s.values, "None")
        lines.append("%s,%d,%d,%d|%s\n" % (s.name, s.start, s.end, s.step, ",".join(values)))
    return "".join(lines).encode(), "text/plain"


# --- registry -----------------------------------------------------------------------------------------------------

ENCODERS: dict[str, Callable[[list[Series], Any], tuple[bytes, str]]] = {
    "json": encode_json,
    "msgpack": encode_msgpack,
    "pickle": encode_pickle,
    "msgp": encode_msgp,
    "csv": encode_csv,
    "raw": encode_raw,
}

CONTENT_TYPES = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "pickle": "application/pickle",
    "msgp": "application/msgpack",
    "csv": "text/csv",
    "raw": "text/plain",
}


def encode(format: str, series_list: list[Series], params: Any = None) -> tuple[bytes, str]:
    """Encode a render result; an unknown format raises ValueError naming it (the endpoint answers 400)."""
    encoder = ENCODERS.get(format)
    if encoder is None:
        raise ValueError(f"unsupported render format {format!r}; supported: {', '.join(sorted(ENCODERS))}")
    return encoder(list(series_list), params)
