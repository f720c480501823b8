"""POST /metrics body decoding and validation (graphite_api.ingest)."""
import hashlib
import json
import struct
import time

import cramjam
import google_crc32c
import msgpack
import numpy as np
import orjson
import pytest
import snappy

from graphite_api import ingest
from graphite_api.ingest import (IngestError, decode_metrics, encode_metrics_binary, encode_metrics_snappy,
                                 frame_snappy, metric_id, unframe_snappy)

SNAPPY = "rt-metric-binary-snappy"
BINARY = "rt-metric-binary"
JSON = "application/json"
STREAM_ID = bytes.fromhex("ff060000734e61507059")


def crng_map(name="a.b.c", value=1.5, time_=1700000000, interval=10, tags=(), unit="unknown", mtype="gauge"):
    """One MetricData exactly as carbon-relay-ng's Go encoder writes it: 9 CamelCase keys in field order."""
    tags = sorted(tags)
    return {"Id": metric_id(1, name, unit, mtype, interval, tags), "OrgId": 1, "Name": name,
            "Interval": interval, "Value": value, "Unit": unit, "Time": time_, "Mtype": mtype, "Tags": tags}


def binary(maps, fmt=1):
    payload = msgpack.packb(maps, use_bin_type=True) if fmt == 1 else orjson.dumps(maps)
    return bytes((fmt,)) + struct.pack(">q", 0) + payload


def masked_crc(data):
    c = google_crc32c.value(bytes(data))
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def chunk(ctype, data):
    return bytes((ctype,)) + len(data).to_bytes(3, "little") + data


def compressed_chunk(raw):
    return chunk(0x00, masked_crc(raw).to_bytes(4, "little") + bytes(cramjam.snappy.compress_raw(raw)))


def uncompressed_chunk(raw):
    return chunk(0x01, masked_crc(raw).to_bytes(4, "little") + raw)


def jbody(metrics):
    return json.dumps(metrics).encode()   # stdlib: also writes ints beyond 64 bits


def one(**kw):
    m = {"name": "test.metric", "interval": 10, "value": 12.345, "time": 1534685580}
    m.update(kw)
    return m


def decode_one(**kw):
    return decode_metrics(jbody([one(**kw)]), JSON)


# --- content types ------------------------------------------------------------------------------------------

def test_documented_json_example():
    body = b'[{"name":"test.metric","interval":10,"value":12.345,"time":1534685580,"tags":["foo=bar"]}]'
    b = decode_metrics(body, JSON)
    assert b.names == ["test.metric;foo=bar"]
    assert b.ts.dtype == np.int64 and b.ts.tolist() == [1534685580]
    assert b.values.dtype == np.float64 and b.values.tolist() == [12.345]
    assert b.intervals.dtype == np.int32 and b.intervals.tolist() == [10]
    assert b.units == [""] and b.mtypes == ["gauge"]
    assert b.published == 1 and b.invalid == 0
    assert b.response_body() == {"Invalid": 0, "Published": 1, "ValidationErrors": {}, "published": 1}


@pytest.mark.parametrize("ct", ["application/json", " Application/JSON ", "application/json; charset=utf-8",
                                "application/json;charset=UTF-8"])
def test_json_content_type_variants(ct):
    assert decode_metrics(jbody([one()]), ct).names == ["test.metric"]


@pytest.mark.parametrize("ct", ["rt-metric-binary", "RT-Metric-Binary", "  rt-metric-binary\t"])
def test_binary_content_type_case_and_space(ct):
    assert decode_metrics(binary([crng_map()]), ct).names == ["a.b.c"]


@pytest.mark.parametrize("ct", ["text/plain", "application/x-protobuf", "rt-metric-binary; x=y",
                                "rt-metric-binary-snappy; charset=utf-8", "application/jsonx"])
def test_unknown_content_type(ct):
    with pytest.raises(IngestError, match="unknown content-type: " + ct.split(";")[0]):
        decode_metrics(jbody([one()]), ct)


@pytest.mark.parametrize("ct", [None, "", "  "])
def test_missing_content_type(ct):
    with pytest.raises(IngestError, match="missing content-type"):
        decode_metrics(jbody([one()]), ct)


