"""storage.codec: bit-exact round trips, input validation, corrupt blobs, and bytes per sample."""
from __future__ import annotations

import importlib.util
import pathlib
import threading

import numpy as np
import pytest
import zstandard

from storage import codec
from storage.codec import CodecError, decode, decode_columns, encode, encode_columns

T0 = 1_699_999_200_000                 # a 2-hour boundary, in ms
STEP = 10_000
N = 720                                # one 2-hour chunk at 10 s
STALE_NAN = np.array([0x7FF0000000000002], np.uint64).view(np.float64)[0]
QUIET_NAN_PAYLOAD = np.array([0x7FF8DEADBEEF0001], np.uint64).view(np.float64)[0]
NEG_NAN = np.array([0xFFF8000000000000], np.uint64).view(np.float64)[0]
SIGNALING_NAN = np.array([0x7FF0000000000001], np.uint64).view(np.float64)[0]


def regular_ts(n: int = N, step: int = STEP, start: int = T0) -> np.ndarray:
    return start + np.arange(n, dtype=np.int64) * step


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def assert_round_trip(ts, values) -> bytes:
    blob = encode(ts, values)
    assert isinstance(blob, bytes) and blob[0] == codec.VERSION
    t2, v2 = decode(blob)
    assert t2.dtype == np.int64 and v2.dtype == np.float64
    np.testing.assert_array_equal(t2, np.asarray(ts, dtype=np.int64))
    np.testing.assert_array_equal(bits(v2), bits(np.asarray(values, dtype=np.float64)))
    return blob


# --- round trips ----------------------------------------------------------------------------------------------

def test_empty_chunk():
    blob = assert_round_trip(np.empty(0, np.int64), np.empty(0))
    assert len(blob) <= 4
    ts, cols = decode_columns(encode_columns([], [[], []]))
    assert ts.size == 0 and len(cols) == 2 and all(c.size == 0 for c in cols)


@pytest.mark.parametrize("value", [0.0, -0.0, 1.5, np.inf, -np.inf, np.nan, STALE_NAN, 5e-324, -1.7976931348623157e308])
def test_single_sample(value):
    assert_round_trip(np.array([T0]), np.array([value]))


@pytest.mark.parametrize("ts0", [0, -1, -5_000_000_000_000, np.iinfo(np.int64).min, np.iinfo(np.int64).max])
def test_single_sample_extreme_timestamps(ts0):
    assert_round_trip(np.array([ts0], np.int64), np.array([1.0]))


def test_regular_and_irregular_timestamps():
    rng = np.random.default_rng(1)
    values = rng.normal(size=N)
    assert_round_trip(regular_ts(), values)
    assert_round_trip(regular_ts(step=1), values)
    assert_round_trip(regular_ts(start=-7_200_000), values)                  # before 1970
    jitter = regular_ts() + rng.integers(-5, 6, N)                           # Prometheus scrape jitter
    assert_round_trip(jitter, values)
    graphite = regular_ts()[rng.random(N) > 0.05]                           # seconds, missing points
    assert_round_trip(graphite, values[: graphite.size])
    random_ts = np.cumsum(rng.integers(1, 10**9, N)) - 10**11                # arbitrary gaps, negative start
    assert_round_trip(random_ts, values)
    assert_round_trip(np.array([T0, T0 + 1]), np.array([1.0, 2.0]))          # two samples
    assert_round_trip(np.array([T0, T0 + 1, T0 + 10**12]), np.array([1.0, 2.0, 3.0]))


def test_timestamps_spanning_the_whole_int64_range():
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    for ts in ([lo, hi], [lo, 0, hi], [lo, lo + 1, hi - 1, hi], [lo, -1, 0, 1, hi]):
        assert_round_trip(np.array(ts, np.int64), np.arange(len(ts), dtype=np.float64))


def test_timestamp_input_types():
    values = np.array([1.0, 2.0, 3.0])
    for ts in ([T0, T0 + 10, T0 + 20], np.array([1, 2, 3], np.int32), np.array([1, 2, 3], np.uint64),
               np.array([3, 2, 1], np.int64)[::-1]):
        t2, _ = decode(encode(ts, values))
        np.testing.assert_array_equal(t2, np.asarray(ts, dtype=np.int64))


