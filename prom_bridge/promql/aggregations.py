"""Aggregation operators (sum, avg, count, min, max, group, stddev, stdvar, topk, bottomk, quantile,
count_values), evaluated for all steps at once. Loops run over series or groups, never over samples."""
from __future__ import annotations

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
        new = cur + v / safe_c - cur / safe_c
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
    with np.errstate(invalid="ignore"):
        k = np.where(np.isnan(param), 0, np.trunc(np.clip(param, -2**62, 2**62))).astype(np.int64)
    vals, mask = vec.values, vec.mask
    L = len(vals)
    rank = np.full((L, S), L, np.int64)
    first_pos = np.zeros(G, np.int64)
    for g in range(G):
        rows = np.nonzero(gid == g)[0]
        first_pos[g] = rows[0]
        sub_v, sub_m = vals[rows], mask[rows]
        nan = np.isnan(sub_v)
        cat = np.where(sub_m, np.where(nan, 1, 0), 2)   # NaN ranks after every number; absent last
        key = np.where(nan | ~sub_m, 0.0, -sub_v if top else sub_v)
        order = np.lexsort((key, cat), axis=0)           # stable: on ties the earlier series wins
        r = np.empty_like(order)
        np.put_along_axis(r, order, np.arange(len(rows))[:, None].repeat(S, axis=1), axis=0)
        rank[rows] = r
    sel = mask & (rank < k[None, :])
    # instant-query output: groups in order of first appearance, each sorted by rank
    order_key = (first_pos[gid][:, None] * (L + 1) + rank).astype(np.float64)
    return make_vec(list(vec.labels), vals, sel, order=order_key)


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
