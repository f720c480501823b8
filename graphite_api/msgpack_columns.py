"""Vectorised reading of an rt-metric-binary msgpack payload: an array of maps that share one key layout.

carbon-relay-ng (and every Go client using metrictank's schema package) writes each MetricData as the same
9-key map in struct order, so a batch is thousands of records with one shape. Instead of building a dict per
metric, `read_columns` parses all records at once, one map entry at a time across every record, with numpy:

1. guess where records start, from the byte pattern of the first record's map header and first key;
2. parse every guessed record in parallel (keys must be identical across records; values are skipped by type);
3. prove the guess: each record must end exactly where the next one starts, the first starts right after the
   array header and the last ends at the end of the payload. msgpack is read strictly left to right, so a
   chain that holds is the parse msgpack itself would make.

Anything else (another layout, a nested map, an integer Value, trailing bytes, truncation) returns None and the
caller decodes with msgpack, which gives the exact error or the per-field semantics. The result carries the
Value and Time columns, and per record one `bytes` holding its identity: the record with its Value and Time
cleared, which callers use as a cache key for validation (equal keys mean equal Id, Name, Tags, Interval,
Unit, Mtype and any other field).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Columns", "read_columns"]

# Total size (header + payload) of the fixed-size elements, by first byte; 0 = variable size or not a scalar.
_FIXED = np.zeros(256, np.int64)
_FIXED[0x00:0x80] = 1                          # positive fixint
_FIXED[0xe0:0x100] = 1                         # negative fixint
_FIXED[0xa0:0xc0] = 1 + np.arange(32)          # fixstr
_FIXED[[0xc0, 0xc2, 0xc3]] = 1                 # nil, false, true
_FIXED[[0xca, 0xcb]] = [5, 9]                  # float32, float64
_FIXED[0xcc:0xd0] = [2, 3, 5, 9]               # uint8..uint64
_FIXED[0xd0:0xd4] = [2, 3, 5, 9]               # int8..int64
# Width of the big-endian length prefix of str8/16/32 and bin8/16/32.
_LEN_WIDTH = np.zeros(256, np.int64)
_LEN_WIDTH[[0xd9, 0xc4]] = 1
_LEN_WIDTH[[0xda, 0xc5]] = 2
_LEN_WIDTH[[0xdb, 0xc6]] = 4
_PAD = 16                                      # zero bytes after the payload, so 8-byte reads stay in bounds
_MAX_ARRAY_ITEMS = 64                          # longer Tags arrays: left to msgpack
_CLEARED = np.uint64(0xc1 << 56)               # 0xc1 is never a msgpack byte: marks a cleared element


@dataclass
class Columns:
    values: np.ndarray          # float64
    times: np.ndarray           # int64
    identities: list            # bytes per record: the record with its Value and Time elements cleared
    starts: list                # record offsets in the payload (to decode a record on a cache miss)
    ends: list


class _Unsupported(Exception):
    """Not the shape this reader handles: the caller falls back to msgpack."""


class _Payload:
    """A writable copy of data[start:] padded with zeros, as bytes and as big-endian 64-bit words starting at
    every byte offset (an overlapping strided view), so reading 8 bytes at 5,000 offsets is one 1-D gather."""

    def __init__(self, data, start: int):
        self.size = len(data) - start
        padded = bytearray(self.size + _PAD)
        padded[:self.size] = memoryview(data)[start:]
        self.bytes = np.frombuffer(padded, np.uint8)
        self.words = np.ndarray((len(padded) - 7,), dtype=">u8", buffer=padded, strides=(1,))
        self.floats = np.ndarray((len(padded) - 7,), dtype=">f8", buffer=padded, strides=(1,))

    def uint(self, at: np.ndarray, width) -> np.ndarray:
        """Unsigned big-endian integers of `width` bytes (1-8, scalar or per element) at `at`."""
        return self.words[at].astype(np.uint64) >> (8 * (8 - np.asarray(width, dtype=np.uint64)))

    def same_bytes(self, at: np.ndarray, n: int) -> bool:
        """Whether the n bytes at every offset in `at` are the bytes at at[0]."""
        for off in range(0, n, 8):
            w = self.uint(at + off, min(8, n - off))
            if not (w == w[0]).all():
                return False
        return True


def _count(buf: np.ndarray, pos: int, fix_lo: int, fix_hi: int, wide16: int, wide32: int):
    """(count, header bytes) of the array or map header at pos; raises _Unsupported for anything else."""
    h = int(buf[pos])
    if fix_lo <= h <= fix_hi:
        return h - fix_lo, 1
    if h == wide16:
        return int.from_bytes(bytes(buf[pos + 1:pos + 3]), "big"), 3
    if h == wide32:
        return int.from_bytes(bytes(buf[pos + 1:pos + 5]), "big"), 5
    raise _Unsupported


def _skip_scalars(p: _Payload, pos: np.ndarray) -> np.ndarray:
    """Positions after one scalar element (nil, bool, int, float, str, bin) at each of pos."""
    h = p.bytes[pos]
    size = _FIXED[h]
    var = size == 0
    if var.any():
        width = _LEN_WIDTH[h[var]]
        if not width.all():                    # array, map, ext or the never-used 0xc1
            raise _Unsupported
        size[var] = 1 + width + p.uint(pos[var] + 1, width).astype(np.int64)
    out = pos + size
    if out.max() > p.size:                     # truncated, or a length beyond the payload
        raise _Unsupported
    return out


def _skip_value(p: _Payload, pos: np.ndarray) -> np.ndarray:
    """Positions after one element that is a scalar or an array of scalars (Tags)."""
    h = p.bytes[pos]
    fixarray = (h & 0xf0) == 0x90
    arrays = fixarray | (h == 0xdc) | (h == 0xdd)
    if not arrays.any():
        return _skip_scalars(p, pos)
    out = pos.copy()
    scalars = ~arrays
    if scalars.any():
        out[scalars] = _skip_scalars(p, pos[scalars])
    at, ha = pos[arrays], h[arrays]
    count = (ha & 0x0f).astype(np.int64)
    head = np.ones(len(at), np.int64)
    if not fixarray[arrays].all():
        for marker, width in ((0xdc, 2), (0xdd, 4)):
            wide = ha == marker
            count[wide] = p.uint(at[wide] + 1, width).astype(np.int64)
            head[wide] = 1 + width
    if count.max() > _MAX_ARRAY_ITEMS:
        raise _Unsupported
    at = at + head
    if at.max() > p.size:
        raise _Unsupported
    for item in range(int(count.max())):
        more = count > item
        at[more] = _skip_scalars(p, at[more])
    out[arrays] = at
    return out


def _ints(p: _Payload, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, element sizes) of msgpack integers at pos; raises _Unsupported for non-integers and for uint64
    values beyond int64 (msgpack's path makes those metrics invalid)."""
    h = p.bytes[pos].astype(np.int64)
    size = _FIXED[h]
    fix = (h < 0x80) | (h >= 0xe0)
    out = np.where(h >= 0xe0, h - 256, h)
    if fix.all():
        return out, size
    wide = ~fix
    hw = h[wide]
    if not ((hw >= 0xcc) & (hw <= 0xd3)).all():
        raise _Unsupported
    shift = (8 * (9 - size[wide])).astype(np.uint64)
    word = p.words[pos[wide] + 1].astype(np.uint64)
    unsigned = hw <= 0xcf
    if (unsigned & (shift == 0) & (word >= np.uint64(1 << 63))).any():
        raise _Unsupported
    out[wide] = np.where(unsigned, (word >> shift).view(np.int64),
                         word.view(np.int64) >> shift.view(np.int64))      # arithmetic shift keeps the sign
    return out, size