def test_special_float_patterns():
    ts = regular_ts(16)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, STALE_NAN, QUIET_NAN_PAYLOAD, NEG_NAN,
                         SIGNALING_NAN, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                         -1.7976931348623157e308, 1.0, -1.0])
    assert_round_trip(ts, specials)
    assert_round_trip(ts, specials[::-1].copy())
    assert_round_trip(ts, np.full(16, -0.0))
    assert_round_trip(ts, np.full(16, STALE_NAN))
    assert_round_trip(ts, np.where(np.arange(16) % 2 == 0, 0.0, -0.0))


def test_stale_markers_inside_integer_and_decimal_series():
    rng = np.random.default_rng(2)
    counter = np.cumsum(rng.poisson(3, N)).astype(np.float64)
    gauge = np.round(50 + np.cumsum(rng.normal(0, 0.3, N)), 2)
    for series in (counter, gauge):
        clean = len(encode(regular_ts(), series))
        for where in ([N - 1], [0], [0, 1, 2], [100, 101, 500]):
            v = series.copy()
            v[where] = STALE_NAN
            blob = assert_round_trip(regular_ts(), v)
            # A few stale markers must not throw the chunk onto the float path.
            assert len(blob) <= clean + 24 * len(where), (where, len(blob), clean)


def test_stray_values_and_negative_zero_inside_integer_series():
    v = np.arange(N, dtype=np.float64) * 3
    v[10] = -0.0
    v[20] = 0.1 + 0.2                  # 0.30000000000000004, not a short decimal
    v[30] = np.inf
    blob = assert_round_trip(regular_ts(), v)
    assert len(blob) < 120


def test_huge_and_tiny_magnitudes():
    rng = np.random.default_rng(3)
    ts = regular_ts(200)
    for scale in (1e-300, 1e-30, 1e-3, 1e3, 1e30, 1e300):
        assert_round_trip(ts, rng.normal(size=200) * scale)
    assert_round_trip(ts, rng.normal(size=200) * 1e-310)                       # subnormals
    mixed = np.array([1e-300, 1e300, -1e-300, -1e300] * 50)
    assert_round_trip(ts, mixed)


def test_integers_beyond_2_53():
    ts = regular_ts(300)
    big = 2.0 ** 60 + np.arange(300) * 2.0 ** 9                                # exactly representable
    assert_round_trip(ts, big)
    assert_round_trip(ts, -big)
    near_limit = np.array([2.0 ** 63, -(2.0 ** 63), 2.0 ** 63 - 1024, -(2.0 ** 63) + 1024, 2.0 ** 64, 1e19] * 50)
    assert_round_trip(ts, near_limit)
    rng = np.random.default_rng(4)
    assert_round_trip(ts, rng.integers(-(2 ** 62), 2 ** 62, 300).astype(np.float64))
    assert_round_trip(ts, np.array([2.0 ** 53 + 2] * 150 + [2.0 ** 53 - 1] * 150))


@pytest.mark.parametrize("digits", [1, 2, 3, 6, 9])
def test_decimals(digits):
    rng = np.random.default_rng(digits)
    sigma = 30.0
    v = np.round(rng.normal(100, sigma, N), digits)
    blob = assert_round_trip(regular_ts(), v)
    # Taken as scaled integers, i.i.d. decimals cost about their entropy, log2(sigma * 10**digits * 4.13) bits.
    entropy_bytes = np.log2(sigma * 10.0 ** digits * 4.13) / 8
    assert len(blob) / N <= entropy_bytes + 0.5, (len(blob) / N, entropy_bytes)


def test_decimals_parsed_from_text_round_trip():
    texts = ["0.1", "0.2", "0.3", "12.34", "-7.05", "99.99", "1e-05", "123456.789", "0.000001", "3.14159"]
    v = np.array([float(t) for t in texts] * 20)
    assert_round_trip(regular_ts(v.size), v)


def test_random_floats_and_random_bits():
    rng = np.random.default_rng(5)
    ts = regular_ts()
    assert_round_trip(ts, rng.normal(size=N))
    assert_round_trip(ts, 100 + np.cumsum(rng.normal(size=N)))
    assert_round_trip(ts, rng.integers(0, 2 ** 64, N, dtype=np.uint64).view(np.float64))   # any bit pattern
    assert_round_trip(ts, np.sort(rng.random(N)))
    assert_round_trip(ts, rng.choice([0.0, 1.0], N))


@pytest.mark.parametrize("n", [2, 3, 7, 8, 9, 63, 64, 65, 1000, 5000])
def test_lengths(n):
    rng = np.random.default_rng(n)
    ts = regular_ts(n) + rng.integers(0, 3, n)
    for values in (np.cumsum(rng.integers(0, 5, n)).astype(float), rng.normal(size=n), np.full(n, 7.0)):
        assert_round_trip(ts, values)


