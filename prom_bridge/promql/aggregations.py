"""Aggregation operators (sum, avg, count, min, max, group, stddev, stdvar, topk, bottomk, quantile,
count_values), evaluated for all steps at once. Loops run over series or groups, never over samples."""
from __future__ import annotations

import math
import re

import numpy as np

from . import ast
from .engine import NAME, EvalError, Str, Vec, empty_vec, make_vec
from .functions import format_go_float, quantile_sorted

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def group_labels(labels, grouping, without):
    if without:
        drop = set(grouping)
        drop.add(NAME)
        return tuple(p for p in labels if p[0] not in drop)
    keep = set(grouping)
    return tuple(p for p in labels if p[0] in keep)


def aggregate(engine, node: ast.AggregateExpr, ctx):
    op = node.op
    param = None
    if op in ("topk", "bottomk", "quantile"):
        if node.param is None:
            raise EvalError("bad_data", f"no parameter given for {op}")
        param = engine.expect_scalar(node.param, ctx)
    elif op == "count_values":
        p = engine.eval(node.param, ctx) if node.param is not None else None
        if not isinstance(p, Str):
            raise EvalError("bad_data", "count_values expects a string parameter")
        param = p.value
    vec = engine.expect_vec(node.expr, ctx)
    S = ctx.S
    if op == "count_values":
        return _count_values(vec, param, node.grouping, node.without, S)
    if not vec.labels:
        return empty_vec(S)
    keys = [group_labels(l, node.grouping, node.without) for l in vec.labels]
    gindex: dict = {}
    gid = np.array([gindex.setdefault(k, len(gindex)) for k in keys], np.int64)
    glabels = list(gindex)
    G = len(glabels)
    vals, mask = vec.values, vec.mask
    if op in ("topk", "bottomk"):
        return _topk(vec, gid, G, param, op == "topk", S)
    count = np.zeros((G, S))
    np.add.at(count, gid, mask.astype(np.float64))
    present = count > 0
    if op == "sum":
        out = np.zeros((G, S))
        np.add.at(out, gid, np.where(mask, vals, 0.0))
    elif op == "count":
        out = count
    elif op == "group":
        out = np.ones((G, S))
    elif op in ("min", "max"):
        # fmin/fmax skip NaN unless every value is NaN, as Prometheus does
        out = np.full((G, S), np.nan)
        (np.fmin if op == "min" else np.fmax).at(out, gid, np.where(mask, vals, np.nan))
    elif op == "avg":
        out = _avg(vals, mask, gid, G, S)
    elif op in ("stddev", "stdvar"):
        out = _stdvar(vals, mask, gid, G, S)
        if op == "stddev":
            out = np.sqrt(out)
    elif op == "quantile":
        out = np.full((G, S), np.nan)
        for g in range(G):
            rows = np.nonzero(gid == g)[0]
            out[g] = quantile_sorted(param, vals[rows], mask[rows])
    else:
        raise EvalError("bad_data", f"unknown aggregation operator {op!r}")
    return make_vec(glabels, out, present)


def _avg(vals, mask, gid, G, S):
    """Incremental mean (Prometheus' form, which does not overflow where sum/count would)."""
    mean = np.zeros((G, S))
    cnt = np.zeros((G, S))
    for i in range(len(gid)):
        g, m, v = gid[i], mask[i], vals[i]
        c_before = cnt[g]
        c = c_before + m
        cur = mean[g]
        inf_mean = np.isinf(cur)
        skip = inf_mean & ((np.isinf(v) & ((cur > 0) == (v > 0))) | (~np.isinf(v) & ~np.isnan(v)))
        safe_c = np.where(c > 0, c, 1)
        new = cur + (v / safe_c - cur / safe_c)   # Go adds the difference as one term
        new = np.where(skip, cur, new)
        mean[g] = np.where(m, np.where(c_before == 0, v, new), cur)
        cnt[g] = c
    return mean


def _stdvar(vals, mask, gid, G, S):
    mean = np.zeros((G, S))
    acc = np.zeros((G, S))
    cnt = np.zeros((G, S))
    for i in range(len(gid)):
        g, m, v = gid[i], mask[i], vals[i]
        c = cnt[g] + m
        safe_c = np.where(c > 0, c, 1)
        delta = v - mean[g]
        nm = mean[g] + delta / safe_c
        na = acc[g] + delta * (v - nm)
        first = m & (cnt[g] == 0)
        mean[g] = np.where(first, v, np.where(m, nm, mean[g]))
        acc[g] = np.where(first, 0.0, np.where(m, na, acc[g]))
        cnt[g] = c
    return acc / np.where(cnt > 0, cnt, 1)


