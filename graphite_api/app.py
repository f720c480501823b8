"""Assembly of the Starlette application: storage lifecycle, carbon listeners and every route."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from prom_bridge import api as prom_api
from storage.engine import EngineOptions, Storage
from storage.limits import Limits
from storage.schemas import parse_aggregations, parse_schemas

from . import config_api, events_api, functions_api, ingest_api, metrics_api, ops, render, tags_api
from .http_util import blocking, ingest_threads, request_threads
from .tenancy import AuthMiddleware, Authenticator

log = logging.getLogger("plumbago")


def _graphite_routes() -> list[Route]:
    any_method = ["GET", "POST"]
    routes = [
        Route("/render", render.render_view, methods=any_method),
        Route("/render/", render.render_view, methods=any_method),
        Route("/metrics/find", metrics_api.find_view, methods=any_method),
        Route("/metrics/find/", metrics_api.find_view, methods=any_method),
        Route("/metrics/expand", metrics_api.expand_view, methods=any_method),
        Route("/metrics/expand/", metrics_api.expand_view, methods=any_method),
        Route("/metrics/index.json", metrics_api.index_json_view, methods=["GET"]),
        Route("/metrics/delete", metrics_api.delete_view, methods=["POST"]),
        Route("/tags", tags_api.list_tags_view, methods=any_method),
        Route("/tags/", tags_api.list_tags_view, methods=any_method),
        Route("/tags/findSeries", tags_api.find_series_view, methods=any_method),
        Route("/tags/autoComplete/tags", tags_api.autocomplete_tags_view, methods=any_method),
        Route("/tags/autoComplete/values", tags_api.autocomplete_values_view, methods=any_method),
        Route("/tags/tagSeries", tags_api.tag_series_view, methods=["POST"]),
        Route("/tags/tagMultiSeries", tags_api.tag_multi_series_view, methods=["POST"]),
        Route("/tags/delSeries", tags_api.del_series_view, methods=["POST"]),
        Route("/tags/{tag}", tags_api.tag_values_view, methods=any_method),
        Route("/config/{kind:str}", config_api.config_view, methods=["GET", "POST"]),
        Route("/functions", functions_api.functions_view, methods=["GET"]),
        Route("/functions/", functions_api.functions_view, methods=["GET"]),
        Route("/functions/{name}", functions_api.function_view, methods=["GET"]),
        Route("/version", ops.version_view, methods=["GET"]),
        Route("/version/", ops.version_view, methods=["GET"]),
    ]
    return routes


def _prefixed(routes: list[Route], prefix: str) -> list[Route]:
    return [Route(prefix + r.path, r.endpoint, methods=r.methods) for r in routes]


def _config_route_guard(routes):
    # only the four config kinds exist; others 404 before reaching the handler
    kinds = ("storageSchema", "storageSchemas", "storageAggregation", "storageAggregations")
    out = []
    for r in routes:
        if r.path.endswith("/config/{kind:str}"):
            base = r.path[: -len("{kind:str}")]
            out.extend(Route(base + k, _bind_kind(r.endpoint, k), methods=r.methods) for k in kinds)
        else:
            out.append(r)
    return out


def _bind_kind(endpoint, kind):
    async def view(request: Request):
        request.scope.setdefault("path_params", {})["kind"] = kind
        return await endpoint(request)
    return view


def build_app(settings: dict) -> Starlette:
    graphite = _graphite_routes()
    routes = [
        Route("/ready", ops.ready_view, methods=["GET"]),
        Route("/metrics", ingest_api.ingest_view, methods=["POST"]),
        Route("/metrics", ops.self_metrics_view, methods=["GET"]),
        Route("/graphite/metrics", ingest_api.ingest_view, methods=["POST"]),
        Route("/api/v1/user_stats", ops.user_stats_view, methods=["GET"]),
        Route("/compactor/delete_tenant", ops.delete_tenant_view, methods=["POST"]),
        Route("/compactor/delete_tenant_status", ops.delete_tenant_status_view, methods=["GET"]),
        *_config_route_guard(graphite),
        *_config_route_guard(_prefixed(graphite, "/graphite")),
        *events_api.routes(),
        *events_api.routes("/graphite"),
        *prom_api.routes(),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        asyncio.get_running_loop().set_default_executor(request_threads())
        app.state.ingest_threads = ingest_threads()
        storage = await blocking(_open_storage, settings)
        app.state.storage = storage
        storage.start()
        servers = await _start_carbon(app, settings)
        log.info("plumbago serving on http://%s:%s", settings["host"], settings["port"])
        try:
            yield
        finally:
            try:
                for server in servers:
                    server.close()
                for server in servers:      # every carbon line already received is written before the flush
                    await server.wait_closed()
            finally:
                app.state.storage = None
                app.state.ingest_threads.shutdown(wait=True)
                await blocking(storage.close)
                log.info("plumbago stopped; head flushed")

    async def server_error(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path, exc_info=exc)
        return PlainTextResponse(f"internal error: {type(exc).__name__}: {exc}\n", 500)

    authenticator = Authenticator(settings)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(AuthMiddleware, authenticator=authenticator)],
                    exception_handlers={Exception: server_error})
    app.state.settings = settings
    app.state.storage = None
    app.state.metrics_registry = ops.make_registry(app.state)
    return app


def _open_storage(settings: dict) -> Storage:
    s = settings["storage"]
    options = EngineOptions(block_seconds=int(s["block_seconds"]), flush_interval=float(s["flush_interval"]),
                            flush_grace=int(s["flush_grace"]), max_head_samples=int(s["max_head_samples"]),
                            retention_interval=float(s["retention_interval"]), wal_fsync=bool(s["wal_fsync"]),
                            index_refresh_seconds=float(s["index_refresh_seconds"]))
    storage = Storage(settings["data_dir"], settings.get("database_url"), options)
    storage.set_default_config_texts(settings.get("storage_schemas"), settings.get("storage_aggregation"))
    storage.limits = Limits(settings.get("limits"))
    return storage


def validate_settings(settings: dict) -> None:
    """Fail at start-up, with the reason, on a bad schemas/aggregation text."""
    if settings.get("storage_schemas"):
        parse_schemas(settings["storage_schemas"])
    if settings.get("storage_aggregation"):
        parse_aggregations(settings["storage_aggregation"])
    Authenticator(settings)
    Limits(settings.get("limits"))


async def _start_carbon(app: Starlette, settings: dict) -> list:
    from . import carbon
    servers = []
    host = settings.get("carbon_host") or settings["host"]
    tenant = settings["ingest"]["carbon_tenant"]
    storage = app.state.storage

    def on_batch(batch):                # called from each listener's writer thread
        write_carbon_batch(storage, tenant, batch)

    stats = carbon.CarbonStats()
    app.state.carbon_stats = stats
    if int(settings.get("carbon_port") or 0):
        servers.append(await carbon.start_plaintext_server(host, int(settings["carbon_port"]), on_batch,
                                                           tenant=tenant, stats=stats))
    if int(settings.get("pickle_port") or 0):
        servers.append(await carbon.start_pickle_server(host, int(settings["pickle_port"]), on_batch,
                                                        tenant=tenant, stats=stats))
    return servers


def write_carbon_batch(storage: Storage, tenant: str, batch) -> None:
    """Carbon lines carry no interval: take it from the first retention of the matching schema."""
    import numpy as np
    if not batch.names:
        return
    cfg = storage.storage_config(tenant)
    intervals = np.fromiter((cfg.schema_for(n).retentions[0].interval for n in batch.names),
                            dtype=np.int32, count=len(batch.names))
    storage.write(tenant, batch.names, np.asarray(batch.ts, dtype=np.int64) * 1000, batch.values,
                  intervals=intervals)
