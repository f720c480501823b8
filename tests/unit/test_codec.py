"""storage.codec: bit-exact round trips, input validation, corrupt blobs, and bytes per sample."""
from __future__ import annotations

import importlib.util
import pathlib
import threading

import numpy as np
import pytest
import zstandard

from storage import codec
from storage.codec import (
    CodecError, decode, decode_columns, decode_many, decode_many_columns, encode, encode_columns,
)

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
    assert isinstance(blob, bytes) and blob[0] in (1, codec.VERSION)
    (t3, v3), = decode_many([blob])
    for t2, v2 in (decode(blob), (t3, v3)):
        assert t2.dtype == np.int64 and v2.dtype == np.float64
        np.testing.assert_array_equal(t2, np.asarray(ts, dtype=np.int64))
        np.testing.assert_array_equal(bits(v2), bits(np.asarray(values, dtype=np.float64)))
    return blob


def rollup_sums(n: int, seed: int = 0, per: int = 6) -> np.ndarray:
    """Sums of `per` 2-decimal samples, added left to right as a rollup does: about a third are not the
    2-decimal number they stand for (0.1 + 0.2 is 0.30000000000000004)."""
    rng = np.random.default_rng(seed)
    raw = np.round(50 + np.cumsum(rng.normal(0, 0.5, (per, n)), axis=1), 2)
    total = raw[0].copy()
    for row in raw[1:]:
        total = total + row
    return total


def assert_same_decoding(blobs) -> None:
    """decode_many_columns of the list matches decode_columns of each blob, bit for bit."""
    many = decode_many_columns(blobs)
    assert len(many) == len(blobs)
    for blob, (ts, cols) in zip(blobs, many):
        t1, c1 = decode_columns(blob)
        assert ts.dtype == np.int64 and len(cols) == len(c1)
        np.testing.assert_array_equal(ts, t1)
        for a, b in zip(cols, c1):
            assert a.dtype == np.float64
            np.testing.assert_array_equal(bits(a), bits(b))


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


# --- version 1 blobs: written by the format's first encoder, they must decode bit for bit forever ----------

def _golden_cases():
    """The inputs of GOLDEN_V1, from integer arithmetic and single IEEE operations only (no platform drift)."""
    i = np.arange(64, dtype=np.int64)
    reg = T0 + i * 10_000
    clean = (2000 + (i * 37) % 101 - 50) / 100.0
    g = clean.copy()
    g[10] = STALE_NAN
    h = (i * 2654435761) % 4294967291
    keep = i[(i % 9) != 4]
    j = np.arange(200, dtype=np.uint64)
    z = j * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    k = np.arange(200, dtype=np.int64)
    return {
        "int_2dp_regular_stale": (reg, [g]),                                     # INT order 1, k=2, exception
        "int_counter_regular": (reg, [np.cumsum((i * i) % 7 + 1000).astype(np.float64)]),       # order 2
        "int_common_step": (reg, [4096.0 * ((i * 3) % 17)]),                     # g > 1
        "const": (reg, [np.full(64, 3.5)]),
        "const_nan_payload": (reg[:5], [np.full(5, STALE_NAN)]),
        "ts_delta_graphite": (T0 + keep * 1000, [(keep % 5).astype(np.float64)]),  # DELTA ts, INT order 0
        "ts_grid_jitter": (reg + np.where(h % 3 == 0, h % 121 - 60, 0), [np.full(64, 1.0)]),   # GRID ts
        "int_two_planes": (reg, [((h % 60000) - 30000) / 100.0]),                 # 2 raw byte planes
        "ts_dod": (T0 + i * i * 3 + i * 1000, [np.full(64, 0.0)]),               # DOD ts
        "random_bits": (T0 + k[:40] * 10_000, [z[:40].view(np.float64)]),       # XOR, raw planes
        "raw_mixed": (T0 + k[:64] * 10_000, [np.where(j % 3 == 0, u * 1000, u)[:64]]),   # RAW
        "float_walk": (T0 + k * 10_000, [100.0 + np.cumsum(((k * 7919) % 1000) / 3.0 - 166.5)]),  # BITDELTA
        "xor_alternating": (reg, [np.where(i % 2 == 0, 1.0 / 3.0, 2.0 / 3.0)]),  # XOR, zstd planes
        "columns": (T0 + i * 60_000, [clean * 6 + 0.1, np.full(64, 6.0), g, np.full(64, -0.0)]),
        "single": (np.array([T0]), [np.array([-1.5])]),
        "empty": (np.array([], np.int64), [np.array([])]),
        "int_order2_decimal": (reg, [(100000 + i * i * 3) / 1000.0]),             # order 2, k=3
    }