def _topk(vec: Vec, gid, G, param, top, S):
    """topk/bottomk through Prometheus' own bounded heap, replayed for all steps at once, so that ties and NaN
    pick the same series as 2.42 does."""
    bad = np.isnan(param) | (np.abs(param) >= 2.0**63)
    if bad.any():
        raise EvalError("execution", f"Scalar value {_go_v(float(param[bad][0]))} overflows int64")
    with np.errstate(invalid="ignore"):
        k = np.where(np.isnan(param), 0, np.trunc(np.clip(param, -2**62, 2**62))).astype(np.int64)
    vals, mask = vec.values, vec.mask
    L = len(vals)
    sel = np.zeros((L, S), bool)
    order_key = np.zeros((L, S))
    for g in range(G):
        rows = np.nonzero(gid == g)[0]
        kg = np.clip(k, 0, len(rows))
        hv, hi, size = _heap_replay(vals[rows], mask[rows], kg, top)
        K = hv.shape[0]
        if K == 0:
            continue
        # output order: sort.Sort(sort.Reverse(heap)) - best first, NaN last, stable on heap position
        pos = np.arange(K)[:, None].repeat(S, axis=1)
        live = pos < size[None, :]
        nan = np.isnan(hv)
        key = np.where(nan, 0.0, -hv if top else hv)
        # Go's insertion sort with the NaN-is-less heap order leaves NaNs last and in reverse heap order
        order = np.lexsort((np.where(nan, -pos, pos), key, nan, ~live), axis=0)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, pos, axis=0)
        for slot in range(K):
            ok = live[slot]
            r = rows[hi[slot][ok]]
            sel[r, np.nonzero(ok)[0]] = True
            order_key[r, np.nonzero(ok)[0]] = rows[0] * (L + 1) + rank[slot][ok]
    return make_vec(list(vec.labels), vals, sel & mask, order=order_key)


def _go_v(x: float) -> str:
    """Go's %v for a float64."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    r = repr(x)
    if "e" in r:
        mant, exp = r.split("e")
        e = int(exp)
        if -4 <= e < 21:
            return format_go_float(x)
        return f"{mant.rstrip('0').rstrip('.') if '.' in mant else mant}e{'+' if e >= 0 else '-'}{abs(e):02d}"
    return format_go_float(x)


def _heap_replay(vals, mask, k, top):
    """Push the rows in input order into a bounded heap per step (Go container/heap semantics): while the heap
    has fewer than k entries push; otherwise replace the root when the new value beats it."""
    n_rows, S = vals.shape
    K = int(k.max()) if S else 0
    hv = np.zeros((K, S))
    hi = np.zeros((K, S), np.int64)
    size = np.zeros(S, np.int64)
    if K == 0:
        return hv, hi, size
    cols = np.arange(S)

    def less(a, b):   # 2.42's value heaps: NaN is "less" than anything, so it sits at the root
        va, vb = hv[a, cols], hv[b, cols]
        return ((va < vb) if top else (va > vb)) | np.isnan(va)

    def swap(a, b, act):
        va, vb = hv[a, cols], hv[b, cols]
        ia, ib = hi[a, cols], hi[b, cols]
        hv[a, cols] = np.where(act, vb, va)
        hv[b, cols] = np.where(act, va, vb)
        hi[a, cols] = np.where(act, ib, ia)
        hi[b, cols] = np.where(act, ia, ib)

    def up(j, act):
        while act.any():
            parent = np.maximum((j - 1) // 2, 0)
            act = act & (j > 0) & less(j, parent)
            swap(j, parent, act)
            j = np.where(act, parent, j)

    def down(i, n, act):
        while act.any():
            j1 = 2 * i + 1
            act = act & (j1 < n)
            j1c = np.minimum(j1, K - 1)
            j2 = np.minimum(j1c + 1, K - 1)
            j = np.where((j1 + 1 < n) & less(j2, j1c), j2, j1c)
            act = act & less(j, i)
            swap(i, j, act)
            i = np.where(act, j, i)

    zero = np.zeros(S, np.int64)
    for r in range(n_rows):
        m = mask[r] & (k > 0)
        if not m.any():
            continue
        v = vals[r]
        root = hv[0]
        beats = ((root < v) if top else (root > v)) | np.isnan(root)
        take = m & ((size < k) | beats)
        full = take & (size >= k)
        if full.any():
            # heap.Pop: move the root to the end, restore the heap over the rest, drop the end
            last = np.maximum(size - 1, 0)
            swap(zero, last, full)
            down(zero, last, full.copy())
            size = size - full
        if take.any():
            at = np.minimum(size, K - 1)
            hv[at, cols] = np.where(take, v, hv[at, cols])
            hi[at, cols] = np.where(take, r, hi[at, cols])
            size = size + take
            up(at, take.copy())
    return hv, hi, size


def _count_values(vec: Vec, label, grouping, without, S):
    if not LABEL_NAME_RE.match(label or ""):
        raise EvalError("execution", f"invalid label name {label!r}")
    if not vec.labels:
        return empty_vec(S)
    grouping = tuple(grouping)
    if not without:
        grouping = grouping + (label,)
    present_vals = vec.values[vec.mask]
    uniq = np.unique(present_vals)
    if len(uniq) == 0:
        return empty_vec(S)
    strs = [format_go_float(float(u)) for u in uniq]
    codes = np.searchsorted(uniq, vec.values)            # NaN sorts last in both
    codes = np.clip(codes, 0, len(uniq) - 1)
    out: dict = {}
    for i, lab in enumerate(vec.labels):
        m = vec.mask[i]
        if not m.any():
            continue
        c = codes[i]
        for u in np.unique(c[m]).tolist():
            d = dict(lab)
            d[label] = strs[u]
            key = group_labels(tuple(sorted(d.items())), grouping, without)
            row = out.get(key)
            if row is None:
                row = out[key] = np.zeros(S)
            row += m & (c == u)
    labels = list(out)
    vals = np.array([out[k] for k in labels])
    return make_vec(labels, vals, vals > 0)
