"""Memory per indexed series: RSS growth of a storage engine after indexing 1M Graphite series
(`a.b.c.d` style, 10 % tagged), against an in-process reference: the same names held in a plain Python
dict (name -> int), the least any Python index can keep. Target: <= 1 KiB RSS per series.
"""
from __future__ import annotations

import gc
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from storage.engine import EngineOptions, Storage  # noqa: E402

COUNT = int(os.environ.get("BENCH_SERIES", 1_000_000))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def names(start: int, stop: int) -> list[str]:
    out = []
    for i in range(start, stop):
        if i % 10 == 0:
            out.append(f"svc.app{i % 97}.req;dc=dc{i % 3};host=h{i}")
        else:
            out.append(f"dc{i % 3}.host{i // 100}.disk{i % 100}.bytes_used")
    return out


def main() -> int:
    gc.collect()
    base = rss_kib()
    ref = {}
    for lo in range(0, COUNT, 50_000):
        for j, n in enumerate(names(lo, min(COUNT, lo + 50_000))):
            ref[n] = lo + j
    gc.collect()
    dict_kib = rss_kib() - base
    del ref
    gc.collect()
    with tempfile.TemporaryDirectory() as d:
        st = Storage(d, None, EngineOptions(flush_interval=3600))
        gc.collect()
        base = rss_kib()
        t0 = time.time()
        for lo in range(0, COUNT, 50_000):
            st.resolve("anonymous", names(lo, min(COUNT, lo + 50_000)))
        gc.collect()
        engine_kib = rss_kib() - base
        elapsed = time.time() - t0
        st.close()
    per_series = engine_kib * 1024 / COUNT
    per_ref = dict_kib * 1024 / COUNT
    print(f"# indexed {COUNT} series in {elapsed:.1f}s")
    print(f"index_rss_per_series: plumbago={per_series:.0f}B reference_dict={per_ref:.0f}B "
          f"ratio={per_series / per_ref:.2f}x (target <= 1024 B per series)", flush=True)
    return 0 if per_series <= 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