@pytest.mark.parametrize("ct", [JSON, BINARY, SNAPPY])
def test_empty_body(ct):
    with pytest.raises(IngestError, match="no data included in request"):
        decode_metrics(b"", ct)


def test_binary_msgpack_crng_shape():
    maps = [crng_map("a.b", 1.0, 100, tags=["dc=east"]), crng_map("c.d", 2.5, 200, interval=60)]
    body = binary(maps)
    assert body[0] == 1 and body[1:9] == bytes(8) and body[9] == 0x92 and body[10] == 0x89
    b = decode_metrics(body, BINARY)
    assert b.names == ["a.b;dc=east", "c.d"]
    assert b.ts.tolist() == [100, 200] and b.values.tolist() == [1.0, 2.5]
    assert b.intervals.tolist() == [10, 60] and b.units == ["unknown"] * 2 and b.mtypes == ["gauge"] * 2


def test_binary_json_format_byte_zero():
    b = decode_metrics(binary([one(tags=["b=2", "a=1"])], fmt=0), BINARY)
    assert b.names == ["test.metric;a=1;b=2"]


def test_snappy_with_our_encoder():
    metrics = [one(name=f"m.{i}", value=float(i), time=1000 + i) for i in range(100)]
    body = encode_metrics_snappy(metrics)
    assert body.startswith(STREAM_ID)
    raw = unframe_snappy(body)
    assert raw[0] == 1 and raw[1:9] == bytes(8)
    assert msgpack.unpackb(raw[9:])[0] == crng_map("m.0", 0.0, 1000)
    b = decode_metrics(body, SNAPPY)
    assert b.names == [f"m.{i}" for i in range(100)]
    assert b.values.tolist() == [float(i) for i in range(100)]
    assert b.ts.tolist() == list(range(1000, 1100))


def test_snappy_interop_python_snappy_stream_compressor():
    maps = [crng_map(f"host{i}.cpu", i * 0.5, 1700000000 + i, tags=[f"core={i % 4}"]) for i in range(3000)]
    body = snappy.StreamCompressor().add_chunk(binary(maps))
    b = decode_metrics(body, SNAPPY)
    assert b.published == 3000 and b.invalid == 0
    assert b.names[5] == "host5.cpu;core=1"
    # and python-snappy can read what we produce
    assert snappy.StreamDecompressor().decompress(encode_metrics_snappy([one()])) == \
        encode_metrics_binary([one()])


def test_snappy_multi_chunk_large_body():
    maps = [crng_map(f"some.long.metric.name.number.{i}", float(i), i + 1) for i in range(5000)]
    raw = binary(maps)
    assert len(raw) > 3 * 65536                      # several frames
    body = frame_snappy(raw)
    assert unframe_snappy(body) == raw
    assert decode_metrics(body, SNAPPY).published == 5000


def test_encode_helpers_match_crng():
    m = {"name": "a.b", "interval": 10, "value": 3, "time": 5, "tags": ["z=1", "a=2"]}
    raw = encode_metrics_binary([m])
    decoded = msgpack.unpackb(raw[9:])[0]
    assert list(decoded) == ["Id", "OrgId", "Name", "Interval", "Value", "Unit", "Time", "Mtype", "Tags"]
    assert decoded["Value"] == 3.0 and isinstance(decoded["Value"], float)
    assert decoded["Tags"] == ["a=2", "z=1"] and decoded["Unit"] == "unknown" and decoded["Mtype"] == "gauge"
    digest = hashlib.md5(b"a.b\x00unknown\x00gauge\x0010\x00a=2\x00z=1").hexdigest()
    assert decoded["Id"] == "1." + digest
    assert raw[:9] == b"\x01" + bytes(8)
    assert encode_metrics_binary([m], msg_id=7)[1:9] == (7).to_bytes(8, "big")


# --- JSON decoding ------------------------------------------------------------------------------------------

