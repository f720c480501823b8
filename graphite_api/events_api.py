"""graphite-web's events API (`/events`), the store behind `events()` and Grafana's Graphite annotations.

    POST /events                 JSON {"what", "tags" (list or space-separated string), "when" (unix seconds,
                                 default now), "data"} -> 200, empty body
    GET  /events/get_data        ?from=&until=&tags=a b&set=union|intersection&jsonp=
                                 -> [{"when", "what", "data", "tags": [...], "id"}, ...] oldest first
    GET  /events/<id>            one event (graphite-web's JSON detail form)
    GET  /events                 every event as get_data returns them (graphite-web renders an HTML page)

Everything is per tenant. Mount `routes()` (and the same under `/graphite`).
"""
from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storage import events as store

from .http_util import BadRequest, blocking, read_body
from .timeparse import TimeParseError, parse_time

MAX_EVENT_BYTES = 1 << 20


def _json(data, status: int = 200, jsonp: str | None = None) -> Response:
    # graphite-web answers with Python's json.dumps (", " and ": " separators); match it byte for byte
    body = json.dumps(data)
    if jsonp is not None:
        return Response("%s(%s)" % (jsonp, body), status, media_type="text/javascript")
    return Response(body, status, media_type="application/json")


def _error(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


def _public(event: dict) -> dict:
    """get_data's form: `when` as whole seconds (graphite-web's epoch() drops the fraction)."""
    return {"when": int(math.floor(event["when"])), "what": event["what"], "data": event["data"],
            "tags": event["tags"], "id": event["id"]}


def _parse_event(body: bytes) -> dict:
    try:
        event = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot parse the event as JSON: {exc}") from None
    if not isinstance(event, dict):
        raise BadRequest("the event must be a JSON object with \"what\", \"tags\", \"when\" and \"data\"")
    what = event.get("what")
    if what is None or isinstance(what, (dict, list)):
        raise BadRequest('"what" is required and must be a string')
    tags = event.get("tags")
    if tags is not None and not isinstance(tags, (list, str)):
        raise BadRequest('"tags" must be an array or space-separated string')
    when = event.get("when")
    if when is not None:
        try:
            if isinstance(when, bool):
                raise ValueError
            when = float(when)
        except (TypeError, ValueError):
            raise BadRequest(f'"when" must be unix seconds, got {when!r}') from None
        if not math.isfinite(when):
            raise BadRequest(f'"when" must be unix seconds, got {when!r}')
    data = event.get("data", "")
    return {"what": str(what), "tags": tags, "when": when, "data": "" if data is None else
            (data if isinstance(data, str) else json.dumps(data))}


async def events_view(request: Request) -> Response:
    """POST stores an event; GET lists them all (graphite-web shows an HTML page there)."""
    storage = request.app.state.storage
    tenant = request.state.tenant
    if request.method == "POST":
        try:
            event = _parse_event(await read_body(request, MAX_EVENT_BYTES))
            await blocking(store.add_event, storage, tenant, event["what"], event["tags"], event["when"],
                           event["data"])
        except BadRequest as exc:
            return _error(exc.message, exc.status)
        except ValueError as exc:
            return _error(str(exc))
        return Response(b"", 200)
    if request.method != "GET":
        return Response(b"", 405)
    found = await blocking(store.get_events, storage, tenant)
    return _json([_public(e) for e in found])


async def get_data_view(request: Request) -> Response:
    """graphite-web's `events/get_data`: events with from <= when <= until (both inclusive)."""
    params = request.query_params
    try:
        now = time.time()
        start = parse_time(params["from"], now=now) if params.get("from") is not None else 0
        end = parse_time(params["until"], now=now) if params.get("until") is not None else now
    except TimeParseError as exc:
        return _error(str(exc))
    tags = params.get("tags")
    set_operation = params.get("set")
    found = await blocking(store.get_events, request.app.state.storage, request.state.tenant, start, end,
                           tags.split(" ") if tags is not None else None, set_operation)
    jsonp = params.get("jsonp") if "jsonp" in params else None
    if jsonp is None and request.method == "POST":
        form = await request.form()
        if "jsonp" in form:
            jsonp = str(form.get("jsonp"))
    return _json([_public(e) for e in found], jsonp=jsonp)


def _iso(when: float) -> str:
    """Django's JSON form of a UTC datetime: ISO 8601, milliseconds, `Z`."""
    dt = datetime.fromtimestamp(when, tz=timezone.utc)
    text = dt.isoformat()
    if dt.microsecond:
        text = text[:23] + text[26:]
    return text[:-6] + "Z" if text.endswith("+00:00") else text


async def detail_view(request: Request) -> Response:
    """One event as graphite-web's JSON detail (`model_to_dict`): id, when (ISO), what, data, tags."""
    event_id = request.path_params["event_id"]
    found = await blocking(store.get_event, request.app.state.storage, request.state.tenant, event_id)
    if found is None:
        return _error("Event matching query does not exist", 404)
    return _json({"id": found["id"], "when": _iso(found["when"]), "what": found["what"], "data": found["data"],
                  "tags": found["tags"]})


def routes(prefix: str = "") -> list[Route]:
    """The events routes, optionally under a prefix such as `/graphite`."""
    return [
        Route(prefix + "/events", events_view, methods=["GET", "POST"]),
        Route(prefix + "/events/", events_view, methods=["GET", "POST"]),
        Route(prefix + "/events/get_data", get_data_view, methods=["GET", "POST"]),
        Route(prefix + "/events/{event_id:int}", detail_view, methods=["GET"]),
        Route(prefix + "/events/{event_id:int}/", detail_view, methods=["GET"]),
    ]
