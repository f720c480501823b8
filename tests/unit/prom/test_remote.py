"""Remote write 1.0/2.0 and remote read (SAMPLES and STREAMED_XOR_CHUNKS) over real snappy + protobuf bodies."""
from __future__ import annotations

import struct
import time

import google_crc32c
import numpy as np
import pytest
import snappy   # python-snappy: an independent block-format implementation for the test side

from prom_bridge import remote
from prom_bridge.proto import remote_pb2, types_pb2, write_v2_pb2
from storage.matchers import Matcher
from storage.querier import Querier

STALE = np.frombuffer(struct.pack("<Q", remote.STALE_NAN_BITS), dtype=np.float64)[0]
NAN_PAYLOAD = np.frombuffer(struct.pack("<Q", 0x7FF8000000000001), dtype=np.float64)[0]
T0 = 1_700_000_000_000
V1_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
V2_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
              "X-Prometheus-Remote-Write-Version": "2.0.0"}


def write_request(series, metadata=()):
    req = remote_pb2.WriteRequest()
    for labels, samples, *rest in series:
        ts = req.timeseries.add()
        for k, v in labels:
            ts.labels.add(name=k, value=v)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
        if rest:
            for ex_labels, v, t in rest[0]:
                ex = ts.exemplars.add(value=v, timestamp=t)
                for k, lv in ex_labels:
                    ex.labels.add(name=k, value=lv)
    for name, mtype, help_, unit in metadata:
        req.metadata.add(metric_family_name=name, type=mtype, help=help_, unit=unit)
    return req.SerializeToString()


def post(client, body, headers=V1_HEADERS, path="/api/v1/write", compress=True):
    return client.post(path, content=snappy.compress(body) if compress else body, headers=headers)


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.uint64)


def read_series(storage, name, tenant="anonymous"):
    out = Querier(storage, tenant).select([Matcher("__name__", "=", name)], 0, 2**62)
    return out


# ---- remote write 1.0 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/push", "/api/v1/write", "/api/v1/prom/remote/write", "/api/v1/prom/write"])
def test_write_v1_paths_store_samples(client, storage, path):
    body = write_request([([("__name__", "up"), ("job", "node")], [(T0, 1.0), (T0 + 15000, 0.0)])])
    r = post(client, body, path=path)
    assert r.status_code == 204, r.text
    assert r.content == b""
    [s] = read_series(storage, "up")
    assert s.labels == (("__name__", "up"), ("job", "node"))
    assert s.ts.tolist() == [T0, T0 + 15000]
    assert s.values.tolist() == [1.0, 0.0]


def test_write_keeps_stale_nan_and_real_nan_bits(client, storage):
    body = write_request([([("__name__", "m")], [(T0, 1.0), (T0 + 1, NAN_PAYLOAD), (T0 + 2, STALE)])])
    assert post(client, body).status_code == 204
    [s] = read_series(storage, "m")
    assert bits(s.values).tolist() == [bits([1.0])[0], 0x7FF8000000000001, remote.STALE_NAN_BITS]


def test_unsorted_labels_are_sorted_and_empty_values_dropped(client, storage):
    body = write_request([([("zone", "a"), ("__name__", "m2"), ("empty", ""), ("app", "x")], [(T0, 5.0)])])
    assert post(client, body).status_code == 204
    [s] = read_series(storage, "m2")
    assert s.labels == (("__name__", "m2"), ("app", "x"), ("zone", "a"))


def test_many_samples_per_series_and_repeated_series(client, storage):
    n = 500
    samples = [(T0 + i * 1000, float(i)) for i in range(n)]
    body = write_request([([("__name__", "many")], samples[:300]), ([("__name__", "other")], [(T0, 9.0)]),
                          ([("__name__", "many")], samples[300:])])
    assert post(client, body).status_code == 204
    [s] = read_series(storage, "many")
    assert s.ts.tolist() == [t for t, _ in samples]
    assert s.values.tolist() == [v for _, v in samples]