def test_json_keys_case_insensitive_unknown_ignored():
    body = jbody([{"Name": "a.b", "INTERVAL": 60, "Value": 2, "TIME": 7, "Tags": ["x=y"], "MType": "count",
                   "Unit": "B", "metric": "legacy", "id": "1.abc", "org_id": 9, "whatever": [1, 2]}])
    b = decode_metrics(body, JSON)
    assert b.names == ["a.b;x=y"] and b.intervals.tolist() == [60] and b.values.tolist() == [2.0]
    assert b.ts.tolist() == [7] and b.mtypes == ["count"] and b.units == ["B"]


def test_json_later_key_wins_like_go():
    b = decode_metrics(b'[{"name":"a","NAME":"b","interval":1,"value":1,"time":1}]', JSON)
    assert b.names == ["b"]


def test_json_missing_and_null_take_go_zero_values():
    b = decode_metrics(jbody([{"name": "a", "interval": 1}, {"name": "b", "interval": 1, "value": None,
                                                               "time": None, "tags": None, "unit": None}]), JSON)
    assert b.values.tolist() == [0.0, 0.0] and b.ts.tolist() == [0, 0] and b.names == ["a", "b"]


def test_json_integer_value_is_fine():
    assert decode_one(value=7).values.tolist() == [7.0]


def test_json_float_time_truncated():
    assert decode_one(time=1700000000.9).ts.tolist() == [1700000000]


@pytest.mark.parametrize("kw", [dict(value="abc"), dict(value=True), dict(value=[1]), dict(time="x"),
                                dict(time=True), dict(time=1e300), dict(time=2 ** 70), dict(name=5),
                                dict(name=["a"]), dict(tags="a=b"), dict(tags=[1]), dict(tags=[{"a": "b"}]),
                                dict(interval=1.5), dict(interval="10"), dict(interval=True),
                                dict(interval=2 ** 31), dict(unit=3), dict(mtype=1)])
def test_json_type_problem_is_per_metric_invalid_input(kw):
    body = jbody([one(name="ok.first"), one(**kw) if "name" in kw else one(name="bad.x", **kw),
                  one(name="ok.last")])
    b = decode_metrics(body, JSON)
    assert b.names == ["ok.first", "ok.last"]
    assert b.invalid == 1
    assert b.validation_errors == {"invalid input": {"Count": 1, "ExampleIds": [1]}}


def test_json_integral_float_interval_accepted():
    assert decode_one(interval=10.0).intervals.tolist() == [10]


@pytest.mark.parametrize("body", [b"[", b"{", b"nope", b'[{"name": "a",}]', b"\xff\xfe"])
def test_json_undecodable(body):
    with pytest.raises(IngestError, match="unable to parse request body: .+"):
        decode_metrics(body, JSON)


@pytest.mark.parametrize("body,what", [(b'{"name":"a"}', "an object"), (b"null", "null"), (b"3", "a number"),
                                       (b'[1]', "element 0 is a number"), (b'[{}, "x"]', "element 1 is a string")])
def test_json_wrong_structure(body, what):
    with pytest.raises(IngestError, match=what):
        decode_metrics(body, JSON)


def test_json_empty_array():
    b = decode_metrics(b"[]", JSON)
    assert b.published == 0 and b.invalid == 0 and b.ts.dtype == np.int64 and b.names == []


# --- validation ---------------------------------------------------------------------------------------------

def test_interval_zero():
    b = decode_one(interval=0)
    assert b.published == 0 and b.validation_errors == {"interval cannot be 0": {"Count": 1, "ExampleIds": [0]}}


def test_missing_interval_is_zero():
    b = decode_metrics(b'[{"name":"a","value":1,"time":1}]', JSON)
    assert list(b.validation_errors) == ["interval cannot be 0"]


def test_negative_interval_passes():
    assert decode_one(interval=-5).intervals.tolist() == [-5]


@pytest.mark.parametrize("raw,norm", [(".a.b.", "a.b"), ("a..b", "a.b"), ("...a....b...c..", "a.b.c"),
                                      ("a.b", "a.b")])
def test_name_normalised(raw, norm):
    assert decode_one(name=raw).names == [norm]


