"""Graphite's tags API (`/tags/*`), over the shared tagged index; `name` is the label `__name__`."""
from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from storage.labels import NAME, graphite_display, graphite_to_labels, key_to_labels, series_key
from storage.matchers import BadRegex, compile_regex

from .http_util import BadRequest, blocking, get_list, json_error, json_response, read_params
from .ingest import canonical_name
from .target.tagexpr import TagExpressionError, parse_series_by_tag_args
from .timeparse import TimeParseError, parse_time

DEFAULT_LIMIT = 100


def _label(tag: str) -> str:
    return NAME if tag == "name" else tag


def _tag(label: str) -> str:
    return "name" if label == NAME else label


def _limit(params, default=None) -> int | None:
    text = params.get("limit")
    if not text:
        return default
    if not text.isdigit():
        raise BadRequest(f"limit must be a non-negative integer, got {text!r}")
    return int(text) or default


def _display(idx, sid: int) -> str:
    key = idx.key_of[sid]
    return graphite_display(key_to_labels(key)) if key.startswith("\x00") else key


class _Federated:
    """The read-only index calls the tags API needs, over one or several tenants (`a|b`)."""

    def __init__(self, storage, tenant: str):
        self.storage = storage
        self.parts = [storage.index.tenant(t) for t in tenant.split("|")]

    def label_names(self):
        return sorted({n for idx in self.parts for n in idx.label_names()})

    def label_values(self, name):
        out: dict[str, int] = {}
        for idx in self.parts:
            for v, c in idx.label_values(name).items():
                out[v] = out.get(v, 0) + c
        return out

    def select(self, matchers):
        import numpy as np
        return np.sort(np.concatenate([idx.select(matchers) for idx in self.parts]))

    def _owner(self, sid):
        for idx in self.parts:
            if sid in idx.key_of:
                return idx
        raise KeyError(sid)

    @property
    def key_of(self):
        return _KeyOf(self)

    def labels(self, sid):
        return self._owner(sid).labels(sid)


class _KeyOf:
    def __init__(self, fed):
        self.fed = fed

    def __getitem__(self, sid):
        return self.fed._owner(sid).key_of[sid]


def _select(storage, tenant: str, exprs: list[str]):
    idx = _Federated(storage, tenant)
    return idx, idx.select(parse_series_by_tag_args(exprs))


def list_tags(storage, tenant, params):
    idx = _Federated(storage, tenant)
    flt = params.get("filter")
    rx = compile_regex(flt, "start") if flt else None
    names = sorted(_tag(n) for n in idx.label_names())
    names = [n for n in names if rx is None or rx.search(n)]
    limit = _limit(params)
    return [{"tag": n} for n in names[:limit]]


def tag_values(storage, tenant, tag, params):
    idx = _Federated(storage, tenant)
    values = idx.label_values(_label(tag))
    if not values:
        return None
    flt = params.get("filter")
    rx = compile_regex(flt, "start") if flt else None
    out = [{"count": c, "value": v} for v, c in sorted(values.items()) if rx is None or rx.search(v)]
    return {"tag": tag, "values": out[:_limit(params)]}


def find_series(storage, tenant, params):
    exprs = get_list(params, "expr")
    if not exprs:
        raise BadRequest("Invalid parameters (Missing required parameter 'expr')")
    idx, sids = _select(storage, tenant, exprs)
    now = int(time.time())
    start = params.get("from")
    end = params.get("to") or params.get("until")
    last = storage.sid_last[sids] // 1000
    keep = sids >= 0
    if start and start != "-1":
        keep &= last >= parse_time(start, now=now)
    if end and end != "-1":
        keep &= last <= parse_time(end, now=now)
    sids, last = sids[keep], last[keep]
    pairs = sorted((_display(idx, s), int(t)) for s, t in zip(sids.tolist(), last.tolist()))
    warnings = []
    limit = _limit(params)
    if limit is not None and len(pairs) > limit:
        pairs = pairs[:limit]
        warnings.append("Result set truncated due to limit")
    fmt = params.get("format") or "series-json"
    if fmt == "lastts-json":
        body = {"series": [{"val": n, "lastTs": t} for n, t in pairs]}
        if warnings:
            body["warnings"] = warnings
        return body
    if fmt != "series-json":
        raise BadRequest(f"unsupported format {fmt!r}: use series-json or lastts-json")
    names = [n for n, _ in pairs]
    if (params.get("meta") or "").lower() in ("1", "true"):
        body = {"series": names}
        if warnings:
            body["warnings"] = warnings
        return body
    return names