def test_accepts_lists_and_non_float64_values():
    t2, v2 = decode(encode([1, 2, 3], [1, 2, 3]))
    np.testing.assert_array_equal(v2, [1.0, 2.0, 3.0])
    t2, v2 = decode(encode([1, 2], np.array([0.5, 1.5], np.float32)))
    np.testing.assert_array_equal(v2, [0.5, 1.5])


# --- columns (rollups) -----------------------------------------------------------------------------------------

def test_columns_round_trip():
    rng = np.random.default_rng(6)
    ts = regular_ts(360, step=60_000)
    raw = rng.normal(10, 2, (360, 6))
    cols = [raw.sum(1), np.full(360, 6.0), raw.min(1), raw.max(1), raw[:, -1]]
    cols[4][7] = STALE_NAN
    cols[2][9] = -0.0
    blob = encode_columns(ts, cols)
    t2, out = decode_columns(blob)
    np.testing.assert_array_equal(t2, ts)
    assert len(out) == 5
    for a, b in zip(cols, out):
        np.testing.assert_array_equal(bits(a), bits(b))


def test_columns_single_and_none():
    ts = regular_ts(10)
    t2, out = decode_columns(encode_columns(ts, [np.arange(10.0)]))
    assert len(out) == 1
    np.testing.assert_array_equal(out[0], np.arange(10.0))
    t2, out = decode_columns(encode_columns(ts, []))
    np.testing.assert_array_equal(t2, ts)
    assert out == []
    # encode() output is a one-column chunk
    t2, out = decode_columns(encode(ts, np.arange(10.0)))
    assert len(out) == 1


def test_decode_rejects_multi_column_chunk():
    blob = encode_columns(regular_ts(5), [np.ones(5), np.zeros(5)])
    with pytest.raises(CodecError):
        decode(blob)


# --- input validation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ts", [
    [3, 2, 1],            # descending
    [1, 3, 2],            # one step back
    [1, 2, 2],            # duplicate
    [5, 5],
])
def test_unsorted_or_duplicate_timestamps_raise(ts):
    with pytest.raises(ValueError):
        encode(np.array(ts), np.zeros(len(ts)))


def test_bad_shapes_and_types_raise():
    with pytest.raises(ValueError):
        encode([1, 2, 3], [1.0, 2.0])                          # length mismatch
    with pytest.raises(ValueError):
        encode(np.array([[1, 2]]), np.array([[1.0, 2.0]]))      # 2-D
    with pytest.raises(ValueError):
        encode(np.array([1.0, 2.0]), np.array([1.0, 2.0]))      # float timestamps
    with pytest.raises(ValueError):
        encode([1, 2], ["a", "b"])                             # non-numeric values
    with pytest.raises(ValueError):
        encode_columns([1, 2], [[1.0, 2.0], [1.0]])
    with pytest.raises(ValueError):
        encode_columns([1], [[1.0]] * (codec.MAX_COLUMNS + 1))
    with pytest.raises(ValueError):
        encode(np.array([2 ** 63], np.uint64), [1.0])


def test_codec_error_is_a_value_error():
    assert issubclass(CodecError, ValueError)


# --- corrupt blobs ----------------------------------------------------------------------------------------------

def _sample_blobs() -> list[bytes]:
    rng = np.random.default_rng(7)
    ts = regular_ts()
    jitter = ts + rng.integers(-4, 5, N)
    counter = np.cumsum(rng.poisson(4, N)).astype(float)
    counter[300] = STALE_NAN
    return [
        encode(ts, counter),                                           # INT with an exception
        encode(jitter, np.round(rng.normal(20, 1, N), 2)),             # irregular ts, 2 decimals
        encode(ts, 100 + np.cumsum(rng.normal(size=N))),               # float path, compressed planes
        encode(ts[:5], np.full(5, 3.0)),                               # tiny, CONST
        encode(ts[:3], np.array([1.0, np.nan, -0.0])),
        encode_columns(ts[:50], [np.arange(50.0), np.ones(50), rng.normal(size=50)]),
        encode([], []),
    ]


def test_every_truncation_raises():
    for blob in _sample_blobs():
        for cut in range(len(blob)):
            with pytest.raises(CodecError):
                decode_columns(blob[:cut])


def test_trailing_garbage_raises():
    for blob in _sample_blobs():
        with pytest.raises(CodecError):
            decode_columns(blob + b"\x00")
        with pytest.raises(CodecError):
            decode_columns(blob + b"\x01\x02\x03")


