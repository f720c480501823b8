"""Carbon listeners: the plaintext (`name value timestamp\\n`) and pickle protocols, on asyncio.

Parsed lines become the same `IngestBatch` that `POST /metrics` produces, with `intervals` 0 (the service
fills them from storage-schemas), unit `unknown` and mtype `gauge` — what carbon-relay-ng would have sent for
the same line, so a series looks the same whichever way it arrived.
"""
from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import pickle
import socket
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ingest import ERR_INPUT, ERR_NAME_EMPTY, IngestBatch, IngestError, _eat_dots, _record, canonical_name

__all__ = [
    "CarbonServer", "CarbonStats", "parse_plaintext", "parse_pickle", "start_plaintext_server", "start_pickle_server",
    "MAX_LINE", "MAX_PICKLE_FRAME",
]

log = logging.getLogger(__name__)

MAX_LINE = 64 << 10                    # a longer line is dropped as invalid
MAX_PICKLE_FRAME = 16 << 20            # a larger pickle frame closes the connection (framing is lost)
READ_SIZE = 64 << 10                   # bytes per read: all complete lines in one read form one batch

ERR_FIELDS = "invalid line: need 3 fields (name value timestamp)"
ERR_VALUE = "invalid value"
ERR_TIME = "invalid timestamp"
ERR_TOO_LONG = f"invalid line: longer than {MAX_LINE} bytes"
ERR_PICKLE_ITEM = "invalid pickle datapoint: need (name, (timestamp, value))"

_UINT32_MAX = (1 << 32) - 1


@dataclass
class CarbonStats:
    """Counters one listener exposes (a datapoint of a pickle frame counts as a line)."""
    connections: int = 0
    lines_received: int = 0
    lines_invalid: int = 0
    batches_failed: int = 0            # on_batch raised: those points are lost (carbon has no acks)


# Canonical name per raw name field (bytes for plaintext, str for pickle); an error is stored as a 1-tuple.
_CACHE_MAX = 65536
_names: dict = {}


def _canonical(raw) -> str | tuple:
    """Name field `a.b.c` or `a.b.c;k=v;...` -> canonical name, or (error,) if invalid. Cached."""
    c = _names.get(raw)
    if c is not None:
        return c
    if raw.__class__ is bytes:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    else:
        text = raw
    if text is None:
        c = (ERR_INPUT,)
    else:
        name, *tags = text.split(";")
        name = _eat_dots(name)
        if not name:
            c = (ERR_NAME_EMPTY,)
        else:
            canon = canonical_name(name, tags)
            c = (ERR_INPUT,) if canon is None else canon
    if len(_names) >= _CACHE_MAX:
        _names.clear()
    _names[raw] = c
    return c


def _parse_time(t, now: int) -> int | None:
    """Seconds, as carbon-relay-ng does (unsigned 32-bit), loosened the way carbon itself is.

    carbon parses the timestamp with float() and treats -1 as "now", so we truncate decimals and read any
    negative (and `N`, rrdtool's "now") as now. Values >= 2**32 are refused: they are nearly always
    milliseconds sent by mistake.
    """
    try:
        v = int(t)
    except ValueError:
        if t == b"N" or t == "N":
            return now
        try:
            f = float(t)
        except ValueError:
            return None
        if f != f or f in (float("inf"), float("-inf")):
            return None
        v = int(f)
    except (TypeError, OverflowError):
        return None
    if v < 0:
        return now
    if v > _UINT32_MAX:
        return None
    return v


def _batch(names: list, ts: list, vals: list, invalid: int, errors: dict) -> IngestBatch:
    n = len(names)
    return IngestBatch(names, np.array(ts, dtype=np.int64), np.array(vals, dtype=np.float64),
                       np.zeros(n, dtype=np.int32), ["unknown"] * n, ["gauge"] * n, invalid, errors)