def test_invalid_series_give_400_but_valid_ones_are_kept(client, storage):
    body = write_request([([("__name__", "good")], [(T0, 1.0)]),
                          ([("__name__", "bad"), ("job", "a"), ("job", "b")], [(T0, 1.0)]),
                          ([("job", "noname")], [(T0, 1.0)])])
    r = post(client, body)
    assert r.status_code == 400
    assert 'label name "job" is not unique' in r.text.replace("'", '"')
    assert "no __name__" in r.text
    assert len(read_series(storage, "good")) == 1
    assert read_series(storage, "bad") == []


def test_known_series_next_to_a_label_less_one_of_the_same_length_as_a_sample(client, storage):
    """A series without labels is exactly one 18-byte sample: the all-known fast path must not take it."""
    known = ([("__name__", "known")], [(T0, 1.0)])
    assert post(client, write_request([known])).status_code == 204          # now cached
    body = write_request([([("__name__", "known")], [(T0 + 1000, 2.0)]), ([], [(T0 + 1000, 3.0)])])
    r = post(client, body)
    assert r.status_code == 400 and "empty label set" in r.text
    assert [s.values.tolist() for s in read_series(storage, "known")] == [[1.0, 2.0]]


def test_empty_and_metadata_only_requests(client, storage):
    assert post(client, b"").status_code == 204
    body = write_request([], metadata=[("http_requests", types_pb2.MetricMetadata.COUNTER, "Requests.", ""),
                                       ("temp", types_pb2.MetricMetadata.GAUGE, "Temperature.", "celsius")])
    assert post(client, body).status_code == 204
    r = client.get("/api/v1/metadata")
    assert r.json() == {"status": "success", "data": {
        "http_requests": [{"type": "counter", "help": "Requests.", "unit": ""}],
        "temp": [{"type": "gauge", "help": "Temperature.", "unit": "celsius"}]}}
    assert client.get("/api/v1/metadata", params={"metric": "temp"}).json()["data"] == {
        "temp": [{"type": "gauge", "help": "Temperature.", "unit": "celsius"}]}
    assert len(client.get("/api/v1/metadata", params={"limit": "1"}).json()["data"]) == 1
    assert client.get("/api/v1/metadata", params={"limit": "x"}).json()["error"] == "limit must be a number"


def test_metadata_survives_restart(tmp_path):
    from prom_bridge.metadata import MetadataStore
    from storage.engine import Storage
    s = Storage(str(tmp_path / "d"))
    MetadataStore(s.db).update("t1", [("x", "counter", "X.", "")])
    s.close()
    s = Storage(str(tmp_path / "d"))
    try:
        assert MetadataStore(s.db).query(["t1"]) == {"x": [{"type": "counter", "help": "X.", "unit": ""}]}
    finally:
        s.close()


def test_exemplars_are_kept_and_queryable_without_parser(client, storage):
    body = write_request([([("__name__", "req_bucket"), ("le", "1")], [(T0, 3.0)],
                           [([("trace_id", "abc")], 0.5, T0 + 500)])])
    assert post(client, body).status_code == 204
    _, exemplars = remote.stores_for(storage)
    data = exemplars.query(["anonymous"], [[Matcher("__name__", "=", "req_bucket")]], T0, T0 + 1000)
    assert data == [{"seriesLabels": {"__name__": "req_bucket", "le": "1"},
                     "exemplars": [(T0 + 500, (("trace_id", "abc"),), 0.5)]}]


def test_histograms_are_refused_with_400(client, storage):
    req = remote_pb2.WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="h")
    ts.histograms.add(count_int=1, sum=1.0, schema=0, timestamp=T0)
    r = post(client, req.SerializeToString())
    assert r.status_code == 400 and "native histograms" in r.text