def test_random_corruption_never_crashes():
    rng = np.random.default_rng(8)
    for blob in _sample_blobs():
        for _ in range(400):
            b = bytearray(blob)
            kind = rng.integers(3)
            if kind == 0:                                    # flip one bit
                i = rng.integers(len(b))
                b[i] ^= 1 << int(rng.integers(8))
            elif kind == 1:                                  # overwrite a few bytes
                for i in rng.integers(0, len(b), rng.integers(1, 4)):
                    b[i] = int(rng.integers(256))
            else:                                            # insert a byte
                b.insert(int(rng.integers(len(b) + 1)), int(rng.integers(256)))
            try:
                ts, cols = decode_columns(bytes(b))
            except CodecError:
                continue
            # Whatever survives must still be a well-formed chunk.
            assert ts.dtype == np.int64 and (np.diff(ts) > 0).all()
            assert all(c.dtype == np.float64 and c.size == ts.size for c in cols)
            assert ts.size <= codec.MAX_SAMPLES


@pytest.mark.parametrize("blob", [
    b"",
    b"\x00",
    b"\x02\x00\x00",                                       # unknown version
    b"\x01",                                               # header cut short
    b"\x01" + b"\xff" * 9 + b"\x7f\x01",                    # sample count beyond 64 bits
    b"\x01" + b"\xff" * 10 + b"\x01",                        # varint longer than 10 bytes
    b"\x01\x81\xad\xe2\x04\x01",                           # 10,000,001 samples: over the limit
    b"\x01\x01\x80\x01",                                   # 128 columns
    b"\x01\x01\x01\x07\x00\x00",                           # unknown timestamp mode
    b"\x01\x01\x01\x00\x00\x09",                           # unknown value encoding
    b"\x01\x01\x01\x00\x00\x00\x00\x00",                   # CONST value cut short
    b"\x01\x02\x01\x00\x00\x00" + b"\x00" * 9,              # regular delta 0: not increasing
    b"\x01\x01\x01\x00\x00\x01\x99",                       # bad word packing byte (planes 9..9)
    b"\x01\x01\x01\x00\x00\x01\x21",                       # bad word packing byte (lo > hi)
    b"\x01\x01\x01\x00\x00\x01\x01\x05" + b"\x00" * 5,     # compressed plane that is no zstd frame
    b"\x01\x03\x01\x00\x00\x14\x04\x21\x00\x00\x00\x01",   # INT order 2, k=1: residuals missing
    b"\x01\x03\x01\x00\x00\x14\x04\x21\x00\x00\x00\x00\x00", # INT with common step 0
    b"\x01\x02\x01\x00\x00\x14\x04\x31\x00",               # INT order 3: unknown
    b"\x01\x02\x01\x00\x00\x14\x04\x0a\x00\x00",           # INT scale 10: beyond MAX_SCALE
    b"\x01\x02\x01\x00\x00\x14\x04\x00\x03",               # INT with more exceptions than samples
])
def test_malformed_blobs_raise(blob):
    with pytest.raises(CodecError):
        decode_columns(blob)


def _frame(raw: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=0, write_checksum=0)
    return zstandard.ZstdCompressor(compression_params=params).compress(raw)


def test_declared_sizes_are_checked_before_allocating():
    # 2,000,000 samples declared with 8 raw byte planes: 16 MB that are not there. Refused before allocating.
    with pytest.raises(CodecError, match="truncated"):
        decode_columns(b"\x01\x80\x89\x7a\x01" + b"\x00\x00\x08" + b"\x01\x08" + b"\x00" * 101)
    # A compressed plane may not decode to more bytes than the plane holds.
    big = _frame(b"\x00" * (1 << 20))
    size = bytearray()
    codec._put_uvarint(size, len(big))
    with pytest.raises(CodecError):
        decode_columns(b"\x01\x0a\x01\x00\x00\x14\x01\x01" + bytes(size) + big)
    # ... nor to fewer.
    small = _frame(b"\x00" * 5)
    with pytest.raises(CodecError):
        decode_columns(b"\x01\x0a\x01\x00\x00\x14\x01\x01" + bytes([len(small)]) + small)
    # The same blob with a plane of the right size decodes (so the two above fail for the stated reason).
    right = _frame(b"\x00" * 10)
    ts, v = decode(b"\x01\x0a\x01\x00\x00\x14\x01\x01" + bytes([len(right)]) + right)
    np.testing.assert_array_equal(ts, np.arange(10) * 20)
    np.testing.assert_array_equal(bits(v), np.zeros(10, np.uint64))


