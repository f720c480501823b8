"""Request parameter reading and error responses shared by the Graphite handlers."""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

import orjson
from starlette.datastructures import MultiDict
from starlette.requests import Request
from starlette.responses import Response

MAX_FORM_BYTES = 8 << 20


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


async def read_params(request: Request) -> MultiDict:
    """Query string merged with a urlencoded/multipart form or a JSON object body (graphite-web and
    metrictank accept all three on POST)."""
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            length = int(request.headers.get("content-length") or 0)
            if length > MAX_FORM_BYTES:
                raise BadRequest(f"request body of {length} bytes is over the limit of {MAX_FORM_BYTES}", 413)
            try:
                form = await request.form()
            except Exception as exc:
                raise BadRequest(f"cannot parse form body: {exc}") from None
            items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        elif ctype == "application/json":
            body = await read_body(request, MAX_FORM_BYTES)
            if body.strip():
                try:
                    data = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise BadRequest(f"cannot parse JSON body: {exc}") from None
                if not isinstance(data, dict):
                    raise BadRequest("JSON body must be an object of parameters")
                for k, v in data.items():
                    for item in (v if isinstance(v, list) else [v]):
                        items.append((k, item if isinstance(item, str) else orjson.dumps(item).decode()))
        else:
            body = await read_body(request, MAX_FORM_BYTES)
            if body.strip() and ctype == "":
                # graphite-web clients sometimes POST a bare urlencoded body without a content type
                from urllib.parse import parse_qsl
                try:
                    items += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise BadRequest("request body is not UTF-8") from None
            elif body.strip():
                raise BadRequest(f"unsupported content type {ctype!r}", 415)
    return MultiDict(items)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it grows past `limit` instead of buffering it all."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BadRequest(f"request body of {length} bytes is over the limit of {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def get_list(params: MultiDict, name: str) -> list[str]:
    return params.getlist(name) + params.getlist(name + "[]")


def json_response(data, status: int = 200, jsonp: str | None = None, headers: dict | None = None) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
    if jsonp:
        return Response(jsonp.encode() + b"(" + body + b")", status, media_type="text/javascript", headers=headers)
    return Response(body, status, media_type="application/json", headers=headers)


def text_error(message: str, status: int = 400) -> Response:
    return Response(message + "\n", status, media_type="text/plain")


def json_error(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


def flag(params: MultiDict, name: str) -> bool:
    return (params.get(name) or "").lower() in ("1", "true", "yes", "on")


def request_threads() -> ThreadPoolExecutor:
    """The event loop's default executor while serving (set by the app): blocking work of requests (decoding,
    storage, evaluation) runs there. As many threads as starlette's default limiter allowed, made on demand."""
    return ThreadPoolExecutor(max_workers=40, thread_name_prefix="plumbago-request")


def ingest_threads() -> ThreadPoolExecutor:
    """Writes (ingest and remote-write requests) run on two threads of their own: their work is short and
    CPU-bound, and more threads only contend for the GIL (remote write measured ~8% faster than on the 40
    request threads); two let one request wait for its fsync while the next one decodes. Renders and queries
    keep the request threads, so a slow render never holds up ingest."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="plumbago-ingest")


async def in_ingest_thread(request: Request, fn, *args):
    """fn(*args) on the app's ingest threads (the default executor when the app did not set them)."""
    executor = getattr(request.app.state, "ingest_threads", None)
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


async def blocking(fn, *args, **kwargs):
    """fn(*args, **kwargs) in the loop's default executor. asyncio's executor hop costs a fraction of anyio's
    to_thread (which, on Python 3.11, makes a dozen getpid system calls per hop through get_running_loop)."""
    if kwargs:
        fn, args = functools.partial(fn, *args, **kwargs), ()
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
