"""Prometheus remote write (1.0 and 2.0) decoding and remote read encoding (SAMPLES and STREAMED_XOR_CHUNKS).

HTTP-free: functions take bodies and headers and return bodies; `api.py` adapts them to Starlette. Decoding
uses the protobuf upb backend; everything per sample after that is numpy. Remote read writes the protobuf wire
format of samples with numpy directly (a `Sample` message per sample would be a Python object per sample),
and XOR chunks are Gorilla-encoded with numpy bit packing.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import cramjam
import google_crc32c
import numpy as np

from storage.labels import NAME, series_key
from storage.matchers import EQ, NEQ, NRE, RE, BadRegex, Matcher
from storage.querier import Querier

from .metadata import TYPE_NAMES, stores_for
from .proto import remote_pb2, types_pb2, write_v2_pb2

STALE_NAN_BITS = 0x7FF0000000000002
_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"
V1_PROTO, V2_PROTO = "prometheus.WriteRequest", "io.prometheus.write.v2.Request"
SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
HISTOGRAMS_WRITTEN = "X-Prometheus-Remote-Write-Histograms-Written"
EXEMPLARS_WRITTEN = "X-Prometheus-Remote-Write-Exemplars-Written"
STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
MAX_BYTES_IN_FRAME = 1 << 20          # Prometheus' --storage.remote.read-max-bytes-in-frame
READ_SAMPLE_LIMIT = 50_000_000        # --storage.remote.read-sample-limit (SAMPLES responses only)
CHUNK_SAMPLES = 120                   # Prometheus cuts XOR chunks at 120 samples


class RemoteError(Exception):
    """A request that cannot be (fully) honoured; `status` is the HTTP code, the message a plain-text body."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# ---- transport ----------------------------------------------------------------------------------------

def _uvarint_prefix(data: bytes) -> int:
    shift = result = 0
    for i, byte in enumerate(data[:10]):
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result
        shift += 7
    raise RemoteError("snappy: corrupt input (bad length header)")


def snappy_decode(body: bytes, max_bytes: int) -> bytes:
    """Snappy *block* format, as the remote write/read specs require (the framed format is refused)."""
    if body.startswith(_FRAMED_MAGIC):
        raise RemoteError("snappy: framed (stream) format is not supported; remote write uses the block format")
    if not body:
        return b""
    size = _uvarint_prefix(body)
    if size > max_bytes:
        raise RemoteError(f"decompressed body of {size} bytes is over the limit of {max_bytes}", 413)
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:
        raise RemoteError(f"snappy: corrupt input: {exc}") from None


def snappy_encode(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def write_version(content_type: str | None) -> int:
    """1 or 2 from the Content-Type (RW 2.0 negotiation); an empty type is 1.0, as Prometheus does."""
    if not content_type:
        return 1
    parts = [p.strip() for p in content_type.split(";")]
    if parts[0].lower() != "application/x-protobuf":
        raise RemoteError(f"unsupported Content-Type {content_type!r}; expected application/x-protobuf", 415)
    proto = V1_PROTO
    for p in parts[1:]:
        key, _, value = p.partition("=")
        if key.strip().lower() == "proto":
            proto = value.strip().strip('"')
    if proto == V1_PROTO:
        return 1
    if proto == V2_PROTO:
        return 2
    raise RemoteError(f"unsupported remote write protobuf message {proto!r}", 415)


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int, message_cls):
    """Decompress and parse. A missing Content-Encoding is taken as snappy (senders that forget the header),
    falling back to a raw protobuf body when the bytes are not snappy."""
    enc = (content_encoding or "").strip().lower()
    if enc not in ("", "snappy"):
        raise RemoteError(f"unsupported Content-Encoding {content_encoding!r}; expected snappy", 415)
    try:
        raw = snappy_decode(body, max_bytes)
    except RemoteError:
        if enc or body.startswith(_FRAMED_MAGIC):
            raise
        raw = body
    if message_cls is None:   # the caller parses the bytes itself
        return raw
    msg = message_cls()
    try:
        msg.ParseFromString(raw)
    except Exception as exc:
        raise RemoteError(f"cannot decode {message_cls.DESCRIPTOR.full_name} protobuf: {exc}") from None
    return msg


# ---- remote write -------------------------------------------------------------------------------------

@dataclass
class WriteResult:
    samples: int = 0
    histograms: int = 0
    exemplars: int = 0
    metadata: int = 0
    errors: list = field(default_factory=list)

    def headers(self) -> dict:
        return {SAMPLES_WRITTEN: str(self.samples), HISTOGRAMS_WRITTEN: str(self.histograms),
                EXEMPLARS_WRITTEN: str(self.exemplars)}