def test_non_bytes_input_is_a_type_error():
    with pytest.raises(TypeError):
        decode(12345)
    ts, v = decode(memoryview(encode([1, 2], [1.0, 2.0])))
    np.testing.assert_array_equal(v, [1.0, 2.0])


# --- concurrency ------------------------------------------------------------------------------------------------

def test_thread_safe_encode_decode():
    rng = np.random.default_rng(9)
    series = [(regular_ts() + rng.integers(0, 3, N), np.round(rng.normal(0, 5, N).cumsum(), 1)) for _ in range(8)]
    expected = [encode(t, v) for t, v in series]
    errors = []

    def work(i):
        try:
            for _ in range(20):
                t, v = series[i]
                blob = encode(t, v)
                assert blob == expected[i]
                t2, v2 = decode(blob)
                assert np.array_equal(t2, t) and np.array_equal(bits(v2), bits(v))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(series))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


# --- size -------------------------------------------------------------------------------------------------------

def _datasets():
    rng = np.random.default_rng(2024)
    ts = regular_ts()
    jitter = ts + np.where(rng.random(N) < 0.3, rng.integers(-6, 7, N), 0)
    return {
        "counter": (ts, 1e6 + np.cumsum(rng.poisson(5, N)).astype(np.float64)),
        "counter_jittered_ts": (jitter, 5e4 + np.cumsum(rng.poisson(40, N)).astype(np.float64)),
        "gauge_2dp": (ts, np.round(20 + np.cumsum(rng.normal(0, 0.05, N)), 2)),
        "gauge_1dp_percent": (ts, np.clip(np.round(50 + np.cumsum(rng.normal(0, 0.5, N)), 1), 0, 100)),
        "constant": (ts, np.full(N, 1.0)),
        "int_gauge_bytes": (ts, 4096.0 * (250_000 + np.cumsum(rng.integers(-20, 21, N)))),
    }


# bytes per sample ceilings on one 2-hour chunk (measured values are well below)
BOUNDS = {"counter": 0.6, "counter_jittered_ts": 1.3, "gauge_2dp": 0.8, "gauge_1dp_percent": 0.8,
          "constant": 0.05, "int_gauge_bytes": 0.9}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_bytes_per_sample_bounds(name):
    ts, values = _datasets()[name]
    blob = assert_round_trip(ts, values)
    assert len(blob) / N <= BOUNDS[name], (name, len(blob) / N)


def test_regular_series_costs_a_few_bytes():
    ts = regular_ts()
    assert len(encode_columns(ts, [])) <= 14                # version, flags, n, ncols, first ts, delta
    assert len(encode(ts, np.full(N, 3.5))) <= 24
    assert len(encode(regular_ts(100_000), np.zeros(100_000))) <= 24


def test_overall_realistic_mix_within_two_bytes_per_sample():
    sizes = [len(encode(t, v)) for t, v in _datasets().values()]
    assert sum(sizes) / (N * len(sizes)) <= 2.0


def _bench_module():
    path = pathlib.Path(__file__).resolve().parents[2] / "bench" / "bytes_per_sample.py"
    spec = importlib.util.spec_from_file_location("bench_bytes_per_sample", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prometheus_xor_reference_hand_computed():
    bench = _bench_module()
    # t0 varint(zigzag 1000)=2 bytes + 64 value bits; then uvarint(1000)=2 bytes + '0' (same value);
    # then '0' (dod 0) + XOR(1.0, 2.0)=0x7FF0...: '11' + 5 + 6 + 11 significant bits = 24 -> 122 bits.
    ts = np.array([1000, 2000, 3000], np.int64)
    assert bench.prometheus_xor_bytes(ts, np.array([1.0, 1.0, 2.0])) == 2 + (122 + 7) // 8
    # A repeated window: second change reuses leading/trailing: '10' + 11 bits.
    ts4 = np.array([1000, 2000, 3000, 4000], np.int64)
    assert bench.prometheus_xor_bytes(ts4, np.array([1.0, 1.0, 2.0, 1.0])) == 2 + (122 + 1 + 13 + 7) // 8


def test_fewer_bytes_than_prometheus_xor_chunks():
    bench = _bench_module()
    for name, (ts, values) in _datasets().items():
        ours = len(encode(ts, values))
        prom = bench.prometheus_xor_bytes(ts, values)
        assert ours < prom, (name, ours, prom)