def parse_plaintext(data: bytes, now: float | None = None) -> tuple[IngestBatch, int]:
    """Parse complete plaintext lines. Returns (batch of the valid ones, number of bad lines).

    Blank lines are skipped without counting. `validation_errors` holds the reasons with 0-based line
    indices (over the non-blank lines).
    """
    now_s = int(time.time() if now is None else now)
    names, ts, vals = [], [], []
    errors: dict = {}
    bad = 0
    index = -1
    canonical = _canonical
    for line in data.split(b"\n"):
        parts = line.split()
        if not parts:
            continue
        index += 1
        if len(parts) != 3 or len(line) > MAX_LINE:
            bad += 1
            _record(errors, ERR_TOO_LONG if len(line) > MAX_LINE else ERR_FIELDS, index)
            continue
        raw_name, raw_value, raw_time = parts
        canon = canonical(raw_name)
        if canon.__class__ is tuple:
            bad += 1
            _record(errors, canon[0], index)
            continue
        try:
            # Python's float() takes `1_000`; Go's ParseFloat (carbon-relay-ng) does not.
            if b"_" in raw_value:
                raise ValueError
            value = float(raw_value)
        except ValueError:
            bad += 1
            _record(errors, ERR_VALUE, index)
            continue
        if raw_time.isdigit() and len(raw_time) <= 10:
            t = int(raw_time)
            if t > _UINT32_MAX:
                t = None
        else:
            t = _parse_time(raw_time if b"_" not in raw_time else b"x", now_s)
        if t is None:
            bad += 1
            _record(errors, ERR_TIME, index)
            continue
        names.append(canon)
        vals.append(value)
        ts.append(t)
    return _batch(names, ts, vals, bad, errors), bad


