"""Operations endpoints: /ready, GET /metrics (self-monitoring in Prometheus format), /version."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

GRAPHITE_VERSION = "1.1.10"   # the graphite-web API level served; Grafana reads it as a semver


class StorageCollector:
    def __init__(self, state):
        self.state = state

    def collect(self):
        storage = getattr(self.state, "storage", None)
        if storage is None:
            return
        yield GaugeMetricFamily("plumbago_series", "Series in the index", value=storage.index.series_count())
        yield GaugeMetricFamily("plumbago_head_samples", "Samples held in memory", value=len(storage.head))
        yield CounterMetricFamily("plumbago_samples_written", "Samples written",
                                  value=storage.stats["samples_written"])
        yield CounterMetricFamily("plumbago_flushes", "Head flushes", value=storage.stats["flushes"])
        yield CounterMetricFamily("plumbago_chunks_written", "Chunks written", value=storage.stats["chunks_written"])
        yield GaugeMetricFamily("plumbago_compaction_last_merged", "Chunk groups merged by the last maintenance round",
                                value=storage.stats["compaction_last_merged"])
        carbon = getattr(self.state, "carbon_stats", None)
        if carbon is not None:
            yield CounterMetricFamily("plumbago_carbon_lines_received", "Carbon lines received",
                                      value=carbon.lines_received)
            yield CounterMetricFamily("plumbago_carbon_lines_invalid", "Carbon lines rejected",
                                      value=carbon.lines_invalid)


def make_registry(state) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StorageCollector(state))
    return registry


async def ready_view(request: Request) -> Response:
    if getattr(request.app.state, "storage", None) is None:
        return PlainTextResponse("starting\n", 503)
    return PlainTextResponse("ready\n")


async def self_metrics_view(request: Request) -> Response:
    body = generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def version_view(request: Request) -> Response:
    return PlainTextResponse(GRAPHITE_VERSION)


async def user_stats_view(request: Request) -> Response:
    """Mimir's per-tenant stats of the caller's tenant."""
    from .http_util import json_response
    storage = request.app.state.storage
    tenant = request.state.tenant
    series = sum(len(storage.index.tenant(t)) for t in tenant.split("|"))
    rate = sum(storage.ingestion_rate(t) for t in tenant.split("|"))
    return json_response({"numSeries": series, "ingestionRate": rate, "APIIngestionRate": rate,
                          "RuleIngestionRate": 0})


async def delete_tenant_view(request: Request) -> Response:
    """POST /compactor/delete_tenant: drop every series and sample of the caller's tenant (admin scope)."""
    from .http_util import blocking
    storage = request.app.state.storage
    tenant = request.state.tenant
    idx = storage.index.tenant(tenant)
    await blocking(storage.delete_series, tenant, list(idx.key_of))
    return Response(status_code=200)


async def delete_tenant_status_view(request: Request) -> Response:
    from .http_util import json_response
    storage = request.app.state.storage
    tenant = request.state.tenant
    return json_response({"tenant_id": tenant, "blocks_deleted": len(storage.index.tenant(tenant)) == 0})