def test_transport_errors(client, storage):
    body = write_request([([("__name__", "t")], [(T0, 1.0)])])
    # framed snappy is the wrong format
    framed = b"\xff\x06\x00\x00sNaPpY" + b"\x00" * 8
    r = client.post("/api/v1/write", content=framed, headers=V1_HEADERS)
    assert r.status_code == 400 and "framed" in r.text
    # corrupt block
    r = client.post("/api/v1/write", content=b"\x10\xff\xff\xff", headers=V1_HEADERS)
    assert r.status_code == 400 and "snappy" in r.text
    # snappy-valid but not protobuf
    r = client.post("/api/v1/write", content=snappy.compress(b"\xff\xff\xff\xff"), headers=V1_HEADERS)
    assert r.status_code == 400 and "protobuf" in r.text
    # unsupported encoding / content type
    assert client.post("/api/v1/write", content=body, headers={"Content-Encoding": "gzip"}).status_code == 415
    assert post(client, body, headers={"Content-Encoding": "snappy", "Content-Type": "text/plain"}).status_code == 415
    assert post(client, body, headers={"Content-Encoding": "snappy",
                                       "Content-Type": "application/x-protobuf;proto=foo.Bar"}).status_code == 415
    # a missing Content-Encoding is accepted (snappy assumed, raw protobuf as fallback), as is no Content-Type
    assert client.post("/api/v1/write", content=snappy.compress(body)).status_code == 204
    assert client.post("/api/v1/write", content=write_request([([("__name__", "raw")], [(T0, 2.0)])])).status_code == 204
    assert [s.values.tolist() for s in read_series(storage, "raw")] == [[2.0]]
    # wrong method
    assert client.get("/api/v1/write").status_code == 405


def test_v1_is_selected_by_explicit_proto_parameter(client, storage):
    body = write_request([([("__name__", "p")], [(T0, 1.0)])])
    r = post(client, body, headers={"Content-Encoding": "snappy",
                                    "Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"})
    assert r.status_code == 204
    assert "X-Prometheus-Remote-Write-Samples-Written" not in r.headers


def test_tenants_are_separate(client, storage):
    body = write_request([([("__name__", "iso")], [(T0, 1.0)])])
    assert post(client, body, headers={**V1_HEADERS, "X-Scope-OrgID": "team-a"}).status_code == 204
    assert read_series(storage, "iso") == []
    assert len(read_series(storage, "iso", "team-a")) == 1


# ---- remote write 2.0 -------------------------------------------------------------------------------------------

def v2_request(symbols, series):
    req = write_v2_pb2.Request(symbols=symbols)
    for refs, samples, extra in series:
        ts = req.timeseries.add(labels_refs=refs)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
        if "metadata" in extra:
            ts.metadata.CopyFrom(extra["metadata"])
        for ex_refs, v, t in extra.get("exemplars", ()):
            ts.exemplars.add(labels_refs=ex_refs, value=v, timestamp=t)
    return req.SerializeToString()


def test_write_v2_symbols_metadata_exemplars_and_headers(client, storage):
    symbols = ["", "__name__", "http_requests_total", "job", "api", "Total requests.", "trace_id", "t1", "x_seconds"]
    md = write_v2_pb2.Metadata(type=write_v2_pb2.Metadata.METRIC_TYPE_COUNTER, help_ref=5)
    body = v2_request(symbols, [([1, 2, 3, 4], [(T0, 1.0), (T0 + 1000, 2.0)], {"metadata": md,
                                                                              "exemplars": [([6, 7], 1.5, T0)]}),
                                ([1, 8], [(T0, 0.25)], {})])
    r = post(client, body, headers=V2_HEADERS)
    assert r.status_code == 204, r.text
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "3"
    assert r.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
    assert r.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "1"
    [s] = read_series(storage, "http_requests_total")
    assert s.labels == (("__name__", "http_requests_total"), ("job", "api"))
    assert s.values.tolist() == [1.0, 2.0]
    assert client.get("/api/v1/metadata").json()["data"] == {
        "http_requests_total": [{"type": "counter", "help": "Total requests.", "unit": ""}]}


