"""The narrow read interface the query engines use (Prometheus' Querier idea): select series by matchers and
get their raw samples, without knowing about chunks, the head or SQL."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import Labels
from .matchers import Matcher


@dataclass
class SeriesData:
    labels: Labels                 # sorted ((name, value), ...), `__name__` included
    ts: np.ndarray                 # int64 ms, ascending
    values: np.ndarray             # float64 (stale markers keep their NaN bit pattern)


class Querier:
    def __init__(self, storage, tenant: str):
        self.storage = storage
        self.tenant = tenant
        self.index = storage.index.tenant(tenant)

    def series_ids(self, matchers: list[Matcher]) -> np.ndarray:
        return self.index.select(list(matchers))

    def labels(self, sid: int) -> Labels:
        return self.index.labels(sid)

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int, with_data: bool = True) -> list[SeriesData]:
        """Series matching every matcher, with their samples in [start_ms, end_ms]; series with no sample in
        the range are left out (as Prometheus does) unless with_data is False."""
        sids = self.series_ids(matchers)
        if len(sids) == 0:
            return []
        limit = self.storage.limits.for_tenant(self.tenant).max_series_per_query
        if limit and len(sids) > limit:
            from .limits import LimitError
            raise LimitError(f"the query exceeded the maximum number of series (limit: {limit})",
                             "max-series-per-query", 422)
        if not with_data:
            return [SeriesData(self.labels(s), np.empty(0, np.int64), np.empty(0)) for s in sids.tolist()]
        last = self.storage.last_times(sids)
        sids = sids[last >= start_ms]
        out = []
        for sid, (ts, vals) in zip(sids.tolist(), self.storage.read_raw(sids, start_ms, end_ms)):
            if len(ts):
                out.append(SeriesData(self.labels(sid), ts, vals))
        return out

    def label_names(self) -> list[str]:
        return self.index.label_names()

    def label_values(self, name: str) -> list[str]:
        return sorted(self.index.label_values(name))