GOLDEN_V1 = {
    "int_2dp_regular_stale": (
        "0140010080ccc9fdf962904e04120101000b0800020000000000000000000000f0007fbc1e01011a0000ad0000284a4a"
        "7f00350600a00320000cac14e052b0831b02"
    ),
    "int_counter_regular": "0140010080ccc9fdf962904e042000d00fd20f01011200006d000038060300040501020100d4598c",
    "int_common_step": "0140010080ccc9fdf962904e041000008020011700009500004006060606061b061b03006992e0d2d70246",
    "const": "0140010080ccc9fdf962904e000000000000000c40",
    "const_nan_payload": "0105010080ccc9fdf962904e00020000000000f07f",
    "ts_delta_graphite": (
        "0139010180ccc9fdf962e807011200006d00002801010102010200ae1880012d04000001012600000d0100b000020406"
        "00020406080002040806040200080002040605040440c0010604962f"
    ),
    "ts_grid_jitter": (
        "0140010388cbc9fdf962904e01390000a50100740278c478967868783a787878789078627834780678ca787878782e78"
        "0078c4789678be5c7878787804003f5340839fee46004f00000000000000f03f"
    ),
    "int_two_planes": (
        "0140010080ccc9fdf962904e0402000102005f0211503c28354918fb0f523ed53378e5f90d54bf1d8e7ae3f7b4a9bda4"
        "907ce1cab6a7bba69281e0cc91a506a86b7fe2ce8f1c085569f8e42f321e0a5367fa00ea2d2dea903687e136237e993f"
        "1ad8a21a74cf4811cfab516bc5b40862b45a00bcbd6359b3630950c66c50aad01247a1751ba1d97f3e987e2435e2882e"
        "8fe92d"
    ),
    "ts_dod": "0140010280ccc9fdf962eb0706010d00004500001002020100910016000000000000000000",
    "random_bits": (
        "0128010080ccc9fdf962904e02080000af5bbba377710bddff65afff8d5436b2fed3e2c87bda672625127b1006643d6a"
        "9599de3440227e0000cda820c4f5d69099213a8de30572e4cd926d30ca1b6fde4c113d7ce6b65b7d47b87f03ceabe072"
        "00001da4b045e4d63b53df453deae081f6d14f2deed54f2eef18920c6fc2bd11be178779874c0be9d600007bda21f223"
        "256bd688770a39e5789897e25ea8d94a0815768e2e49efc9bb7ddae15848ca12357f0000395372b0c266b284aa1c513d"
        "df6a4381cb4cb08b00b94b0f02254d091ed19430d831286a14c2fe0000a836c3e5311605896b30a4ca86d57a30bd95fe"
        "64edea7b9b6b83acb003804f67ddc5597bf6b8d100002058bc4fb2f24906615dc6adf23e51f592e6a97c1b02f6bc3522"
        "e66a22a23b1400250c371d42250000e28c68fee3487fe9fbcd96a744083b31f9bef7ec037244b9894efa29e24c1fc63b"
        "09d7bb287d52"
    ),
    "raw_mixed": (
        "0140010080ccc9fdf962904e01080000b958229070ea98d567964e767b55f0b0844fa4906abe45dc0e8997748c2d6800"
        "c300b888a8a074445267e0e84d233c527ca8f7263c1678e22a720e4b8bfc4a0000636e2449a870a2221fd12ca7170798"
        "e3544fc848b504b93aa869ad788b5e5e72566b339676194721f21889199f4d1f6068a725ca1bbb0889365779f6ab2e57"
        "00002fa8b40e518a0f5970864fd8fcb36ff21db9416b4143215d9e3b095f7626ce544744eb3460dae6c9940ac0707961"
        "bbebec2724d6ea8740501d109910a3c7b90000079aa7156a545f67de11377e07aa57f29790d0a5fd523b953a5e69adb5"
        "195def2cdc834658d1be9c8af32ca950ac58de75f8ab5bb9c9ac79994b1bd8052aba000015270b7789364d820b09bb46"
        "34eec76760077451ea71beec80d077a713862a9ae9b48eafbe203d7e68934c15d3cc761e85a9d4d175e9582d8f91afee"
        "281c4f0000449e6f11397541b0b6775fc8c4c321974ae73303bb20be93af6bcf345e172dbe65604aba5f1ee1ea9ddb72"
        "c0e79d42a6d159d0e44cfb2a6382e8946baf7c460000ecdb3aefbb74c6e86eeed987e0e186e0df87caeb8ae5ed74ebe2"
        "79d0e48deecb4895ea79d0ce7ad3e0529fb288edcf79ddc18bebc02de9e367e9ee87edd56e0f000055000020003f3f40"
        "0100517244"
    ),
    "float_walk": (
        "01c801010080ccc9fdf962904e0308bf010000d50500c40aff570058aaaaac5355555182cc7bc750505656aba9a5a3dc"
        "b8f7eff8fc0000fffffffbf7d018af7846565656a9a9a3201cb0af4be79eaaaa55534b9cf05c0b9090f800fcfffbfff7"
        "7078045763d8a0aca44b559a4808acaf0b9fc7e854abef48d8085c030730f0f800fffff7cf4f08045703b7f884ac9717"
        "6fb404545505b7e77fa857efff6c04ac0307efeff0f00804a9015f904058371004b0479f28574f9f00b02058a71074b0"
        "045455050400a008500538c540ad92027400007d0300d2071318c025c301d5feff80b52df9ff0fb6d2da4edbf2ff9b56"
        "b753be2204f413c6a63bc840f0c539fa62564a0e8350095090afcce4aa7b304cafaca429de4dbf14a523493bdd0e7291"
        "b6f42f695f0d00400eb805d2f94e9c5e427bb0caa474206a88a388a16a70a8bbb8e60d2b754b000035020022450707e0"
        "0f10620864291496a09414b60410ba5d28c94319c34fe969951a1d1000800b14109901b8600e04467ad80b87802d932a"
        "db15b94791a2aa00dce050c7706d1e56ea4b000035020022450707e00f10620864291496a09414b60410ba5d28c94319"
        "c34fe969951a1d1000800b14109901b8600e04467ad80b87802d932adb15b94791a2aa00dce050c7706d1e56ea4b0000"
        "35020022450707e00f10620864291496a09414b60410ba5d28c94319c34fe969951a1d1000800b14109901b8600e0446"
        "7ad80b87802d932adb15b94791a2aa00dce050c7706d1e56eaba010000ad0500824c2c29b0a539c743a01f14f8c11e90"
        "1fbaa000625021e9195f54a77285f4623d24f4089cae7b63942d212303afe0a26487eeee2fa1b3658f62a1bb848e188d"
        "1cc77d9a2c8861206b9adc1d27a2586cc2eea5cc276b9326cfdd1d3acbe80a4f22127c09e11c404bcb2ee581b6ea7e87"
        "7e284944726e06a3f9993a5e423fbc965dca2240a15b75539599aa16e2793910cdffd144834a217240ba140004020571"
        "b13b2bbf014b3418c75b9b67c734129821a25c0500005efc291307030002060e1c9a755fb81e10050101040f1ca56da8"
        "601a0c06020003071023da4932ed320e0801050c1cae69212050d21f0a0302091cad6b2126936a160c0400050e1b977b"
        "221c32e82e100208179e762415142152d51c080514838f25171b30e6330f060007113cd32e19141e3cfa25030f5f9428"
        "1b13131a26b95f11093cc2301d121526f617190600061a79982515111b2971790814e44c2218131318224ce414087971"
        "291b11152598791a0600061917f62615121d30c23c09115fb9261a13131b390000a50100387fff00ff0000ff13009122"
        "70d4038021a8012418e08a80981cd4942054049e0e80032007428004a25a001cbc7000b30c020c01"
    ),
    "xor_alternating": (
        "0140010080ccc9fdf962904e02080d000045000010550001009300160d000045000010550001009300160d0000450000"
        "10550001009300160d000045000010550001009300160d000045000010550001009300160d0000450000105500010093"
        "00160d000045000010d53001009300160d0000450000103f000100930016"
    ),
    "columns": (
        "0140040080ccc9fdf962e0d40303083c0000bd01008402cc5c5ce95a5ceb5e5eeb5ceb5a5eeb5c5ceb5e5aeb5ae95c5c"
        "ebe7585eeb5aeb5e5ceb5c5ce95aeb05002e022080cf23c0ea334c261b0000b5000030cc8f8f518f510600a00320e062"
        "0028b842829923021b0000b5000030ccc2c2b8c2b80600a00320e0620028b842829923021b0000b5000030ccf5f51ef5"
        "1e0600a00320e0620028b842829923021b0000b5000030cc28288528850600a00320e0620028b842829923021b0000b5"
        "0000308c1c1ceb1ceb0600a00320e0620028b842829923020d000045000010ba0101009300160d000045000010800001"
        "0093001600000000000000184004120101000b0800020000000000000000000000f0007fbc1e01011a0000ad0000284a"
        "4a7f00350600a00320000cac14e052b0831b02000000000000000080"
    ),
    "single": "0101010080ccc9fdf96200000000000000f8bf",
    "empty": "010001",
    "int_order2_decimal": "0140010080ccc9fdf962904e042300c09a0c0606010d00004500001002020100910016",
}