def test_write_v2_errors(client, storage):
    r = post(client, v2_request(["x", "__name__", "m"], [([1, 2], [(T0, 1.0)], {})]), headers=V2_HEADERS)
    assert r.status_code == 400 and "symbols[0]" in r.text
    r = post(client, v2_request(["", "__name__", "m"], [([1, 2], [(T0, 1.0)], {}), ([1, 9], [(T0, 1.0)], {}),
                                                         ([1], [(T0, 1.0)], {})]), headers=V2_HEADERS)
    assert r.status_code == 400
    assert "outside the symbols table" in r.text and "odd number" in r.text
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "1"   # the valid series was written
    assert len(read_series(storage, "m")) == 1


def test_family_name_of_rw2_metadata():
    assert remote._family("req_duration_bucket", "histogram") == "req_duration"
    assert remote._family("rpc_count", "summary") == "rpc"
    assert remote._family("rpc_count", "counter") == "rpc_count"


# ---- remote read ------------------------------------------------------------------------------------------------------

def seed(client):
    series = [
        ([("__name__", "cpu"), ("host", "a"), ("mode", "idle")], [(T0, 1.0), (T0 + 1000, 2.0), (T0 + 2000, STALE)]),
        ([("__name__", "cpu"), ("host", "b"), ("mode", "user")], [(T0, 10.0), (T0 + 1000, 20.0)]),
        ([("__name__", "mem"), ("host", "a")], [(T0 + 500, 3.5)]),
    ]
    assert post(client, write_request(series)).status_code == 204


def read_request(queries, accepted=()):
    req = remote_pb2.ReadRequest(accepted_response_types=list(accepted))
    for start, end, matchers in queries:
        q = req.queries.add(start_timestamp_ms=start, end_timestamp_ms=end)
        for typ, name, value in matchers:
            q.matchers.add(type=typ, name=name, value=value)
        q.hints.CopyFrom(types_pb2.ReadHints(step_ms=15000, func="rate", start_ms=start, end_ms=end, range_ms=60000))
    return req.SerializeToString()


EQ, NEQ, RE, NRE = (types_pb2.LabelMatcher.EQ, types_pb2.LabelMatcher.NEQ, types_pb2.LabelMatcher.RE,
                    types_pb2.LabelMatcher.NRE)
READ_HEADERS = {"Content-Encoding": "snappy", "Accept-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Read-Version": "0.1.0"}


def do_read(client, body, path="/api/v1/read"):
    return client.post(path, content=snappy.compress(body), headers=READ_HEADERS)


