"""`POST /metrics`: Grafana Cloud Graphite ingest (JSON, rt-metric-binary, rt-metric-binary-snappy).

Per-metric problems are counted, not fatal (carbon-relay-ng retries any 4xx forever): the answer is 200
with Published/Invalid/ValidationErrors. An undecodable body or an unknown content type is a 400.
"""
from __future__ import annotations

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from .http_util import BadRequest, blocking, in_ingest_thread, json_response, read_body
from .ingest import IngestError, decode_metrics
from storage.limits import LimitError


def _decode_and_write(storage, tenant: str, body: bytes, ctype, max_decompressed: int):
    """Runs on an ingest thread. Returns (batch, whether the caller must sync the storage before answering)."""
    batch = decode_metrics(body, ctype, max_decompressed)
    with storage.deferred_sync() as deferred:
        if batch.names:
            storage.write(tenant, batch.names, np.asarray(batch.ts, dtype=np.int64) * 1000, batch.values,
                          intervals=batch.intervals, units=batch.units, mtypes=batch.mtypes)
    return batch, deferred.needed


async def ingest_view(request: Request) -> Response:
    state = request.app.state
    limits = state.settings["ingest"]
    try:
        body = await read_body(request, limits["max_body_bytes"])
        batch, unsynced = await in_ingest_thread(request, _decode_and_write, state.storage, request.state.tenant,
                                                 body, request.headers.get("content-type"),
                                                 limits["max_decompressed_bytes"])
        if unsynced:
            await blocking(state.storage.sync)         # a slow disk: wait here, not on an ingest thread
    except BadRequest as exc:
        return json_response(exc.message, exc.status)
    except IngestError as exc:
        return json_response(str(exc), 400)
    except LimitError as exc:
        return json_response(str(exc), exc.status)
    return json_response(batch.response_body())
