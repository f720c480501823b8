"""Bytes per stored sample: plumbago's chunk codec against Prometheus' XOR chunks and whisper, same data.

Generates 1,000 deterministic series x 24 h at 10 s (a mix of counters, 2-decimal gauges, constant series and
full-precision random-walk floats), encodes each series in 2-hour chunks with `storage.codec`, checks that every
chunk decodes back bit for bit, and prints bytes per sample per dataset and overall. The references are
measured on the same samples in the same run:

* prometheus_xor: the exact size of Prometheus TSDB's Gorilla/XOR chunks (chunkenc/xor.go): 2-byte sample
  count, varint first timestamp, uvarint first delta, then delta-of-delta buckets of 1/16/20/24/68 bits, and
  XOR values with the leading/trailing-zero window (leading zeros clamped to 31, 5+6 bit headers). Chunks of
  120 samples, as the Prometheus head cuts them. This is the encoding's own size, without the 5-6 bytes of
  on-disk framing (length varint, encoding byte, CRC32) a block file adds per chunk.
* whisper: 12 bytes per point (4-byte timestamp + 8-byte double), a fixed cost.

Datasets (shares of the series in MIX): counters with Poisson increments at rates from 0.01 to 2000 per
scrape and occasional resets, on Prometheus scrape timestamps with a few ms of jitter; gauges with 2 decimal
places (random walks rounded), half on jittered scrape times, half on Graphite's whole seconds with ~1 % of
points missing; constant series on Graphite timestamps; full-precision random-walk floats on an exact grid.

Usage: python bench/bytes_per_sample.py [--series 1000] [--hours 24] [--seed 42]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from storage import codec  # noqa: E402

STEP_MS = 10_000
CHUNK_MS = 2 * 3600 * 1000
PROM_SAMPLES_PER_CHUNK = 120
WHISPER_BYTES = 12.0
TARGET = 2.0
START_MS = 1_699_999_200_000          # a multiple of 2 h, so chunks align with the data
# Share of each dataset in the 1,000 series; full-precision floats are the minority in real fleets.
MIX = (("counter", 0.40), ("gauge_2dp", 0.30), ("constant", 0.15), ("float_walk", 0.15))


# --- data ---------------------------------------------------------------------------------------------------

def _prom_timestamps(rng: np.random.Generator, count: int, n: int) -> np.ndarray:
    """Scrape times: on schedule, plus jitter of a few ms; Prometheus aligns jitter <= 2 ms, so that shows as 0."""
    base = START_MS + np.arange(n, dtype=np.int64) * STEP_MS
    jitter = np.rint(rng.normal(0.0, 4.0, (count, n))).astype(np.int64)
    jitter[np.abs(jitter) <= 2] = 0
    return base + jitter


def _graphite_timestamps(rng: np.random.Generator, count: int, n: int) -> list[np.ndarray]:
    """Whole seconds on a 10 s grid; about 1 % of points never arrive."""
    base = START_MS + np.arange(n, dtype=np.int64) * STEP_MS
    return [base[rng.random(n) >= 0.01] for _ in range(count)]


def _counters(rng, count, n):
    rate = np.exp(rng.uniform(np.log(0.01), np.log(2000.0), count))        # events per 10 s
    inc = rng.poisson(rate[:, None], (count, n)).astype(np.float64)
    values = rng.integers(0, 10_000_000, count)[:, None] + np.cumsum(inc, axis=1)
    for i in np.flatnonzero(rng.random(count) < 0.1):                      # process restarts reset a few
        at = rng.integers(1, n)
        values[i, at:] -= values[i, at - 1]
    ts = _prom_timestamps(rng, count, n)
    return [(ts[i], values[i]) for i in range(count)]


def _gauges_2dp(rng, count, n):
    sigma = np.exp(rng.uniform(np.log(0.01), np.log(5.0), count))
    level = rng.uniform(0.0, 1000.0, count)
    walk = level[:, None] + np.cumsum(rng.normal(0.0, 1.0, (count, n)) * sigma[:, None], axis=1)
    values = np.round(walk, 2)
    half = count // 2
    out = []
    prom_ts = _prom_timestamps(rng, half, n)
    for i in range(half):
        out.append((prom_ts[i], values[i]))
    for j, ts in enumerate(_graphite_timestamps(rng, count - half, n)):
        idx = ((ts - START_MS) // STEP_MS).astype(np.intp)
        out.append((ts, values[half + j][idx]))
    return out


def _constants(rng, count, n):
    choices = np.array([0.0, 1.0, 4.0, 0.5, 100.0, 1.6993e9, 3.0e10])
    values = rng.choice(choices, count)
    return [(ts, np.full(ts.size, values[i])) for i, ts in enumerate(_graphite_timestamps(rng, count, n))]


def _float_walks(rng, count, n):
    sigma = np.exp(rng.uniform(np.log(1e-3), np.log(10.0), count))
    level = rng.uniform(0.0, 1000.0, count)
    values = level[:, None] + np.cumsum(rng.normal(0.0, 1.0, (count, n)) * sigma[:, None], axis=1)
    ts = START_MS + np.arange(n, dtype=np.int64) * STEP_MS               # rule evaluations: exact interval
    return [(ts, values[i]) for i in range(count)]


GENERATORS = {"counter": _counters, "gauge_2dp": _gauges_2dp, "constant": _constants, "float_walk": _float_walks}


# --- Prometheus XOR chunk size (reference) -------------------------------------------------------------------

def _bit_length(x: np.ndarray) -> np.ndarray:
    """Exact bit length of uint64 words (split in halves so float64 holds each exactly)."""
    hi = (x >> np.uint64(32)).astype(np.float64)
    lo = (x & np.uint64(0xFFFFFFFF)).astype(np.float64)
    return np.where(hi > 0, np.frexp(hi)[1] + 32, np.frexp(lo)[1]).astype(np.int64)


def _uvarint_len(x: np.ndarray) -> np.ndarray:
    return np.maximum(1, (_bit_length(x) + 6) // 7)


def prometheus_xor_bytes(ts: np.ndarray, values: np.ndarray, per_chunk: int = PROM_SAMPLES_PER_CHUNK) -> int:
    """Total bytes of the XOR chunks Prometheus would write for this series, cut every `per_chunk` samples."""
    n = ts.size
    if n == 0:
        return 0
    pos = np.arange(n) % per_chunk                   # index of each sample inside its chunk
    cost = np.zeros(n, np.int64)                     # bits each sample adds to its chunk's stream
    # First sample of a chunk: varint (zigzag) timestamp + the 64 value bits.
    first = pos == 0
    t0 = ts[first]
    cost[first] = 8 * _uvarint_len(((t0 << 1) ^ (t0 >> 63)).view(np.uint64)) + 64
    # Second sample: uvarint of the delta. Later ones: delta-of-delta in buckets,
    # bitRange(x, k) meaning -(2^(k-1)-1) <= x <= 2^(k-1).
    delta = np.diff(ts, prepend=ts[0])
    cost[pos == 1] = 8 * _uvarint_len(delta[pos == 1].view(np.uint64))
    later = pos >= 2
    dod = (delta - np.concatenate(([0], delta[:-1])))[later]

    def in_range(k):
        return (dod >= -((1 << (k - 1)) - 1)) & (dod <= (1 << (k - 1)))

    cost[later] = np.select([dod == 0, in_range(14), in_range(17), in_range(20)], [1, 16, 20, 24], 68)
    # Values after the first of each chunk: XOR with the previous value in the same chunk.
    raw = values.view(np.uint64)
    xor = raw ^ np.concatenate((raw[:1], raw[:-1]))
    rest = pos >= 1
    same = rest & (xor == 0)
    cost[same] += 1                                  # a repeated value costs one bit
    changed = np.flatnonzero(rest & (xor != 0))
    x = xor[changed]
    lead = np.minimum(64 - _bit_length(x), 31)       # xor.go clamps leading zeros to 31 (5-bit field)
    trail = np.frexp((x & (np.uint64(0) - x)).astype(np.float64))[1] - 1   # lowest set bit, a power of 2
    # The leading/trailing window carries from sample to sample, so this part is sequential.
    vbits = []
    state_l, state_t, last_chunk = -1, 0, -1
    for i, l, t in zip(changed.tolist(), lead.tolist(), trail.tolist()):
        c = i // per_chunk
        if c != last_chunk:                          # each chunk starts without a window (leading = 0xff)
            state_l, last_chunk = -1, c
        if state_l >= 0 and l >= state_l and t >= state_t:
            vbits.append(2 + 64 - state_l - state_t)   # '10' + bits inside the current window
        else:
            state_l, state_t = l, t
            vbits.append(2 + 5 + 6 + 64 - l - t)       # '11' + 5-bit leading + 6-bit length + bits
    cost[changed] += np.array(vbits, np.int64)
    chunk_bits = np.bincount(np.arange(n) // per_chunk, weights=cost).astype(np.int64)
    return int((2 + (chunk_bits + 7) // 8).sum())     # 2-byte sample count + stream padded to a byte


# --- run ----------------------------------------------------------------------------------------------------

def _chunks(ts: np.ndarray):
    """Split a series at 2-hour boundaries, as the store cuts blocks."""
    block = (ts - START_MS) // CHUNK_MS
    cuts = np.flatnonzero(np.diff(block)) + 1
    return np.split(np.arange(ts.size), cuts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    n = int(args.hours * 3600 * 1000 // STEP_MS)
    rng = np.random.default_rng(args.seed)
    print(f"# {args.series} series x {args.hours:g} h at {STEP_MS // 1000} s, chunks of 2 h, seed {args.seed}")
    totals = dict(samples=0, plumbago=0, prom=0, prom_720=0, chunks=0, enc_s=0.0, dec_s=0.0)
    counts = [int(round(share * args.series)) for _, share in MIX]
    counts[0] += args.series - sum(counts)
    for (name, _), count in zip(MIX, counts):
        series = GENERATORS[name](rng, count, n)
        samples = plumbago = prom = prom_720 = 0
        for ts, values in series:
            for idx in _chunks(ts):
                t, v = ts[idx], values[idx]
                t0 = time.perf_counter()
                blob = codec.encode(t, v)
                t1 = time.perf_counter()
                t2, v2 = codec.decode(blob)
                totals["dec_s"] += time.perf_counter() - t1
                totals["enc_s"] += t1 - t0
                if not (np.array_equal(t2, t) and np.array_equal(v2.view(np.uint64), v.view(np.uint64))):
                    raise SystemExit(f"round trip mismatch in dataset {name}")
                plumbago += len(blob)
                totals["chunks"] += 1
                # Prometheus also cuts its chunks at block (2 h) boundaries, 120 samples apiece inside.
                prom += prometheus_xor_bytes(t, v)
                prom_720 += prometheus_xor_bytes(t, v, per_chunk=CHUNK_MS // STEP_MS)
            samples += ts.size
        totals["samples"] += samples
        totals["plumbago"] += plumbago
        totals["prom"] += prom
        totals["prom_720"] += prom_720
        p, q = plumbago / samples, prom / samples
        print(f"[{name:<10}] series={count:<4} samples={samples:<8} bytes_per_sample plumbago={p:.3f} "
              f"prometheus_xor={q:.3f} ratio={p / q:.2f} whisper={WHISPER_BYTES:.0f} "
              f"ratio_whisper={p / WHISPER_BYTES:.3f}")
    s = totals["samples"]
    p, q, q720 = totals["plumbago"] / s, totals["prom"] / s, totals["prom_720"] / s
    print(f"# prometheus_xor with 720-sample chunks (one per 2 h, like ours) would be {q720:.3f} "
          f"bytes/sample, ratio={p / q720:.2f}")
    print(f"# codec speed: encode {s / totals['enc_s'] / 1e6:.2f} M samples/s, "
          f"decode {s / totals['dec_s'] / 1e6:.2f} M samples/s over {totals['chunks']} chunks")
    print(f"bytes_per_sample plumbago={p:.3f} prometheus_xor={q:.3f} ratio={p / q:.2f} "
          f"whisper={WHISPER_BYTES:.0f} ratio_whisper={p / WHISPER_BYTES:.3f} (target <= {TARGET})")
    return 0 if p <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