def decode_samples(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/x-protobuf"
    assert resp.headers["content-encoding"] == "snappy"
    out = remote_pb2.ReadResponse()
    out.ParseFromString(snappy.uncompress(resp.content))
    return out


def as_dicts(result):
    return [({lb.name: lb.value for lb in ts.labels}, [(s.timestamp, s.value) for s in ts.samples])
            for ts in result.timeseries]


@pytest.mark.parametrize("path", ["/api/v1/read", "/prometheus/api/v1/read", "/api/v1/prom/remote/read"])
def test_remote_read_samples_all_matcher_types(client, storage, path):
    seed(client)
    body = read_request([
        (T0, T0 + 5000, [(EQ, "__name__", "cpu")]),
        (T0, T0 + 5000, [(EQ, "__name__", "cpu"), (NEQ, "host", "a")]),
        (T0, T0 + 5000, [(RE, "__name__", "cpu|mem"), (NRE, "host", "b")]),
        (T0 + 1000, T0 + 1000, [(RE, "host", "a")]),
        (T0, T0 + 5000, [(RE, "__name__", "cp")]),            # anchored: no partial match
        (T0, T0 + 5000, [(EQ, "__name__", "mem"), (EQ, "mode", "")]),   # "" matches an absent label
    ])
    res = decode_samples(do_read(client, body, path))
    assert len(res.results) == 6
    r0 = as_dicts(res.results[0])
    assert [lab for lab, _ in r0] == [{"__name__": "cpu", "host": "a", "mode": "idle"},
                                      {"__name__": "cpu", "host": "b", "mode": "user"}]
    assert r0[1][1] == [(T0, 10.0), (T0 + 1000, 20.0)]
    assert [lab["host"] for lab, _ in as_dicts(res.results[1])] == ["b"]
    assert [lab["__name__"] for lab, _ in as_dicts(res.results[2])] == ["cpu", "mem"]
    assert as_dicts(res.results[3]) == [({"__name__": "cpu", "host": "a", "mode": "idle"}, [(T0 + 1000, 2.0)])]
    assert as_dicts(res.results[4]) == []
    assert [lab for lab, _ in as_dicts(res.results[5])] == [{"__name__": "mem", "host": "a"}]
    # the stale marker comes back bit for bit
    stale = res.results[0].timeseries[0].samples[2].value
    assert struct.unpack("<Q", struct.pack("<d", stale))[0] == remote.STALE_NAN_BITS


def test_remote_read_errors(client, storage):
    r = client.post("/api/v1/read", content=b"\x10\xff\xff", headers=READ_HEADERS)
    assert r.status_code == 400
    r = do_read(client, read_request([(0, 1, [(RE, "a", "(")])]))
    assert r.status_code == 400 and "invalid regex" in r.text
    req = remote_pb2.ReadRequest(accepted_response_types=[7])
    req.queries.add(start_timestamp_ms=0, end_timestamp_ms=1).matchers.add(name="__name__", value="x")
    r = do_read(client, req.SerializeToString())
    assert r.status_code == 400 and "does not support any of the requested response types" in r.text


def parse_frames(data: bytes):
    frames, pos = [], 0
    while pos < len(data):
        shift = length = 0
        while True:
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        crc = struct.unpack(">I", data[pos:pos + 4])[0]
        msg = data[pos + 4:pos + 4 + length]
        assert google_crc32c.value(msg) == crc
        pos += 4 + length
        m = remote_pb2.ChunkedReadResponse()
        m.ParseFromString(msg)
        frames.append(m)
    return frames


def test_remote_read_streamed_xor_chunks(client, storage):
    seed(client)
    n = 1000
    samples = [(T0 + i * 15000 + (i % 3), float(np.sin(i)) if i % 5 else float(i)) for i in range(n)]
    assert post(client, write_request([([("__name__", "long")], samples)])).status_code == 204
    body = read_request([(T0, T0 + 10**9, [(EQ, "__name__", "cpu")]), (T0, T0 + 10**9, [(EQ, "__name__", "long")])],
                        accepted=[remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS, remote_pb2.ReadRequest.SAMPLES])
    r = do_read(client, body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    assert "content-encoding" not in r.headers
    frames = parse_frames(r.content)
    assert [f.query_index for f in frames] == [0, 0, 1]
    cs = frames[0].chunked_series[0]
    assert [(lb.name, lb.value) for lb in cs.labels] == [("__name__", "cpu"), ("host", "a"), ("mode", "idle")]
    ts, vals = remote.decode_xor_chunk(cs.chunks[0].data)
    assert ts.tolist() == [T0, T0 + 1000, T0 + 2000]
    assert bits(vals).tolist()[2] == remote.STALE_NAN_BITS
    long = frames[2].chunked_series[0]
    assert len(long.chunks) == 9 and all(c.type == types_pb2.Chunk.XOR for c in long.chunks)
    got_t, got_v = zip(*(remote.decode_xor_chunk(c.data) for c in long.chunks))
    assert np.concatenate(got_t).tolist() == [t for t, _ in samples]
    assert np.concatenate(got_v).tolist() == [v for _, v in samples]
    assert long.chunks[0].min_time_ms == T0 and long.chunks[-1].max_time_ms == samples[-1][0]


def test_stream_splits_large_series_over_frames():
    from storage.querier import SeriesData
    ts = np.arange(5000, dtype=np.int64) * 1000
    s = SeriesData((("__name__", "x"),), ts, np.random.default_rng(0).normal(size=5000))
    frames = parse_frames(b"".join(remote.stream_chunked([[s]], max_bytes=4096)))
    assert len(frames) > 3
    assert all(f.chunked_series[0].labels[0].value == "x" for f in frames)
    chunks = [c for f in frames for c in f.chunked_series[0].chunks]
    assert np.concatenate([remote.decode_xor_chunk(c.data)[0] for c in chunks]).tolist() == ts.tolist()


# ---- encoders ----------------------------------------------------------------------------------------------------------

def test_xor_chunk_matches_prometheus_bytes():
    # The chunk Prometheus 2.42 produced for (t0, 1.0), (t0+30s, 2.0), ... starts with these bytes.
    ts = np.array([1795386186000, 1795386216000, 1795386246000])
    data = remote.encode_xor_chunk(ts, np.array([1.0, 2.0, 2.0]))
    assert data.hex().startswith("0003" "a0e4d8d5c068" "3ff0000000000000" "b0ea01" "c25f")


@pytest.mark.parametrize("seed_", range(6))
def test_xor_chunk_round_trip(seed_):
    rng = np.random.default_rng(seed_)
    n = int(rng.integers(1, 121))
    steps = rng.choice([1, 15000, 14999, 15001, 100_000, 10**7, 10**11], size=n)
    ts = (np.cumsum(steps) + int(rng.integers(-10**13, 10**13))).astype(np.int64)
    pools = [rng.normal(size=n), np.round(rng.normal(size=n) * 100),
             np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, STALE, 5e-324] * 20)[:n]]
    vals = pools[seed_ % 3]
    got_t, got_v = remote.decode_xor_chunk(remote.encode_xor_chunk(ts, vals))
    assert got_t.tolist() == ts.tolist()
    assert bits(got_v).tolist() == bits(vals).tolist()