class _RefuseAll(pickle.Unpickler):
    """Carbon pickles hold only lists, tuples, strings and numbers: importing any class or function is
    refused, which is what makes unpickling untrusted bytes safe (no REDUCE target can be obtained)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: carbon pickles contain no objects")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id")


def parse_pickle(payload: bytes, now: float | None = None,
                 max_frame: int = MAX_PICKLE_FRAME) -> tuple[IngestBatch, int]:
    """Parse one pickle frame body (without its 4-byte length): `[(name, (timestamp, value)), ...]`.

    Raises IngestError if the frame is not such a pickle; bad datapoints inside a good frame are counted.
    """
    if len(payload) > max_frame:
        raise IngestError(f"pickle frame of {len(payload)} bytes exceeds {max_frame}")
    try:
        # encoding="bytes": Python 2 `str` names arrive as bytes and are decoded per datapoint, so one bad
        # name invalidates its datapoint, not the frame.
        items = _RefuseAll(io.BytesIO(payload), encoding="bytes").load()
    except Exception as e:              # UnpicklingError, EOFError, ValueError, ... all mean a bad frame
        raise IngestError(f"invalid pickle frame: {e}") from None
    if not isinstance(items, (list, tuple)):
        raise IngestError(f"invalid pickle frame: expected a list of datapoints, got {type(items).__name__}")
    now_s = int(time.time() if now is None else now)
    names, ts, vals = [], [], []
    errors: dict = {}
    bad = 0
    for index, item in enumerate(items):
        try:
            raw_name, (raw_time, raw_value) = item
        except (TypeError, ValueError):
            bad += 1
            _record(errors, ERR_PICKLE_ITEM, index)
            continue
        if raw_name.__class__ not in (str, bytes):
            bad += 1
            _record(errors, ERR_INPUT, index)
            continue
        canon = _canonical(raw_name)
        if canon.__class__ is tuple:
            bad += 1
            _record(errors, canon[0], index)
            continue
        # carbon applies float() to both; strings holding numbers are therefore accepted too.
        try:
            value = float(raw_value)
        except (TypeError, ValueError):
            bad += 1
            _record(errors, ERR_VALUE, index)
            continue
        t = _parse_time(raw_time, now_s) if raw_time.__class__ is not bool else None
        if t is None:
            bad += 1
            _record(errors, ERR_TIME, index)
            continue
        names.append(canon)
        vals.append(value)
        ts.append(t)
    return _batch(names, ts, vals, bad, errors), bad


# ---------------------------------------------------------------------------------------------------------
# Listeners
#
# Connections are read on the event loop; parsing and on_batch (a storage write: WAL append + fsync) run on one
# worker thread per listener, which takes everything queued since its previous round and delivers it in one
# on_batch call: group commit, one fsync for many reads, and the event loop never waits for the disk. The queue
# is bounded in bytes and a connection waits for room *before* reading more, so a fast client is slowed by TCP
# flow control, and a read chunk is never held in a wait that shutdown could cancel.

OnBatch = Callable[[IngestBatch], object]

MAX_QUEUED = 1 << 20                   # bytes read but not yet taken by the writer thread, per listener
CLOSE_GRACE = 5.0                      # seconds connections may take at shutdown to hand in what they hold


class CarbonServer:
    """A running listener. `close()` stops accepting and ends each connection after what the kernel has already
    received from it; `wait_closed()` returns once all of that has been passed to on_batch."""

    def __init__(self, parse, on_batch: OnBatch, tenant: str, stats: CarbonStats | None, max_queued: int):
        self.stats = stats if stats is not None else CarbonStats()
        self.closing = False
        self._parse = parse                # chunk -> (batch, bad lines); IngestError for a bad pickle frame
        self._on_batch = on_batch
        self._tenant = tenant
        self._max_queued = max_queued
        self._server: asyncio.AbstractServer | None = None
        self._conns: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._queued: list[bytes] = []
        self._queued_bytes = 0
        self._wake = asyncio.Event()       # something was queued, or the writer should finish
        self._room = asyncio.Event()       # the queue is below max_queued
        self._room.set()
        self._done = False
        self._writer: asyncio.Task | None = None

    @property
    def sockets(self):
        return self._server.sockets

    async def _listen(self, handle, host: str, port: int, **kwargs) -> "CarbonServer":
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.stats.connections += 1
            task = asyncio.current_task()
            self._conns[task] = writer
            try:
                await handle(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            except asyncio.CancelledError:     # wait_closed gave up on a client that kept sending
                pass
            finally:
                del self._conns[task]
                await _close(writer)

        self._server = await asyncio.start_server(serve, host, port, **kwargs)
        self._writer = asyncio.create_task(self._write_loop())
        return self

    def close(self) -> None:
        self.closing = True
        self._server.close()
        for writer in self._conns.values():
            _stop_reading(writer)

    async def wait_closed(self) -> None:
        if self._conns:
            _, late = await asyncio.wait(list(self._conns), timeout=CLOSE_GRACE)
            for task in late:              # a client still streaming: stop reading it
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._done = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        await self._server.wait_closed()

    # -- queue, filled on the event loop ----------------------------------------------------------------
    async def _wait_room(self) -> None:
        while self._queued_bytes >= self._max_queued:
            await self._room.wait()

    def _put(self, chunk: bytes) -> None:
        self._queued.append(chunk)
        self._queued_bytes += len(chunk)
        self._wake.set()
        if self._queued_bytes >= self._max_queued:
            self._room.clear()

    async def _write_loop(self) -> None:
        while self._queued or not self._done:
            if not self._queued:
                self._wake.clear()
                await self._wake.wait()
                continue
            chunks, self._queued, self._queued_bytes = self._queued, [], 0
            self._room.set()
            try:
                received, invalid, failed = await asyncio.to_thread(self._work, chunks)
            except Exception:              # a bug, not bad input: the listener lives on
                log.exception("carbon: failed to process %d reads", len(chunks))
                received, invalid, failed = 0, 0, 1
            self.stats.lines_received += received      # the counters are only touched on the event loop
            self.stats.lines_invalid += invalid
            self.stats.batches_failed += failed

    # -- writer thread ----------------------------------------------------------------------------------
    def _work(self, chunks: list[bytes]) -> tuple[int, int, int]:
        """Parse and deliver queued chunks. Returns (lines received, lines invalid, batches failed)."""
        received = invalid = 0
        batches = []
        for chunk in chunks:
            # Hand the GIL to the event loop between chunks: parsing holds it, and the loop would otherwise
            # wait up to the 5 ms switch interval after each of its syscalls (a request takes dozens).
            time.sleep(0)
            try:
                batch, bad = self._parse(chunk)
            except IngestError as e:       # a bad pickle frame counts as one invalid line
                received += 1
                invalid += 1
                log.warning("carbon: %s", e)
                continue
            received += batch.published + bad
            invalid += bad
            if batch.published:
                batch.tenant = self._tenant
                batches.append(batch)
        return received, invalid, self._deliver(batches)

    def _deliver(self, batches: list[IngestBatch]) -> int:
        """One on_batch call for all batches; if it fails, one per batch, so an error caused by one batch (a
        limit, say) loses only that batch's points, as when each read was written alone. Returns batches failed."""
        if len(batches) > 1:
            try:
                self._on_batch(_merge(batches))
                return 0
            except Exception:
                pass
        failed = 0
        for batch in batches:
            try:
                self._on_batch(batch)
            except Exception:
                # The points are lost, as with carbon (no acks), and counted; the listener lives on.
                failed += 1
                log.exception("carbon: on_batch failed for %d points", batch.published)
        return failed


