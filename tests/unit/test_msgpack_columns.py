"""The vectorised rt-metric-binary reader (graphite_api.msgpack_columns) against msgpack itself.

Every payload is decoded twice: through `decode_metrics` (which takes the vectorised reader when the payload
has its shape) and through the plain msgpack path. The two must agree on everything, errors included.
"""
import random
import struct

import msgpack
import numpy as np
import pytest

from graphite_api import ingest
from graphite_api.ingest import IngestError, decode_metrics, metric_id
from graphite_api.msgpack_columns import read_columns

BINARY = "rt-metric-binary"


@pytest.fixture(autouse=True)
def columns_for_small_batches(monkeypatch):
    """decode_metrics reads even one-metric payloads by columns here (in production only large batches)."""
    monkeypatch.setattr(ingest, "_COLUMNS_MIN_RECORDS", 1)


def crng(name="a.b", value=1.5, time_=1700000000, interval=10, tags=(), unit="unknown", mtype="gauge"):
    tags = sorted(tags)
    return {"Id": metric_id(1, name, unit, mtype, interval, tags), "OrgId": 1, "Name": name,
            "Interval": interval, "Value": value, "Unit": unit, "Time": time_, "Mtype": mtype, "Tags": tags}


def outcome(fn, payload):
    try:
        b = fn(payload)
    except IngestError as e:
        return ("error", str(e))
    return (b.names, b.ts.tolist(), b.values.tobytes(), b.intervals.tolist(), b.units, b.mtypes, b.invalid,
            b.validation_errors)


def both(payload: bytes):
    """(outcome through decode_metrics, outcome through msgpack only)."""
    fast = outcome(lambda p: decode_metrics(b"\x01" + bytes(8) + p, BINARY), payload)
    slow = outcome(ingest._decode_msgpack, payload)
    return fast, slow


def assert_same(payload: bytes, columnar: bool | None = None):
    fast, slow = both(payload)
    assert fast == slow
    if columnar is not None:
        assert (read_columns(payload) is not None) == columnar
    return fast


def test_carbon_relay_ng_batch_is_read_by_columns():
    maps = [crng(f"host.{i}.cpu", i * 0.25, 1700000000 + i, tags=[f"dc=d{i % 3}"] if i % 2 else [])
            for i in range(500)]
    payload = msgpack.packb(maps)
    cols = read_columns(payload)
    assert cols is not None
    assert cols.values.tolist() == [i * 0.25 for i in range(500)]
    assert cols.times.tolist() == [1700000000 + i for i in range(500)]
    assert cols.starts[0] == 3 and cols.ends[-1] == len(payload)
    r = assert_same(payload, columnar=True)
    assert r[0][:2] == ["host.0.cpu", "host.1.cpu;dc=d1"]


def test_identity_ignores_value_and_time_only():
    a, b, c = (read_columns(msgpack.packb([m])) for m in (crng("x", 1.0, 5), crng("x", 2.0, 77),
                                                            crng("y", 1.0, 5)))
    assert a.identities == b.identities != c.identities
    # a fixint time and a 5-byte time clear to different identities (different layouts), never to one
    d = read_columns(msgpack.packb([crng("x", 1.0, 5)]))
    e = read_columns(msgpack.packb([crng("x", 1.0, 100000)]))
    assert d.identities != e.identities


@pytest.mark.parametrize("time_", [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1,
                                   -1, -32, -33, -128, -129, -32768, -32769, -2 ** 31, -2 ** 31 - 1, -2 ** 63])
def test_every_integer_width_for_time(time_):
    payload = msgpack.packb([crng("a", 1.0, time_), crng("b", 2.0, 17)])
    assert assert_same(payload, columnar=True)[1] == [time_, 17]


def test_signed_encodings_of_positive_times_as_go_writes_them():
    # Go's msgp writes a positive int64 with the signed markers (0xd2 int32, 0xd3 int64)
    base = msgpack.packb(crng("a", 1.0, 0))
    at = base.index(b"\xa4Time") + 5
    for marker, raw in ((b"\xd1", struct.pack(">h", 300)), (b"\xd2", struct.pack(">i", 1700000000)),
                        (b"\xd3", struct.pack(">q", 1700000000)), (b"\xcf", struct.pack(">Q", 12))):
        payload = b"\x91" + base[:at] + marker + raw + base[at + 1:]
        assert assert_same(payload, columnar=True)[1] == [struct.unpack(">q", raw.rjust(8, b"\0"))[0]
                                                           if marker != b"\xd1" else 300]


def test_uint64_time_beyond_int64_falls_back_and_is_invalid_input():
    payload = msgpack.packb([crng("a"), crng("b", time_=2 ** 64 - 1)])
    r = assert_same(payload, columnar=False)
    assert r[0] == ["a"] and r[7] == {"invalid input": {"Count": 1, "ExampleIds": [1]}}


def test_float32_and_special_values():
    base = msgpack.packb(crng("a", 0.0))
    at = base.index(b"\xa5Value") + 6
    f32 = b"\x92" + base[:at] + b"\xca" + struct.pack(">f", 0.5) + base[at + 9:] + base
    r = assert_same(f32, columnar=True)
    assert r[2] == np.array([0.5, 0.0]).tobytes()
    specials = [float("nan"), float("inf"), -float("inf"), -0.0, 5e-324, 1.7976931348623157e308]
    assert_same(msgpack.packb([crng(f"s{i}", v) for i, v in enumerate(specials)]), columnar=True)


@pytest.mark.parametrize("value", [3, "1.5", None, True, [1.0]])
def test_non_float_value_gets_msgpacks_error(value):
    payload = msgpack.packb([crng("a"), dict(crng("b"), Value=value)])
    r = assert_same(payload, columnar=False)
    assert r[0] == "error" and "metric 1: msgpack Value is" in r[1]


