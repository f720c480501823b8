"""`/metrics/find`, `/metrics/expand`, `/metrics/index.json` and `POST /metrics/delete`."""
from __future__ import annotations

import pickle
import time

import msgpack
from starlette.requests import Request
from starlette.responses import Response

from .http_util import BadRequest, blocking, flag, get_list, json_response, read_params, text_error
from .render import USER_ERRORS
from .fetch import tree_pattern
from .timeparse import parse_time

FIND_FORMATS = ("treejson", "json", "completer", "msgpack", "pickle", "nodelist", "")


def _matches(storage, tenant: str, pattern: str):
    """(path, node) pairs of the Graphite tree matching a glob pattern."""
    idx = storage.index.tenant(tenant)
    return idx, list(idx.find_nodes(tree_pattern(pattern)))


def _time_param(params, name: str, now: int, tz):
    text = params.get(name)
    if not text or text == "-1":
        return None
    return parse_time(text, now=now, tz=tz)


def _leaf_visible(storage, sid, start) -> bool:
    return start is None or int(storage.sid_last[sid]) > start * 1000


def find(storage, tenant: str, query: str, start=None):
    """[(path, is_leaf, is_branch, sid)] sorted by path; leaves not updated since `start` are hidden. A read
    of several tenants (`a|b`) merges their trees."""
    merged: dict[str, list] = {}
    for one in tenant.split("|"):
        idx, hits = _matches(storage, one, query)
        for path, node in hits:
            sid = idx.leaf_id(node)
            branch = idx.is_branch(node)
            leaf = sid is not None and _leaf_visible(storage, sid, start)
            if not (leaf or branch):
                continue
            entry = merged.setdefault(path, [path, False, False, None])
            entry[1] |= leaf
            entry[2] |= branch
            if leaf and entry[3] is None:
                entry[3] = sid
    return sorted(tuple(e) for e in merged.values())


async def find_view(request: Request) -> Response:
    storage = request.app.state.storage
    try:
        params = await read_params(request)
        query = params.get("query")
        if not query:
            raise BadRequest("Invalid parameters (Missing required parameter 'query')")
        fmt = params.get("format") or "treejson"
        if fmt not in FIND_FORMATS:
            raise BadRequest(f"Invalid value for 'format': {fmt!r}")
        now = int(time.time())
        tz = params.get("tz")
        start = _time_param(params, "from", now, tz)
        until = _time_param(params, "until", now, tz)
        if fmt == "completer":
            query = query.replace("..", "*.")
            if not query.endswith("*"):
                query += "*"
        results = await blocking(find, storage, request.state.tenant, query, start)
        jsonp = params.get("jsonp")
        base = query.rsplit(".", 1)[0] + "." if "." in query else ""
        headers = {"Pragma": "no-cache", "Cache-Control": "no-cache"}
        if fmt in ("treejson", ""):
            branches = [r for r in results if r[2]]
            leaves = [r for r in results if r[1] and not r[2]]
            body = []
            for path, leaf, branch, _ in branches + leaves:
                name = path.rsplit(".", 1)[-1]
                body.append({"allowChildren": int(branch), "expandable": int(branch), "leaf": int(leaf),
                             "id": base + name if base else path, "text": name, "context": {}})
            return json_response(body, jsonp=jsonp, headers=headers)
        if fmt == "completer":
            metrics = [{"path": path + ("." if branch and not leaf else ""), "name": path.rsplit(".", 1)[-1],
                        "is_leaf": "1" if leaf else "0"} for path, leaf, branch, _ in results]
            return json_response({"metrics": metrics}, jsonp=jsonp, headers=headers)
        if fmt == "nodelist":
            position = int(params.get("position") or -1)
            nodes = sorted({path.split(".")[position] for path, *_ in results if len(path.split(".")) > abs(position) - (position < 0)})
            return json_response({"nodes": nodes}, jsonp=jsonp, headers=headers)
        entries = []
        for path, leaf, branch, sid in results:
            intervals = []
            if leaf and start is not None and until is not None:
                intervals = [[start, until]]
            if leaf:
                entries.append({"path": path, "is_leaf": True, "isLeaf": True, "intervals": intervals})
            if branch:
                entries.append({"path": path, "is_leaf": False, "isLeaf": False, "intervals": []})
        if fmt == "json":
            body = [{"path": e["path"], "is_leaf": e["is_leaf"],
                     **({"intervals": [{"start": a, "end": b} for a, b in e["intervals"]]} if e["is_leaf"] else {})}
                    for e in entries]
            return json_response(body, jsonp=jsonp, headers=headers)
        if fmt == "msgpack":
            return Response(msgpack.packb(entries, use_bin_type=True), media_type="application/x-msgpack")
        return Response(pickle.dumps(entries, protocol=2), media_type="application/pickle")
    except BadRequest as exc:
        return text_error(exc.message, exc.status)
    except USER_ERRORS as exc:
        return text_error(f"Invalid parameters ({exc})", 400)


async def expand_view(request: Request) -> Response:
    storage = request.app.state.storage
    try:
        params = await read_params(request)
        queries = get_list(params, "query")
        if not queries:
            raise BadRequest("Invalid parameters (Missing required parameter 'query')")
        leaves_only = flag(params, "leavesOnly")
        grouped: dict[str, list[str]] = {}
        for q in queries:
            hits = await blocking(find, storage, request.state.tenant, q, None)
            grouped[q] = sorted({path for path, leaf, branch, _ in hits if leaf or not leaves_only})
        if flag(params, "groupByExpr"):
            return json_response({"results": grouped}, jsonp=params.get("jsonp"))
        union = sorted({p for paths in grouped.values() for p in paths})
        return json_response({"results": union}, jsonp=params.get("jsonp"))
    except BadRequest as exc:
        return text_error(exc.message, exc.status)
    except USER_ERRORS as exc:
        return text_error(f"Invalid parameters ({exc})", 400)


def _all_names(storage, tenant: str) -> list[str]:
    names: set[str] = set()
    for one in tenant.split("|"):
        idx = storage.index.tenant(one)
        with idx.lock:
            names.update(k for k in idx.by_key if ";" not in k and not k.startswith("\x00"))
    return sorted(names)


async def index_json_view(request: Request) -> Response:
    params = request.query_params
    names = await blocking(_all_names, request.app.state.storage, request.state.tenant)
    return json_response(names, jsonp=params.get("jsonp"))


def delete_matching(storage, tenant: str, queries: list[str]) -> int:
    """Delete every series at or below the matching nodes (recursive, as metrictank does)."""
    idx = storage.index.tenant(tenant)
    doomed: set[int] = set()
    for q in queries:
        _, hits = _matches(storage, tenant, q)
        for _path, node in hits:
            doomed.update(idx.leaves_under(node))
    return storage.delete_series(tenant, sorted(doomed))


async def delete_view(request: Request) -> Response:
    try:
        params = await read_params(request)
        queries = get_list(params, "query")
        if not queries:
            raise BadRequest("missing parameter 'query'")
        count = await blocking(delete_matching, request.app.state.storage, request.state.tenant, queries)
        return json_response({"deletedDefs": count})
    except BadRequest as exc:
        return text_error(exc.message, exc.status)
    except USER_ERRORS as exc:
        return text_error(f"Invalid parameters ({exc})", 400)
