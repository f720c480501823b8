"""Write-ahead log: an acknowledged write survives kill -9 (DESIGN §3).

Segments are append-only files `NNNNNNNN.wal` of records `[u32 length][u32 crc32][payload]`. A payload is
one sample batch: `u32 n`, then `n` int64 series ids, `n` int64 timestamps (ms), `n` float64 value bit
patterns (NaN payloads such as Prometheus stale markers survive). Replay stops at the first torn or corrupt
record of a segment and cuts the file there: a crash mid-write loses only the unacknowledged tail.

After a flush the engine writes a checkpoint (the samples still only in memory) and drops older segments.

Group commit: `write` appends a record and returns a ticket; `sync(ticket)` returns once that record is on
disk. One fsync covers every record written before it, so concurrent writers share fsyncs instead of taking
turns, and none of them holds the engine's write lock while waiting for the disk.
"""
from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import Iterator

import numpy as np

_HEADER = struct.Struct("<II")
_COUNT = struct.Struct("<I")
MAX_RECORD = 1 << 30


def encode_batch(sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
    n = len(sids)
    return b"".join((_COUNT.pack(n), np.ascontiguousarray(sids, dtype="<i8").tobytes(),
                     np.ascontiguousarray(ts, dtype="<i8").tobytes(),
                     np.ascontiguousarray(values, dtype="<f8").tobytes()))


def decode_batch(payload: bytes):
    (n,) = _COUNT.unpack_from(payload)
    if len(payload) != 4 + 24 * n:
        raise ValueError("bad WAL batch length")
    buf = memoryview(payload)[4:]
    sids = np.frombuffer(buf[:8 * n], dtype="<i8").astype(np.int64)
    ts = np.frombuffer(buf[8 * n:16 * n], dtype="<i8").astype(np.int64)
    values = np.frombuffer(buf[16 * n:], dtype="<f8").astype(np.float64)
    return sids, ts, values


def _read_records(path: str, repair: bool) -> Iterator[bytes]:
    with open(path, "r+b" if repair else "rb") as f:
        data = f.read()
        pos = 0
        while pos < len(data):
            if pos + 8 > len(data):
                break
            length, crc = _HEADER.unpack_from(data, pos)
            end = pos + 8 + length
            if length > MAX_RECORD or end > len(data):
                break
            payload = data[pos + 8:end]
            if zlib.crc32(payload) != crc:
                break
            yield payload
            pos = end
        if pos < len(data) and repair:   # torn tail: cut it so appends continue from a clean end
            f.truncate(pos)
            f.flush()
            os.fsync(f.fileno())


class WAL:
    def __init__(self, directory: str, fsync: bool = True, segment_bytes: int = 128 << 20):
        self.dir = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        os.makedirs(directory, exist_ok=True)
        self.lock = threading.Lock()             # file, sequence and counters
        self._sync_lock = threading.Lock()       # one fsync at a time; waiters behind it often need none
        self._file = None
        self._seq = max(self._segments() or [0])
        self._written = 0                        # records written since start (tickets)
        self._synced = 0                         # records known durable

    def _segments(self) -> list[int]:
        out = []
        for name in os.listdir(self.dir):
            if name.endswith(".wal") and name[:-4].isdigit():
                out.append(int(name[:-4]))
        return sorted(out)

    def _path(self, seq: int) -> str:
        return os.path.join(self.dir, f"{seq:08d}.wal")

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.dir, "checkpoint")

    def replay(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield every durable batch: the checkpoint first, then the segments in order."""
        if os.path.exists(self.checkpoint_path):
            for payload in _read_records(self.checkpoint_path, repair=False):
                yield decode_batch(payload)
        for seq in self._segments():
            for payload in _read_records(self._path(seq), repair=True):
                yield decode_batch(payload)

    def _open(self):
        if self._file is None:
            if self._seq == 0:
                self._seq = 1
            self._file = open(self._path(self._seq), "ab")
        return self._file

    def append(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Write one batch and return once it is durable."""
        self.sync(self.write(sids, ts, values))

    def write(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> int:
        """Write one batch to the file (not yet synced); returns the ticket for `sync`."""
        payload = encode_batch(sids, ts, values)
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self.lock:
            f = self._open()
            f.write(record)
            f.flush()
            self._written += 1
            ticket = self._written
            if f.tell() >= self.segment_bytes:
                self._rotate_locked()
        return ticket

    def sync_all(self) -> None:
        """Return once every record written so far is on disk."""
        with self.lock:
            ticket = self._written
        self.sync(ticket)

    def sync(self, ticket: int) -> None:
        """Return once the record of `ticket` (and every one before it) is on disk."""
        if not self.fsync:
            return
        with self._sync_lock:
            self._sync_locked(ticket)

    def try_sync(self, ticket: int) -> bool:
        """Like sync, but only when no other fsync is running: returns False then (the caller syncs later,
        off its thread) instead of queueing behind it."""
        if not self.fsync or self._synced >= ticket:
            return True
        if not self._sync_lock.acquire(blocking=False):
            return False
        try:
            self._sync_locked(ticket)
        finally:
            self._sync_lock.release()
        return True

    def _sync_locked(self, ticket: int) -> None:
        if self._synced >= ticket:               # a sync that started after our write covered it
            return
        with self.lock:
            covered = self._written
            fd = os.dup(self._file.fileno()) if self._file is not None else None
        if fd is not None:                       # None: rotation already synced and closed the segment
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        with self.lock:
            self._synced = max(self._synced, covered)

    def _rotate_locked(self) -> int:
        if self._file is not None:
            if self.fsync:                       # records written but not yet synced must not be lost
                os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._synced = self._written
        self._seq += 1
        return self._seq

    def rotate(self) -> int:
        """Start a new segment; returns its number. Segments below it can be dropped after a checkpoint."""
        with self.lock:
            return self._rotate_locked()

    def checkpoint(self, batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]], before_seq: int) -> None:
        """Atomically replace the checkpoint with `batches`, then delete segments numbered below before_seq."""
        tmp = self.checkpoint_path + ".tmp"
        with open(tmp, "wb") as f:
            for sids, ts, values in batches:
                if len(sids):
                    payload = encode_batch(sids, ts, values)
                    f.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.checkpoint_path)
        self._fsync_dir()
        for seq in self._segments():
            if seq < before_seq:
                os.remove(self._path(seq))
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self.lock:
            if self._file is not None:
                if self.fsync and self._synced < self._written:
                    os.fsync(self._file.fileno())
                    self._synced = self._written
                self._file.close()
                self._file = None