@pytest.mark.parametrize("maps", [
    [crng("a"), {**crng("b"), "Extra": 1}],                                # different key sets
    [crng("a"), dict(reversed(list(crng("b").items())))],                  # different key order
    [{k: v for k, v in crng("a").items() if k != "Time"}],                 # missing Time: Go's zero value
    [{k: v for k, v in crng("a").items() if k != "Value"}],
    [dict(crng("a"), Tags=[["nested"]])],
    [dict(crng("a"), Tags={"k": "v"})],
    [dict(crng("a"), Tags=[f"t{i}=v" for i in range(100)])],              # longer than the vectorised limit
    [dict(crng("a"), Time=1.5e9)],                                         # float time: truncated by msgpack's path
])
def test_other_shapes_fall_back_with_the_same_result(maps):
    assert_same(msgpack.packb(maps, use_bin_type=True), columnar=False)


@pytest.mark.parametrize("maps", [
    [dict(crng("a"), Name="x" * 40), dict(crng("b"), Name="y" * 300), dict(crng("c"), Name="z" * 70000)],
    [dict(crng("a"), Tags=[f"t{i}=v" for i in range(20)]), crng("b")],    # array16 not needed; fixarray mix
    [dict(crng("a"), Tags=[f"t{i}=v" for i in range(17)]), dict(crng("b"), Tags=None)],   # array16 and nil
    [dict(crng("a"), Unit=None, Mtype=7, Interval=-5), dict(crng("b"), Interval=2 ** 40)],
    [dict(crng("a"), Name=b"bin-name"), dict(crng("b"), Name=b"x.y")],
    [dict(crng("é.ü"), Tags=["k=vé"]), crng("a..b."), crng(""), dict(crng("a"), Interval=0)],
])
def test_varied_fields_in_one_layout_are_read_by_columns(maps):
    assert_same(msgpack.packb(maps, use_bin_type=True), columnar=True)


def fixstr(b):
    return bytes((0xA0 | len(b),)) + b


def test_invalid_utf8_strings_are_per_metric_invalid():
    good = msgpack.packb(crng("ok"))
    bad = good.replace(fixstr(b"ok"), fixstr(b"o\xff"))
    r = assert_same(b"\x92" + good + bad, columnar=True)
    assert r[0] == ["ok"] and r[7] == {"invalid input": {"Count": 1, "ExampleIds": [1]}}


def test_record_pattern_inside_a_string_falls_back():
    first = msgpack.packb(crng("a"))
    # a name holding the bytes of a record's map header and first key: one guessed record too many
    trick = msgpack.packb(crng("nXXXX")).replace(fixstr(b"nXXXX"), fixstr(b"n" + first[:4]))
    r = assert_same(b"\x93" + first + trick + msgpack.packb(crng("b")), columnar=False)
    assert r[0] == ["a", "b"] and r[6] == 1              # that name is not valid UTF-8: invalid input


@pytest.mark.parametrize("payload", [
    msgpack.packb([crng("a")]) + b"\x00",               # trailing bytes
    msgpack.packb([crng("a")])[:-1],                    # truncated
    b"\x92" + msgpack.packb(crng("a")),                 # array header says two, one follows
    b"\x90", b"\x80", b"", b"\x91", b"\x91\x89",
])
def test_malformed_payloads_get_msgpacks_error(payload):
    r = assert_same(payload, columnar=False)
    assert r[0] == "error" or r[:2] == ([], [])


def test_random_mutations_agree_with_msgpack():
    rng = random.Random(1234)
    maps = [crng(f"m.{i}", i + 0.5, 1700000000 + i * 10, tags=[f"k={i % 3}"] * (i % 2)) for i in range(12)]
    base = msgpack.packb(maps)
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            kind, at = rng.random(), rng.randrange(len(data))
            if kind < 0.6:
                data[at] = rng.randrange(256)
            elif kind < 0.8:
                del data[at]
            else:
                data.insert(at, rng.randrange(256))
        assert_same(bytes(data))


def test_cache_hits_agree_across_batches():
    maps = [crng(f"c.{i}", float(i), 100 + i, interval=10 if i % 4 else 0) for i in range(50)]
    first = assert_same(msgpack.packb(maps), columnar=True)
    again = [dict(m, Value=m["Value"] + 1, Time=m["Time"] + 1000) for m in maps]
    second = assert_same(msgpack.packb(again), columnar=True)
    assert first[0] == second[0] and first[6:] == second[6:]
    assert second[1] == [t + 1000 for t in first[1]]


def test_record_cache_bounded(monkeypatch):
    monkeypatch.setattr(ingest, "_RECORD_CACHE_MAX", 30)
    ingest._record_cache.clear()
    for r in range(4):
        b = decode_metrics(b"\x01" + bytes(8) + msgpack.packb([crng(f"r{r}.{i}") for i in range(20)]), BINARY)
        assert b.published == 20 and len(ingest._record_cache) <= 30


def test_small_batches_skip_the_columnar_reader(monkeypatch):
    monkeypatch.setattr(ingest, "_COLUMNS_MIN_RECORDS", 3)
    calls = []
    real = ingest.read_columns
    monkeypatch.setattr(ingest, "read_columns", lambda *a: calls.append(real(*a)) or calls[-1])
    for n in (2, 3):
        assert decode_metrics(b"\x01" + bytes(8) + msgpack.packb([crng(f"s{i}") for i in range(n)]),
                              BINARY).published == n
    assert [c is not None for c in calls] == [False, True]