def _merge(batches: list[IngestBatch]) -> IngestBatch:
    """The batches as one, in order (validation_errors are left out: their line indices are per batch)."""
    merged = IngestBatch([n for b in batches for n in b.names], np.concatenate([b.ts for b in batches]),
                         np.concatenate([b.values for b in batches]), np.concatenate([b.intervals for b in batches]),
                         [u for b in batches for u in b.units], [m for b in batches for m in b.mtypes],
                         sum(b.invalid for b in batches))
    merged.tenant = batches[0].tenant
    return merged


def _stop_reading(writer: asyncio.StreamWriter) -> None:
    """Half-close for reading: reads return what the kernel already holds, then EOF, so nothing sent before
    shutdown is lost. On a dup of the descriptor: uvloop's transport socket has no shutdown()."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as dup:
            dup.shutdown(socket.SHUT_RD)
    except OSError:
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def start_plaintext_server(host: str, port: int, on_batch: OnBatch, tenant: str = "anonymous",
                                 stats: CarbonStats | None = None, max_queued: int = MAX_QUEUED) -> CarbonServer:
    """Listen for carbon plaintext. All complete lines of one read form one batch (`batch.tenant` is `tenant`);
    `on_batch` is called from a worker thread, with the batches queued meanwhile merged into one."""
    server = CarbonServer(parse_plaintext, on_batch, tenant, stats, max_queued)
    stats = server.stats

    async def handle(reader: asyncio.StreamReader) -> None:
        tail = b""
        skipping = False               # inside an over-long line: discard up to the next newline
        while True:
            await server._wait_room()
            data = await reader.read(READ_SIZE)
            if not data:
                break
            if skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data = data[nl + 1:]
                skipping = False
            buf = tail + data if tail else data
            nl = buf.rfind(b"\n")
            if nl < 0:
                tail = buf
            else:
                tail = buf[nl + 1:]
                server._put(buf[:nl])
            if len(tail) > MAX_LINE:
                stats.lines_received += 1
                stats.lines_invalid += 1
                tail = b""
                skipping = True
        # A last line without newline: carbon would drop it, a user would not. At shutdown it may be cut short.
        if tail and not skipping and not server.closing:
            server._put(tail)

    return await server._listen(handle, host, port, limit=READ_SIZE)


async def start_pickle_server(host: str, port: int, on_batch: OnBatch, tenant: str = "anonymous",
                              stats: CarbonStats | None = None, max_frame: int = MAX_PICKLE_FRAME,
                              max_queued: int = MAX_QUEUED) -> CarbonServer:
    """Listen for carbon's pickle protocol: frames of a 4-byte big-endian length + pickle. A bad frame is
    counted and skipped; a frame larger than `max_frame` closes the connection (as carbon does). Frames are
    delivered as by start_plaintext_server."""
    server = CarbonServer(functools.partial(parse_pickle, max_frame=max_frame), on_batch, tenant, stats, max_queued)

    async def handle(reader: asyncio.StreamReader) -> None:
        while True:
            await server._wait_room()
            try:
                head = await reader.readexactly(4)
            except asyncio.IncompleteReadError:
                break
            size = int.from_bytes(head, "big")
            if size > max_frame:
                server.stats.lines_invalid += 1
                log.warning("carbon pickle: frame of %d bytes exceeds %d, closing connection", size, max_frame)
                break
            server._put(await reader.readexactly(size))

    return await server._listen(handle, host, port)
