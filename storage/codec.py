"""Chunk codec: compact, bit-exact storage of one series' samples (int64 ms timestamps, float64 values).

Every float64 bit pattern survives a round trip (NaN payloads such as the Prometheus stale marker, -0.0, ±inf).
Nothing loops per sample in Python: each step is a numpy array operation, so a chunk costs a few dozen numpy
calls whatever its length.

Layout (varints are LEB128, signed ones zigzag; fixed-width words are little-endian)::

    u8 version (=1) | uvarint n | uvarint ncols | ts section | ncols value sections

    ts section:    u8 mode, svarint first, then
        REGULAR    [uvarint delta]                       (n >= 2: a regular series costs ~10 bytes per chunk)
        DELTA      uvarint g, words(n-1: delta / g)      (g: gcd, 1000 for Graphite seconds)
        DOD        uvarint delta0, uvarint g, words(n-2: zigzag(delta-of-delta / g))
        GRID       uvarint step, words(n-1: zigzag(ts[i] - first - i * step))   (scrape jitter)
    value section: u8 encoding, then
        CONST      8 bytes: the one bit pattern of every sample
        RAW        words(n: float bits)
        XOR        words(n: bits[i] ^ bits[i-1])         (Gorilla's idea, byte-aligned)
        BITDELTA   words(n: zigzag(bits[i] - bits[i-1]))
        INT        u8 order<<4 | k, uvarint n_exc, [words(n_exc: index gaps), words(n_exc: bits)],
                   `order` svarint seeds, uvarint g,
                   words(n-order: zigzag(order-th difference of round(v * 10**k)) / g)
    words(m)       u8 lo<<4 | hi, then for each byte plane lo..hi-1 of the m uint64 words ("shuffle": the
                   high planes of small numbers are absent): uvarint 0 + m raw bytes, or uvarint size +
                   a magicless zstd frame of that size decoding to exactly m bytes

Encoding builds every applicable timestamp mode and value encoding and keeps the smallest. INT applies when
all but a few values are exact decimals with at most MAX_SCALE fractional digits; the few others (NaN stale
markers, a stray full-precision value) are stored verbatim as exceptions.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import zstandard

__all__ = [
    "CodecError", "encode", "decode", "encode_columns", "decode_columns",
    "VERSION", "MAX_SAMPLES", "MAX_COLUMNS",
]

VERSION = 1
MAX_SAMPLES = 10_000_000     # per chunk; a decoder refuses larger declared counts
MAX_COLUMNS = 64
MAX_SCALE = 9                # most decimal digits tried for the INT encoding
ZSTD_LEVEL = 3

_TS_REGULAR, _TS_DELTA, _TS_DOD, _TS_GRID = 0, 1, 2, 3
_V_CONST, _V_RAW, _V_XOR, _V_BITDELTA, _V_INT = 0, 1, 2, 3, 4

_LE_U64 = np.dtype("<u8")
_ONE = np.uint64(1)
# 10**k is exact in float64 for k <= 22, so s / 10**k is the correctly rounded decimal, as a parser makes it.
_POW10 = [float(10 ** k) for k in range(MAX_SCALE + 1)]
_EXC_DIVISOR = 8             # INT tolerates at most n // 8 exceptions
_PROBE = 64                  # values tried first before scaling a whole chunk
_MAX_WINDOW = 1 << 21
_UNKNOWN_SIZE = 2 ** 64 - 1  # zstd's "content size not in the frame header"


class CodecError(ValueError):
    """The blob is not a valid chunk: corrupt, truncated or written by an unknown format version."""


# --- compressor contexts: zstandard objects are not thread-safe, and creating one per call is slow ---------

_tls = threading.local()


def _zcompressor() -> zstandard.ZstdCompressor:
    c = getattr(_tls, "c", None)
    if c is None:
        # Magicless, no checksum, no dict id, no content size: saves ~10 bytes per frame. The reader knows
        # every frame's decoded length from the chunk header, and bounds decoding by it.
        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, format=zstandard.FORMAT_ZSTD1_MAGICLESS,
            write_checksum=0, write_content_size=0, write_dict_id=0)
        c = _tls.c = zstandard.ZstdCompressor(compression_params=params)
    return c


def _zdecompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_tls, "d", None)
    if d is None:
        # Level 3 never needs more than a 2 MiB window; a corrupt frame header may not ask for more memory.
        d = _tls.d = zstandard.ZstdDecompressor(
            format=zstandard.FORMAT_ZSTD1_MAGICLESS, max_window_size=_MAX_WINDOW)
    return d


# --- scalar varints (a handful per chunk) and vectorised zigzag / word packing -----------------------------

def _put_uvarint(out: bytearray, x: int) -> None:
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)


def _put_svarint(out: bytearray, x: int) -> None:
    _put_uvarint(out, (x << 1) ^ (x >> 63))     # x is within int64


def _zigzag(x: np.ndarray) -> np.ndarray:
    """int64 -> uint64 so that small magnitudes of either sign become small words."""
    return (x.view(np.uint64) << _ONE) ^ (x >> 63).view(np.uint64)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    return ((z >> _ONE) ^ (np.uint64(0) - (z & _ONE))).view(np.int64)


def _pack(out: bytearray, words: np.ndarray) -> None:
    """Append uint64 words as their non-zero byte planes, each zstd-compressed when that is smaller.

    Planes are compressed one by one because zstd codes all literals of a block with one Huffman table:
    a random low plane and a skewed high plane sharing a table would both pay for the mix.
    """
    acc = int(np.bitwise_or.reduce(words)) if words.size else 0
    if acc == 0:
        out.append(0)
        return
    lo = ((acc & -acc).bit_length() - 1) >> 3
    hi = (acc.bit_length() + 7) >> 3
    out.append(lo << 4 | hi)
    planes = np.ascontiguousarray(words, dtype=_LE_U64).view(np.uint8).reshape(-1, 8)[:, lo:hi].T
    zc = _zcompressor()
    for plane in planes:
        raw = plane.tobytes()
        packed = zc.compress(raw)
        if len(packed) + 3 < len(raw):
            _put_uvarint(out, len(packed))
            out += packed
        else:
            out.append(0)
            out += raw


class _Reader:
    """Bounds-checked cursor: every read that would pass the end raises CodecError."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def u8(self) -> int:
        if self.pos >= len(self.buf):
            raise CodecError("truncated chunk")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def take(self, k: int) -> bytes:
        end = self.pos + k
        if end > len(self.buf):
            raise CodecError("truncated chunk")
        out = self.buf[self.pos:end]
        self.pos = end
        return out

    def uvarint(self) -> int:
        x = shift = 0
        while True:
            b = self.u8()
            x |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 63:
                raise CodecError("varint too long")
        if x >> 64:
            raise CodecError("varint exceeds 64 bits")
        return x

    def svarint(self) -> int:
        z = self.uvarint()
        return (z >> 1) ^ -(z & 1)

    def words(self, m: int) -> np.ndarray:
        b = self.u8()
        lo, hi = b >> 4, b & 0x0F
        if hi > 8 or lo > hi or (lo == hi and b):
            raise CodecError(f"bad word packing byte {b:#x}")
        if lo == hi:
            return np.zeros(m, np.uint64)
        full = np.zeros((m, 8), np.uint8)
        for i in range(lo, hi):
            full[:, i] = np.frombuffer(self.plane(m), np.uint8)
        return full.view(_LE_U64).reshape(m).astype(np.uint64, copy=False)

    def plane(self, m: int) -> bytes:
        size = self.uvarint()
        if size == 0:
            return self.take(m)
        frame = self.take(size)
        try:
            # The encoder writes no content size, so max_output_size bounds the output to the m bytes
            # expected. A corrupt header that declares one would be allocated as declared: refuse it first.
            declared = zstandard.get_frame_parameters(frame, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            if declared.content_size not in (m, _UNKNOWN_SIZE):
                raise CodecError(f"compressed plane declares {declared.content_size} bytes, expected {m}")
            raw = _zdecompressor().decompress(frame, max_output_size=m, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise CodecError(f"bad compressed plane: {exc}") from None
        if len(raw) != m:
            raise CodecError(f"compressed plane holds {len(raw)} bytes, expected {m}")
        return raw


# --- timestamps -----------------------------------------------------------------------------------------------

def _smallest(candidates: list[bytes]) -> bytes:
    return min(candidates, key=len)     # candidates are already compressed plane by plane


def _encode_ts(ts: np.ndarray) -> bytes:
    n = ts.size
    head = bytearray()
    _put_svarint(head, int(ts[0]))
    if n == 1:
        return bytes([_TS_REGULAR]) + head
    # Sorted input: every gap is in [1, 2**64), exact as uint64 even across the whole int64 range.
    d = np.diff(ts.view(np.uint64))
    if (d == d[0]).all():
        out = bytearray([_TS_REGULAR]) + head
        _put_uvarint(out, int(d[0]))
        return bytes(out)
    cands = []
    g = int(np.gcd.reduce(d))                   # e.g. 1000 for Graphite seconds stored as ms
    out = bytearray([_TS_DELTA]) + head
    _put_uvarint(out, g)
    _pack(out, d // np.uint64(g))
    cands.append(bytes(out))
    if n >= 3:
        dod = np.diff(d.view(np.int64))         # wraps consistently with the decoder's cumsum
        g = int(np.gcd.reduce(dod))
        if g <= 0 or (dod % g).any():           # gcd of INT64_MIN is ill-defined; fall back to 1
            g = 1
        out = bytearray([_TS_DOD]) + head
        _put_uvarint(out, int(d[0]))
        _put_uvarint(out, g)
        _pack(out, _zigzag(dod // g))
        cands.append(bytes(out))
        # Scrape jitter is independent per sample: its offset from a fixed grid has half the spread of its
        # delta-of-delta. The median gap is the grid step; a missed scrape shifts the rest by one step.
        step = np.partition(d, d.size // 2)[d.size // 2]
        grid = ts[1:].view(np.uint64) - (ts[:1].view(np.uint64) + np.arange(1, n, dtype=np.uint64) * step)
        out = bytearray([_TS_GRID]) + head
        _put_uvarint(out, int(step))
        _pack(out, _zigzag(grid.view(np.int64)))
        cands.append(bytes(out))
    return _smallest(cands)


def _decode_ts(r: _Reader, n: int) -> np.ndarray:
    mode = r.u8()
    first = np.uint64(r.svarint() & 0xFFFFFFFFFFFFFFFF)
    if mode == _TS_REGULAR:
        if n == 1:
            return np.array([first], np.uint64).view(np.int64)
        delta = np.uint64(r.uvarint())
        ts = first + np.arange(n, dtype=np.uint64) * delta
    elif mode == _TS_DELTA:
        g = r.uvarint()
        if g == 0:
            raise CodecError("zero timestamp scale")
        d = r.words(n - 1) * np.uint64(g)
        ts = np.cumsum(np.concatenate(([first], d)), dtype=np.uint64)
    elif mode == _TS_DOD:
        if n < 2:
            raise CodecError("delta-of-delta timestamps need two samples")
        d0 = r.uvarint()
        g = r.uvarint()
        if g == 0 or g >> 63:
            raise CodecError("bad timestamp scale")
        dod = _unzigzag(r.words(n - 2)) * np.int64(g)
        d = np.cumsum(np.concatenate((np.array([d0], np.uint64).view(np.int64), dod)), dtype=np.int64)
        ts = np.cumsum(np.concatenate(([first], d.view(np.uint64))), dtype=np.uint64)
    elif mode == _TS_GRID:
        step = np.uint64(r.uvarint())
        off = _unzigzag(r.words(n - 1)).view(np.uint64)
        ts = first + np.arange(n, dtype=np.uint64) * step + np.concatenate(([np.uint64(0)], off))
    else:
        raise CodecError(f"unknown timestamp mode {mode}")
    ts = ts.view(np.int64)
    if not (ts[1:] > ts[:-1]).all():
        raise CodecError("decoded timestamps are not strictly increasing")
    return ts


# --- values ---------------------------------------------------------------------------------------------------

def _scaled(v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """round(v * 10**k) as int64, and where that decodes back to v bit for bit."""
    p = _POW10[k]
    with np.errstate(all="ignore"):
        sc = np.rint(v * p)
        ok = np.abs(sc) < 9.223372036854775807e18       # fits int64; False for NaN and inf
        s = np.where(ok, sc, 0.0).astype(np.int64)
        ok &= (s.astype(np.float64) / p).view(np.uint64) == v.view(np.uint64)
    return s, ok


def _pick_scales(v: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Decimal scales worth trying: the smallest with few enough exceptions, and the one with fewest."""
    n = v.size
    max_exc = n // _EXC_DIVISOR
    floor = n - int(np.count_nonzero(np.isfinite(v)))   # non-finite values are exceptions at every scale
    if floor > max_exc:
        return []
    probe = v[:_PROBE]
    probe_allow = probe.size - int(np.count_nonzero(np.isfinite(probe))) + probe.size // _EXC_DIVISOR
    found: list[tuple[int, np.ndarray, np.ndarray, int]] = []
    for k in range(MAX_SCALE + 1):
        # A cheap look at the first values rejects most scales of full-precision floats.
        if probe.size - int(np.count_nonzero(_scaled(probe, k)[1])) > probe_allow:
            continue
        s, ok = _scaled(v, k)
        fails = n - int(np.count_nonzero(ok))
        if fails > max_exc:
            continue
        if not found or fails < found[-1][3]:
            found.append((k, s, ok, fails))
        if fails <= floor:
            break
    if len(found) > 2:
        found = [found[0], found[-1]]
    return [(k, s, ok) for k, s, ok, _ in found]


def _int_sections(bits: np.ndarray, k: int, s: np.ndarray, ok: np.ndarray) -> list[bytes]:
    n = s.size
    exc = np.flatnonzero(~ok)
    if exc.size:
        # Exceptions take the previous good value (the first good one at the start) so differences stay small.
        idx = np.where(ok, np.arange(n), 0)
        first_ok = int(np.argmax(ok))
        idx[:first_ok] = first_ok
        np.maximum.accumulate(idx, out=idx)
        s = s[idx]
    head = bytearray()
    _put_uvarint(head, exc.size)
    if exc.size:
        _pack(head, np.diff(exc, prepend=-1).astype(np.uint64))
        _pack(head, bits[exc])
    out = []
    d1 = np.diff(s)
    for order, res in enumerate((s, d1, np.diff(d1))[: min(3, n)]):
        sec = bytearray([_V_INT, order << 4 | k]) + head
        if order >= 1:
            _put_svarint(sec, int(s[0]))
        if order == 2:
            _put_svarint(sec, int(d1[0]))
        # A common step (4096-byte pages, counters bumped by 10) divides out like the timestamp gcd.
        g = int(np.gcd.reduce(res)) if res.size else 1
        if g <= 0 or (res % g).any():
            g = 1
        _put_uvarint(sec, g)
        _pack(sec, _zigzag(res // g))
        out.append(bytes(sec))
    return out


def _encode_values(v: np.ndarray) -> bytes:
    bits = v.view(np.uint64)
    if (bits == bits[0]).all():
        return bytes([_V_CONST]) + bits[:1].astype(_LE_U64).tobytes()
    cands = []
    for enc, words in (
        (_V_XOR, np.concatenate((bits[:1], bits[1:] ^ bits[:-1]))),
        (_V_RAW, bits),
        (_V_BITDELTA, _zigzag(np.diff(bits.view(np.int64), prepend=np.int64(0)))),
    ):
        sec = bytearray([enc])
        _pack(sec, words)
        cands.append(bytes(sec))
    for k, s, ok in _pick_scales(v):
        cands.extend(_int_sections(bits, k, s, ok))
    return _smallest(cands)


def _decode_values(r: _Reader, n: int) -> np.ndarray:
    enc = r.u8()
    if enc == _V_CONST:
        bits = np.full(n, np.frombuffer(r.take(8), _LE_U64)[0], np.uint64)
    elif enc == _V_RAW:
        bits = r.words(n)
    elif enc == _V_XOR:
        bits = np.bitwise_xor.accumulate(r.words(n))
    elif enc == _V_BITDELTA:
        bits = np.cumsum(_unzigzag(r.words(n)), dtype=np.int64).view(np.uint64)
    elif enc == _V_INT:
        return _decode_int(r, n)
    else:
        raise CodecError(f"unknown value encoding {enc}")
    return bits.view(np.float64)


def _decode_int(r: _Reader, n: int) -> np.ndarray:
    b = r.u8()
    order, k = b >> 4, b & 0x0F
    if order > 2 or order >= n or k > MAX_SCALE:
        raise CodecError(f"bad integer encoding parameters {b:#x}")
    n_exc = r.uvarint()
    if n_exc > n:
        raise CodecError("more exceptions than samples")
    if n_exc:
        gaps = r.words(n_exc)
        if (gaps == 0).any() or (gaps > n).any():
            raise CodecError("bad exception positions")
        pos = np.cumsum(gaps) - _ONE                     # < n * n_exc: cannot wrap
        if pos[-1] >= n:
            raise CodecError("exception position out of range")
        exc_bits = r.words(n_exc)
    seeds = [r.svarint() for _ in range(order)]
    g = r.uvarint()
    if g == 0 or g >> 63:
        raise CodecError("bad integer scale")
    s = _unzigzag(r.words(n - order)) * np.int64(g)
    if order == 2:
        s = np.cumsum(np.concatenate((np.array(seeds[1:], np.int64), s)), dtype=np.int64)
    if order >= 1:
        s = np.cumsum(np.concatenate((np.array(seeds[:1], np.int64), s)), dtype=np.int64)
    values = s.astype(np.float64) / _POW10[k]           # the exact expression the encoder verified
    if n_exc:
        values.view(np.uint64)[pos.astype(np.intp)] = exc_bits
    return values


# --- public API -------------------------------------------------------------------------------------------------

def _check_ts(ts) -> np.ndarray:
    a = np.asarray(ts)
    if a.ndim != 1:
        raise ValueError("timestamps must be a 1-D array")
    if a.size == 0:
        return np.empty(0, np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"timestamps must be integer milliseconds, got dtype {a.dtype}")
    if a.dtype.kind == "u" and int(a.max()) > np.iinfo(np.int64).max:
        raise ValueError("timestamp beyond int64")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if (a[1:] <= a[:-1]).any():
        raise ValueError("timestamps must be strictly increasing (sorted, unique)")
    if a.size > MAX_SAMPLES:
        raise ValueError(f"a chunk holds at most {MAX_SAMPLES} samples, got {a.size}")
    return a


def _check_column(values, n: int) -> np.ndarray:
    v = np.asarray(values)
    if v.ndim != 1 or v.size != n:
        raise ValueError(f"a value column must be 1-D with {n} entries, got shape {v.shape}")
    if v.size and v.dtype.kind not in "fiu":
        raise ValueError(f"values must be numeric, got dtype {v.dtype}")
    return np.ascontiguousarray(v, dtype=np.float64)


def encode_columns(ts, columns: Sequence) -> bytes:
    """Encode timestamps and any number of value columns sharing them (rollups: sum, cnt, min, max, last)."""
    t = _check_ts(ts)
    n = t.size
    if len(columns) > MAX_COLUMNS:
        raise ValueError(f"at most {MAX_COLUMNS} value columns, got {len(columns)}")
    cols = [_check_column(c, n) for c in columns]
    head = bytearray([VERSION])
    _put_uvarint(head, n)
    _put_uvarint(head, len(cols))
    if n == 0:
        return bytes(head)
    head += _encode_ts(t)
    for v in cols:
        head += _encode_values(v)
    return bytes(head)


def encode(ts, values) -> bytes:
    """Encode one series chunk: sorted unique int64 ms timestamps and float64 values, bit-exact."""
    return encode_columns(ts, [values])


def _decode(blob: bytes) -> tuple[np.ndarray, list[np.ndarray]]:
    r = _Reader(blob)
    version = r.u8()
    if version != VERSION:
        raise CodecError(f"unknown chunk format version {version}")
    n = r.uvarint()
    ncols = r.uvarint()
    if n > MAX_SAMPLES or ncols > MAX_COLUMNS:
        raise CodecError(f"implausible chunk header: {n} samples, {ncols} columns")
    if n == 0:
        ts, cols = np.empty(0, np.int64), [np.empty(0, np.float64) for _ in range(ncols)]
    else:
        ts = _decode_ts(r, n)
        cols = [_decode_values(r, n) for _ in range(ncols)]
    if r.pos != len(blob):
        raise CodecError(f"{len(blob) - r.pos} stray bytes after the last section")
    return ts, cols


def decode_columns(blob: bytes) -> tuple[np.ndarray, list[np.ndarray]]:
    """Inverse of encode_columns. Raises CodecError for anything that is not a well-formed chunk."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"blob must be bytes-like, got {type(blob).__name__}")
    try:
        return _decode(bytes(blob))
    except CodecError:
        raise
    except (ValueError, IndexError, OverflowError, zstandard.ZstdError) as exc:
        raise CodecError(f"corrupt chunk: {exc}") from None


def decode(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of encode: (int64 ms timestamps, float64 values)."""
    ts, cols = decode_columns(blob)
    if len(cols) != 1:
        raise CodecError(f"chunk holds {len(cols)} value columns, decode() expects exactly 1")
    return ts, cols[0]