def _floats(p: _Payload, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, element sizes) of float64 (0xcb) or float32 (0xca) elements at pos; raises _Unsupported for
    anything else (an integer Value is an error msgpack's path names)."""
    h = p.bytes[pos]
    f64 = h == 0xcb
    if f64.all():
        return p.floats[pos + 1].astype(np.float64), np.full(len(pos), 9, np.int64)
    if not (f64 | (h == 0xca)).all():
        raise _Unsupported
    f32 = (p.words[pos + 1] >> np.uint64(32)).astype(np.uint32).view(np.float32)
    return np.where(f64, p.floats[pos + 1], f32).astype(np.float64), np.where(f64, 9, 5)


def _find_records(p: _Payload, first: int, count: int) -> np.ndarray:
    """Offsets where the first record's map header and first key occur: the guess `read_columns` proves."""
    buf = p.bytes
    n = 2 + (int(buf[first + 1]) & 0x1f)
    if not 0xa0 <= buf[first + 1] <= 0xbf or n > 8:     # the first key: a fixstr of up to 6 bytes
        raise _Unsupported
    cand = np.flatnonzero(buf[:p.size] == buf[first])
    cand = cand[p.uint(cand, n) == p.uint(np.array([first]), n)[0]]
    if len(cand) != count or cand[0] != first:
        raise _Unsupported
    return cand


def _clear(p: _Payload, pos: np.ndarray, size: np.ndarray) -> None:
    """Overwrite the elements at pos (sizes 1..9) with 0xc1 and zeros, in place."""
    words = p.words
    long = size == 9
    if long.any():
        words[pos[long]] = _CLEARED
        p.bytes[pos[long] + 8] = 0
    short = ~long
    if short.any():
        at = pos[short]
        keep = (np.uint64(1) << (8 * (8 - size[short])).astype(np.uint64)) - np.uint64(1)
        words[at] = (words[at].astype(np.uint64) & keep) | _CLEARED


def read_columns(data, start: int = 0, min_records: int = 1) -> Columns | None:
    """Columns of the payload data[start:], an array of at least `min_records` maps that share one key layout
    with float `Value` and integer `Time` keys; None when it is anything else (the caller then uses msgpack).
    Record offsets in the result count from `start`."""
    try:
        count, first = _count(memoryview(data)[start:start + 5], 0, 0x90, 0x9f, 0xdc, 0xdd)
        if count < max(min_records, 1):
            return None                         # checked before copying the payload
        return _read(_Payload(data, start), count, first)
    except (_Unsupported, IndexError):
        return None


def _read(p: _Payload, count: int, first: int) -> Columns:
    buf = p.bytes
    pairs, map_head = _count(buf, first, 0x80, 0x8f, 0xde, 0xdf)
    starts = _find_records(p, first, count)
    if not p.same_bytes(starts, map_head):
        raise _Unsupported
    pos = starts + map_head
    keys, values, times, cleared = set(), None, None, []
    for _ in range(pairs):
        h = int(buf[pos[0]])
        if not 0xa0 <= h <= 0xbf or not p.same_bytes(pos, 1 + (h & 0x1f)):
            raise _Unsupported                 # every record must have the same fixstr key here
        key = buf[pos[0] + 1:pos[0] + 1 + (h & 0x1f)].tobytes()
        if key in keys:
            raise _Unsupported                 # a repeated key: msgpack's later-wins path decides
        keys.add(key)
        pos = pos + 1 + (h & 0x1f)
        if key == b"Value":
            values, size = _floats(p, pos)
        elif key == b"Time":
            times, size = _ints(p, pos)
        else:
            pos = _skip_value(p, pos)
            continue
        cleared.append((pos, size))
        pos = pos + size
    if values is None or times is None:
        raise _Unsupported                     # a missing field takes Go's zero value: msgpack's path
    if pos[-1] != p.size or not (pos[:-1] == starts[1:]).all():
        raise _Unsupported                     # the guessed records do not chain: not this shape
    for at, size in cleared:                   # the columns are read: clear them to make identities
        _clear(p, at, size)
    whole = buf[:p.size].tobytes()
    starts_list, ends_list = starts.tolist(), pos.tolist()
    identities = [whole[a:b] for a, b in zip(starts_list, ends_list)]
    return Columns(values, times, identities, starts_list, ends_list)
