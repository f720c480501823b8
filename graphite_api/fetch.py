"""Resolve path expressions and tag queries to series, and fetch them onto Graphite's time grid.

Alignment (graphite-api.md §5.2): output timestamps are the multiples t of the step with from < t <= until;
a raw point at p lands in the slot t with t - step < p <= t (quantised forward); gaps are null. The
archive is the finest whose retention still covers `now - from` (§5.3); rollup buckets give the value of
the consolidateBy method, else the series' aggregation rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from storage import rollup
from storage.engine import Storage
from storage.index import ANY
from storage.labels import graphite_tags, key_to_labels

from .series import Series
from .target.glob import compile_glob, is_pattern
from .target.tagexpr import parse_series_by_tag_args

# consolidateBy name -> rollup read method (the five kept per bucket serve every request)
_ROLLUP_METHOD = {"average": "avg", "avg": "avg", "avg_zero": "avg", "sum": "sum", "total": "sum",
                  "min": "min", "max": "max", "last": "last", "lst": "last", "current": "last",
                  "first": "avg", "median": "avg", "count": "count", "multiply": "avg", "diff": "avg",
                  "stddev": "avg", "range": "avg", "rangeOf": "avg"}
_AGG_TO_CONSOLIDATION = {"avg": "average", "sum": "sum", "min": "min", "max": "max", "last": "last"}


class FetchLimitError(ValueError):
    """A request over a configured size limit (HTTP 4xx)."""


@dataclass
class FetchContext:
    storage: Storage
    tenant: str
    start: int            # exclusive, unix seconds
    end: int              # inclusive
    now: int
    max_series: int = 250_000
    max_points: int = 20_000_000
    xfiles_factor: float = 0.0     # the request's xFilesFactor, carried by fetched series (graphite-web)
    stats: dict = field(default_factory=lambda: {"series": 0, "points": 0})


def tenants_of(ctx: FetchContext) -> list[str]:
    """A read may federate several tenants, written `a|b`."""
    return ctx.tenant.split("|")


def find_ids(ctx: FetchContext, pattern: str) -> list[int]:
    """Ids of the series a Graphite path expression names, in every tenant the request reads."""
    out: list[int] = []
    for tenant in tenants_of(ctx):
        out.extend(_find_ids(ctx.storage.index.tenant(tenant), pattern))
    return out


def tree_pattern(pattern: str) -> list:
    """A glob as the node matchers of `TenantIndex.find_nodes`, cheapest form first: a literal, every child
    (`*`), a finite set of names (`{a,b}`), a regex, or None for `**`."""
    nodes = []
    for n in compile_glob(pattern).nodes:
        if n.is_globstar:
            nodes.append(None)
        elif n.is_literal:
            nodes.append(n.literal)
        elif n.text == "*":
            nodes.append(ANY)       # untagged tree names never hold ';', the only thing `*` would refuse
        elif n.alternatives is not None and len(n.alternatives) <= 64:
            nodes.append(frozenset(n.alternatives))
        else:
            nodes.append(n.matches)
    return nodes


def _find_ids(idx, pattern: str) -> list[int]:
    if ";" in pattern and not is_pattern(pattern.split(";", 1)[0]):
        from storage.labels import graphite_to_labels, series_key
        sid = idx.by_key.get(series_key(graphite_to_labels(pattern)))
        return [] if sid is None else [sid]
    if not is_pattern(pattern):
        sid = idx.by_key.get(pattern)
        return [] if sid is None else [sid]
    out = []
    nodes = tree_pattern(pattern)
    for _path, node in idx.find_nodes(nodes):
        sid = idx.leaf_id(node)
        if sid is not None:
            out.append(sid)
    return out


def tag_ids(ctx: FetchContext, expressions: list[str]) -> list[int]:
    matchers = parse_series_by_tag_args(expressions)
    out: list[int] = []
    for tenant in tenants_of(ctx):
        out.extend(ctx.storage.index.tenant(tenant).select(matchers).tolist())
    return out


def fetch(ctx: FetchContext, sids: list[int], path_expression: str, consolidate: str | None = None) -> list[Series]:
    """Series for ids, sorted by name, excluding series not updated since `from` (metrictank)."""
    if not sids:
        return []
    storage = ctx.storage
    sids = np.unique(np.asarray(sids, dtype=np.int64))
    sids = sids[storage.last_times(sids) > ctx.start * 1000]
    if len(sids) > ctx.max_series:
        raise FetchLimitError(f"request would fetch {len(sids)} series, over the limit of {ctx.max_series}")
    intervals = storage.interval_of(sids)
    plans: dict[tuple, list] = {}
    for sid, interval in zip(sids.tolist(), intervals.tolist()):
        tenant = storage.series_tenant(sid)
        if tenant is None:      # deleted meanwhile
            continue
        cfg = storage.storage_config(tenant)
        key = storage.index.tenant(tenant).key_of.get(sid)
        if key is None:
            continue
        labels = key_to_labels(key)
        name = key if not key.startswith("\x00") else _display(labels)
        schema = cfg.schema_for(name)
        archive = schema.archive_for(ctx.start, ctx.now)
        agg = cfg.aggregation_for(name)
        if archive == 0:
            step = interval if interval > 0 else schema.retentions[0].interval
        else:
            step = schema.retentions[archive].interval
        method = _ROLLUP_METHOD.get(consolidate or "", agg.methods[0] if agg.methods else "avg")
        plans.setdefault((archive, step), []).append((sid, name, labels, method, agg))
    out: list[Series] = []
    for (archive, step), members in plans.items():
        members.sort(key=lambda m: m[1])   # matrix rows in output (name) order: a glob's series are one block
        first = (ctx.start // step + 1) * step
        last = ctx.end // step * step
        n = max(0, (last - first) // step + 1)
        ids = np.array([m[0] for m in members], dtype=np.int64)
        # One matrix per archive and step: every sample is scattered into its slot in one numpy operation.
        matrix = np.full((len(members), n), np.nan)
        if archive == 0:
            storage.read_raw_slots(ids, first * 1000, step * 1000, matrix)
        else:
            for i, (ts, cols) in enumerate(storage.read_rollup(ids, step, first * 1000, last * 1000)):
                pos = (ts // 1000 - first) // step
                ok = (pos >= 0) & (pos < n)
                matrix[i, pos[ok]] = rollup.value_of(members[i][3], cols)[ok]
        for i, (sid, name, labels, method, agg) in enumerate(members):
            cons = consolidate or _AGG_TO_CONSOLIDATION.get(agg.methods[0] if agg.methods else "avg", "average")
            out.append(Series(name=name, start=first, step=step, values=matrix[i], tags=graphite_tags(labels),
                              path_expression=path_expression, consolidation=cons,
                              xfiles_factor=ctx.xfiles_factor))
    ctx.stats["series"] += len(out)
    ctx.stats["points"] += sum(len(s.values) for s in out)
    if ctx.stats["points"] > ctx.max_points:
        raise FetchLimitError(f"request would return {ctx.stats['points']} points, over the limit of {ctx.max_points}")
    out.sort(key=lambda s: s.name)
    return out


def _display(labels) -> str:
    from storage.labels import graphite_display
    return graphite_display(labels)
