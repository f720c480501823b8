import json
import math
import pickle
import struct

import msgpack
import numpy as np
import pytest

from graphite_api.render_formats import CONTENT_TYPES, ENCODERS, encode
from graphite_api.series import Series

nan, inf = float("nan"), float("inf")


def mixed() -> Series:
    return Series("a.b", 60, 60, [1.0, nan, 0.5, inf, -inf, 2.25])


def tagged() -> Series:
    return Series("cpu;dc=east", 60, 60, [3.0, nan], tags={"name": "cpu", "dc": "east"})


# --- json ---------------------------------------------------------------------------------------------------------

def test_json_exact_bytes():
    body, ctype = encode("json", [mixed(), tagged()], {})
    assert ctype == "application/json"
    assert body == (
        b'[{"target":"a.b","tags":{"name":"a.b"},"datapoints":'
        b'[[1.0,60],[null,120],[0.5,180],[1e9999,240],[-1e9999,300],[2.25,360]]},'
        b'{"target":"cpu;dc=east","tags":{"name":"cpu","dc":"east"},"datapoints":[[3.0,60],[null,120]]}]'
    )
    parsed = json.loads(body)                  # 1e9999 is how graphite-web spells infinity; it parses back to inf
    assert parsed[0]["datapoints"][3] == [inf, 240] and parsed[0]["datapoints"][4] == [-inf, 300]


def test_json_single_point_and_empty_series():
    body, _ = encode("json", [Series("x", 10, 10, [7.0]), Series("e", 0, 10, [])], {})
    assert body == (b'[{"target":"x","tags":{"name":"x"},"datapoints":[[7.0,10]]},'
                    b'{"target":"e","tags":{"name":"e"},"datapoints":[]}]')


def test_json_all_empty_is_empty_list():
    assert encode("json", [Series("e", 0, 10, [])], {}) == (b"[]", "application/json")
    assert encode("json", [], {}) == (b"[]", "application/json")


def test_json_no_null_points_drops_points_and_empty_series():
    only_nulls = Series("n", 60, 60, [nan, nan])
    body, _ = encode("json", [mixed(), only_nulls], {"noNullPoints": True})
    assert body == (b'[{"target":"a.b","tags":{"name":"a.b"},"datapoints":'
                    b'[[1.0,60],[0.5,180],[1e9999,240],[-1e9999,300],[2.25,360]]}]')
    assert encode("json", [only_nulls], {"noNullPoints": "1"})[0] == b"[]"
    assert encode("json", [only_nulls], {"noNullPoints": False})[0].count(b"null") == 2


def test_jsonp():
    body, ctype = encode("json", [Series("x", 10, 10, [1.0])], {"jsonp": "cb"})
    assert ctype == "text/javascript"
    assert body == b'cb([{"target":"x","tags":{"name":"x"},"datapoints":[[1.0,10]]}])'
    assert encode("json", [], {"jsonp": "jQuery.cb_1"})[0] == b"jQuery.cb_1([])"
    with pytest.raises(ValueError, match="jsonp"):
        encode("json", [], {"jsonp": "alert(1);x"})


def test_json_meta_envelope():
    body, ctype = encode("json", [Series("x", 10, 10, [1.0])], {"meta": "true"})
    assert ctype == "application/json"
    assert body == (b'{"version":"v0.1","meta":{"stats":{}},"series":'
                    b'[{"target":"x","tags":{"name":"x"},"datapoints":[[1.0,10]],"meta":[]}]}')


def test_json_pretty_matches_graphite_web_layout():
    body, _ = encode("json", [Series("x", 10, 10, [1.0, inf])], {"pretty": True})
    expected = json.dumps([{"target": "x", "tags": {"name": "x"}, "datapoints": [[1.0, 10], [inf, 20]]}],
                          indent=2).replace("Infinity,", "1e9999,")
    assert body.decode() == expected