def label_set(pairs) -> tuple:
    """Validated, sorted label set from (name, value) pairs, or raise ValueError with the reason.

    As Prometheus 2.42: empty values drop the label, unsorted input is sorted. Unlike 2.42 (which answers 500
    and so makes the sender retry a poison batch forever), a repeated name or a missing `__name__` is a 400.
    """
    pairs = [p for p in pairs if p[1]]
    labels = tuple(sorted(pairs))
    prev = None
    for name, _ in labels:
        if name == prev:
            raise ValueError(f"label name {name!r} is not unique")
        if not name:
            raise ValueError("empty label name")
        prev = name
    if not any(n == NAME for n, _ in labels):
        raise ValueError("series has no __name__ label" if labels else "empty label set")
    return labels


# Senders re-send the same series in every request: remember the validated label set and index key of the
# label pairs as received, so a known series costs one dict lookup instead of validation + key building.
_KEY_CACHE: dict[tuple, tuple[tuple, str]] = {}
_KEY_CACHE_MAX = 100_000


def labels_and_key(pairs: list) -> tuple[tuple, str]:
    pairs = tuple(pairs)
    hit = _KEY_CACHE.get(pairs)
    if hit is None:
        labels = label_set(pairs)
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        hit = _KEY_CACHE[pairs] = (labels, series_key(labels))
    return hit


def _fmt_labels(pairs) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in pairs) + "}"


def _store(storage, tenant: str, keys: list, counts: list, ts: np.ndarray, values: np.ndarray) -> int:
    """Write samples of many series at once: one key per series, `counts[i]` samples each, in order."""
    if not keys or not len(ts):
        return 0
    if len(keys) == len(ts):          # the usual shape: one sample per series
        return storage.write(tenant, keys, ts, values)
    storage.limits.take_ingestion(tenant, len(ts))
    sids = storage.resolve(tenant, keys)
    count = getattr(storage, "_count_ingest", None)
    if count is not None:
        count(tenant, len(ts))
    return storage.write_ids(np.repeat(sids, np.asarray(counts, dtype=np.int64)), ts, values)


def _raw_labels_and_key(raw: tuple) -> tuple[tuple, str]:
    """labels_and_key for a tuple of encoded Label messages (TimeSeriesLazy.labels), cached by those bytes."""
    hit = _KEY_CACHE.get(raw)
    if hit is None:
        pairs = [(lb.name, lb.value) for lb in map(types_pb2.Label.FromString, raw)]
        try:
            labels = label_set(pairs)
        except ValueError as exc:
            raise ValueError(f"{exc} in {_fmt_labels(pairs)}") from None
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        hit = _KEY_CACHE[raw] = (labels, series_key(labels))
    return hit


def _label_prefix_end(b: bytes) -> int:
    """End of the leading run of label fields (tag 1) of an encoded TimeSeries."""
    pos, n = 0, len(b)
    while pos < n and b[pos] == 0x0A:
        ln = b[pos + 1] if pos + 1 < n else 0
        if ln < 0x80:
            pos += 2 + ln
            continue
        shift, ln, pos = 0, 0, pos + 1
        while pos < n:
            byte = b[pos]
            pos += 1
            ln |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        pos += ln
    return min(pos, n)