def test_encode_samples_matches_protobuf():
    ts = np.array([0, 1, 127, 128, T0, -1, -T0, 2**62], dtype=np.int64)
    vals = np.array([0.0, -0.0, 1.5, np.inf, STALE, np.nan, -2.0, 1e-300])
    series = types_pb2.TimeSeries()
    series.ParseFromString(remote.encode_samples(ts, vals))
    assert [s.timestamp for s in series.samples] == ts.tolist()
    assert bits([s.value for s in series.samples]).tolist() == bits(vals).tolist()


# ---- speed -------------------------------------------------------------------------------------------------------------

def test_write_speed_2000_series(storage, capsys):
    req = remote_pb2.WriteRequest()
    for i in range(2000):
        ts = req.timeseries.add()
        for k, v in (("__name__", "node_cpu_seconds_total"), ("cpu", str(i % 64)), ("instance", f"host-{i // 64}:9100"),
                     ("job", "node"), ("mode", "idle")):
            ts.labels.add(name=k, value=v)
        ts.samples.add(timestamp=T0, value=float(i))
    body = snappy.compress(req.SerializeToString())
    remote.handle_write(storage, "anonymous", body, "application/x-protobuf", "snappy")   # creates the series
    rounds = 20
    start = time.perf_counter()
    for r in range(rounds):
        remote.handle_write(storage, "anonymous", body, "application/x-protobuf", "snappy")
    elapsed = time.perf_counter() - start
    rate = rounds * 2000 / elapsed
    with capsys.disabled():
        print(f"\nremote write 1.0, 2000 series x 1 sample: {rate:,.0f} samples/s ({elapsed / rounds * 1000:.1f} ms/request)")
    assert rate > 100_000


def _reference_decode(raw: bytes) -> dict:
    """What a plain protobuf decode of a WriteRequest says should be stored: {labels: [(t, bits)]}."""
    req = remote_pb2.WriteRequest.FromString(raw)
    out: dict = {}
    for series in req.timeseries:
        labels = remote.label_set([(lb.name, lb.value) for lb in series.labels])
        for s in series.samples:
            out.setdefault(labels, {})[s.timestamp] = int(bits([s.value])[0])
    return {k: sorted(v.items()) for k, v in out.items()}


