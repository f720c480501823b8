"""Storage config endpoints: GET returns the text in force, POST validates and stores it per tenant.

carbon-relay-ng POSTs to the singular paths with no Content-Type; GEM documents the plural ones; all four
are served, with and without the `/graphite` prefix. Changes apply to reads at once (retroactively).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from storage.engine import AGGREGATIONS, SCHEMAS
from storage.schemas import ConfigError, parse_aggregations, parse_schemas

from .http_util import BadRequest, blocking, read_body, text_error

MAX_CONFIG_BYTES = 1 << 20
_KINDS = {"storageSchema": SCHEMAS, "storageSchemas": SCHEMAS,
          "storageAggregation": AGGREGATIONS, "storageAggregations": AGGREGATIONS}


async def config_view(request: Request) -> Response:
    kind = _KINDS[request.path_params["kind"]]
    storage = request.app.state.storage
    tenant = request.state.tenant
    if request.method == "GET":
        text = storage.config_text(tenant, kind)
        if text is None:
            text = storage._default_texts[0 if kind == SCHEMAS else 1]
        return Response(text, media_type="text/plain")
    try:
        body = await read_body(request, MAX_CONFIG_BYTES)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("config body is not UTF-8 text") from None
        if not text.strip():
            raise BadRequest("empty config body")
        (parse_schemas if kind == SCHEMAS else parse_aggregations)(text)
        await blocking(storage.set_config_text, tenant, kind, text)
        return Response("ok\n", 200, media_type="text/plain")
    except BadRequest as exc:
        return text_error(exc.message, exc.status)
    except ConfigError as exc:
        return text_error(f"invalid {kind} config: {exc}", 400)