@pytest.mark.parametrize("name", ["", ".", "....."])
def test_name_empty(name):
    assert list(decode_one(name=name).validation_errors) == ["name cannot be empty"]


def test_interval_checked_before_name():
    assert list(decode_one(name="", interval=0).validation_errors) == ["interval cannot be 0"]


@pytest.mark.parametrize("mtype", ["gauge", "rate", "count", "counter", "timestamp"])
def test_mtypes_allowed(mtype):
    assert decode_one(mtype=mtype).mtypes == [mtype]


def test_empty_mtype_is_gauge():
    assert decode_one(mtype="").mtypes == ["gauge"]


@pytest.mark.parametrize("mtype", ["Gauge", "histogram", " gauge"])
def test_invalid_mtype(mtype):
    assert list(decode_one(mtype=mtype).validation_errors) == ["invalid mtype"]


def test_name_checked_before_mtype():
    assert list(decode_one(name="..", mtype="bogus").validation_errors) == ["name cannot be empty"]


def test_mtype_checked_before_tags():
    assert list(decode_one(mtype="bogus", tags=["bad"]).validation_errors) == ["invalid mtype"]


@pytest.mark.parametrize("tag", ["a", "ab", "=b", "a=", "=", "a;b=c", "a!b=c", "a^b=c", "a=~b", "a=b;c",
                                 "a=;", "", "k=~", "__name__=x"])
def test_invalid_tags(tag):
    b = decode_one(tags=["ok=1", tag])
    assert b.published == 0 and list(b.validation_errors) == ["invalid input"]


@pytest.mark.parametrize("tag", ["a=b", "a b=c d", "a=b=c", "a=b!^", "x=b~", "ключ=значение"])
def test_valid_tags(tag):
    assert decode_one(tags=[tag]).published == 1


def test_name_with_semicolon_is_invalid():
    assert list(decode_one(name="a;b=c").validation_errors) == ["invalid input"]


def test_tags_sorted_by_kv_string_name_tag_dropped_duplicates_last_wins():
    b = decode_one(name="n", tags=["b=2", "a=1", "name=other", "a.b=3", "b=9"])
    # sorted as graphite-web sorts ";k=v" strings: "a.b=3" < "a=1" because '.' < '='
    assert b.names == ["n;a.b=3;a=1;b=9"]


def test_only_name_tag_gives_plain_name():
    assert decode_one(name="n", tags=["name=n"]).names == ["n"]


def test_org_id_ignored():
    assert decode_one(org_id=0).published == 1


def test_invalid_utf8_in_msgpack_name_and_tag():
    def raw_str(b):   # a msgpack str (fixstr) holding arbitrary bytes
        return bytes((0xA0 | len(b),)) + b
    good = msgpack.packb({"Name": "ok", "Interval": 1, "Value": 1.0, "Time": 1, "Unit": "", "Mtype": "",
                          "Tags": []})
    bad_name = (b"\x87" + msgpack.packb("Name") + raw_str(b"a\xffb") + msgpack.packb("Interval") + b"\x01" +
                msgpack.packb("Value") + msgpack.packb(1.0) + msgpack.packb("Time") + b"\x01" +
                msgpack.packb("Unit") + msgpack.packb("") + msgpack.packb("Mtype") + msgpack.packb("") +
                msgpack.packb("Tags") + b"\x90")
    bad_tag = (b"\x87" + msgpack.packb("Name") + msgpack.packb("n") + msgpack.packb("Interval") + b"\x01" +
               msgpack.packb("Value") + msgpack.packb(1.0) + msgpack.packb("Time") + b"\x01" +
               msgpack.packb("Unit") + msgpack.packb("") + msgpack.packb("Mtype") + msgpack.packb("") +
               msgpack.packb("Tags") + b"\x91" + raw_str(b"k=\xc3"))
    body = b"\x01" + bytes(8) + b"\x93" + good + bad_name + bad_tag
    b = decode_metrics(body, BINARY)
    assert b.names == ["ok"]
    assert b.validation_errors == {"invalid input": {"Count": 2, "ExampleIds": [1, 2]}}