@pytest.mark.parametrize("seed_", range(8))
def test_fast_write_path_agrees_with_protobuf(tmp_path, seed_):
    """Randomised requests (zero values and timestamps that proto3 leaves out, negative and huge timestamps,
    NaNs, long labels, several samples, exemplars, fields out of order) decode as protobuf says."""
    from storage.engine import EngineOptions, Storage
    rng = np.random.default_rng(seed_)
    parts = []
    for i in range(int(rng.integers(1, 60))):
        labels = [("__name__", f"m{int(rng.integers(0, 5))}"), ("i", str(i)), ("long", "x" * int(rng.integers(0, 300)))]
        rng.shuffle(labels)
        n = int(rng.choice([1, 1, 1, 0, 3]))
        ts_pool = [0, 1, T0, -5, 2**52, int(rng.integers(0, 2**40))]
        val_pool = [0.0, -0.0, 1.0, np.nan, STALE, 1e300, float(rng.normal())]
        series = types_pb2.TimeSeries(labels=[types_pb2.Label(name=k, value=v) for k, v in labels])
        for j in range(n):
            series.samples.add(timestamp=ts_pool[int(rng.integers(0, len(ts_pool)))] + j,
                               value=val_pool[int(rng.integers(0, len(val_pool)))])
        if rng.random() < 0.2:
            series.exemplars.add(value=1.0, timestamp=T0).labels.add(name="trace_id", value="t")
        body = series.SerializeToString()
        if rng.random() < 0.2 and n:   # samples first, labels after: still the same message on the wire
            lab_only = types_pb2.TimeSeries(labels=series.labels).SerializeToString()
            body = types_pb2.TimeSeries(samples=series.samples).SerializeToString() + lab_only
        parts.append(b"\x0a" + remote._uvarint(len(body)) + body)
    raw = b"".join(parts)
    expected = _reference_decode(raw)
    s = Storage(str(tmp_path / "d"), options=EngineOptions(wal_fsync=False))
    try:
        remote.handle_write(s, "t", snappy.compress(raw), "application/x-protobuf", "snappy")
        got = {}
        for sd in Querier(s, "t").select([Matcher("__name__", "=~", "m.*")], -2**62, 2**62):
            got[sd.labels] = list(zip(sd.ts.tolist(), bits(sd.values).tolist()))
        assert got == expected
    finally:
        s.close()


@pytest.mark.parametrize("k", [1, 2, 10])
def test_known_series_with_k_samples_each_take_the_columnar_path(tmp_path, monkeypatch, k):
    from storage.engine import EngineOptions, Storage
    monkeypatch.setattr(remote, "_KEY_CACHE", {})
    used = []
    real = remote._known_series
    monkeypatch.setattr(remote, "_known_series", lambda series: used.append(real(series) is not None) or real(series))

    def request(first_t, counts):
        out = types_pb2.TimeSeries, []
        for i, n in enumerate(counts):
            ts = out[0](labels=[types_pb2.Label(name="__name__", value="kk"), types_pb2.Label(name="i", value=str(i))])
            for j in range(n):
                ts.samples.add(timestamp=T0 + first_t + j * 1000, value=i + j / 10 + 0.5)
            body = ts.SerializeToString()
            out[1].append(b"\x0a" + remote._uvarint(len(body)) + body)
        return b"".join(out[1])
    s = Storage(str(tmp_path / "d"), options=EngineOptions(wal_fsync=False))
    try:
        raws = [request(0, [k] * 50), request(100_000, [k] * 50), request(200_000, [k] * 49 + [k + 1])]
        for raw in raws:
            remote.handle_write(s, "t", snappy.compress(raw), "application/x-protobuf", "snappy")
        assert used == [False, True, False]          # cold cache; all known with k each; one series with k+1
        expected: dict = {}
        for raw in raws:
            for labels, pts in _reference_decode(raw).items():
                expected.setdefault(labels, []).extend(pts)
        got = {sd.labels: list(zip(sd.ts.tolist(), bits(sd.values).tolist()))
               for sd in Querier(s, "t").select([Matcher("__name__", "=", "kk")], -2**62, 2**62)}
        assert got == {lb: sorted(v) for lb, v in expected.items()}
    finally:
        s.close()


