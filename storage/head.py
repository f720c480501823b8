"""The in-memory head: recent samples as columnar numpy arrays, never a Python object per sample.

Writes append whole batches to a pending list. Reads (and flushes) first fold the pending batches into
one block sorted by (series id, timestamp), where a later write of the same (id, ts) replaces the
earlier one. A composite int64 key (id << 32 | ts offset) makes that one stable argsort, which is
near-linear when the big block is already sorted and only the tail is new.
"""
from __future__ import annotations

import threading

import numpy as np

_I64 = np.int64


class Head:
    def __init__(self):
        self.lock = threading.Lock()
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_count = 0
        self.sids = np.empty(0, _I64)
        self.ts = np.empty(0, _I64)
        self.values = np.empty(0, np.float64)

    def __len__(self) -> int:
        return len(self.sids) + self._pending_count

    def append(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        with self.lock:
            self._pending.append((sids, ts, values))
            self._pending_count += len(sids)

    def _fold_locked(self) -> None:
        if not self._pending:
            return
        sids = np.concatenate([self.sids, *(p[0] for p in self._pending)])
        ts = np.concatenate([self.ts, *(p[1] for p in self._pending)])
        values = np.concatenate([self.values, *(p[2] for p in self._pending)])
        self._pending.clear()
        self._pending_count = 0
        if len(sids) == 0:
            return
        order = _sort_order(sids, ts)
        sids, ts, values = sids[order], ts[order], values[order]
        # After a stable sort equal (id, ts) pairs keep write order: keep the last of each run.
        keep = np.ones(len(sids), dtype=bool)
        keep[:-1] = (sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1])
        if not keep.all():
            sids, ts, values = sids[keep], ts[keep], values[keep]
        self.sids, self.ts, self.values = sids, ts, values

    def read(self, sids: np.ndarray, start_ms: int, end_ms: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Samples of each id with start_ms <= ts <= end_ms (copies, safe to keep)."""
        with self.lock:
            self._fold_locked()
            if len(self.sids) == 0:
                empty = (self.ts[:0], self.values[:0])
                return [empty] * len(sids)
            lo = np.searchsorted(self.sids, sids, "left")
            hi = np.searchsorted(self.sids, sids, "right")
            out = []
            ts_all, val_all = self.ts, self.values
            for a, b in zip(lo.tolist(), hi.tolist()):
                if a == b:
                    out.append((ts_all[:0], val_all[:0]))
                    continue
                seg = ts_all[a:b]
                i = a + int(np.searchsorted(seg, start_ms, "left"))
                j = a + int(np.searchsorted(seg, end_ms, "right"))
                out.append((ts_all[i:j].copy(), val_all[i:j].copy()))
            return out

    def take_before(self, cutoff_ms: int | None):
        """Remove and return (sids, ts, values) of all samples with ts < cutoff (None = everything)."""
        with self.lock:
            self._fold_locked()
            if cutoff_ms is None:
                mask = np.ones(len(self.ts), dtype=bool)
            else:
                mask = self.ts < cutoff_ms
            taken = (self.sids[mask], self.ts[mask], self.values[mask])
            rest = ~mask
            self.sids, self.ts, self.values = self.sids[rest], self.ts[rest], self.values[rest]
            return taken

    def snapshot(self):
        with self.lock:
            self._fold_locked()
            return self.sids, self.ts, self.values

    def restore(self, sids, ts, values) -> None:
        """Put samples back (a flush that failed must not lose them); existing newer writes win."""
        with self.lock:
            self._pending.insert(0, (sids, ts, values))
            self._pending_count += len(sids)
            # Folding keeps the last write per (id, ts); restored samples go first so newer writes win.
            head = (self.sids, self.ts, self.values)
            self.sids = np.empty(0, _I64)
            self.ts = np.empty(0, _I64)
            self.values = np.empty(0, np.float64)
            self._pending.insert(1, head)
            self._pending_count += len(head[0])
            self._fold_locked()


def _sort_order(sids: np.ndarray, ts: np.ndarray) -> np.ndarray:
    base = int(ts.min())
    span = int(ts.max()) - base
    if span < (1 << 31) and int(sids.max()) < (1 << 31) and int(sids.min()) >= 0:
        key = (sids.astype(_I64) << 32) | (ts - base)
        return np.argsort(key, kind="stable")
    return np.lexsort((ts, sids))   # lexsort is stable too