def test_json_value_spelling_round_trips():
    # shortest repr that round-trips, integral floats keep their ".0" like graphite-web's json.dumps
    values = [0.1 + 0.2, 1e16, 1e-5, -0.0, 123456789.0, 5e-324, 1.7976931348623157e308, 42.0]
    body, _ = encode("json", [Series("x", 0, 1, values)], {})
    tokens = [p.split(b",")[0] for p in body.split(b'"datapoints":[[')[1].split(b"],[")]
    assert tokens[0] == b"0.30000000000000004" and tokens[-1] == b"42.0" and tokens[3] == b"-0.0"
    assert [p[0] for p in json.loads(body)[0]["datapoints"]] == values


def test_json_matches_reference_on_random_data():
    rng = np.random.default_rng(7)
    series = []
    for i in range(20):
        v = rng.normal(size=50) * 10.0 ** rng.integers(-6, 12)
        v[rng.random(50) < 0.2] = nan
        v[rng.random(50) < 0.05] = inf
        series.append(Series(f"s{i}", 1000 + i * 10 * (i % 3), 10 * (1 + i % 2), v, tags={"k": str(i)}))
    for params in ({}, {"noNullPoints": 1}):
        expected = []
        for s in series:
            pts = [[None if math.isnan(v) else v, int(t)] for v, t in zip(s.values.tolist(), s.timestamps)]
            if params:
                pts = [p for p in pts if p[0] is not None]
            expected.append({"target": s.name, "tags": s.tags, "datapoints": pts})
        assert json.loads(encode("json", series, params)[0]) == expected


# --- pickle / msgpack ---------------------------------------------------------------------------------------------

def _info(s: Series, values, start=None, end=None):
    return {"name": s.name, "start": s.start if start is None else start, "end": s.end if end is None else end,
            "step": s.step, "values": values, "pathExpression": s.path_expression, "valuesPerPoint": 1,
            "consolidationFunc": "average", "xFilesFactor": 0.0}


def test_pickle_exact():
    s, e = mixed(), Series("e", 0, 60, [])
    body, ctype = encode("pickle", [s, e], {"from": 100, "until": 200})
    assert ctype == "application/pickle"
    expected = [_info(s, [1.0, None, 0.5, inf, -inf, 2.25]), _info(e, [], start=100, end=200)]
    assert body == pickle.dumps(expected, protocol=pickle.HIGHEST_PROTOCOL)
    loaded = pickle.loads(body)
    assert list(loaded[0]) == ["name", "start", "end", "step", "values", "pathExpression", "valuesPerPoint",
                               "consolidationFunc", "xFilesFactor"]
    assert (loaded[0]["start"], loaded[0]["end"], loaded[0]["step"]) == (60, 420, 60)


def test_msgpack_exact():
    s = mixed()
    body, ctype = encode("msgpack", [s, Series("e", 0, 60, [])], {"from": 100, "until": 200})
    assert ctype == "application/x-msgpack"
    expected = [_info(s, [1.0, None, 0.5, inf, -inf, 2.25]), _info(Series("e", 0, 60, []), [], 100, 200)]
    assert body == msgpack.packb(expected, use_bin_type=True)
    assert msgpack.unpackb(body)[1]["start"] == 100


# --- msgp (metrictank models.Series) -----------------------------------------------------------------------------

def test_msgp_exact_bytes():
    s = Series("a", 60, 60, [1.0, nan])
    body, ctype = encode("msgp", [s], {"from": 0, "until": 120, "maxDataPoints": 800})
    assert ctype == "application/msgpack"
    expected = (
        b"\x91\x8c"
        b"\xa6Target\xa1a"
        b"\xa4Tags\x81\xa4name\xa1a"
        b"\xa8Interval\x3c"
        b"\xa9QueryPatt\xa1a"
        b"\xa9QueryFrom\x00"
        b"\xa7QueryTo\x78"
        b"\xa9QueryCons\x00"
        b"\xacConsolidator\x01"
        b"\xa8QueryMDP\xcd\x03\x20"
        b"\xacQueryPNGroup\x00"
        b"\xa4Meta\x90"
        b"\xaaDatapoints\x92"
        b"\x82\xa3Val\xcb" + struct.pack(">d", 1.0) + b"\xa2Ts\xce" + struct.pack(">I", 60) +
        b"\x82\xa3Val\xcb" + struct.pack(">d", nan) + b"\xa2Ts\xce" + struct.pack(">I", 120)
    )
    assert body == expected


