"""Carbon plaintext and pickle protocols (graphite_api.carbon), parsers and real TCP listeners."""
import asyncio
import importlib.util
import math
import os
import pickle
import struct

import pytest

from graphite_api import carbon
from graphite_api.carbon import (CarbonStats, parse_pickle, parse_plaintext, start_pickle_server,
                                 start_plaintext_server)
from graphite_api.ingest import IngestError
from storage.limits import LimitError

NOW = 1700000000


# --- plaintext parser ---------------------------------------------------------------------------------------

def test_plaintext_good_lines():
    b, bad = parse_plaintext(b"a.b.c 1.5 1700000000\nx.y 2 1700000010\n", now=NOW)
    assert bad == 0 and b.invalid == 0
    assert b.names == ["a.b.c", "x.y"] and b.values.tolist() == [1.5, 2.0]
    assert b.ts.tolist() == [1700000000, 1700000010]
    assert b.intervals.tolist() == [0, 0] and b.units == ["unknown"] * 2 and b.mtypes == ["gauge"] * 2


def test_plaintext_whitespace_crlf_and_blank_lines():
    b, bad = parse_plaintext(b"\n  a 1 10  \r\n\t\nb\t2\t20\r\n\n", now=NOW)
    assert bad == 0 and b.names == ["a", "b"] and b.ts.tolist() == [10, 20]


def test_plaintext_tagged_names_canonicalised():
    b, bad = parse_plaintext(b"cpu;host=a;dc=east;name=zzz 1 10\n..x..y.;b=1 2 20\n", now=NOW)
    assert bad == 0 and b.names == ["cpu;dc=east;host=a", "x.y;b=1"]


def test_plaintext_special_values():
    b, bad = parse_plaintext(b"a nan 1\na NaN 2\na inf 3\na -Inf 4\na 1e3 5\na -0.5 6\n", now=NOW)
    assert bad == 0
    v = b.values.tolist()
    assert math.isnan(v[0]) and math.isnan(v[1]) and v[2:] == [math.inf, -math.inf, 1000.0, -0.5]


def test_plaintext_timestamps():
    b, bad = parse_plaintext(b"a 1 1700000000.9\na 1 -1\na 1 -5\na 1 N\na 1 4294967295\na 1 0\n", now=NOW + 0.7)
    assert bad == 0
    assert b.ts.tolist() == [1700000000, NOW, NOW, NOW, 4294967295, 0]


@pytest.mark.parametrize("line,err", [
    (b"a 1", "need 3 fields"), (b"a 1 2 3", "need 3 fields"), (b"a", "need 3 fields"),
    (b"a x 10", "invalid value"), (b"a 1,5 10", "invalid value"), (b"a 1_000 10", "invalid value"),
    (b"a 1 x", "invalid timestamp"), (b"a 1 4294967296", "invalid timestamp"),
    (b"a 1 1700000000000", "invalid timestamp"), (b"a 1 nan", "invalid timestamp"),
    (b"a 1 inf", "invalid timestamp"), (b"a 1 1_0", "invalid timestamp"),
    (b".. 1 10", "name cannot be empty"), (b"a;bad 1 10", "invalid input"), (b"a;k=~v 1 10", "invalid input"),
    (b"a; 1 10", "invalid input"), (b"a\xff 1 10", "invalid input"),
])
def test_plaintext_bad_lines(line, err):
    b, bad = parse_plaintext(b"ok 1 1\n" + line + b"\nok2 2 2\n", now=NOW)
    assert bad == 1 and b.invalid == 1
    assert b.names == ["ok", "ok2"]
    (key, slot), = b.validation_errors.items()
    assert err in key and slot == {"Count": 1, "ExampleIds": [1]}


def test_plaintext_overlong_line():
    b, bad = parse_plaintext(b"a" * (carbon.MAX_LINE + 1) + b" 1 1\nok 1 1\n", now=NOW)
    assert bad == 1 and b.names == ["ok"] and "longer than" in next(iter(b.validation_errors))


def test_plaintext_empty():
    b, bad = parse_plaintext(b"", now=NOW)
    assert bad == 0 and b.published == 0 and b.ts.dtype.name == "int64"


# --- pickle parser ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_good(protocol):
    data = [("a.b", (1700000000, 1.5)), ("c;x=1", (1700000001.7, 2)), ("d", ("1700000002", "3.5")),
            ("e.now" if protocol < 3 else b"e.now", (-1, 4.0))]   # py3 bytes need protocol 3+ (else a global)
    b, bad = parse_pickle(pickle.dumps(data, protocol=protocol), now=NOW)
    assert bad == 0
    assert b.names == ["a.b", "c;x=1", "d", "e.now"]
    assert b.ts.tolist() == [1700000000, 1700000001, 1700000002, NOW]
    assert b.values.tolist() == [1.5, 2.0, 3.5, 4.0]


