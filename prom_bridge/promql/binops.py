"""Binary operators: arithmetic, comparisons (filtering or `bool`), set operators and vector matching.

Matching is decided per step, as Prometheus does, but computed for all steps at once: every (lhs, rhs) pair with
the same matching signature yields a candidate row masked to the steps where both sides are present.
"""
from __future__ import annotations

import numpy as np

from . import ast
from .engine import NAME, EvalError, Sc, Vec, drop_name, labels_str, make_vec

ARITH = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod, "^": np.power,
    "atan2": np.arctan2,
}
COMPARE = {
    "==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal,
}
SET_OPS = ("and", "or", "unless")


def binary(engine, node: ast.BinaryExpr, ctx):
    op = node.op
    lhs = engine.eval(node.lhs, ctx)
    rhs = engine.eval(node.rhs, ctx)
    if op not in ARITH and op not in COMPARE and op not in SET_OPS:
        raise EvalError("bad_data", f"unknown binary operator {op!r}")
    if isinstance(lhs, Sc) and isinstance(rhs, Sc):
        return scalar_scalar(op, lhs.values, rhs.values, node.return_bool)
    if isinstance(lhs, Vec) and isinstance(rhs, Sc):
        return vector_scalar(op, lhs, rhs.values, False, node.return_bool)
    if isinstance(lhs, Sc) and isinstance(rhs, Vec):
        return vector_scalar(op, rhs, lhs.values, True, node.return_bool)
    if isinstance(lhs, Vec) and isinstance(rhs, Vec):
        matching = node.matching or ast.VectorMatching(card="many-to-many" if op in SET_OPS else "one-to-one")
        if op in SET_OPS:
            return set_op(op, lhs, rhs, matching)
        return vector_vector(op, lhs, rhs, matching, node.return_bool)
    raise EvalError("bad_data", f"binary expression must contain only scalar and instant vector types")


def scalar_scalar(op, a, b, return_bool):
    if op in ARITH:
        return Sc(ARITH[op](a, b).astype(np.float64))
    if op in COMPARE:
        if not return_bool:
            raise EvalError("bad_data", "comparisons between scalars must use BOOL modifier")
        return Sc(COMPARE[op](a, b).astype(np.float64))
    raise EvalError("bad_data", f"set operator {op!r} not allowed in binary scalar expression")


def vector_scalar(op, vec: Vec, sc, swap, return_bool):
    if op in SET_OPS:
        raise EvalError("bad_data", f"set operator {op!r} not allowed in binary scalar expression")
    L = vec.values
    R = np.broadcast_to(sc[None, :], L.shape)
    lv, rv = (R, L) if swap else (L, R)
    if op in ARITH:
        labels = list(vec.labels) if op == "atan2" else [drop_name(l) for l in vec.labels]
        return make_vec(labels, ARITH[op](lv, rv), vec.mask)
    hit = COMPARE[op](lv, rv)
    if return_bool:
        return make_vec([drop_name(l) for l in vec.labels], hit.astype(np.float64), vec.mask)
    # A filtering comparison keeps the vector element's value whichever side the scalar is on.
    return make_vec(list(vec.labels), L, vec.mask & hit)


def signature(labels, matching: ast.VectorMatching) -> tuple:
    if matching.on:
        names = set(matching.labels)
        return tuple(p for p in labels if p[0] in names)
    names = set(matching.labels)
    names.add(NAME)
    return tuple(p for p in labels if p[0] not in names)


def _presence_by_sig(vec: Vec, matching):
    sigs = [signature(l, matching) for l in vec.labels]
    pres: dict = {}
    for sig, m in zip(sigs, vec.mask):
        cur = pres.get(sig)
        pres[sig] = m.copy() if cur is None else (cur | m)
    return sigs, pres