def test_partial_acceptance_and_example_ids():
    metrics = []
    for i in range(30):
        if i % 2:
            metrics.append(one(name=f"bad.{i}", interval=0))
        elif i % 5 == 0:
            metrics.append(one(name=f"bad.{i}", mtype="nope"))
        else:
            metrics.append(one(name=f"good.{i}", value=float(i), time=i))
    b = decode_metrics(jbody(metrics), JSON)
    good = [i for i in range(30) if i % 2 == 0 and i % 5]
    assert b.names == [f"good.{i}" for i in good]
    assert b.values.tolist() == [float(i) for i in good] and b.ts.tolist() == good
    assert b.invalid == 15 + 3 and b.published == len(good)
    errs = b.validation_errors
    assert errs["interval cannot be 0"] == {"Count": 15, "ExampleIds": [1, 3, 5, 7, 9, 11, 13, 15, 17]}
    assert errs["invalid mtype"] == {"Count": 3, "ExampleIds": [0, 10, 20]}
    body = b.response_body()
    assert body["Invalid"] == 18 and body["Published"] == len(good) == body["published"]
    assert orjson.loads(orjson.dumps(body))["ValidationErrors"] == errs


def test_cache_does_not_mix_results():
    # the same series valid, then with a different interval/mtype/tag: each judged on its own
    metrics = [one(name="c.x"), one(name="c.x", interval=0), one(name="c.x", mtype="bad"),
               one(name="c.x", tags=["bad"]), one(name="c.x", interval=10.0), one(name="c.x", interval=True)]
    for _ in range(2):
        b = decode_metrics(jbody(metrics), JSON)
        assert b.names == ["c.x", "c.x"] and b.intervals.tolist() == [10, 10]
        assert {k: v["ExampleIds"] for k, v in b.validation_errors.items()} == {
            "interval cannot be 0": [1], "invalid mtype": [2], "invalid input": [3, 5]}


def test_cache_bounded(monkeypatch):
    monkeypatch.setattr(ingest, "_CACHE_MAX", 50)
    ingest._cache.clear()
    for r in range(5):
        b = decode_metrics(jbody([one(name=f"b{r}.{i}") for i in range(40)]), JSON)
        assert b.published == 40
        assert len(ingest._cache) <= 50


# --- msgpack payload rules ----------------------------------------------------------------------------------

def test_integer_value_rejects_whole_msgpack_payload():
    maps = [crng_map("a", 1.0), crng_map("b", 1.0)]
    maps[1]["Value"] = 3
    with pytest.raises(IngestError, match=r"metric 1: msgpack Value is an integer.*float"):
        decode_metrics(binary(maps), BINARY)


@pytest.mark.parametrize("v", ["1.5", None, [1.0], True])
def test_non_float_value_rejects_msgpack_payload(v):
    maps = [crng_map("a", 1.0)]
    maps[0]["Value"] = v
    with pytest.raises(IngestError, match="metric 0: msgpack Value is .* not a float"):
        decode_metrics(binary(maps), BINARY)


def test_float32_value_accepted():
    m = crng_map("a")
    del m["Value"]
    eight = msgpack.packb(m)
    assert eight[0] == 0x88
    packed = b"\x89" + eight[1:] + msgpack.packb("Value") + b"\xca" + struct.pack(">f", 0.5)
    b = decode_metrics(b"\x01" + bytes(8) + b"\x91" + packed, BINARY)
    assert b.values.tolist() == [0.5]


def test_msgpack_missing_keys_other_order_and_bin_keys():
    maps = [{"Time": 5, "Value": 2.0, "Name": "x.y", "Interval": 1},            # no Unit/Mtype/Tags/Id/OrgId
            {b"Name": "z", b"Interval": 1, b"Value": 1.0, b"Time": 1, "Extra": 1}]
    b = decode_metrics(binary(maps), BINARY)
    assert b.names == ["x.y", "z"] and b.mtypes == ["gauge", "gauge"] and b.ts.tolist() == [5, 1]


def test_msgpack_time_beyond_int64_is_invalid_input():
    b = decode_metrics(binary([crng_map("a"), dict(crng_map("b"), Time=2 ** 64 - 1)]), BINARY)
    assert b.names == ["a"] and b.validation_errors == {"invalid input": {"Count": 1, "ExampleIds": [1]}}


