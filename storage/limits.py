"""Per-tenant limits (Mimir's vocabulary), enforced before anything is written so a rejected request leaves
nothing half-written. Every error message ends in a stable id `(err-plumbago-<id>)`."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields, replace

UNLIMITED = 0


class LimitError(Exception):
    def __init__(self, message: str, error_id: str, status: int = 400):
        super().__init__(f"{message} (err-plumbago-{error_id})")
        self.status = status
        self.error_id = error_id


@dataclass(frozen=True)
class TenantLimits:
    max_series: int = UNLIMITED               # active series per tenant
    max_labels_per_series: int = 30
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    ingestion_rate: float = UNLIMITED         # samples/s, token bucket
    ingestion_burst: int = UNLIMITED
    max_series_per_query: int = 250_000
    max_points_per_render: int = 20_000_000
    query_timeout: float = 120.0              # seconds

    @classmethod
    def from_dict(cls, data: dict, base: "TenantLimits | None" = None) -> "TenantLimits":
        base = base or cls()
        known = {f.name for f in fields(cls)}
        unknown = set(data or {}) - known
        if unknown:
            raise ValueError(f"unknown limit(s) {sorted(unknown)}; known: {sorted(known)}")
        return replace(base, **(data or {}))


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float):
        self.tokens = tokens
        self.stamp = time.monotonic()


class Limits:
    def __init__(self, config: dict | None = None):
        config = config or {}
        self.defaults = TenantLimits.from_dict(config.get("defaults") or {})
        self.overrides = {t: TenantLimits.from_dict(v, self.defaults) for t, v in (config.get("tenants") or {}).items()}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def for_tenant(self, tenant: str) -> TenantLimits:
        return self.overrides.get(tenant, self.defaults)

    def take_ingestion(self, tenant: str, samples: int) -> None:
        """Take `samples` tokens or raise 429 without taking any (the whole request is refused)."""
        lim = self.for_tenant(tenant)
        if not lim.ingestion_rate:
            return
        burst = lim.ingestion_burst or lim.ingestion_rate
        with self._lock:
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = _Bucket(burst)
            now = time.monotonic()
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * lim.ingestion_rate)
            bucket.stamp = now
            if samples > bucket.tokens:
                raise LimitError(
                    f"the request has been rejected because the tenant exceeded the ingestion rate limit, set to "
                    f"{lim.ingestion_rate:g} items/s with a maximum allowed burst of {burst}",
                    "tenant-max-ingestion-rate", 429)
            bucket.tokens -= samples

    def check_new_series(self, tenant: str, current: int, new_label_sets: list) -> None:
        lim = self.for_tenant(tenant)
        if lim.max_series and current + len(new_label_sets) > lim.max_series:
            raise LimitError(f"per-user series limit of {lim.max_series} exceeded", "max-series-per-user")
        for labels in new_label_sets:
            if len(labels) > lim.max_labels_per_series:
                raise LimitError(f"received a series whose number of labels exceeds the limit (actual: "
                                 f"{len(labels)}, limit: {lim.max_labels_per_series}) series: '{_short(labels)}'",
                                 "max-label-names-per-series")
            for name, value in labels:
                if len(name) > lim.max_label_name_length:
                    raise LimitError(f"received a series whose label name length exceeds the limit, label: "
                                     f"'{name[:200]}' series: '{_short(labels)}'", "label-name-too-long")
                if len(value) > lim.max_label_value_length:
                    raise LimitError(f"received a series whose label value length exceeds the limit, value: "
                                     f"'{value[:200]}' (truncated) series: '{_short(labels)}'",
                                     "label-value-too-long")

    def usage_rate(self, tenant: str) -> float:
        return 0.0


def _short(labels) -> str:
    text = "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
    return text if len(text) <= 200 else text[:200] + "…"