def autocomplete_tags(storage, tenant, params):
    exprs = get_list(params, "expr")
    prefix = params.get("tagPrefix") or ""
    limit = _limit(params, DEFAULT_LIMIT)
    idx = _Federated(storage, tenant)
    if not exprs:
        names = sorted(_tag(n) for n in idx.label_names())
    else:
        _, sids = _select(storage, tenant, exprs)
        used = {e.split("!", 1)[0].split("=", 1)[0].split("^", 1)[0].strip() for e in exprs}
        found = set()
        for sid in sids.tolist():
            found.update(_tag(k) for k, _ in idx.labels(sid))
        names = sorted(found - used)
    return [n for n in names if n.startswith(prefix)][:limit]


def autocomplete_values(storage, tenant, params):
    tag = params.get("tag")
    if not tag:
        raise BadRequest("Invalid parameters (Missing required parameter 'tag')")
    exprs = get_list(params, "expr")
    prefix = params.get("valuePrefix") or ""
    limit = _limit(params, DEFAULT_LIMIT)
    idx = _Federated(storage, tenant)
    label = _label(tag)
    if not exprs:
        values = sorted(idx.label_values(label))
    else:
        _, sids = _select(storage, tenant, exprs + [f"{tag}!="])
        found = set()
        for sid in sids.tolist():
            for k, v in idx.labels(sid):
                if k == label:
                    found.add(v)
        values = sorted(found)
    return [v for v in values if v.startswith(prefix)][:limit]


def _canonical(path: str) -> str:
    base, *tags = path.split(";")
    name = canonical_name(base, tags)
    if name is None:
        raise BadRequest(f"invalid tagged series path {path!r}")
    return name


def tag_series(storage, tenant, paths: list[str]) -> list[str]:
    names = [_canonical(p) for p in paths]
    storage.resolve(tenant, [series_key(graphite_to_labels(n)) for n in names])
    return names


def del_series(storage, tenant, paths: list[str]) -> bool:
    idx = storage.index.tenant(tenant)      # a write: exactly one tenant
    sids = []
    for p in paths:
        sid = idx.by_key.get(series_key(graphite_to_labels(_canonical(p))))
        if sid is not None:
            sids.append(sid)
    storage.delete_series(tenant, sids)
    return True


def _view(fn, needs_paths: bool = False, single: bool = False):
    async def view(request: Request) -> Response:
        storage = request.app.state.storage
        tenant = request.state.tenant
        try:
            params = await read_params(request)
            if needs_paths:
                paths = get_list(params, "path")
                if not paths:
                    raise BadRequest("Invalid parameters (Missing required parameter 'path')")
                result = await blocking(fn, storage, tenant, paths[:1] if single else paths)
                if single:
                    result = result[0]
            elif "tag" in request.path_params:
                result = await blocking(fn, storage, tenant, request.path_params["tag"], params)
            else:
                result = await blocking(fn, storage, tenant, params)
            return json_response(result, jsonp=params.get("jsonp"))
        except BadRequest as exc:
            return json_error(exc.message, exc.status)
        except (TagExpressionError, BadRegex, TimeParseError, ValueError) as exc:
            return json_error(str(exc), 400)
    return view


find_series_view = _view(find_series)
list_tags_view = _view(list_tags)
tag_values_view = _view(tag_values)
autocomplete_tags_view = _view(autocomplete_tags)
autocomplete_values_view = _view(autocomplete_values)
tag_series_view = _view(tag_series, needs_paths=True, single=True)
tag_multi_series_view = _view(tag_series, needs_paths=True)
del_series_view = _view(del_series, needs_paths=True)
