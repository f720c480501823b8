"""A byte-bounded LRU of decoded chunks: dashboards re-read the same hours over and over, and decoding is
the main cost of a read. Keys include the chunk's shape so a rewritten row never serves stale samples."""
from __future__ import annotations

import threading
from collections import OrderedDict


class ChunkCache:
    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        return self.get_many([key])[0]

    def get_many(self, keys: list) -> list:
        """get() for many keys under one lock: a read of 1,000 series looks up thousands of chunks."""
        items, touch = self._items, self._items.move_to_end
        out = []
        with self._lock:
            for key in keys:
                item = items.get(key)
                if item is None:
                    out.append(None)
                else:
                    touch(key)
                    out.append(item[0])
            hit = sum(1 for v in out if v is not None)
            self.hits += hit
            self.misses += len(out) - hit
        return out

    def put(self, key, value, size: int) -> None:
        if size > self.max_bytes // 4:
            return
        _freeze(value)   # shared between readers: a caller that writes into it must fail, not corrupt
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes


def _freeze(value) -> None:
    if hasattr(value, "flags"):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for item in value:
            _freeze(item)