def test_pickle_bad_items_counted():
    data = [("ok", (1, 1.0)), ("x",), ("y", (1,)), (5, (1, 1.0)), ("z", (1, "abc")), ("w", ("t", 1.0)),
            ("..", (1, 1.0)), ("v", (2 ** 40, 1.0)), "str", ("ok2", [2, 2.0])]
    b, bad = parse_pickle(pickle.dumps(data), now=NOW)
    assert b.names == ["ok", "ok2"] and bad == 8 and b.invalid == 8
    assert sum(v["Count"] for v in b.validation_errors.values()) == 8


def test_pickle_python2_style_str_names():
    # protocol 2 SHORT_BINSTRING names, as Python 2 carbon clients send; one is not valid UTF-8
    payload = (b"\x80\x02]q\x00(U\x03a.bq\x01K\x01G?\xf0\x00\x00\x00\x00\x00\x00\x86\x86q\x02"
               b"U\x02\xff\xfeK\x01G?\xf0\x00\x00\x00\x00\x00\x00\x86\x86e.")
    b, bad = parse_pickle(payload, now=NOW)
    assert b.names == ["a.b"] and bad == 1


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/plumbago-pwned",))


def test_pickle_malicious_payload_refused(tmp_path):
    marker = "/tmp/plumbago-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    payload = pickle.dumps([("a", (1, 1.0)), Evil()])
    with pytest.raises(IngestError, match="refused to load"):
        parse_pickle(payload)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("obj", [CarbonStats(), {1, 2}.__class__, print])
def test_pickle_any_global_refused(obj):
    with pytest.raises(IngestError, match="refused"):
        parse_pickle(pickle.dumps([("a", (1, obj))]))


@pytest.mark.parametrize("payload", [b"", b"garbage", pickle.dumps([("a", (1, 1.0))])[:-3],
                                     pickle.dumps({"a": 1}), pickle.dumps(5)])
def test_pickle_not_a_datapoint_list(payload):
    with pytest.raises(IngestError, match="invalid pickle frame"):
        parse_pickle(payload)


def test_pickle_frame_size_bound():
    with pytest.raises(IngestError, match="exceeds"):
        parse_pickle(b"x" * 101, max_frame=100)


# --- TCP listeners ------------------------------------------------------------------------------------------

async def _connect(server):
    """(reader, writer) of a new client connection to a listener started on port 0."""
    return await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])