def test_ingest_limits_apply_to_remote_write(client, storage):
    from storage.limits import Limits
    storage.limits = Limits({"defaults": {"ingestion_rate": 1, "ingestion_burst": 1}})
    body = write_request([([("__name__", "a")], [(T0, 1.0)]), ([("__name__", "b")], [(T0, 1.0)])])
    r = post(client, body)
    assert r.status_code == 429 and "ingestion rate limit" in r.text
    assert read_series(storage, "a") == []


# ---- against a real Prometheus 2.42 (skipped where it is not installed) ------------------------------------------------

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not __import__("shutil").which("prometheus"), reason="prometheus binary not installed")
def test_real_prometheus_writes_and_reads(storage, tmp_path):
    """Prometheus scrapes itself and remote-writes here (samples + metadata); a second Prometheus with only a
    remote_read of this server answers a query with the same numbers as the first one's local TSDB."""
    import subprocess
    import threading

    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from prom_bridge import api
    from tests.unit.prom.conftest import _Tenant

    app = Starlette(routes=api.routes(), middleware=[Middleware(_Tenant)])
    app.state.storage = storage
    port, p_send, p_read = _free_port(), _free_port(), _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    (tmp_path / "send.yml").write_text(
        "global: {scrape_interval: 1s, external_labels: {replica: r1}}\n"
        f"scrape_configs: [{{job_name: self, static_configs: [{{targets: ['127.0.0.1:{p_send}']}}]}}]\n"
        f"remote_write: [{{url: 'http://127.0.0.1:{port}/api/v1/write', queue_config: {{batch_send_deadline: 1s}},"
        " metadata_config: {send_interval: 1s}}]\n")
    (tmp_path / "read.yml").write_text(
        f"scrape_configs: []\nremote_read: [{{url: 'http://127.0.0.1:{port}/api/v1/read', read_recent: true}}]\n")
    procs = [subprocess.Popen(["prometheus", f"--config.file={tmp_path / name}.yml", f"--storage.tsdb.path={tmp_path / name}",
                               f"--web.listen-address=127.0.0.1:{p}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, p in (("send", p_send), ("read", p_read))]
    try:
        deadline = time.time() + 60
        meta = {}
        while time.time() < deadline:
            time.sleep(1)
            ups = read_series(storage, "up")
            if ups and len(ups[0].ts) >= 4:
                meta = remote.stores_for(storage)[0].query(["anonymous"], "prometheus_http_requests_total")
                if meta:
                    break
        [up] = read_series(storage, "up")
        assert dict(up.labels) == {"__name__": "up", "instance": f"127.0.0.1:{p_send}", "job": "self", "replica": "r1"}
        assert meta == {"prometheus_http_requests_total": [{"type": "counter", "help": "Counter of HTTP requests.",
                                                            "unit": ""}]}
        # Compare a little in the past (remote write trails by its batch deadline), retrying while it catches up.
        for _ in range(10):
            t = int(read_series(storage, "up")[0].ts[-1]) / 1000 - 2
            query = {"query": 'count({__name__=~".+", job="self"})', "time": str(t)}
            local = httpx.get(f"http://127.0.0.1:{p_send}/api/v1/query", params=query).json()
            via_read = httpx.get(f"http://127.0.0.1:{p_read}/api/v1/query", params=query).json()
            assert via_read["status"] == "success"
            if via_read["data"]["result"] == local["data"]["result"]:
                break
            time.sleep(1)
        assert via_read["data"]["result"] == local["data"]["result"]
        assert int(local["data"]["result"][0]["value"][1]) > 50
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        server.should_exit = True
        thread.join(10)