def _golden_v2_case():
    i = np.arange(64, dtype=np.int64)
    total = (1000 + (i * 7) % 97) / 100.0
    for j in range(1, 6):                               # a rollup's sum of 6 two-decimal samples
        total = total + (1000 + (i * 7 + j * 13) % 97 - 40 * j) / 100.0
    total[20] = STALE_NAN
    negated = (total.view(np.uint64) ^ np.uint64(1 << 63)).view(np.float64)
    return T0 + i * 60_000, [total, np.full(64, 6.0), negated]


GOLDEN_V2_NEAR = (
    "0240030080ccc9fdf962e0d4030512010100150800020000000000000000000000f0007fb65701012a00002d01009854"
    "5454546d6d546d545454546d00196d546d5407002000200006000231077819a8c16901012a00002d0100800000020002"
    "000202010000010000020208003a175adab52954660e9bf9ae0c06410280050000000000000018400512010100150800"
    "020000000000000000000000f000ffb55701012a00002d010098535353536e6e536e535353536e001a6e536e53070020"
    "00200006000231077819a8c16901012a00002d0100800000020002000202010000010000020208003a175adab5295466"
    "0e9bf9ae0c0641028005"
)


@pytest.mark.parametrize("name", sorted(GOLDEN_V1))
def test_version_1_golden_blobs_decode(name):
    blob = bytes.fromhex(GOLDEN_V1[name])
    assert blob[0] == 1
    ts, cols = _golden_cases()[name]
    for t2, c2 in (decode_columns(blob), decode_many_columns([blob, blob])[1]):
        np.testing.assert_array_equal(t2, ts)
        assert t2.dtype == np.int64 and len(c2) == len(cols)
        for a, b in zip(c2, cols):
            np.testing.assert_array_equal(bits(a), bits(b))


