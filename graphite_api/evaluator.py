"""Evaluate parsed render targets.

All path expressions and seriesByTag calls of a request are resolved and fetched before any function
runs (one pass over the index, one read per archive). Every use of a path but the last gets its own copies;
the last use takes the fetched series themselves (most paths are used once, and a copy of 1,000 series of
8,640 points costs as much as reading them).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .fetch import FetchContext, fetch, find_ids, tag_ids
from .functions import registry
from .functions.registry import FunctionError, bind
from .series import Series
from .target import grammar as g


@dataclass
class EvalContext:
    fetch: FetchContext
    params: dict = field(default_factory=dict)
    prefetched: dict = field(default_factory=dict)
    uses: Counter = field(default_factory=Counter)   # uses of each prefetched key still to come
    consolidate: str | None = None      # the enclosing consolidateBy, for functions that evaluate raw args

    @property
    def start(self) -> int:
        return self.fetch.start

    @property
    def end(self) -> int:
        return self.fetch.end


def _fetch_keys(node, consolidate: str | None, out: Counter) -> None:
    """Count (kind, text, consolidate-method) for every use of a data source in the tree."""
    if isinstance(node, g.PathExpr):
        out[("path", node.text, consolidate)] += 1
    elif isinstance(node, g.Call):
        if node.name == "seriesByTag":
            out[("tags", _series_by_tag_text(node), consolidate)] += 1
            return
        inner = consolidate
        if node.name == "consolidateBy" and len(node.args) > 1 and isinstance(node.args[1], g.String):
            inner = node.args[1].value
        for arg in node.args:
            _fetch_keys(arg, inner, out)
        for _, arg in node.kwargs:
            _fetch_keys(arg, inner, out)


def _series_by_tag_text(node) -> str:
    """graphite-web uses the call's text as written as the pathExpression of the fetched series."""
    if getattr(node, "raw", ""):
        return node.raw
    return "seriesByTag(" + ",".join(repr(a.value) if isinstance(a, g.String) else str(a) for a in node.args) + ")"


def _tag_args(node) -> list[str]:
    args = []
    for a in node.args:
        if not isinstance(a, g.String):
            raise FunctionError("seriesByTag: every argument must be a quoted tag expression")
        args.append(a.value)
    return args


def prefetch(ctx: EvalContext, trees: list) -> None:
    for tree in trees:
        _prefetch_with(ctx, tree, None)


def _prefetch_with(ctx: EvalContext, tree, consolidate: str | None) -> None:
    keys: Counter = Counter()
    _fetch_keys(tree, consolidate, keys)
    ctx.uses.update(keys)
    for kind, text, cons in sorted(keys, key=lambda k: (k[0], k[1], k[2] or "")):
        if kind == "path" and (kind, text, cons) not in ctx.prefetched:
            ctx.prefetched[(kind, text, cons)] = _fetch_source(ctx, (kind, text, cons), None)
    # seriesByTag needs its parsed args: resolved while walking the tree
    _prefetch_tags(ctx, tree, consolidate)


def _prefetch_tags(ctx: EvalContext, node, cons) -> None:
    if isinstance(node, g.Call):
        if node.name == "seriesByTag":
            key = ("tags", _series_by_tag_text(node), cons)
            if key not in ctx.prefetched:
                ctx.prefetched[key] = _fetch_source(ctx, key, node)
            return
        inner = cons
        if node.name == "consolidateBy" and len(node.args) > 1 and isinstance(node.args[1], g.String):
            inner = node.args[1].value
        for arg in list(node.args) + [a for _, a in node.kwargs]:
            _prefetch_tags(ctx, arg, inner)


_UNSET = object()


def evaluate(ctx: EvalContext, node, consolidate=_UNSET):
    if consolidate is _UNSET:
        consolidate = ctx.consolidate
    if isinstance(node, g.PathExpr):
        return _take(ctx, ("path", node.text, consolidate), node)
    if isinstance(node, (g.String, g.Number, g.Bool)):
        return node.value
    if isinstance(node, g.NoneLit):
        return None
    if isinstance(node, g.Call):
        if node.name == "seriesByTag":
            return _take(ctx, ("tags", _series_by_tag_text(node), consolidate), node)
        spec = registry.REGISTRY.get(node.name)
        if spec is None:
            raise FunctionError(f"Received request for unknown function: {node.name}")
        inner = consolidate
        if node.name == "consolidateBy" and len(node.args) > 1 and isinstance(node.args[1], g.String):
            inner = node.args[1].value
        if spec.raw_args:
            outer = ctx.consolidate
            ctx.consolidate = inner
            try:
                return spec.func(ctx, node)
            finally:
                ctx.consolidate = outer
        args = [evaluate(ctx, a, inner) for a in node.args]
        kwargs = {k: evaluate(ctx, a, inner) for k, a in node.kwargs}
        args, kwargs = bind(spec, args, kwargs)
        return spec.func(ctx, *args, **kwargs)
    raise FunctionError(f"cannot evaluate {node!r}")


def _take(ctx: EvalContext, key: tuple, node) -> list[Series]:
    """The series of a prefetched source for one use: copies while more uses are to come, the fetched
    series themselves for the last one; an unforeseen further use (raw-args functions evaluate nodes as they
    please) fetches again."""
    series = ctx.prefetched.get(key)
    if series is None:
        return []
    if key not in ctx.uses:           # placed by hand (tests, callers that build their own context)
        return [s.copy() for s in series]
    ctx.uses[key] -= 1
    left = ctx.uses[key]
    if left > 0:
        return [s.copy() for s in series]
    if left == 0:
        return series
    return _fetch_source(ctx, key, node)


def _fetch_source(ctx: EvalContext, key: tuple, node) -> list[Series]:
    """Fetch one data source: a path expression, or the seriesByTag call `node`."""
    kind, text, cons = key
    ids = find_ids(ctx.fetch, text) if kind == "path" else tag_ids(ctx.fetch, _tag_args(node))
    return fetch(ctx.fetch, ids, text, cons)


def evaluate_targets(ctx: EvalContext, trees: list) -> list[Series]:
    prefetch(ctx, trees)
    out: list[Series] = []
    for tree in trees:
        result = evaluate(ctx, tree)
        if not isinstance(result, list):
            raise FunctionError(f"target does not evaluate to a series list: {result!r}")
        if any(isinstance(s, list) for s in result):
            raise FunctionError("target evaluates to a list of series lists (mapSeries is only usable inside "
                                "reduceSeries)")
        out.extend(result)
    return out


def evaluate_in_window(ctx: EvalContext, node, start: int, end: int):
    """Evaluate a subtree over another time window (timeShift, moving windows with their preview,
    holtWinters bootstraps...): a fresh prefetch for that window, the same request otherwise."""
    import dataclasses
    fctx = dataclasses.replace(ctx.fetch, start=int(start), end=int(end))
    sub = EvalContext(fetch=fctx, params=ctx.params, consolidate=ctx.consolidate)
    _prefetch_with(sub, node, ctx.consolidate)
    return evaluate(sub, node)