async def _wait_for(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def _collector():
    got = []

    def on_batch(batch):
        got.append(batch)
    return got, on_batch


def _names(got):
    return [n for b in got for n in b.names]


def test_plaintext_listener_partial_reads_and_bad_lines():
    async def main():
        got, on_batch = _collector()
        server = await start_plaintext_server("127.0.0.1", 0, on_batch, tenant="t1")
        reader, writer = await _connect(server)
        # a line split across writes, a bad line in the middle, more after it on the same connection
        for piece in [b"a.b 1 10\nc.d 2", b" 20\nbad line\n", b"e;k=v 3 30\n", b"f 4 ", b"40\n"]:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        await _wait_for(lambda: len(_names(got)) == 4)
        assert _names(got) == ["a.b", "c.d", "e;k=v", "f"]
        assert all(b.tenant == "t1" for b in got)
        assert [t for b in got for t in b.ts.tolist()] == [10, 20, 30, 40]
        assert not reader.at_eof()                       # connection still open after the bad line
        writer.write(b"g 5 50")                          # last line without newline, then EOF
        writer.write_eof()
        await _wait_for(lambda: len(_names(got)) == 5)
        assert _names(got)[-1] == "g"
        await _wait_for(lambda: server.stats.connections == 1 and server.stats.lines_received == 6)
        assert server.stats.lines_invalid == 1
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


def test_plaintext_listener_batches_many_lines():
    async def main():
        got, on_batch = _collector()
        server = await start_plaintext_server("127.0.0.1", 0, on_batch)
        _, writer = await _connect(server)
        n = 20000
        writer.write(b"".join(b"m.%d %d %d\n" % (i % 100, i, 1000 + i) for i in range(n)))
        await writer.drain()
        writer.write_eof()
        await _wait_for(lambda: sum(b.published for b in got) == n)
        assert len(got) < n / 100                         # lines arrive in batches, not one call per line
        assert [v for b in got for v in b.values.tolist()] == [float(i) for i in range(n)]
        assert got[0].tenant == "anonymous"
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


def test_plaintext_listener_overlong_line_dropped():
    async def main():
        got, on_batch = _collector()
        stats = CarbonStats()
        server = await start_plaintext_server("127.0.0.1", 0, on_batch, stats=stats)
        assert server.stats is stats
        _, writer = await _connect(server)
        writer.write(b"ok1 1 1\n" + b"x" * (3 * carbon.MAX_LINE) + b" 1 1\nok2 2 2\n")
        await writer.drain()
        await _wait_for(lambda: _names(got) == ["ok1", "ok2"])
        assert stats.lines_invalid == 1 and stats.lines_received == 3
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


def test_plaintext_listener_survives_on_batch_error():
    async def main():
        calls = []

        def on_batch(batch):
            calls.append(batch.names)
            if len(calls) == 1:
                raise RuntimeError("storage hiccup")
        server = await start_plaintext_server("127.0.0.1", 0, on_batch)
        _, writer = await _connect(server)
        writer.write(b"a 1 1\n")
        await writer.drain()
        await _wait_for(lambda: len(calls) == 1)
        writer.write(b"b 1 1\n")
        await writer.drain()
        await _wait_for(lambda: len(calls) == 2)
        assert calls == [["a"], ["b"]] and server.stats.batches_failed == 1
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


def _frame(obj=None, raw=None):
    data = raw if raw is not None else pickle.dumps(obj, protocol=2)
    return struct.pack(">I", len(data)) + data


def test_pickle_listener():
    async def main():
        got, on_batch = _collector()
        server = await start_pickle_server("127.0.0.1", 0, on_batch, tenant="t2")
        reader, writer = await _connect(server)
        evil = pickle.dumps([Evil()])
        data = (_frame([("a.b", (100, 1.0)), ("c;z=1;y=2", (200, 2.0))]) + _frame(raw=evil) +
                _frame(raw=b"junk") + _frame([("d", (300, 3.0)), ("bad;", (1, 1.0))]))
        writer.write(data[:7])                            # a frame split mid-header and mid-body
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(data[7:])
        await writer.drain()
        await _wait_for(lambda: len(_names(got)) == 3)
        assert _names(got) == ["a.b", "c;y=2;z=1", "d"]
        assert all(b.tenant == "t2" for b in got)
        assert not os.path.exists("/tmp/plumbago-pwned")
        await _wait_for(lambda: server.stats.lines_received == 6)
        assert server.stats.lines_invalid == 3            # evil frame, junk frame, bad name
        assert not reader.at_eof()
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


def test_pickle_listener_oversize_frame_closes_connection():
    async def main():
        got, on_batch = _collector()
        server = await start_pickle_server("127.0.0.1", 0, on_batch, max_frame=1000)
        reader, writer = await _connect(server)
        writer.write(_frame([("a", (1, 1.0))]) + struct.pack(">I", 1001) + b"x" * 10)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""   # server closed the connection
        await _wait_for(lambda: _names(got) == ["a"])
        assert server.stats.lines_invalid == 1
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


# --- off-loop writer: group commit, backpressure, shutdown -------------------------------------------------
# on asyncio's loop and on uvloop (which uvicorn picks when installed)

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


def _run(coro, loop: str):
    if loop == "uvloop":
        import uvloop
        return uvloop.run(coro)
    return asyncio.run(coro)

class _Gate:
    """An on_batch whose first call blocks (like a slow fsync) until the test opens the gate."""

    def __init__(self, fail=lambda batch: False):
        import threading
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.opened_in_time = None
        self.calls = []
        self.fail = fail

    def __call__(self, batch):
        if not self.entered.is_set():
            self.entered.set()
            self.opened_in_time = self.opened.wait(10)
        if self.fail(batch):
            raise LimitError("too many", "test-limit")
        self.calls.append(batch)

    def names(self):
        return [n for b in self.calls for n in b.names]


async def _send(writer, data: bytes):
    writer.write(data)
    await writer.drain()


@pytest.mark.parametrize("loop", LOOPS)
def test_event_loop_serves_while_on_batch_blocks(loop):
    """The storage write runs off the event loop: while it is stuck, the loop accepts and reads connections."""
    async def main():
        gate = _Gate()
        server = await start_plaintext_server("127.0.0.1", 0, gate)
        _, w1 = await _connect(server)
        await _send(w1, b"a 1 1\n")
        await _wait_for(gate.entered.is_set)            # on_batch is now blocked in the writer thread
        _, w2 = await _connect(server)
        await _send(w2, b"b 2 2\n")
        await _wait_for(lambda: server.stats.connections == 2 and server._queued)   # read while blocked
        gate.opened.set()
        await _wait_for(lambda: gate.names() == ["a", "b"])
        assert gate.opened_in_time                      # with on_batch on the loop, this wait times out
        for w in (w1, w2):
            w.close()
        server.close()
        await server.wait_closed()
    _run(main(), loop)


def test_small_reads_are_group_committed_in_order():
    async def main():
        gate = _Gate()
        server = await start_plaintext_server("127.0.0.1", 0, gate)
        _, writer = await _connect(server)
        n = 300
        await _send(writer, b"m.0 0 1000\n")
        await _wait_for(gate.entered.is_set)
        sent = 0
        for i in range(1, n):                          # one line per write, each split in two writes
            line = b"m.%d %d %d\n" % (i % 7, i, 1000 + i)
            await _send(writer, line[:3])
            await _send(writer, line[3:])
            sent += len(line)
        # every line has been read and queued (a queued chunk is its lines without the last newline)
        await _wait_for(lambda: sum(len(c) + 1 for c in server._queued) == sent)
        gate.opened.set()
        await _wait_for(lambda: server.stats.lines_received == n)                # counted after on_batch
        assert [v for b in gate.calls for v in b.values.tolist()] == [float(i) for i in range(n)]
        assert len(gate.calls) == 2                     # the first line, then all the others in one write
        assert server.stats.batches_failed == 0
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


@pytest.mark.parametrize("loop", LOOPS)
def test_fast_client_gets_backpressure_not_unbounded_memory(loop):
    async def main():
        gate = _Gate()
        max_queued = 256 << 10
        server = await start_plaintext_server("127.0.0.1", 0, gate, max_queued=max_queued)
        _, writer = await _connect(server)
        line = b"bp." + b"x" * 200 + b" 1 1700000000\n"
        n = (32 << 20) // len(line)                     # 32 MiB: more than the kernel's socket buffers hold
        writer.write(line * n)
        await _wait_for(gate.entered.is_set)
        await asyncio.sleep(0.3)
        assert server._queued_bytes < max_queued + carbon.READ_SIZE
        assert writer.transport.get_write_buffer_size() > 0     # the client is held back by TCP flow control
        gate.opened.set()
        await writer.drain()
        await _wait_for(lambda: server.stats.lines_received == n, timeout=60)    # counted after on_batch
        assert sum(b.published for b in gate.calls) == n
        writer.close()
        server.close()
        await server.wait_closed()
    _run(main(), loop)


def test_limit_error_in_a_group_loses_only_that_read():
    async def main():
        gate = _Gate(fail=lambda batch: "over.limit" in batch.names)
        server = await start_plaintext_server("127.0.0.1", 0, gate)
        _, writer = await _connect(server)
        await _send(writer, b"first 1 1\n")
        await _wait_for(gate.entered.is_set)
        for data in (b"ok1 1 1\nbad line\n", b"over.limit 1 1\n", b"ok2 1 1\n"):   # three reads, one group
            await _send(writer, data)
            await _wait_for(lambda: server._queued and server._queued[-1] == data.rstrip(b"\n"))
        gate.opened.set()
        await _wait_for(lambda: server.stats.lines_received == 5)
        assert gate.names() == ["first", "ok1", "ok2"]
        assert server.stats.batches_failed == 1 and server.stats.lines_invalid == 1
        writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(main())


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("protocol", ["plaintext", "pickle"])
def test_close_delivers_everything_received_before_returning(protocol, loop):
    """Shutdown: close() + wait_closed() returns only after every complete line sent before it was delivered,
    also from connections the client keeps open; a partial last line is dropped."""
    async def main():
        gate = _Gate()
        if protocol == "plaintext":
            server = await start_plaintext_server("127.0.0.1", 0, gate)
            data = b"".join(b"s.%d %d %d\n" % (i, i, 1000 + i) for i in range(2000)) + b"s.partial 1 10"
            first = data.index(b"\n") + 1
        else:
            server = await start_pickle_server("127.0.0.1", 0, gate)
            frames = [_frame([("s.%d" % i, (1000 + i, float(i))) for i in range(k, k + 100)]) for k in range(0, 2000, 100)]
            data = b"".join(frames) + _frame([("s.partial", (10, 1.0))])[:-5]
            first = len(frames[0])
        reader, writer = await _connect(server)
        await _send(writer, data[:first])
        await _wait_for(gate.entered.is_set)            # the writer is busy: the rest stays queued or unread
        await _send(writer, data[first:])
        server.close()
        closing = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.1)
        assert not closing.done()                       # still waiting for on_batch
        gate.opened.set()
        await asyncio.wait_for(closing, 10)
        assert gate.names() == ["s.%d" % i for i in range(2000)]
        assert await asyncio.wait_for(reader.read(), 5) == b""   # the server closed the connection
        writer.close()
    _run(main(), loop)