def test_version_1_golden_blobs_decode_together():
    assert_same_decoding([bytes.fromhex(h) for h in GOLDEN_V1.values()] * 3)


def test_chunks_without_near_decimals_are_still_written_as_version_1():
    for name, (ts, cols) in _golden_cases().items():
        blob = encode_columns(ts, cols)
        # "columns" starts with 6 * x + 0.1: decimals a few ulps off, now NEAR in version 2, and smaller
        assert blob[0] == (2 if name == "columns" else 1), name
        assert len(blob) <= len(bytes.fromhex(GOLDEN_V1[name])), name


# --- format version 2: NEAR (decimals off by a few ulps) ----------------------------------------------------

def test_rollup_sums_take_the_near_encoding():
    ts = regular_ts(N, step=60_000)
    sums = rollup_sums(N)
    inexact = 1 - codec._scaled(sums, 2)[1].mean()
    assert 0.2 < inexact < 0.8                          # too many for INT's exceptions (at most 1/8)
    blob = encode_columns(ts, [sums, np.full(N, 6.0)])
    assert blob[0] == 2                                 # version 2 is written only for NEAR sections
    t2, (v2, cnt) = decode_columns(blob)
    np.testing.assert_array_equal(t2, ts)
    np.testing.assert_array_equal(bits(v2), bits(sums))
    np.testing.assert_array_equal(cnt, np.full(N, 6.0))
    assert_same_decoding([blob])
    # As float bits (all version 1 has for them) these sums take over 4 bytes each.
    assert len(blob) / N < 2.0, len(blob) / N


