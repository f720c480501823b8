"""`/functions` and `/functions/<name>`: graphite-web's function index, built from the same parameter specs
that check render arguments (Grafana reads it to offer functions and their parameters)."""
from __future__ import annotations

import math

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .functions import registry

MODULE = "graphite.render.functions"


def _jsonable(value):
    if isinstance(value, float) and math.isinf(value):
        return "__INF__" if value > 0 else "__NINF__"
    return value


def function_info(name: str, spec: registry.FunctionSpec) -> dict:
    params = []
    for p in spec.params:
        item = p.as_json()
        if "default" in item:
            item["default"] = _jsonable(item["default"])
        if "options" in item:
            item["options"] = sorted(item["options"], key=str)
        params.append(item)
    signature = spec.signature().replace(spec.name + "(", name + "(", 1)
    return {"name": name, "function": signature, "description": spec.description, "module": MODULE,
            "group": spec.group or "Ungrouped", "params": params}


def _encode(data, pretty: bool) -> bytes:
    opts = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS if pretty else 0
    body = orjson.dumps(data, option=opts)
    # graphite-web writes an infinite default as 1e9999 (Grafana reads it that way)
    return body.replace(b'"__INF__"', b"1e9999").replace(b'"__NINF__"', b"-1e9999")


def _respond(data, params) -> Response:
    body = _encode(data, (params.get("pretty") or "") in ("1", "true"))
    jsonp = params.get("jsonp")
    if jsonp:
        return Response(jsonp.encode() + b"(" + body + b")", media_type="text/javascript")
    return Response(body, media_type="application/json")


async def functions_view(request: Request) -> Response:
    params = request.query_params
    grouped = (params.get("grouped") or "").lower() in ("1", "true")
    group = params.get("group")
    out: dict = {}
    for name in sorted(registry.REGISTRY):
        spec = registry.REGISTRY[name]
        if group and spec.group != group:
            continue
        info = function_info(name, spec)
        if grouped:
            out.setdefault(info["group"], {})[name] = info
        else:
            out[name] = info
    return _respond(out, params)


async def function_view(request: Request) -> Response:
    name = request.path_params["name"]
    spec = registry.REGISTRY.get(name)
    if spec is None:
        return Response(orjson.dumps({"error": f"Function not found: {name}"}), 404, media_type="application/json")
    return _respond(function_info(name, spec), request.query_params)