def set_op(op, lhs: Vec, rhs: Vec, matching):
    S = lhs.values.shape[1]
    none = np.zeros(S, bool)
    if op in ("and", "unless"):
        lsigs = [signature(l, matching) for l in lhs.labels]
        _, rpres = _presence_by_sig(rhs, matching)
        rows = [rpres.get(s, none) for s in lsigs]
        other = np.array(rows, bool).reshape(-1, S)
        mask = lhs.mask & other if op == "and" else lhs.mask & ~other
        return make_vec(list(lhs.labels), lhs.values, mask)
    # or: everything on the left plus right elements whose signature the left lacks at that step
    _, lpres = _presence_by_sig(lhs, matching)
    rsigs = [signature(l, matching) for l in rhs.labels]
    rmask = rhs.mask & ~np.array([lpres.get(s, none) for s in rsigs], bool).reshape(-1, S)
    labels = list(lhs.labels) + list(rhs.labels)
    return make_vec(labels, np.concatenate([lhs.values, rhs.values]), np.concatenate([lhs.mask, rmask]))


def result_metric(l, r, op, matching, return_bool):
    d = dict(l)
    if (op in ARITH and op != "atan2") or return_bool:   # 2.42 keeps the name on atan2
        d.pop(NAME, None)
    if matching.card == "one-to-one":
        if matching.on:
            keep = set(matching.labels)
            d = {k: v for k, v in d.items() if k in keep}
        else:
            for k in matching.labels:
                d.pop(k, None)
    if matching.include:
        rd = dict(r)
        for k in matching.include:
            v = rd.get(k, "")
            if v:
                d[k] = v
            else:
                d.pop(k, None)
    return tuple(sorted(d.items()))


def vector_vector(op, lhs: Vec, rhs: Vec, matching, return_bool):
    card = matching.card
    if card == "many-to-many":
        raise EvalError("bad_data", f"many-to-many matching not allowed for operator {op!r}")
    S = lhs.values.shape[1]
    swapped = card == "one-to-many"
    if swapped:
        lhs, rhs = rhs, lhs
    lsigs = [signature(l, matching) for l in lhs.labels]
    rsigs = [signature(r, matching) for r in rhs.labels]
    by_sig: dict = {}
    for j, sig in enumerate(rsigs):
        by_sig.setdefault(sig, []).append(j)
    # The "one" side must be unique per signature at every step.
    for sig, js in by_sig.items():
        if len(js) > 1:
            cnt = rhs.mask[js].sum(axis=0)
            if (cnt > 1).any():
                step = int(np.argmax(cnt > 1))
                a, b = [j for j in js if rhs.mask[j, step]][:2]
                side = "left" if swapped else "right"
                matched = _matched_labels(rhs.labels[b], matching)
                raise EvalError("execution",
                                f"found duplicate series for the match group {labels_str(matched)} on the {side} "
                                f"hand-side of the operation: [{labels_str(rhs.labels[b])}, "
                                f"{labels_str(rhs.labels[a])}];many-to-many matching not allowed: "
                                f"matching labels must be unique on one side")
    fn = ARITH.get(op) or COMPARE[op]
    labels, values, masks, keys = [], [], [], []
    for i, sig in enumerate(lsigs):
        for j in by_sig.get(sig, ()):
            m = lhs.mask[i] & rhs.mask[j]
            if not m.any():
                continue
            vl, vr = lhs.values[i], rhs.values[j]
            if swapped:
                vl, vr = vr, vl
            if op in ARITH:
                val, keep = fn(vl, vr), m
            else:
                hit = fn(vl, vr)
                if return_bool:
                    val, keep = hit.astype(np.float64), m
                else:
                    val, keep = vl, m & hit
            metric = result_metric(lhs.labels[i], rhs.labels[j], op, matching, return_bool)
            labels.append(metric)
            values.append(val)
            masks.append(keep)
            keys.append(sig if card == "one-to-one" else (sig, metric))
    if not labels:
        return Vec([], np.zeros((0, S)), np.zeros((0, S), bool))
    masks_a = np.array(masks, bool)
    if len(set(keys)) != len(keys):
        groups: dict = {}
        for n, k in enumerate(keys):
            groups.setdefault(k, []).append(n)
        for rows in groups.values():
            if len(rows) > 1 and (masks_a[rows].sum(axis=0) > 1).any():
                if card == "one-to-one":
                    raise EvalError("execution", "multiple matches for labels: many-to-one matching must be "
                                                 "explicit (group_left/group_right)")
                raise EvalError("execution", "multiple matches for labels: grouping labels must ensure unique matches")
    return make_vec(labels, np.array(values, np.float64), masks_a)


def _matched_labels(labels, matching):
    return signature(labels, matching)