@pytest.mark.parametrize("case", ["negative", "stale", "crossing_zero", "integers", "order2", "step"])
def test_near_round_trips(case):
    ts = regular_ts(N, step=60_000)
    sums = rollup_sums(N, seed=11)
    if case == "negative":
        sums = -sums
    elif case == "stale":
        sums[[0, 5, 700]] = STALE_NAN
    elif case == "crossing_zero":
        sums = rollup_sums(N, seed=12) - 300.0          # some sums near 0: 5.5e-17 instead of 0.0
    elif case == "integers":
        sums = np.arange(N) * 0.1 * 10                    # 3 * 0.1 * 10 is 3.0000000000000004
    elif case == "order2":
        sums = 1000 + np.arange(N) * 0.07 + 0.1           # a ramp: second differences vanish
    elif case == "step":
        sums = rollup_sums(N, seed=13) * 4096
    blob = assert_round_trip(ts, sums)
    assert blob[0] == 2
    assert_same_decoding([blob, blob])


def test_near_is_not_used_for_exact_decimals_or_random_floats():
    rng = np.random.default_rng(14)
    for values in (np.round(rng.normal(0, 50, N), 2), rng.normal(size=N), np.cumsum(rng.normal(size=N))):
        assert encode(regular_ts(), values)[0] == 1


def test_version_2_golden_blob():
    """A NEAR chunk as this version writes it: later encoders may choose differently, decoders must agree."""
    ts, cols = decode_columns(bytes.fromhex(GOLDEN_V2_NEAR))
    expected_ts, expected_cols = _golden_v2_case()
    np.testing.assert_array_equal(ts, expected_ts)
    for a, b in zip(cols, expected_cols):
        np.testing.assert_array_equal(bits(a), bits(b))


# --- decode_many ----------------------------------------------------------------------------------------------

def _mixed_blobs() -> list[bytes]:
    """One of every kind decode_many batches (INT of 1- and 2-byte residuals, orders 0-2, common steps,
    exceptions, NEAR) and of every kind it hands to the one-chunk decoder, at a few lengths."""
    rng = np.random.default_rng(15)
    blobs = []
    for n in (2, 3, 50, N):
        ts = regular_ts(n)
        walk = np.cumsum(rng.normal(0, 1, n))
        stale = np.round(20 + walk, 2)
        stale[n // 2] = STALE_NAN
        blobs += [
            encode(ts, np.round(20 + walk * 0.01, 2)),                          # 1-byte residuals
            encode(ts, np.round(20 + walk * 5, 2)),                             # 2-byte residuals
            encode(ts, np.round(20 + walk * 5000, 2)),                          # wider: decoded alone
            encode(ts, stale),                                                  # exception
            encode(ts, rng.integers(0, 100, n).astype(float)),                 # order 0
            encode(ts, np.cumsum(np.full(n, 7.0)) + 1e6),                       # order 2, zero residuals
            encode(ts, np.cumsum(rng.poisson(3, n)).astype(float) * 4096),      # common step
            encode(ts, np.cumsum(rng.integers(0, 5, n)).astype(float) * 10**6),  # common step, order 2
            encode(ts, rng.normal(size=n)),                                     # float bits
            encode(ts, np.full(n, 2.5)),                                        # CONST
            encode(ts + rng.integers(0, 3, n), np.round(walk, 1)),             # irregular ts
            encode_columns(ts, [rollup_sums(n, seed=n), np.full(n, 6.0), np.round(walk, 2)]),   # NEAR
            encode_columns(ts, [-rollup_sums(n, seed=n + 1) * 4096]),          # NEAR, common step
            encode(ts, (stale.view(np.int64) + rng.integers(-900, 900, n)).view(np.float64)),  # NEAR, wide
            encode_columns(ts, []),
        ]
    return blobs + [encode([], []), encode_columns([], [[], []])]


def test_decode_many_matches_decode():
    blobs = _mixed_blobs()
    assert_same_decoding(blobs)
    assert_same_decoding(blobs[::-1])
    assert_same_decoding(blobs * 7)                     # across batch boundaries
    assert_same_decoding([bytearray(b) for b in blobs[:5]] + [memoryview(b) for b in blobs[5:10]])
    assert decode_many_columns([]) == [] and decode_many([]) == []


def test_decode_many_single_columns():
    ts = regular_ts()
    values = [np.round(np.arange(N) * k / 7, 2) for k in range(5)]
    out = decode_many(encode(ts, v) for v in values)
    for (t2, v2), v in zip(out, values):
        np.testing.assert_array_equal(t2, ts)
        np.testing.assert_array_equal(bits(v2), bits(v))
    with pytest.raises(CodecError):
        decode_many([encode(ts, values[0]), encode_columns(ts, values[:2])])


def test_decode_many_errors():
    good = encode(regular_ts(), np.round(np.arange(N) / 3, 2))
    with pytest.raises(CodecError):
        decode_many([good, good[:-1], good])
    with pytest.raises(CodecError):
        decode_many([good, b"\x09" + good[1:]])
    with pytest.raises(TypeError):
        decode_many([good, 12345])


def test_decoded_arrays_are_independent():
    """Cached timestamps and shared batch buffers never leak between results."""
    blob = encode(regular_ts(), np.round(np.arange(N) / 3, 2))
    for decoder in (lambda bs: [decode(b) for b in bs], decode_many):
        (t1, v1), (t2, v2) = decoder([blob, blob])
        t1 += 1
        v1[:] = 0.0
        np.testing.assert_array_equal(t2, regular_ts())
        np.testing.assert_array_equal(decode(blob)[0], regular_ts())
        assert v2[1] == decode(blob)[1][1] != 0.0


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
        encode_columns(ts[:60], [rollup_sums(60, seed=3), np.full(60, 6.0)]),           # version 2: NEAR
    ]


