"""Decoding and validation of Graphite `POST /metrics` bodies (no HTTP here).

Three content types are accepted, as metrictank's gateway and Grafana Cloud do:

- `application/json`: a JSON array of MetricData objects (keys matched case-insensitively, like Go's
  encoding/json; unknown keys ignored);
- `rt-metric-binary`: 1 format byte (0x01 msgpack, 0x00 JSON) + 8-byte big-endian id + payload; the msgpack
  payload is an array of maps keyed by the Go field names `Id, OrgId, Name, Interval, Value, Unit, Time, Mtype,
  Tags` (what carbon-relay-ng sends);
- `rt-metric-binary-snappy`: the binary body wrapped in the snappy *framing* format.

Body-level problems raise `IngestError` (HTTP 400). Per-metric problems never fail the request: the metric is
dropped and counted in `IngestBatch.validation_errors`, because carbon-relay-ng retries a 4xx batch forever.

Speed: after the C decoders (msgpack, orjson, cramjam) the per-metric work is done with `map`/`itemgetter`
over the decoded maps plus a cache of validation results keyed on the identity fields, since the same series
come back in every batch. Python-level per-metric code runs only for cache misses and malformed metrics.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from operator import itemgetter

import cramjam
import google_crc32c
import msgpack
import numpy as np
import orjson

from .msgpack_columns import read_columns

__all__ = [
    "IngestError", "IngestBatch", "decode_metrics", "unframe_snappy", "frame_snappy",
    "encode_metrics_binary", "encode_metrics_snappy", "canonical_name", "metric_id",
    "CONTENT_TYPE_JSON", "CONTENT_TYPE_BINARY", "CONTENT_TYPE_SNAPPY", "MAX_EXAMPLE_IDS",
]

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_BINARY = "rt-metric-binary"
CONTENT_TYPE_SNAPPY = "rt-metric-binary-snappy"

FORMAT_JSON = 0x00
FORMAT_MSGPACK = 0x01

MAX_EXAMPLE_IDS = 9                  # TGW reports at most 9 request indices per error
MTYPES = frozenset(("gauge", "rate", "count", "counter", "timestamp"))

# Error strings of metrictank's Validate(); clients (carbon-relay-ng) log them verbatim.
ERR_INTERVAL_ZERO = "interval cannot be 0"
ERR_NAME_EMPTY = "name cannot be empty"
ERR_MTYPE = "invalid mtype"
ERR_INPUT = "invalid input"

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class IngestError(ValueError):
    """The request body as a whole cannot be used (HTTP 400). The message says what is wrong."""


@dataclass
class IngestBatch:
    """Columnar result of one ingest request: only the valid metrics, in request order."""
    names: list[str]                  # canonical series name: `name` or `name;k1=v1;k2=v2`
    ts: np.ndarray                    # int64 unix seconds
    values: np.ndarray                # float64
    intervals: np.ndarray             # int32 seconds (0 = unknown: carbon lines, filled by the service)
    units: list[str]
    mtypes: list[str]
    invalid: int = 0
    validation_errors: dict = field(default_factory=dict)
    tenant: str | None = None         # set by the carbon listeners; HTTP ingest takes the tenant from auth

    @property
    def published(self) -> int:
        return len(self.names)

    def response_body(self) -> dict:
        """TGW's body (carbon-relay-ng parses it) plus Mimir's lower-case `published`."""
        return {"Invalid": self.invalid, "Published": self.published,
                "ValidationErrors": self.validation_errors, "published": self.published}

    @classmethod
    def empty(cls) -> "IngestBatch":
        return cls([], np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int32), [], [])


# ---------------------------------------------------------------------------------------------------------
# Validation

def _record(errors: dict, err: str, index: int) -> None:
    slot = errors.get(err)
    if slot is None:
        errors[err] = {"Count": 1, "ExampleIds": [index]}
        return
    slot["Count"] += 1
    if len(slot["ExampleIds"]) < MAX_EXAMPLE_IDS:
        slot["ExampleIds"].append(index)


def _eat_dots(name: str) -> str:
    """Drop leading/trailing dots and collapse runs of dots (metrictank's EatDots)."""
    if ".." not in name and not name.startswith(".") and not name.endswith("."):
        return name
    return ".".join(p for p in name.split(".") if p)


def _utf8_ok(s: str) -> bool:
    # Invalid UTF-8 reaches us as lone surrogates (msgpack `surrogateescape`, carbon lines decoded the same way).
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tag_ok(tag) -> bool:
    """metrictank's tag rule: `key=value`, key without `;!^=`, value non-empty, no `;`, not starting `~`."""
    if tag.__class__ is not str:
        return False
    eq = tag.find("=")
    if eq <= 0 or eq == len(tag) - 1:       # also covers metrictank's "length >= 3"
        return False
    key = tag[:eq]
    if ";" in key or "!" in key or "^" in key:
        return False
    if tag[eq + 1] == "~" or ";" in tag[eq + 1:]:
        return False
    # `__name__` would clash with the metric-name label of the shared Graphite/Prometheus index.
    if key == "__name__":
        return False
    return _utf8_ok(tag)


def canonical_name(name: str, tags) -> str | None:
    """Validate name (already dot-normalised, non-empty) and tags; return `name;k=v...` or None if invalid.

    Tags are de-duplicated by key (last wins, as graphite-web's TaggedSeries.parse) and sorted by their
    `k=v` string (graphite-web's TaggedSeries.format); a `name=` tag is dropped because the name is the name.
    """
    # `;` in a bare name cannot be told apart from a tag separator in the canonical form.
    if ";" in name or not _utf8_ok(name):
        return None
    if not tags:
        return name
    by_key = {}
    for tag in tags:
        if not _tag_ok(tag):
            return None
        by_key[tag[:tag.index("=")]] = tag
    by_key.pop("name", None)
    if not by_key:
        return name
    return name + ";" + ";".join(sorted(by_key.values()))


def _validate(key) -> tuple | str:
    """Full check of one metric's identity fields, in metrictank's Validate() order.

    `key` is (Name, Tags, Interval, Unit, Mtype) as decoded; None means JSON null / absent (Go keeps the zero
    value). Returns (canonical name, interval, unit, mtype) or the error string.
    """
    name, tags, interval, unit, mtype = key
    name = "" if name is None else name
    unit = "" if unit is None else unit
    mtype = "" if mtype is None else mtype
    interval = 0 if interval is None else interval
    tags = () if tags is None else tags
    # Wrong types are decode errors in Go; here they make only this metric invalid.
    if name.__class__ is not str or unit.__class__ is not str or mtype.__class__ is not str:
        return ERR_INPUT
    if tags.__class__ is not tuple:
        return ERR_INPUT
    if interval.__class__ is float:
        if not interval.is_integer():
            return ERR_INPUT
        interval = int(interval)
    elif interval.__class__ is not int:     # bool included: JSON `true` is not an interval
        return ERR_INPUT
    if interval == 0:
        return ERR_INTERVAL_ZERO
    if not _INT32_MIN <= interval <= _INT32_MAX:
        return ERR_INPUT
    name = _eat_dots(name)
    if not name:
        return ERR_NAME_EMPTY
    if not mtype:
        mtype = "gauge"
    elif mtype not in MTYPES:
        return ERR_MTYPE
    canon = canonical_name(name, tags)
    if canon is None or not _utf8_ok(unit):
        return ERR_INPUT
    return (canon, int(interval), unit, mtype)


# Validation results keyed on (Name, Tags, Interval, Unit, Mtype). Bounded: cleared when full, which costs one
# re-validation per series. ~0.5 KiB per entry, so this caps it near 35 MiB.
_CACHE_MAX = 65536
_cache: dict = {}
_INTERVAL = itemgetter(2)


def _lookup(keys: list) -> list:
    """Validation result per key, from the cache or computed (and cached when safe)."""
    get = _cache.get
    try:
        entries = list(map(get, keys))
    except TypeError:                  # an unhashable field (e.g. a map inside Tags): go one by one
        entries = []
        for k in keys:
            try:
                entries.append(get(k))
            except TypeError:
                entries.append(ERR_INPUT)
    # 10 == 10.0 == True hash alike: a key whose interval is not an int must not borrow an int key's entry.
    if not set(map(type, map(_INTERVAL, keys))) <= {int}:
        entries = [e if k[2].__class__ is int else None for k, e in zip(keys, entries)]
    misses = entries.count(None)
    if misses:
        if len(_cache) + misses > _CACHE_MAX:
            _cache.clear()
        for i, e in enumerate(entries):
            if e is None:
                k = keys[i]
                e = entries[i] = _validate(k)
                if k[2].__class__ is int:      # and only those are cached, for the same reason
                    _cache[k] = e
    return entries


# Validation results of rt-metric-binary records keyed on the record's bytes without Value and Time (see
# msgpack_columns). ~0.3 KiB per entry with its key: bounded near 40 MiB, cleared when full like _cache.
_RECORD_CACHE_MAX = 131072
_record_cache: dict = {}
# The columnar reader has a fixed cost of ~0.25 ms; below ~200 metrics msgpack is cheaper (measured).
_COLUMNS_MIN_RECORDS = 200


# ---------------------------------------------------------------------------------------------------------
# Field extraction

_MSGPACK_FIELDS = {"Name": 0, "Tags": 1, "Interval": 2, "Unit": 3, "Mtype": 4, "Time": 5, "Value": 6}
_JSON_FIELDS = {"name": 0, "tags": 1, "interval": 2, "unit": 3, "mtype": 4, "time": 5, "value": 6}
# Lower-case keys whose presence keeps a JSON object on the fast path (`id`, `org_id`, `metric` are ignored).
_JSON_FAST_KEYS = frozenset(_JSON_FIELDS) | {"id", "org_id", "metric"}
_MSGPACK_KEY = itemgetter("Name", "Tags", "Interval", "Unit", "Mtype")
_MSGPACK_TIME = itemgetter("Time")
_MSGPACK_VALUE = itemgetter("Value")
_E0, _E1, _E2, _E3 = (itemgetter(i) for i in range(4))    # fields of a validated entry


def _fields_msgpack(d: dict) -> list:
    """Slow path for one msgpack map: missing keys keep Go's zero value; bin (bytes) keys are allowed."""
    out = ["", (), 0, "", "", 0, 0.0]
    for k, v in d.items():
        if k.__class__ is bytes:
            k = k.decode("utf-8", "surrogateescape")
        i = _MSGPACK_FIELDS.get(k)
        if i is not None:
            out[i] = v
    return out


def _fields_json(d: dict) -> list:
    """One JSON object, Go-style: exact or case-insensitive key match, later keys win, null keeps the zero."""
    out = [None, None, None, None, None, None, None]
    for k, v in d.items():
        i = _JSON_FIELDS.get(k)
        if i is None:
            i = _JSON_FIELDS.get(k.lower())
            if i is None:
                continue
        if v is not None:
            out[i] = v
    if out[1].__class__ is list:
        out[1] = tuple(out[1])
    return out


# ---------------------------------------------------------------------------------------------------------
# Decoding

def decode_metrics(body: bytes, content_type: str | None, max_decompressed: int = 64 << 20) -> IngestBatch:
    """Decode and validate one `POST /metrics` body. Raises IngestError for a body that cannot be used."""
    ct = (content_type or "").strip().lower()
    if not ct:
        raise IngestError("missing content-type: use application/json, rt-metric-binary or "
                          "rt-metric-binary-snappy")
    if ct == CONTENT_TYPE_SNAPPY:
        kind = "snappy"
    elif ct == CONTENT_TYPE_BINARY:
        kind = "binary"
    # metrictank compares the whole header, so `application/json; charset=utf-8` is refused there. Clients
    # (curl, requests, fetch) add such parameters routinely and JSON is UTF-8 anyway, so we accept parameters
    # after `;` for application/json only; the binary types stay exact.
    elif ct == CONTENT_TYPE_JSON or ct.split(";", 1)[0].rstrip() == CONTENT_TYPE_JSON:
        kind = "json"
    else:
        raise IngestError(f"unknown content-type: {content_type.strip()}")
    if not body:
        raise IngestError("no data included in request")
    if kind == "json":
        return _decode_json(body)
    if kind == "snappy":
        body = unframe_snappy(body, max_decompressed)
    return _decode_binary(body)


def _decode_binary(body: bytes) -> IngestBatch:
    if len(body) < 9:
        raise IngestError(f"rt-metric-binary body too small: {len(body)} bytes, need at least 9 "
                          "(1 format byte + 8-byte id)")
    fmt = body[0]
    if fmt == FORMAT_MSGPACK:
        columns = read_columns(body, 9, _COLUMNS_MIN_RECORDS)
        if columns is not None:
            return _assemble_columns(memoryview(body)[9:], columns)
        return _decode_msgpack(body[9:])
    if fmt == FORMAT_JSON:
        return _decode_json(body[9:])
    raise IngestError(f"unsupported format {fmt}: rt-metric-binary format byte must be 1 (msgpack) or 0 (JSON)")


def _decode_msgpack(payload: bytes) -> IngestBatch:
    try:
        metrics = _unpack(payload)
    except msgpack.ExtraData:
        raise IngestError("invalid msgpack payload: trailing bytes after the array of metrics") from None
    except (ValueError, msgpack.UnpackException, TypeError) as e:
        raise IngestError(f"invalid msgpack payload: {e or type(e).__name__}") from None
    if metrics.__class__ is not tuple:
        raise IngestError(f"msgpack payload must be an array of maps, got {type(metrics).__name__}")
    if metrics and set(map(type, metrics)) != {dict}:
        i = next(i for i, m in enumerate(metrics) if m.__class__ is not dict)
        raise IngestError(f"msgpack payload must be an array of maps: element {i} is "
                          f"{type(metrics[i]).__name__}")
    keys = _map_keys(metrics)
    try:
        times = list(map(_MSGPACK_TIME, metrics))
        values = list(map(_MSGPACK_VALUE, metrics))
    except KeyError:                  # some map lacks Time or Value (or has bin keys): Go's zero values
        fields = list(map(_fields_msgpack, metrics))
        times = [f[5] for f in fields]
        values = [f[6] for f in fields]
    if values and set(map(type, values)) != {float}:
        i = next(i for i, v in enumerate(values) if v.__class__ is not float)
        kind = "an integer" if isinstance(values[i], int) else f"a {type(values[i]).__name__}"
        raise IngestError(f"metric {i}: msgpack Value is {kind}, not a float; the whole payload is rejected "
                          "(as metrictank does): encode every Value as a float64 or float32, e.g. 1.0 not 1")
    return _assemble(keys, times, values, json=False)


def _decode_json(payload: bytes) -> IngestBatch:
    try:
        metrics = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise IngestError(f"unable to parse request body: {e}") from None
    if metrics.__class__ is not list:
        raise IngestError(f"unable to parse request body: expected a JSON array of metric objects, got "
                          f"{_json_kind(metrics)}")
    keys, times, values = [], [], []
    fast = _JSON_FAST_KEYS
    for i, d in enumerate(metrics):
        if d.__class__ is not dict:
            raise IngestError(f"unable to parse request body: element {i} is {_json_kind(d)}, not an object")
        if d.keys() <= fast:
            tags = d.get("tags")
            keys.append((d.get("name"), tuple(tags) if tags.__class__ is list else tags, d.get("interval"),
                         d.get("unit"), d.get("mtype")))
            times.append(d.get("time"))
            values.append(d.get("value"))
        else:
            f = _fields_json(d)
            keys.append((f[0], f[1], f[2], f[3], f[4]))
            times.append(f[5])
            values.append(f[6])
    return _assemble(keys, times, values, json=True)


def _json_kind(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number")


def _fix_times(times: list, entries: list) -> None:
    """Coerce times in place to ints; a time that is not a number makes its metric `invalid input`.

    Floats are truncated (Go would refuse them; a JavaScript client sending Date.now()/1000 expects them to
    work). Absent or null time is 0, as in Go.
    """
    for i, t in enumerate(times):
        if t.__class__ is int and _INT64_MIN <= t <= _INT64_MAX:
            continue
        if t is None:
            times[i] = 0
        elif t.__class__ is float and math.isfinite(t) and _INT64_MIN <= t < _INT64_MAX:
            times[i] = int(t)
        else:
            times[i] = 0
            if entries[i].__class__ is tuple:
                entries[i] = ERR_INPUT


def _fix_json_values(values: list, entries: list) -> None:
    """JSON numbers (int or float) are fine; null/absent is 0 as in Go; anything else is `invalid input`."""
    for i, v in enumerate(values):
        c = v.__class__
        if c is float:
            continue
        if c is int:
            values[i] = float(v)
        elif v is None:
            values[i] = 0.0
        else:
            values[i] = 0.0
            if entries[i].__class__ is tuple:
                entries[i] = ERR_INPUT


def _assemble(keys: list, times: list, values: list, json: bool) -> IngestBatch:
    entries = _lookup(keys)
    if times and not set(map(type, times)) <= {int}:
        _fix_times(times, entries)
    try:
        ts = np.array(times, dtype=np.int64)
    except OverflowError:             # an int beyond int64
        _fix_times(times, entries)
        ts = np.array(times, dtype=np.int64)
    if json and values and set(map(type, values)) != {float}:
        _fix_json_values(values, entries)
    return _batch(entries, ts, np.array(values, dtype=np.float64))


def _assemble_columns(payload: memoryview, columns) -> IngestBatch:
    """Batch from `read_columns`: validation results come from a cache keyed on each record's identity
    bytes, so a known series costs one dict lookup and no decoding of its fields. Unknown records are decoded
    by msgpack (record by record, or the whole payload at once when most are unknown) and validated."""
    identities = columns.identities
    entries = list(map(_record_cache.get, identities))
    if None in entries:
        missed = [i for i, e in enumerate(entries) if e is None]
        if 2 * len(missed) > len(entries):
            maps = _unpack(payload)
            maps = [maps[i] for i in missed]
        else:
            starts, ends = columns.starts, columns.ends
            maps = [_unpack(payload[starts[i]:ends[i]]) for i in missed]
        if len(_record_cache) + len(missed) > _RECORD_CACHE_MAX:
            _record_cache.clear()
        for i, e in zip(missed, _lookup(_map_keys(maps))):
            entries[i] = _record_cache[identities[i]] = e
    return _batch(entries, columns.times, columns.values)


def _unpack(data):
    # surrogateescape keeps invalid UTF-8 per metric (-> `invalid input`) instead of failing the request.
    return msgpack.unpackb(data, raw=False, use_list=False, unicode_errors="surrogateescape")


def _map_keys(maps: list) -> list:
    """Validation keys (Name, Tags, Interval, Unit, Mtype) of decoded maps; absent fields take Go's zero value."""
    try:
        return list(map(_MSGPACK_KEY, maps))
    except KeyError:                  # some map lacks a field (or has bin keys): extract one by one
        return [tuple(_fields_msgpack(d)[:5]) for d in maps]


def _batch(entries: list, ts: np.ndarray, vals: np.ndarray) -> IngestBatch:
    """The batch of the valid entries (validation tuples), with the invalid ones counted by error."""
    errors: dict = {}
    invalid = 0
    if entries and set(map(type, entries)) != {tuple}:
        good = []
        for i, e in enumerate(entries):
            if e.__class__ is str:
                _record(errors, e, i)
            else:
                good.append(i)
        invalid = len(entries) - len(good)
        entries = [entries[i] for i in good]
        idx = np.array(good, dtype=np.intp)
        ts, vals = ts[idx], vals[idx]
    if not entries:
        batch = IngestBatch.empty()
        batch.invalid, batch.validation_errors = invalid, errors
        return batch
    return IngestBatch(list(map(_E0, entries)), ts, vals, np.array(list(map(_E1, entries)), dtype=np.int32),
                       list(map(_E2, entries)), list(map(_E3, entries)), invalid, errors)


# ---------------------------------------------------------------------------------------------------------
# Snappy framing format (github.com/golang/snappy NewReader/NewWriter; google/snappy framing_format.txt)

_STREAM_ID = b"\xff\x06\x00\x00sNaPpY"
_MAX_BLOCK = 65536                     # uncompressed bytes per chunk


def _masked_crc(data: bytes) -> int:
    c = google_crc32c.value(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def unframe_snappy(body: bytes, max_decompressed: int = 64 << 20) -> bytes:
    """Decode a framed snappy stream, verifying CRCs; stops before the output would exceed max_decompressed."""
    if not body.startswith(_STREAM_ID):
        if body[:1] == b"\xff":
            raise IngestError("invalid snappy stream: bad stream identifier chunk")
        raise IngestError("invalid snappy stream: it must start with the stream identifier "
                          "ff 06 00 00 73 4e 61 50 70 59 (the framing format; raw block snappy is not accepted)")
    n = len(body)
    pos = 0
    total = 0
    out = []
    decompress = cramjam.snappy.decompress_raw
    declared_len = cramjam.snappy.decompress_raw_len
    while pos < n:
        if pos + 4 > n:
            raise IngestError(f"invalid snappy stream: truncated chunk header at offset {pos}")
        ctype = body[pos]
        clen = body[pos + 1] | body[pos + 2] << 8 | body[pos + 3] << 16
        start = pos + 4
        end = start + clen
        if end > n:
            raise IngestError(f"invalid snappy stream: chunk at offset {pos} needs {clen} bytes, "
                              f"only {n - start} left (truncated body)")
        if ctype == 0x00 or ctype == 0x01:
            if clen < 4:
                raise IngestError(f"invalid snappy stream: chunk at offset {pos} is too short for its checksum")
            crc = int.from_bytes(body[start:start + 4], "little")
            data = body[start + 4:end]
            if ctype == 0x00:
                try:
                    size = declared_len(data) if data else -1
                except cramjam.DecompressionError:
                    size = -1
                if size < 0 or size > _MAX_BLOCK:
                    raise IngestError(f"invalid snappy stream: corrupt compressed chunk at offset {pos}")
                if total + size > max_decompressed:
                    raise IngestError(f"decompressed body exceeds the limit of {max_decompressed} bytes")
                try:
                    data = bytes(decompress(data))
                except cramjam.DecompressionError as e:
                    raise IngestError(f"invalid snappy stream: chunk at offset {pos}: {e}") from None
            else:
                if len(data) > _MAX_BLOCK:
                    raise IngestError(f"invalid snappy stream: uncompressed chunk at offset {pos} is larger "
                                      f"than {_MAX_BLOCK} bytes")
                if total + len(data) > max_decompressed:
                    raise IngestError(f"decompressed body exceeds the limit of {max_decompressed} bytes")
            if _masked_crc(data) != crc:
                raise IngestError(f"invalid snappy stream: checksum mismatch in chunk at offset {pos}")
            total += len(data)
            out.append(data)
        elif ctype == 0xFF:
            # Repeated identifiers are legal (concatenated streams) but must be intact.
            if body[pos:end] != _STREAM_ID:
                raise IngestError(f"invalid snappy stream: bad stream identifier chunk at offset {pos}")
        elif ctype < 0x80:
            raise IngestError(f"invalid snappy stream: reserved unskippable chunk type 0x{ctype:02x} "
                              f"at offset {pos}")
        # 0x80-0xfe: skippable / padding
        pos = end
    return b"".join(out)


def frame_snappy(data: bytes) -> bytes:
    """Framed snappy, as golang/snappy's Writer emits: identifier + chunks of <= 64 KiB with masked CRC-32C."""
    return bytes(cramjam.snappy.compress(data))


# ---------------------------------------------------------------------------------------------------------
# Encoding (tests, benchmarks and clients): exactly what carbon-relay-ng sends

def metric_id(org_id: int, name: str, unit: str, mtype: str, interval: int, tags) -> str:
    """metrictank's MetricData id: md5 over name, unit, mtype, interval and the sorted tags, NUL-separated."""
    parts = [name, unit, mtype, str(interval), *sorted(tags)]
    return f"{org_id}.{hashlib.md5(chr(0).join(parts).encode()).hexdigest()}"


def _get(m: dict, key: str, default):
    v = m.get(key.lower(), m.get(key, default))
    return default if v is None else v


def _camel(m: dict) -> dict:
    name = _get(m, "Name", "")
    interval = int(_get(m, "Interval", 0))
    unit = _get(m, "Unit", "unknown")
    mtype = _get(m, "Mtype", "gauge")
    tags = list(_get(m, "Tags", []))
    org = int(m.get("org_id", m.get("OrgId", 1)) or 1)
    mid = m.get("id", m.get("Id")) or metric_id(org, name, unit, mtype, interval, tags)
    # Key order and the float Value are what the Go encoder writes (map header 0x89, float64).
    return {"Id": mid, "OrgId": org, "Name": name, "Interval": interval,
            "Value": float(_get(m, "Value", 0.0)), "Unit": unit, "Time": int(_get(m, "Time", 0)),
            "Mtype": mtype, "Tags": sorted(tags)}


def encode_metrics_binary(metrics: list[dict], fmt: int = FORMAT_MSGPACK, msg_id: int = 0) -> bytes:
    """`rt-metric-binary` body. Input dicts use JSON (lower-case) or Go (CamelCase) keys; unit defaults to
    `unknown` and mtype to `gauge` as carbon-relay-ng sets them."""
    full = [_camel(m) for m in metrics]
    if fmt == FORMAT_MSGPACK:
        payload = msgpack.packb(full, use_bin_type=True)
    elif fmt == FORMAT_JSON:
        payload = orjson.dumps([{"id": m["Id"], "org_id": m["OrgId"], "name": m["Name"],
                                 "interval": m["Interval"], "value": m["Value"], "unit": m["Unit"],
                                 "time": m["Time"], "mtype": m["Mtype"], "tags": m["Tags"]} for m in full])
    else:
        raise ValueError(f"unsupported format {fmt}")
    return bytes((fmt,)) + msg_id.to_bytes(8, "big", signed=True) + payload


def encode_metrics_snappy(metrics: list[dict], msg_id: int = 0) -> bytes:
    """`rt-metric-binary-snappy` body: framed snappy around the msgpack binary body."""
    return frame_snappy(encode_metrics_binary(metrics, FORMAT_MSGPACK, msg_id))
