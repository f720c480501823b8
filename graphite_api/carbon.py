"""Carbon listeners: the plaintext (`name value timestamp\\n`) and pickle protocols, on asyncio.

Parsed lines become the same `IngestBatch` that `POST /metrics` produces, with `intervals` 0 (the service
fills them from storage-schemas), unit `unknown` and mtype `gauge` — what carbon-relay-ng would have sent for
the same line, so a series looks the same whichever way it arrived.
"""
from __future__ import annotations

import asyncio
import io
import logging
import pickle
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ingest import ERR_INPUT, ERR_NAME_EMPTY, IngestBatch, IngestError, _eat_dots, _record, canonical_name

__all__ = [
    "CarbonStats", "parse_plaintext", "parse_pickle", "start_plaintext_server", "start_pickle_server",
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

OnBatch = Callable[[IngestBatch], object]


def _deliver(on_batch: OnBatch, batch: IngestBatch, tenant: str, stats: CarbonStats) -> None:
    if not batch.published:
        return
    batch.tenant = tenant
    try:
        on_batch(batch)
    except Exception:
        # A storage error must not kill the listener; the points are lost, as with carbon, and counted.
        stats.batches_failed += 1
        log.exception("carbon: on_batch failed for %d points", batch.published)


async def start_plaintext_server(host: str, port: int, on_batch: OnBatch, tenant: str = "anonymous",
                                 stats: CarbonStats | None = None) -> asyncio.AbstractServer:
    """Listen for carbon plaintext. `on_batch(batch)` is called (on the event loop) once per read with all
    complete lines of that read; `batch.tenant` is `tenant`. The server's `stats` attribute has the counters."""
    stats = stats if stats is not None else CarbonStats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        tail = b""
        skipping = False               # inside an over-long line: discard up to the next newline
        try:
            while True:
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
                    _handle_lines(buf[:nl], on_batch, tenant, stats)
                if len(tail) > MAX_LINE:
                    stats.lines_received += 1
                    stats.lines_invalid += 1
                    tail = b""
                    skipping = True
            if tail and not skipping:   # a last line without newline: carbon would drop it; a user would not
                _handle_lines(tail, on_batch, tenant, stats)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await _close(writer)

    return await _listen(handle, host, port, stats, limit=READ_SIZE)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def _listen(handle, host: str, port: int, stats: CarbonStats, **kwargs) -> asyncio.AbstractServer:
    server = await asyncio.start_server(handle, host, port, **kwargs)
    try:
        server.stats = stats
    except AttributeError:   # uvloop's Server has no __dict__; callers pass `stats` in to keep a handle
        pass
    return server


def _handle_lines(chunk: bytes, on_batch: OnBatch, tenant: str, stats: CarbonStats) -> None:
    batch, bad = parse_plaintext(chunk)
    stats.lines_received += batch.published + bad
    stats.lines_invalid += bad
    _deliver(on_batch, batch, tenant, stats)


async def start_pickle_server(host: str, port: int, on_batch: OnBatch, tenant: str = "anonymous",
                              stats: CarbonStats | None = None,
                              max_frame: int = MAX_PICKLE_FRAME) -> asyncio.AbstractServer:
    """Listen for carbon's pickle protocol: frames of a 4-byte big-endian length + pickle. A bad frame is
    counted and skipped; a frame larger than `max_frame` closes the connection (as carbon does)."""
    stats = stats if stats is not None else CarbonStats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        try:
            while True:
                try:
                    head = await reader.readexactly(4)
                except asyncio.IncompleteReadError:
                    break
                size = int.from_bytes(head, "big")
                if size > max_frame:
                    stats.lines_invalid += 1
                    log.warning("carbon pickle: frame of %d bytes exceeds %d, closing connection", size, max_frame)
                    break
                payload = await reader.readexactly(size)
                try:
                    batch, bad = parse_pickle(payload, max_frame=max_frame)
                except IngestError as e:
                    stats.lines_received += 1
                    stats.lines_invalid += 1
                    log.warning("carbon pickle: %s", e)
                    continue
                stats.lines_received += batch.published + bad
                stats.lines_invalid += bad
                _deliver(on_batch, batch, tenant, stats)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await _close(writer)

    return await _listen(handle, host, port, stats)