def _varints(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode one varint per row of a uint8 matrix that must fill the row exactly; (values, row is valid)."""
    width = m.shape[1]
    if width == 0 or width > 10:
        return np.zeros(len(m), np.int64), np.zeros(len(m), bool)
    cont = (m & 0x80) != 0
    valid = cont[:, :-1].all(axis=1) & ~cont[:, -1]
    val = np.zeros(len(m), dtype=np.uint64)
    for c in range(width):
        val |= (m[:, c] & 0x7F).astype(np.uint64) << np.uint64(7 * c)
    return val.view(np.int64), valid


def _single_samples(rests: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise decode of series bodies that are exactly one `samples` field (the shape Prometheus sends):
    `12 len [09 <double>] [10 <varint ts>]` (proto3 leaves out a zero value or timestamp). Returns
    (ts, values, ok); rows that are not in one of these layouts have ok=False."""
    k = len(rests)
    ts = np.zeros(k, np.int64)
    vals = np.zeros(k, np.float64)
    ok = np.zeros(k, bool)
    lengths = np.fromiter(map(len, rests), dtype=np.int64, count=k)
    for L in np.unique(lengths).tolist():
        rows = np.nonzero(lengths == L)[0]
        m = np.frombuffer(b"".join([rests[i] for i in rows.tolist()]), dtype=np.uint8).reshape(len(rows), L)
        _decode_records(m, rows, ts, vals, ok)
    return ts, vals, ok


def _uniform_samples(rest: bytes) -> int:
    """Record width when `rest` (a series body after its labels) is two or more `samples` fields of one short
    length, `12 L ...` each (L < 128: what a sender writes for samples whose timestamps have one varint
    width); else 0. Such a run is decoded column-wise like single samples."""
    n = len(rest)
    if n < 4 or rest[0] != 0x12 or rest[1] >= 0x80:
        return 0
    w = 2 + rest[1]
    if n % w or n == w:
        return 0
    k = n // w
    if rest[::w] != b"\x12" * k or rest[1::w] != rest[1:2] * k:
        return 0
    return w


def _multi_samples(rests: list[bytes], widths: list[int]) -> list[tuple]:
    """Decode series bodies accepted by _uniform_samples, grouped by record width: a list of
    (indices into rests, samples per series, ts, values, series_ok); a series is not ok when one of its
    records is in an unusual layout (protobuf must read it)."""
    groups = []
    by_width: dict[int, list[int]] = {}
    for i, w in enumerate(widths):
        by_width.setdefault(w, []).append(i)
    for w, idx in by_width.items():
        counts = np.fromiter((len(rests[i]) // w for i in idx), np.int64, len(idx))
        m = np.frombuffer(b"".join([rests[i] for i in idx]), dtype=np.uint8).reshape(-1, w)
        n = len(m)
        ts, vals, ok = np.zeros(n, np.int64), np.zeros(n, np.float64), np.zeros(n, bool)
        _decode_records(m, np.arange(n), ts, vals, ok)
        series_ok = np.logical_and.reduceat(ok, np.cumsum(counts) - counts)
        groups.append((np.asarray(idx, np.int64), counts, ts, vals, series_ok))
    return groups


def _decode_records(m: np.ndarray, rows: np.ndarray, ts, vals, ok) -> None:
    """Decode a matrix of same-length `samples` fields (`12 len ...`, one per row) into ts/vals/ok at `rows`."""
    L = m.shape[1]
    if L == 2:                                         # empty sample: value 0 at t=0
        ok[rows] = True
        return
    full = (m[:, 2] == 0x09) & (m[:, 11] == 0x10) if L >= 13 else np.zeros(len(rows), bool)
    if full.any():
        t, valid = _varints(m[full, 12:])
        sel = rows[full][valid]
        ts[sel] = t[valid]
        vals[sel] = np.ascontiguousarray(m[full, 3:11][valid]).view("<f8").ravel()
        ok[sel] = True
    if L == 11:                                        # value only (t = 0)
        vonly = m[:, 2] == 0x09
        sel = rows[vonly]
        vals[sel] = np.ascontiguousarray(m[vonly, 3:11]).view("<f8").ravel()
        ok[sel] = True
    tonly = (m[:, 2] == 0x10) & ~full                  # value 0.0 left out
    if tonly.any():
        t, valid = _varints(m[tonly, 3:])
        sel = rows[tonly][valid]
        ts[sel] = t[valid]
        ok[sel] = True


def _known_series(series):
    """The steady state of a Prometheus sender, all at C speed: every series is a cached (validated) label run
    followed by the same number k of samples `12 10 09 <8> 10 <6-byte ts>` (18 bytes each). k comes from the
    first series. Returns _store's (keys, counts, ts, values), or None when any series is not of that shape
    (the general path then reads the request).

    The split is safe because a cached prefix is a complete run of label fields: protobuf reads it as such,
    and the rest is then exactly the k sample fields checked here."""
    n = len(series)
    if not n:
        return None
    tail = len(series[0]) - _label_prefix_end(series[0])
    if tail < 18 or tail % 18:
        return None
    # A series no longer than `tail` has a prefix of b"" (never cached: a label run is never empty), so the
    # lookups also reject it before its bytes are used as samples.
    hits = list(map(_KEY_CACHE.get, [b[:-tail] for b in series]))
    if None in hits:
        return None
    k = tail // 18
    m = np.frombuffer(b"".join([b[-tail:] for b in series]), dtype=np.uint8).reshape(n * k, 18)
    if not ((m[:, 0] == 0x12) & (m[:, 1] == 0x10) & (m[:, 2] == 0x09) & (m[:, 11] == 0x10)).all():
        return None
    ts, valid = _varints(m[:, 12:])
    if not valid.all():
        return None
    return [h[1] for h in hits], [k] * n, ts, np.ascontiguousarray(m[:, 3:11]).view("<f8").ravel()


def write_v1(storage, tenant: str, raw: bytes) -> WriteResult:
    """Decode and store a `prometheus.WriteRequest` body. Valid series are written even when others are
    invalid; the caller answers 400 when `errors` is non-empty (the spec allows partial ingestion with a 400).

    Fast paths: each series stays bytes (WriteRequestRaw); its leading label fields are the cache key of the
    validated label set. A request of known series with the same number of samples each is handled without a
    per-series Python loop (_known_series); series of one sample, or of several equally long sample fields, are decoded
    column-wise with numpy. Anything else (exemplars, histograms, mixed sample layouts, fields out of order)
    goes through protobuf (TimeSeriesLazy)."""
    try:
        req = remote_pb2.WriteRequestRaw.FromString(raw)
    except Exception as exc:
        raise RemoteError(f"cannot decode prometheus.WriteRequest protobuf: {exc}") from None
    res = WriteResult()
    if not req.metadata:
        known = _known_series(req.timeseries)
        if known is not None:
            res.samples = _store(storage, tenant, *known)
            return res
    keys, counts, single_idx, singles, slow, exemplars, multi = [], [], [], [], [], [], []
    cache = _KEY_CACHE
    for b in req.timeseries:
        # Quickest path: known labels + one sample with a value and a 6-byte varint timestamp (the shape of
        # every sample a sender writes today), `12 10 09 <8> 10 <6>` at the end. The prefix is only trusted
        # when it is a cached, already validated label run, so the split cannot be wrong.
        n = len(b)
        if n > 18 and b[n - 18] == 0x12 and b[n - 17] == 0x10:
            hit = cache.get(b[:n - 18])
            if hit is not None:
                single_idx.append(len(keys))
                singles.append(b[n - 18:])
                keys.append(hit[1])
                counts.append(1)
                continue
        end = _label_prefix_end(b)
        rest = b[end:]
        simple = not rest or (rest[0] == 0x12 and len(rest) == 2 + rest[1])
        width = 0 if simple else _uniform_samples(rest)
        if not simple and not width:
            slow.append((len(keys), b))
            keys.append(None)
            counts.append(0)
            continue
        prefix = b[:end]
        hit = cache.get(prefix)
        if hit is None:
            try:
                hit = _raw_labels_and_key(tuple(remote_pb2.TimeSeriesLazy.FromString(prefix).labels))
            except Exception as exc:
                res.errors.append(str(exc))
                continue
            if len(cache) >= _KEY_CACHE_MAX:
                cache.clear()
            cache[prefix] = hit
        if width:
            multi.append((len(keys), rest, width, b))
            keys.append(hit[1])
            counts.append(len(rest) // width)
        elif rest:
            single_idx.append(len(keys))
            singles.append(rest)
            keys.append(hit[1])
            counts.append(1)
    # Series of several samples in one uniform layout: column-wise too; protobuf for any odd one out.
    multi_groups = []
    if multi:
        multi_pos = np.array([m[0] for m in multi], np.int64)
        for idx, m_counts, m_ts, m_vals, m_ok in _multi_samples([m[1] for m in multi], [m[2] for m in multi]):
            for i in idx[~m_ok].tolist():
                pos, b = multi[i][0], multi[i][3]
                keys[pos] = None
                counts[pos] = 0
                slow.append((pos, b))
            multi_groups.append((multi_pos[idx], m_counts, m_ts, m_vals, m_ok))
    # Series that need protobuf: decode them one by one (still no Python object per sample beyond protobuf's).
    slow_samples = {}
    for pos, b in slow:
        try:
            series = remote_pb2.TimeSeriesLazy.FromString(b)
            labels, key = _raw_labels_and_key(tuple(series.labels))
        except Exception as exc:
            res.errors.append(str(exc))
            continue
        if series.histograms:
            res.errors.append(f"native histograms are not supported ({len(series.histograms)} dropped for "
                              f"{_fmt_labels(labels)})")
        for ex in map(types_pb2.Exemplar.FromString, series.exemplars):
            exemplars.append((labels, tuple(sorted((lb.name, lb.value) for lb in ex.labels)), ex.value, ex.timestamp))
        smp = series.samples
        if smp:
            keys[pos] = key
            counts[pos] = len(smp)
            slow_samples[pos] = (np.fromiter((x.timestamp for x in smp), np.int64, len(smp)),
                                 np.fromiter((x.value for x in smp), np.float64, len(smp)))
    # Assemble all samples in request order (order matters when one series appears twice).
    counts_arr = np.asarray(counts, dtype=np.int64)
    offsets = np.cumsum(counts_arr) - counts_arr
    total = int(counts_arr.sum())
    ts = np.zeros(total, np.int64)
    values = np.zeros(total, np.float64)
    if singles:
        s_ts, s_vals, s_ok = _single_samples(singles)
        for i in np.nonzero(~s_ok)[0].tolist():    # an unusual encoding of the sample: let protobuf read it
            try:
                smp = types_pb2.TimeSeries.FromString(singles[i]).samples[0]
            except Exception as exc:
                raise RemoteError(f"cannot decode prometheus.WriteRequest protobuf: {exc}") from None
            s_ts[i], s_vals[i] = smp.timestamp, smp.value
        at = offsets[np.asarray(single_idx, dtype=np.int64)]
        ts[at] = s_ts
        values[at] = s_vals
    for pos_arr, m_counts, m_ts, m_vals, m_ok in multi_groups:
        rows = np.repeat(m_ok, m_counts)
        c = m_counts[m_ok]
        if len(c):
            intra = np.arange(int(c.sum()), dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
            at = np.repeat(offsets[pos_arr[m_ok]], c) + intra
            ts[at] = m_ts[rows]
            values[at] = m_vals[rows]
    for pos, (t, v) in slow_samples.items():
        ts[offsets[pos]:offsets[pos] + len(t)] = t
        values[offsets[pos]:offsets[pos] + len(t)] = v
    live = [i for i, k in enumerate(keys) if k is not None and counts[i]]
    if len(live) != len(keys):
        keep = np.repeat(np.isin(np.arange(len(keys)), live), counts_arr)
        ts, values = ts[keep], values[keep]
        keys = [keys[i] for i in live]
        counts = [counts[i] for i in live]
    res.samples = _store(storage, tenant, keys, counts, ts, values)
    meta_store, ex_store = stores_for(storage)
    if exemplars:
        ex_store.add(tenant, exemplars)
        res.exemplars = len(exemplars)
    if req.metadata:
        res.metadata = meta_store.update(tenant, [
            (m.metric_family_name, TYPE_NAMES[m.type] if 0 <= m.type < len(TYPE_NAMES) else "unknown", m.help, m.unit)
            for m in req.metadata])
    return res


def write_v2(storage, tenant: str, req) -> WriteResult:
    """Store a decoded `io.prometheus.write.v2.Request` (labels and metadata are refs into `symbols`)."""
    res = WriteResult()
    symbols = list(req.symbols)
    if symbols and symbols[0] != "":
        raise RemoteError("symbols[0] must be the empty string")
    nsym = len(symbols)

    def resolve_refs(refs, what):
        refs = list(refs)
        if len(refs) % 2:
            raise ValueError(f"odd number of {what} label references")
        if refs and max(refs) >= nsym:
            raise ValueError(f"{what} label reference {max(refs)} is outside the symbols table ({nsym} symbols)")
        return [(symbols[refs[i]], symbols[refs[i + 1]]) for i in range(0, len(refs), 2)]

    keys, counts, kept, exemplars, metas = [], [], [], [], []
    for series in req.timeseries:
        try:
            labels, key = labels_and_key(resolve_refs(series.labels_refs, "series"))
        except ValueError as exc:
            res.errors.append(str(exc))
            continue
        if series.samples and series.histograms:
            res.errors.append(f"series {_fmt_labels(labels)} has both samples and histograms")
            continue
        if series.histograms:
            res.errors.append(f"native histograms are not supported ({len(series.histograms)} dropped for "
                              f"{_fmt_labels(labels)})")
        n = len(series.samples)
        if n:
            keys.append(key)
            counts.append(n)
            kept.append(series)
        for ex in series.exemplars:
            try:
                ex_labels = tuple(sorted(resolve_refs(ex.labels_refs, "exemplar")))
            except ValueError as exc:
                res.errors.append(str(exc))
                continue
            exemplars.append((labels, ex_labels, ex.value, ex.timestamp))
        if series.HasField("metadata"):
            md = series.metadata
            if md.help_ref >= nsym or md.unit_ref >= nsym:
                res.errors.append(f"metadata reference outside the symbols table for {_fmt_labels(labels)}")
            elif md.type or md.help_ref or md.unit_ref:
                mtype = TYPE_NAMES[md.type] if 0 <= md.type < len(TYPE_NAMES) else "unknown"
                metas.append((_family(dict(labels)[NAME], mtype), mtype, symbols[md.help_ref], symbols[md.unit_ref]))
    total = sum(counts)
    ts = np.fromiter((s.timestamp for se in kept for s in se.samples), dtype=np.int64, count=total)
    values = np.fromiter((s.value for se in kept for s in se.samples), dtype=np.float64, count=total)
    res.samples = _store(storage, tenant, keys, counts, ts, values)
    meta_store, ex_store = stores_for(storage)
    if exemplars:
        ex_store.add(tenant, exemplars)
        res.exemplars = len(exemplars)
    if metas:
        res.metadata = meta_store.update(tenant, metas)
    return res


def _family(name: str, mtype: str) -> str:
    """RW2 carries metadata per series; /api/v1/metadata is per metric family (`x` for `x_bucket`, ...)."""
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count"),
                "gaugehistogram": ("_bucket", "_gsum", "_gcount")}.get(mtype, ())
    for s in suffixes:
        if name.endswith(s) and len(name) > len(s):
            return name[:-len(s)]
    return name


def handle_write(storage, tenant: str, body: bytes, content_type: str | None, content_encoding: str | None,
                 max_bytes: int = 64 << 20) -> WriteResult:
    """Decode and store one remote write request of either version. Raises RemoteError after storing what
    was valid when some series were not (the answer must then be 400, never 2xx)."""
    version = write_version(content_type)
    if version == 2:
        res = write_v2(storage, tenant, decode_body(body, content_encoding, max_bytes, write_v2_pb2.Request))
    else:
        res = write_v1(storage, tenant, decode_body(body, content_encoding, max_bytes, None))
    res.version = version
    if res.errors:
        more = f" (and {len(res.errors) - 5} more)" if len(res.errors) > 5 else ""
        err = RemoteError("; ".join(res.errors[:5]) + more, 400)
        err.result = res
        raise err
    return res


# ---- remote read ----------------------------------------------------------------------------------------

_MATCH_OPS = {types_pb2.LabelMatcher.EQ: EQ, types_pb2.LabelMatcher.NEQ: NEQ,
              types_pb2.LabelMatcher.RE: RE, types_pb2.LabelMatcher.NRE: NRE}


def to_matchers(pb_matchers) -> list[Matcher]:
    out = []
    for m in pb_matchers:
        op = _MATCH_OPS.get(m.type)
        if op is None:
            raise RemoteError(f"unknown label matcher type {m.type}")
        try:
            out.append(Matcher(m.name, op, m.value, anchor="full"))
        except BadRegex as exc:
            raise RemoteError(str(exc)) from None
    return out


def select(storage, tenants, query) -> list:
    """SeriesData of one remote read query, over one or several tenants, sorted by labels. Hints are advisory
    and ignored: the raw samples in [start, end] (both inclusive) are always returned."""
    matchers = to_matchers(query.matchers)
    if not matchers:
        raise RemoteError("a remote read query needs at least one matcher")
    out = []
    for tenant in tenants:
        out.extend(Querier(storage, tenant).select(matchers, query.start_timestamp_ms, query.end_timestamp_ms))
    out.sort(key=lambda s: s.labels)
    return out


def response_type(req) -> int:
    """The first accepted type we support; none listed means SAMPLES (what 2.42 clients send)."""
    if not req.accepted_response_types:
        return remote_pb2.ReadRequest.SAMPLES
    for t in req.accepted_response_types:
        if t in (remote_pb2.ReadRequest.SAMPLES, remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS):
            return t
    raise RemoteError("server does not support any of the requested response types: "
                      f"{list(req.accepted_response_types)}")


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field_bytes(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _uvarint(len(payload)) + payload


def _bit_length(u: np.ndarray) -> np.ndarray:
    """Number of significant bits of each uint64 (0 for 0), by binary search, exact for all 64 bits."""
    n = np.zeros(len(u), dtype=np.int64)
    y = u.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = y >= np.uint64(1 << s)
        n[big] += s
        y[big] >>= np.uint64(s)
    return n + (u != 0)


def encode_samples(ts: np.ndarray, values: np.ndarray) -> bytes:
    """The `samples` fields (tag 2) of a TimeSeries for all samples, as protobuf wire bytes, vectorised:
    each is `12 len 09 <8-byte double> 10 <varint ts>`; value bits are copied as-is (stale NaNs survive)."""
    n = len(ts)
    if n == 0:
        return b""
    u = np.asarray(ts, dtype=np.int64).view(np.uint64)
    vlen = np.maximum(1, (_bit_length(u) + 6) // 7)
    m = np.zeros((n, 22), dtype=np.uint8)
    m[:, 0] = 0x12
    m[:, 1] = 10 + vlen
    m[:, 2] = 0x09
    m[:, 3:11] = np.ascontiguousarray(values, dtype="<f8").view(np.uint8).reshape(n, 8)
    m[:, 11] = 0x10
    for k in range(10):
        byte = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        m[:, 12 + k] = byte | np.where(k < vlen - 1, 0x80, 0).astype(np.uint8)
    mask = np.arange(22) < (12 + vlen)[:, None]
    return m[mask].tobytes()


def encode_read_response(results: list) -> bytes:
    """ReadResponse wire bytes: one QueryResult per query, each a list of SeriesData."""
    out = []
    for series_list in results:
        qr = []
        for s in series_list:
            head = types_pb2.TimeSeries(labels=[types_pb2.Label(name=k, value=v) for k, v in s.labels])
            qr.append(_field_bytes(0x0A, head.SerializeToString() + encode_samples(s.ts, s.values)))
        out.append(_field_bytes(0x0A, b"".join(qr)))
    return b"".join(out)


# -- Gorilla XOR chunks (Prometheus tsdb/chunkenc/xor.go layout) --

def _pack_bits(values: np.ndarray, widths: np.ndarray) -> bytes:
    """Concatenate the low `width` bits of each value, MSB first, into bytes (zero-padded at the end)."""
    widths = widths.astype(np.int64)
    total = int(widths.sum())
    if total == 0:
        return b""
    starts = np.cumsum(widths) - widths
    rep_v = np.repeat(values.astype(np.uint64), widths)
    pos = np.arange(total, dtype=np.int64) - np.repeat(starts, widths)
    shift = (np.repeat(widths, widths) - 1 - pos).astype(np.uint64)
    return np.packbits(((rep_v >> shift) & np.uint64(1)).astype(np.uint8)).tobytes()


def _clz_ctz(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bl = _bit_length(x)
    low = x & (~x + np.uint64(1))          # lowest set bit
    return 64 - bl, _bit_length(low) - 1


def _varint_fields(bs: bytes) -> list[tuple[int, int]]:
    return [(b, 8) for b in bs]


def encode_xor_chunk(ts: np.ndarray, values: np.ndarray) -> bytes:
    """One XOR chunk: 2-byte big-endian count, then the Gorilla bit stream Prometheus' decoder reads.

    Timestamps use Prometheus' exact delta-of-delta buckets. For values, every non-zero XOR of a chunk is
    written inside ONE leading/trailing window (the union of all of them): the first with the `11` header,
    the rest with the `10` "reuse" control. That is a valid stream for Prometheus' decoder and needs no
    sequential state, so it vectorises; it can cost a few bits per value against Prometheus' own encoder.
    """
    n = len(ts)
    ts = np.asarray(ts, dtype=np.int64)
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    head: list[tuple[int, int]] = []
    t0 = int(ts[0])
    head += _varint_fields(_uvarint(((t0 << 1) ^ (t0 >> 63)) & 0xFFFFFFFFFFFFFFFF))
    head.append((int(bits[0]), 64))
    if n == 1:
        hv, hw = zip(*head)
        return struct.pack(">H", 1) + _pack_bits(np.array(hv, dtype=np.uint64), np.array(hw))
    head += _varint_fields(_uvarint(int(ts[1] - ts[0])))

    xors = bits[1:] ^ bits[:-1]
    nz = xors != 0
    ctrl_v = np.zeros(n - 1, dtype=np.uint64)
    ctrl_w = np.ones(n - 1, dtype=np.int64)
    pay_v = np.zeros(n - 1, dtype=np.uint64)
    pay_w = np.zeros(n - 1, dtype=np.int64)
    if nz.any():
        lead, trail = _clz_ctz(xors[nz])
        lw = min(int(lead.min()), 31)          # the leading count has 5 bits
        tr = int(trail.min())
        sig = 64 - lw - tr
        ctrl_v[nz] = 0b10
        ctrl_w[nz] = 2
        first = int(np.argmax(nz))
        ctrl_v[first] = (0b11 << 11) | (lw << 6) | (sig & 63)   # 64 significant bits are written as 0
        ctrl_w[first] = 13
        pay_v[nz] = xors[nz] >> np.uint64(tr)
        pay_w[nz] = sig

    dod_v = np.zeros(max(n - 2, 0), dtype=np.uint64)
    dod_w = np.ones(max(n - 2, 0), dtype=np.int64)
    ext_v = np.zeros(max(n - 2, 0), dtype=np.uint64)
    ext_w = np.zeros(max(n - 2, 0), dtype=np.int64)
    if n > 2:
        deltas = np.diff(ts)
        dod = deltas[1:] - deltas[:-1]
        du = dod.view(np.uint64)
        for lo, width, prefix, plen in ((-8191, 14, 0b10, 2), (-65535, 17, 0b110, 3), (-524287, 20, 0b1110, 4)):
            sel = (dod != 0) & (dod >= lo) & (dod <= -lo + 1) & (dod_w == 1)
            mask = np.uint64((1 << width) - 1)
            dod_v[sel] = (np.uint64(prefix << width)) | (du[sel] & mask)
            dod_w[sel] = plen + width
        big = (dod != 0) & (dod_w == 1)
        dod_v[big] = 0b1111
        dod_w[big] = 4
        ext_v[big] = du[big]
        ext_w[big] = 64

    # Per sample i >= 1 the stream holds [timestamp fields][value fields]; sample 1's timestamp is the varint
    # already in `head`, so its row carries only its value fields.
    rows_v = np.zeros((n - 1, 4), dtype=np.uint64)
    rows_w = np.zeros((n - 1, 4), dtype=np.int64)
    rows_v[1:, 0], rows_w[1:, 0] = dod_v, dod_w
    rows_v[1:, 1], rows_w[1:, 1] = ext_v, ext_w
    rows_v[:, 2], rows_w[:, 2] = ctrl_v, ctrl_w
    rows_v[:, 3], rows_w[:, 3] = pay_v, pay_w
    hv, hw = zip(*head)
    all_v = np.concatenate([np.array(hv, dtype=np.uint64), rows_v.ravel()])
    all_w = np.concatenate([np.array(hw, dtype=np.int64), rows_w.ravel()])
    return struct.pack(">H", n) + _pack_bits(all_v, all_w)


def decode_xor_chunk(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Decode an XOR chunk (any valid Prometheus stream). Used by tests and tools, not on a hot path."""
    n = struct.unpack(">H", data[:2])[0]
    bitstr = np.unpackbits(np.frombuffer(data[2:], dtype=np.uint8))
    pos = 0

    def read(k):
        nonlocal pos
        v = 0
        for b in bitstr[pos:pos + k]:
            v = (v << 1) | int(b)
        pos += k
        return v

    def read_varint(signed):
        shift = v = 0
        while True:
            b = read(8)
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        return ((v >> 1) ^ -(v & 1)) if signed else v

    ts, vals = [], []
    lead = trail = 0
    t = delta = 0
    vb = 0
    for i in range(n):
        if i == 0:
            t = read_varint(True)
            vb = read(64)
        else:
            if i == 1:
                delta = read_varint(False)
            else:
                dod = 0
                for plen, width in ((1, 0), (2, 14), (3, 17), (4, 20)):
                    if read(1) == 0:
                        if width:
                            dod = read(width)
                            if dod > (1 << (width - 1)):
                                dod -= 1 << width
                        break
                else:
                    dod = read(64)
                    if dod >= 1 << 63:
                        dod -= 1 << 64
                delta += dod
            t += delta
            if read(1):
                if read(1):
                    lead = read(5)
                    sig = read(6) or 64
                    trail = 64 - lead - sig
                sig = 64 - lead - trail
                vb ^= read(sig) << trail
        ts.append(t)
        vals.append(vb)
    return np.array(ts, dtype=np.int64), np.array(vals, dtype=np.uint64).view(np.float64)


def xor_chunks(ts: np.ndarray, values: np.ndarray, per_chunk: int = CHUNK_SAMPLES) -> list:
    """A series as `types_pb2.Chunk`s of at most `per_chunk` samples."""
    out = []
    for lo in range(0, len(ts), per_chunk):
        t, v = ts[lo:lo + per_chunk], values[lo:lo + per_chunk]
        out.append(types_pb2.Chunk(min_time_ms=int(t[0]), max_time_ms=int(t[-1]), type=types_pb2.Chunk.XOR,
                                   data=encode_xor_chunk(t, v)))
    return out


def frame(msg: bytes) -> bytes:
    """A streamed remote read frame: uvarint length, big-endian CRC32-Castagnoli of the message, message."""
    return _uvarint(len(msg)) + struct.pack(">I", google_crc32c.value(msg)) + msg


def stream_chunked(results: list, max_bytes: int = MAX_BYTES_IN_FRAME):
    """Yield ChunkedReadResponse frames: one series per frame, split over several frames when its chunks
    exceed `max_bytes` (as Prometheus does)."""
    for qi, series_list in enumerate(results):
        for s in series_list:
            labels = [types_pb2.Label(name=k, value=v) for k, v in s.labels]
            pending, size = [], 0
            for chunk in xor_chunks(s.ts, s.values):
                pending.append(chunk)
                size += len(chunk.data) + 32
                if size >= max_bytes:
                    yield frame(_chunked_msg(labels, pending, qi))
                    pending, size = [], 0
            if pending:
                yield frame(_chunked_msg(labels, pending, qi))


def _chunked_msg(labels, chunks, qi) -> bytes:
    resp = remote_pb2.ChunkedReadResponse(query_index=qi)
    resp.chunked_series.add(labels=labels, chunks=chunks)
    return resp.SerializeToString()


def handle_read(storage, tenants, body: bytes, content_encoding: str | None, max_bytes: int = 64 << 20):
    """Decode a ReadRequest and run its queries. Returns (content_type, headers, body bytes or frame iterator)."""
    req = decode_body(body, content_encoding, max_bytes, remote_pb2.ReadRequest)
    rtype = response_type(req)
    results = [select(storage, tenants, q) for q in req.queries]
    if rtype == remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS:
        return STREAMED_CONTENT_TYPE, {}, stream_chunked(results)
    total = sum(len(s.ts) for r in results for s in r)
    if total > READ_SAMPLE_LIMIT:
        raise RemoteError(f"exceeded sample limit ({READ_SAMPLE_LIMIT})")
    return "application/x-protobuf", {"Content-Encoding": "snappy"}, snappy_encode(encode_read_response(results))
