"""Per-tenant Prometheus metric metadata (type/help/unit from remote write) and recent exemplars.

Metadata is durable: one SQL row per (tenant, metric family), cached in memory. Prometheus re-sends all of it
every minute, so a row is written only when something changed. Exemplars are kept in memory only, in a bounded
ring per tenant, as Prometheus' own circular exemplar storage does (they are lost on restart there too).
"""
from __future__ import annotations

import threading
import time
import weakref
from collections import deque

from sqlalchemy import BigInteger, Column, String, Table, Text, and_, delete, insert, select

from storage.sql import metadata as sql_metadata

# Type names as /api/v1/metadata reports them (Prometheus' textparse.MetricType strings), by protobuf enum value.
TYPE_NAMES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")

prom_metadata = Table(
    "prom_metadata", sql_metadata,
    Column("tenant", String(256), primary_key=True),
    Column("metric", String(1024), primary_key=True),
    Column("type", String(32), nullable=False, default="unknown"),
    Column("help", Text, nullable=False, default=""),
    Column("unit", String(256), nullable=False, default=""),
    Column("updated_ms", BigInteger, nullable=False),
)


class MetadataStore:
    def __init__(self, db):
        self.db = db
        self.lock = threading.Lock()
        prom_metadata.create(db, checkfirst=True)   # the storage may have been opened before this module loaded
        self.cache: dict[str, dict[str, tuple[str, str, str]]] = {}
        with db.connect() as conn:
            for row in conn.execute(select(prom_metadata)):
                self.cache.setdefault(row.tenant, {})[row.metric] = (row.type, row.help, row.unit)

    def update(self, tenant: str, entries) -> int:
        """Store (metric, type, help, unit) entries; returns how many changed."""
        with self.lock:
            known = self.cache.setdefault(tenant, {})
            changed = {}
            for metric, mtype, help_, unit in entries:
                if not metric:
                    continue
                value = (mtype, help_, unit)
                if known.get(metric) != value:
                    changed[metric] = value
            if not changed:
                return 0
            now = int(time.time() * 1000)
            with self.db.begin() as conn:
                names = list(changed)
                for lo in range(0, len(names), 500):
                    conn.execute(delete(prom_metadata).where(and_(prom_metadata.c.tenant == tenant,
                                                                  prom_metadata.c.metric.in_(names[lo:lo + 500]))))
                conn.execute(insert(prom_metadata), [
                    {"tenant": tenant, "metric": m, "type": t, "help": h, "unit": u, "updated_ms": now}
                    for m, (t, h, u) in changed.items()])
            known.update(changed)
            return len(changed)

    def query(self, tenants, metric: str | None = None, limit: int | None = None,
              limit_per_metric: int | None = None) -> dict:
        """`/api/v1/metadata` data: {metric: [{type, help, unit}, ...]} (one entry per distinct triple)."""
        out: dict[str, list] = {}
        for tenant in tenants:
            for name, (t, h, u) in sorted(self.cache.get(tenant, {}).items()):
                if metric is not None and name != metric:
                    continue
                entry = {"type": t, "help": h, "unit": u}
                items = out.get(name)
                if items is None:
                    if limit is not None and limit >= 0 and len(out) >= limit:
                        continue
                    out[name] = [entry]
                elif entry not in items and (limit_per_metric is None or len(items) < limit_per_metric):
                    items.append(entry)
        return out


class ExemplarStore:
    def __init__(self, max_per_tenant: int = 100_000):
        self.max = max_per_tenant
        self.lock = threading.Lock()
        self.rings: dict[str, deque] = {}

    def add(self, tenant: str, items: list) -> None:
        """items: (series labels tuple, exemplar labels tuple, value, ts_ms)."""
        if not items:
            return
        with self.lock:
            ring = self.rings.get(tenant)
            if ring is None:
                ring = self.rings[tenant] = deque(maxlen=self.max)
            ring.extend(items)

    def query(self, tenants, matcher_sets: list, start_ms: int, end_ms: int) -> list:
        """`/api/v1/query_exemplars` data for series matching any of the matcher sets."""
        by_series: dict[tuple, list] = {}
        with self.lock:
            snapshot = [item for t in tenants for item in self.rings.get(t, ())]
        for labels, ex_labels, value, ts in snapshot:
            if not start_ms <= ts <= end_ms:
                continue
            lab = dict(labels)
            if not any(all(m.matches(lab.get(m.name, "")) for m in ms) for ms in matcher_sets):
                continue
            by_series.setdefault(labels, []).append((ts, ex_labels, value))
        return [{"seriesLabels": dict(labels), "exemplars": sorted(exs, key=lambda e: e[0])}
                for labels, exs in sorted(by_series.items())]


_stores: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def stores_for(storage) -> tuple[MetadataStore, ExemplarStore]:
    """The metadata and exemplar stores that belong to one Storage (created on first use)."""
    with _stores_lock:
        pair = _stores.get(storage)
        if pair is None:
            pair = _stores[storage] = (MetadataStore(storage.db), ExemplarStore())
        return pair