def test_msgp_decodes_with_many_points_and_tags():
    s = Series("cpu;dc=east", 10, 10, np.arange(70000.0), tags={"name": "cpu", "dc": "east"}, consolidation="max")
    decoded = msgpack.unpackb(encode("msgp", [s, tagged()], {})[0])
    assert len(decoded) == 2
    first = decoded[0]
    assert list(first) == ["Target", "Tags", "Interval", "QueryPatt", "QueryFrom", "QueryTo", "QueryCons",
                           "Consolidator", "QueryMDP", "QueryPNGroup", "Meta", "Datapoints"]
    assert first["Tags"] == {"name": "cpu", "dc": "east"} and first["Consolidator"] == 4
    assert len(first["Datapoints"]) == 70000
    assert first["Datapoints"][-1] == {"Val": 69999.0, "Ts": 700000}
    assert math.isnan(decoded[1]["Datapoints"][1]["Val"])


# --- csv ----------------------------------------------------------------------------------------------------------

def test_csv_exact_bytes():
    body, ctype = encode("csv", [mixed(), Series("sum(a,b)", 0, 3600, [0.4])], {})
    assert ctype == "text/csv"
    assert body == (
        b"a.b,1970-01-01 00:01:00,1.0\r\n"
        b"a.b,1970-01-01 00:02:00,\r\n"
        b"a.b,1970-01-01 00:03:00,0.5\r\n"
        b"a.b,1970-01-01 00:04:00,inf\r\n"
        b"a.b,1970-01-01 00:05:00,-inf\r\n"
        b"a.b,1970-01-01 00:06:00,2.25\r\n"
        b'"sum(a,b)",1970-01-01 00:00:00,0.4\r\n'
    )


def test_csv_timezone_across_dst():
    # Europe/Berlin switches to summer time at 2024-03-31 01:00 UTC
    s = Series("x", 1711846800 - 3600, 1800, [1.0, 2.0, 3.0, 4.0])
    body, _ = encode("csv", [s], {"tz": "Europe/Berlin"})
    assert body == (b"x,2024-03-31 01:00:00,1.0\r\n"
                    b"x,2024-03-31 01:30:00,2.0\r\n"
                    b"x,2024-03-31 03:00:00,3.0\r\n"
                    b"x,2024-03-31 03:30:00,4.0\r\n")
    # an unknown zone is ignored like graphite-web does
    assert encode("csv", [s], {"tz": "Mars/Olympus"})[0].startswith(b"x,2024-03-31 00:00:00,1.0\r\n")


# --- raw ----------------------------------------------------------------------------------------------------------

def test_raw_exact_bytes():
    body, ctype = encode("raw", [mixed(), Series("e", 0, 10, [])], {})
    assert ctype == "text/plain"
    assert body == b"a.b,60,420,60|1.0,None,0.5,inf,-inf,2.25\ne,0,0,10|\n"


# --- registry -----------------------------------------------------------------------------------------------------

def test_unknown_format_names_it():
    with pytest.raises(ValueError, match="'png'"):
        encode("png", [], {})


def test_every_encoder_has_its_content_type():
    for name in ENCODERS:
        assert encode(name, [mixed()], {"from": 0, "until": 600})[1] == CONTENT_TYPES[name]


def test_params_may_be_an_object():
    class Params:
        noNullPoints = True
        jsonp = None

    assert encode("json", [Series("n", 0, 1, [nan])], Params())[0] == b"[]"