def test_msgpack_missing_value_is_zero():
    m = crng_map("a")
    del m["Value"]
    assert decode_metrics(binary([m]), BINARY).values.tolist() == [0.0]


def test_msgpack_type_problems_per_metric():
    bad = [dict(crng_map("a"), Name=b"bin-name"), dict(crng_map("b"), Tags="x=y"),
           dict(crng_map("c"), Interval="10"), dict(crng_map("d"), Time="now"), dict(crng_map("e"), Tags=None)]
    b = decode_metrics(binary(bad), BINARY)
    assert b.names == ["e"]
    assert b.validation_errors == {"invalid input": {"Count": 4, "ExampleIds": [0, 1, 2, 3]}}


@pytest.mark.parametrize("payload,match", [
    (msgpack.packb({"Name": "a"}), "must be an array of maps, got dict"),
    (msgpack.packb([crng_map(), 5]), "element 1 is int"),
    (msgpack.packb("x"), "got str"),
    (b"\x92\x89", "invalid msgpack payload"),
    (b"", "invalid msgpack payload"),
    (msgpack.packb([]) + b"\x00", "trailing bytes"),
])
def test_msgpack_payload_errors(payload, match):
    with pytest.raises(IngestError, match=match):
        decode_metrics(b"\x01" + bytes(8) + payload, BINARY)


@pytest.mark.parametrize("size", [1, 8])
def test_binary_too_small(size):
    with pytest.raises(IngestError, match=f"body too small: {size} bytes"):
        decode_metrics(b"\x01" * size, BINARY)


@pytest.mark.parametrize("fmt", [2, 7, 255])
def test_unsupported_format(fmt):
    with pytest.raises(IngestError, match=f"unsupported format {fmt}"):
        decode_metrics(bytes((fmt,)) + bytes(8) + b"\x90", BINARY)


def test_empty_msgpack_array():
    b = decode_metrics(b"\x01" + bytes(8) + b"\x90", BINARY)
    assert b.published == 0 and b.invalid == 0


# --- snappy framing -----------------------------------------------------------------------------------------

def test_raw_block_snappy_refused():
    body = bytes(cramjam.snappy.compress_raw(binary([crng_map()])))
    with pytest.raises(IngestError, match="framing format"):
        decode_metrics(body, SNAPPY)


def test_uncompressed_skippable_padding_and_repeated_identifier():
    raw = binary([crng_map("u.v", 4.0)])
    body = (STREAM_ID + chunk(0xFE, bytes(10)) + uncompressed_chunk(raw[:20]) + chunk(0x80, b"skip me") +
            STREAM_ID + compressed_chunk(raw[20:]) + chunk(0xFD, b""))
    assert decode_metrics(body, SNAPPY).names == ["u.v"]


@pytest.mark.parametrize("ctype", [0x02, 0x10, 0x7F])
def test_reserved_unskippable_chunk(ctype):
    body = STREAM_ID + chunk(ctype, b"abc") + compressed_chunk(binary([crng_map()]))
    with pytest.raises(IngestError, match=f"reserved unskippable chunk type 0x{ctype:02x}"):
        decode_metrics(body, SNAPPY)


def test_bad_checksum():
    body = bytearray(frame_snappy(binary([crng_map()])))
    body[14] ^= 0xFF                                      # first byte of the first chunk's CRC
    with pytest.raises(IngestError, match="checksum mismatch"):
        decode_metrics(bytes(body), SNAPPY)


def test_bad_checksum_uncompressed():
    raw = binary([crng_map()])
    c = bytearray(uncompressed_chunk(raw))
    c[-1] ^= 1
    with pytest.raises(IngestError, match="checksum mismatch"):
        decode_metrics(STREAM_ID + bytes(c), SNAPPY)