def test_every_truncation_raises():
    for blob in _sample_blobs():
        for cut in range(len(blob)):
            with pytest.raises(CodecError):
                decode_columns(blob[:cut])
            with pytest.raises(CodecError):
                decode_many_columns([blob, blob[:cut]])


def test_trailing_garbage_raises():
    for blob in _sample_blobs():
        with pytest.raises(CodecError):
            decode_columns(blob + b"\x00")
        with pytest.raises(CodecError):
            decode_columns(blob + b"\x01\x02\x03")
        with pytest.raises(CodecError):
            decode_many_columns([blob, blob + b"\x00"])


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
                with pytest.raises(CodecError):                 # the batch decoder agrees
                    decode_many_columns([blob, bytes(b)])
                continue
            assert_same_decoding([blob, bytes(b)])
            # Whatever survives must still be a well-formed chunk.
            assert ts.dtype == np.int64 and (np.diff(ts) > 0).all()
            assert all(c.dtype == np.float64 and c.size == ts.size for c in cols)
            assert ts.size <= codec.MAX_SAMPLES


@pytest.mark.parametrize("blob", [
    b"",
    b"\x00",
    b"\x03\x00\x00",                                       # unknown version
    b"\xff\x00\x00",
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
    b"\x01\x02\x01\x00\x00\x14\x05\x00\x00\x01\x00\x00",   # NEAR in a version-1 chunk
    b"\x02\x02\x01\x00\x00\x14\x05\x00\x00\x01\x00",       # NEAR without its offsets
    b"\x02\x02\x01\x00\x00\x14\x06\x00",                   # unknown value encoding in version 2
])
def test_malformed_blobs_raise(blob):
    with pytest.raises(CodecError):
        decode_columns(blob)
    with pytest.raises(CodecError):
        decode_many_columns([blob])


def test_smallest_version_2_chunks():
    ts, cols = decode_columns(b"\x02\x00\x00")
    assert ts.size == 0 and cols == []
    ts, v = decode(b"\x02\x02\x01\x00\x00\x14\x05\x00\x00\x01\x00\x00")   # NEAR, all zero
    np.testing.assert_array_equal(ts, [0, 20])
    np.testing.assert_array_equal(bits(v), [0, 0])


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
                for t2, v2 in (decode(blob), *decode_many([blob, blob])):
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