def test_corrupt_compressed_data():
    raw = binary([crng_map()])
    comp = bytearray(cramjam.snappy.compress_raw(raw))
    comp[3:] = b"\xff" * (len(comp) - 3)
    body = STREAM_ID + chunk(0x00, masked_crc(raw).to_bytes(4, "little") + bytes(comp))
    with pytest.raises(IngestError, match="invalid snappy stream"):
        decode_metrics(body, SNAPPY)


def test_bad_stream_identifier():
    with pytest.raises(IngestError, match="stream identifier"):
        decode_metrics(b"\xff\x06\x00\x00sNaPpX" + compressed_chunk(b"x"), SNAPPY)
    with pytest.raises(IngestError, match="bad stream identifier chunk at offset 10"):
        decode_metrics(STREAM_ID + b"\xff\x06\x00\x00sNaPpX", SNAPPY)


def test_every_truncation_is_an_ingest_error():
    body = encode_metrics_snappy([one(name=f"t.{i}") for i in range(50)])
    for cut in range(1, len(body)):
        with pytest.raises(IngestError):
            decode_metrics(body[:cut], SNAPPY)


def test_chunk_too_short_for_checksum():
    with pytest.raises(IngestError, match="too short for its checksum"):
        decode_metrics(STREAM_ID + chunk(0x00, b"\x01\x02"), SNAPPY)


def test_declared_block_larger_than_64k_refused():
    # varint preamble says 1 MiB: refused before any decompression
    data = b"\x80\x80\x40" + b"\x00" * 10
    body = STREAM_ID + chunk(0x00, b"\x00\x00\x00\x00" + data)
    with pytest.raises(IngestError, match="corrupt compressed chunk"):
        decode_metrics(body, SNAPPY)


def test_uncompressed_chunk_larger_than_64k_refused():
    raw = bytes(65537)
    with pytest.raises(IngestError, match="larger than 65536"):
        unframe_snappy(STREAM_ID + uncompressed_chunk(raw))


def test_decompression_bomb_small_limit():
    zeros = compressed_chunk(bytes(65536))
    body = STREAM_ID + zeros * 40                         # ~2.5 MiB once expanded
    assert len(body) < 40 * 4000
    with pytest.raises(IngestError, match="exceeds the limit of 1048576 bytes"):
        decode_metrics(body, SNAPPY, max_decompressed=1 << 20)


def test_decompression_bomb_default_limit_stops_quickly():
    zeros = compressed_chunk(bytes(65536))
    body = STREAM_ID + zeros * 1100                       # ~3.3 MB that would expand to ~69 MiB
    t = time.perf_counter()
    with pytest.raises(IngestError, match="exceeds the limit of 67108864 bytes"):
        decode_metrics(body, SNAPPY)
    assert time.perf_counter() - t < 2.0


def test_bomb_via_uncompressed_chunks_counts_too():
    body = STREAM_ID + uncompressed_chunk(bytes(1000)) * 3
    with pytest.raises(IngestError, match="exceeds the limit of 2500 bytes"):
        unframe_snappy(body, max_decompressed=2500)
    assert unframe_snappy(body, max_decompressed=3000) == bytes(3000)


def test_snappy_wrapping_json_format_byte():
    body = frame_snappy(binary([one(name="j.s")], fmt=0))
    assert decode_metrics(body, SNAPPY).names == ["j.s"]


def test_snappy_decompressed_too_small():
    with pytest.raises(IngestError, match="body too small: 3 bytes"):
        decode_metrics(frame_snappy(b"\x01\x00\x00"), SNAPPY)


def test_bool_interval_never_borrows_a_cached_int_entry():
    # True == 1 and False == 0 hash alike with the ints: a cached entry for interval 1 / 0 must not be reused,
    # neither by JSON nor by msgpack maps that are decoded one by one (mixed layouts)
    other = {"Name": "x", "Interval": 1, "Value": 1.0, "Time": 1}
    for interval, err in ((1, None), (True, "invalid input"), (0, "interval cannot be 0"), (False, "invalid input")):
        expect = [err] if err else []
        assert list(decode_one(name="borrow.me", interval=interval).validation_errors) == expect
        b = decode_metrics(binary([crng_map("borrow.me.too", interval=interval), other]), BINARY)
        assert list(b.validation_errors) == expect
