"""Every PromQL function of Prometheus 2.42, evaluated for all steps of a query at once.

Range-vector functions see, per series, the raw samples and the window [end - range, end] of every step. Simple
ones use prefix sums over the samples; the others gather the windows into a padded [steps x window] matrix
(chunked over steps to bound memory) and reduce along the window axis. Loops run over series, or over window
positions for the recurrences (holt_winters, incremental means), never over individual samples.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal

import numpy as np

from . import ast
from .engine import NAME, EvalError, Mat, Sc, Str, Vec, drop_name, empty_vec, make_vec, unwrap

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GATHER_CELLS = 4_000_000   # max steps x window cells gathered at once


# ---- shared helpers -----------------------------------------------------------------------------------------
def format_go_float(v: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = format(Decimal(repr(v)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s == "-0" and math.copysign(1, v) > 0:
        s = "0"
    return s


def quantile_sorted(q, vals, mask):
    """Prometheus' quantile(): per column (step), over the present rows; NaN values sort first.
    q: (S,), vals/mask: (n, S). Returns (S,)."""
    S = vals.shape[1]
    n = mask.sum(axis=0)
    if vals.shape[0] == 0:
        return np.full(S, np.nan)
    nan = np.isnan(vals)
    cat = np.where(mask, np.where(nan, 0, 1), 2)
    key = np.where(nan | ~mask, 0.0, vals)
    order = np.lexsort((key, cat), axis=0)
    sv = np.take_along_axis(vals, order, axis=0)
    nf = n.astype(np.float64)
    rank = q * (nf - 1)
    lower = np.maximum(0, np.floor(rank))
    upper = np.minimum(nf - 1, lower + 1)
    weight = rank - np.floor(rank)
    li = np.clip(np.nan_to_num(lower), 0, vals.shape[0] - 1).astype(np.int64)
    ui = np.clip(np.nan_to_num(upper), 0, vals.shape[0] - 1).astype(np.int64)
    cols = np.arange(S)
    res = sv[li, cols] * (1 - weight) + sv[ui, cols] * weight
    res = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, res))
    res = np.where(np.isnan(q) | (n == 0), np.nan, res)
    return res


def _windows(ts, mat: Mat):
    lo = np.searchsorted(ts, mat.ends - mat.range_ms, "left")
    hi = np.searchsorted(ts, mat.ends, "right")
    return lo, hi


def _gathered(ts, vs, lo, hi):
    """Yield (slice, V, Tm, valid, n) chunks: V/Tm are [steps x W] padded windows."""
    n = hi - lo
    S = len(n)
    W = int(n.max()) if S else 0
    if W == 0:
        return
    chunk = max(1, _GATHER_CELLS // W)
    last = len(ts) - 1
    cols = np.arange(W)
    for a in range(0, S, chunk):
        sl = slice(a, min(S, a + chunk))
        nn = n[sl]
        idx = np.minimum(lo[sl][:, None] + cols[None, :], last)
        valid = cols[None, :] < nn[:, None]
        yield sl, vs[idx], ts[idx], valid, nn


def _range_apply(mat: Mat, S, fn, min_n=1, keep_name=False):
    """fn(V, Tm, valid, n, sl, ends) -> (S_chunk,) values for one series; output where n >= min_n."""
    labels, rows, masks = [], [], []
    for lab, (ts, vs) in zip(mat.labels, mat.series):
        lo, hi = _windows(ts, mat)
        n = hi - lo
        ok = n >= min_n
        if not ok.any():
            continue
        out = np.full(S, np.nan)
        for sl, V, Tm, valid, nn in _gathered(ts, vs, lo, hi):
            out[sl] = fn(V, Tm, valid, nn, sl)
        labels.append(lab if keep_name else drop_name(lab))
        rows.append(out)
        masks.append(ok)
    if not labels:
        return empty_vec(S)
    return make_vec(labels, np.array(rows), np.array(masks), strict=True)


def _range_direct(mat: Mat, S, fn, min_n=1):
    """fn(ts, vs, lo, hi, n) -> (values (S,), ok (S,)) computed from indices without gathering."""
    labels, rows, masks = [], [], []
    for lab, (ts, vs) in zip(mat.labels, mat.series):
        lo, hi = _windows(ts, mat)
        n = hi - lo
        if not (n >= min_n).any():
            continue
        val, ok = fn(ts, vs, lo, hi, n)
        ok = ok & (n >= min_n)
        if ok.any():
            labels.append(drop_name(lab))
            rows.append(val)
            masks.append(ok)
    if not labels:
        return empty_vec(S)
    return make_vec(labels, np.array(rows), np.array(masks), strict=True)


# ---- range-vector functions ---------------------------------------------------------------------------------
def _extrapolated(mat: Mat, S, counter: bool, rate: bool):
    range_s = mat.range_ms / 1000.0

    def fn(ts, vs, lo, hi, n):
        ok = n >= 2
        f = np.minimum(lo, len(ts) - 1)
        l = np.maximum(hi - 1, 0)
        fv, lv = vs[f], vs[l]
        ft, lt = ts[f], ts[l]
        result = lv - fv
        if counter:
            drops = np.zeros(len(vs))
            drops[1:] = np.where(vs[1:] < vs[:-1], vs[:-1], 0.0)
            cum = np.cumsum(drops)
            result = result + (cum[l] - cum[f])
        range_start = mat.ends - mat.range_ms
        d_start = (ft - range_start) / 1000.0
        d_end = (mat.ends - lt) / 1000.0
        sampled = (lt - ft) / 1000.0
        avg = sampled / np.maximum(n - 1, 1)
        if counter:
            d_zero = sampled * (fv / result)
            use = (result > 0) & (fv >= 0) & (d_zero < d_start)
            d_start = np.where(use, d_zero, d_start)
        thr = avg * 1.1
        ext = sampled + np.where(d_start < thr, d_start, avg / 2) + np.where(d_end < thr, d_end, avg / 2)
        result = result * (ext / sampled)
        if rate:
            result = result / range_s
        return result, ok
    return _range_direct(mat, S, fn, 2)


def _instant_value(mat: Mat, S, rate: bool):
    def fn(ts, vs, lo, hi, n):
        l = np.maximum(hi - 1, 0)
        p = np.maximum(hi - 2, 0)
        lv, pv = vs[l], vs[p]
        res = np.where(lv < pv, lv, lv - pv) if rate else lv - pv
        dt = ts[l] - ts[p]
        ok = (n >= 2) & (dt != 0)
        if rate:
            res = res / (np.where(dt != 0, dt, 1) / 1000.0)
        return res, ok
    return _range_direct(mat, S, fn, 2)


def _count_pairs(mat: Mat, S, pair_fn):
    """Number of consecutive sample pairs in each window for which pair_fn(prev, cur) holds."""
    def fn(ts, vs, lo, hi, n):
        hits = np.zeros(len(vs))
        hits[1:] = pair_fn(vs[:-1], vs[1:])
        cum = np.cumsum(hits)
        l = np.maximum(hi - 1, 0)
        f = np.minimum(lo, len(vs) - 1)
        return cum[l] - cum[f], n >= 1
    return _range_direct(mat, S, fn, 1)


def _linreg(V, Tm, valid, n, origin):
    """Least squares of V on x = (t - origin)/1000 over valid cells; constant series give slope 0."""
    x = np.where(valid, (Tm - origin[:, None]) / 1000.0, 0.0)
    y = np.where(valid, V, 0.0)
    nf = n.astype(np.float64)
    sx, sy = x.sum(axis=1), y.sum(axis=1)
    sxy, sx2 = (x * y).sum(axis=1), (x * x).sum(axis=1)
    cov = sxy - sx * sy / nf
    var = sx2 - sx * sx / nf
    slope = cov / var
    intercept = sy / nf - slope * sx / nf
    first = V[:, 0]
    same = np.where(valid, (V == first[:, None]), True).all(axis=1)
    const_inf = same & np.isinf(first)
    slope = np.where(same, np.where(const_inf, np.nan, 0.0), slope)
    intercept = np.where(same, np.where(const_inf, np.nan, first), intercept)
    return slope, intercept


def f_deriv(mat, S, ctx):
    return _range_apply(mat, S, lambda V, Tm, valid, n, sl: _linreg(V, Tm, valid, n, Tm[:, 0])[0], 2)


def f_predict_linear(mat, S, ctx, dur):
    def fn(V, Tm, valid, n, sl):
        slope, icpt = _linreg(V, Tm, valid, n, mat_eval_ts(mat)[sl])
        return slope * dur[sl] + icpt
    return _range_apply(mat, S, fn, 2)


def mat_eval_ts(mat: Mat):
    """The evaluation time of each step (Prometheus' enh.Ts): neither `offset` nor `@` moves it."""
    return mat.eval_ts


def f_holt_winters(mat, S, ctx, sf, tf):
    if mat.labels:
        bad_sf = (sf <= 0) | (sf >= 1) | np.isnan(sf)
        if bad_sf.any():
            raise EvalError("execution", f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf[bad_sf][0]:f}")
        bad_tf = (tf <= 0) | (tf >= 1) | np.isnan(tf)
        if bad_tf.any():
            raise EvalError("execution", f"invalid trend factor. Expected: 0 < tf < 1, got: {tf[bad_tf][0]:f}")

    def fn(V, Tm, valid, n, sl):
        a, t = sf[sl], tf[sl]
        s0 = np.zeros(len(n))
        s1 = V[:, 0].copy()
        b = V[:, 1] - V[:, 0] if V.shape[1] > 1 else np.zeros(len(n))
        for i in range(1, V.shape[1]):
            act = i < n
            x = a * V[:, i]
            nb = b if i == 1 else t * (s1 - s0) + (1 - t) * b
            y = (1 - a) * (s1 + nb)
            s0 = np.where(act, s1, s0)
            s1 = np.where(act, x + y, s1)
            b = np.where(act, nb, b)
        return s1
    return _range_apply(mat, S, fn, 2)


def _window_mean(V, valid, n):
    """sum/count where that cannot overflow; Prometheus' incremental mean (slow path) elsewhere."""
    X = np.where(valid, V, 0.0)
    total = X.sum(axis=1)
    fast = np.isfinite(total) & np.isfinite(X).all(axis=1)
    out = total / np.maximum(n, 1)
    if not fast.all():
        slow = ~fast
        out[slow] = _incremental_mean(V[slow], valid[slow], n[slow])
    return out


def _incremental_mean(V, valid, n):
    mean = np.zeros(len(n))
    cnt = np.zeros(len(n))
    for i in range(V.shape[1]):
        act = valid[:, i]
        v = V[:, i]
        c = cnt + act
        safe = np.where(c > 0, c, 1)
        inf_mean = np.isinf(mean)
        skip = inf_mean & ((np.isinf(v) & ((mean > 0) == (v > 0))) | (~np.isinf(v) & ~np.isnan(v)))
        new = np.where(cnt == 0, v, mean + (v / safe - mean / safe))
        mean = np.where(act & ~skip, new, mean)
        cnt = c
    return mean


def _window_stdvar(V, valid, n):
    """Two-pass population variance; a window of equal values is exactly 0 (as the incremental form gives)."""
    X = np.where(valid, V, 0.0)
    nf = np.maximum(n, 1).astype(np.float64)
    mean = X.sum(axis=1) / nf
    dev = np.where(valid, V - mean[:, None], 0.0)
    var = (dev * dev).sum(axis=1) / nf
    lo = np.where(valid, V, np.inf).min(axis=1)
    hi = np.where(valid, V, -np.inf).max(axis=1)
    var = np.where(lo == hi, 0.0, var)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        var[bad] = _stdvar_window(V[bad], valid[bad], n[bad])
    return var


def _stdvar_window(V, valid, n):
    mean = np.zeros(len(n))
    aux = np.zeros(len(n))
    cnt = np.zeros(len(n))
    for i in range(V.shape[1]):
        act = valid[:, i]
        v = V[:, i]
        c = cnt + act
        safe = np.where(c > 0, c, 1)
        delta = v - mean
        nm = mean + delta / safe
        aux = np.where(act, aux + delta * (v - nm), aux)
        mean = np.where(act, nm, mean)
        cnt = c
    return aux / np.where(cnt > 0, cnt, 1)


def _over_time(name):
    def run(mat, S, ctx, *extra):
        if name == "sum":
            fn = lambda V, Tm, valid, n, sl: np.where(valid, V, 0.0).sum(axis=1)
        elif name == "count":
            fn = lambda V, Tm, valid, n, sl: n.astype(np.float64)
        elif name == "present":
            fn = lambda V, Tm, valid, n, sl: np.ones(len(n))
        elif name == "avg":
            fn = lambda V, Tm, valid, n, sl: _window_mean(V, valid, n)
        elif name == "min":
            fn = lambda V, Tm, valid, n, sl: np.fmin.reduce(np.where(valid, V, np.nan), axis=1)
        elif name == "max":
            fn = lambda V, Tm, valid, n, sl: np.fmax.reduce(np.where(valid, V, np.nan), axis=1)
        elif name == "last":
            fn = lambda V, Tm, valid, n, sl: V[np.arange(len(n)), np.maximum(n - 1, 0)]
        elif name == "stdvar":
            fn = lambda V, Tm, valid, n, sl: _window_stdvar(V, valid, n)
        elif name == "stddev":
            fn = lambda V, Tm, valid, n, sl: np.sqrt(_window_stdvar(V, valid, n))
        elif name == "quantile":
            q = extra[0]
            fn = lambda V, Tm, valid, n, sl: quantile_sorted(q[sl], V.T, valid.T)
        else:  # pragma: no cover
            raise AssertionError(name)
        return _range_apply(mat, S, fn, 1, keep_name=(name == "last"))
    return run


def f_absent_over_time(mat: Mat, S, ctx):
    any_present = np.zeros(S, bool)
    for ts, vs in mat.series:
        lo, hi = _windows(ts, mat)
        any_present |= hi > lo
    node = mat.node
    labels = absent_labels(node) if isinstance(node, ast.MatrixSelector) else ()
    return make_vec([labels], np.ones((1, S)), (~any_present)[None, :])


def absent_labels(node) -> tuple:
    """Labels of absent(): the equality matchers of a selector (a label matched otherwise, or twice, is left out)."""
    if isinstance(node, ast.MatrixSelector):
        node = node.vector
    if not isinstance(node, ast.VectorSelector):
        return ()
    out, drop = {}, set()
    for m in node.matchers:
        if m.name == NAME:
            continue
        if m.op == "=" and m.name not in out:
            out[m.name] = m.value
        else:
            drop.add(m.name)
    for k in drop:
        out.pop(k, None)
    return tuple(sorted((k, v) for k, v in out.items() if v != ""))


# ---- instant-vector functions -------------------------------------------------------------------------------
def _math(fn):
    def run(engine, node, ctx):
        v = engine.expect_vec(node.args[0], ctx)
        return make_vec([drop_name(l) for l in v.labels], fn(v.values), v.mask)
    return run


def f_round(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    to = engine.expect_scalar(node.args[1], ctx) if len(node.args) > 1 else np.ones(ctx.S)
    inv = 1.0 / to
    # checked against a real 2.42: round() drops the metric name like the other math functions
    return make_vec([drop_name(l) for l in v.labels], np.floor(v.values * inv[None, :] + 0.5) / inv[None, :],
                    v.mask)


def f_clamp(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    lo = engine.expect_scalar(node.args[1], ctx)
    hi = engine.expect_scalar(node.args[2], ctx)
    # Go's math.Max/Min propagate NaN; an inverted range gives an empty result at that step
    out = _go_max(lo[None, :], _go_min(hi[None, :], v.values))
    return make_vec([drop_name(l) for l in v.labels], out, v.mask & ~(hi < lo)[None, :])


def _go_max(a, b):
    return np.maximum(a, b)   # np.maximum propagates NaN like Go's math.Max


def _go_min(a, b):
    return np.minimum(a, b)


def f_clamp_min(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    lo = engine.expect_scalar(node.args[1], ctx)
    return make_vec([drop_name(l) for l in v.labels], _go_max(v.values, lo[None, :]), v.mask)


def f_clamp_max(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    hi = engine.expect_scalar(node.args[1], ctx)
    return make_vec([drop_name(l) for l in v.labels], _go_min(v.values, hi[None, :]), v.mask)


def _time_part(part):
    def run(engine, node, ctx):
        if node.args:
            v = engine.expect_vec(node.args[0], ctx)
            labels, vals, mask = [drop_name(l) for l in v.labels], v.values, v.mask
        else:
            labels, vals, mask = [()], (ctx.T / 1000.0)[None, :], np.ones((1, ctx.S), bool)
        # Go converts NaN, ±Inf and out-of-range floats to the minimum int64, whose date Prometheus then reports
        ok = np.isfinite(vals) & (vals > -9.2e18) & (vals < 9.2e18)
        secs = np.where(ok, np.trunc(np.where(ok, vals, 0)), 0).astype(np.int64)
        out = _date_field(secs, part).astype(np.float64)
        out = np.where(ok, out, _MIN_INT64_DATE[part])
        return make_vec(labels, out, mask)
    return run


_MIN_INT64_DATE = {"year": 292277026596.0, "month": 12.0, "day_of_month": 4.0, "day_of_week": 0.0,
                   "day_of_year": 339.0, "days_in_month": 31.0, "hour": 15.0, "minute": 30.0}


def _date_field(secs, part):
    days = np.floor_divide(secs, 86400)
    sod = secs - days * 86400
    if part == "hour":
        return sod // 3600
    if part == "minute":
        return (sod % 3600) // 60
    if part == "day_of_week":
        return (days + 4) % 7                       # 1970-01-01 was a Thursday; Sunday is 0
    d64 = days.astype("datetime64[D]")
    year = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    month0 = d64.astype("datetime64[M]").astype(np.int64) % 12
    if part == "year":
        return year
    if part == "month":
        return month0 + 1
    if part == "day_of_month":
        return (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    if part == "day_of_year":
        return (d64 - d64.astype("datetime64[Y]")).astype(np.int64) + 1
    if part == "days_in_month":
        m = d64.astype("datetime64[M]")
        return ((m + 1).astype("datetime64[D]") - m.astype("datetime64[D]")).astype(np.int64)
    raise AssertionError(part)


def f_timestamp(engine, node, ctx):
    arg = unwrap(node.args[0])
    v = engine.expect_vec(node.args[0], ctx)
    if isinstance(arg, ast.VectorSelector) and v.ts is not None:
        vals = v.ts / 1000.0
    else:
        vals = np.broadcast_to(ctx.T / 1000.0, v.values.shape)
    return make_vec([drop_name(l) for l in v.labels], np.array(vals, np.float64), v.mask)


def f_vector(engine, node, ctx):
    s = engine.expect_scalar(node.args[0], ctx)
    return Vec([()], s[None, :].astype(np.float64), np.ones((1, ctx.S), bool))


def f_scalar(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    if not v.labels:
        return Sc(np.full(ctx.S, np.nan))
    cnt = v.mask.sum(axis=0)
    idx = np.argmax(v.mask, axis=0)
    val = v.values[idx, np.arange(ctx.S)]
    return Sc(np.where(cnt == 1, val, np.nan))


def f_time(engine, node, ctx):
    return Sc(ctx.T / 1000.0)


def f_pi(engine, node, ctx):
    return Sc(np.full(ctx.S, math.pi))


def f_absent(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    present = v.mask.any(axis=0) if v.labels else np.zeros(ctx.S, bool)
    labels = absent_labels(node.args[0])
    return make_vec([labels], np.ones((1, ctx.S)), (~present)[None, :])


def _sort(desc):
    def run(engine, node, ctx):
        v = engine.expect_vec(node.args[0], ctx)
        if not v.labels:
            return v
        vals = v.values
        nan = np.isnan(vals)
        key = np.where(nan, 0.0, -vals if desc else vals)
        order = np.lexsort((key, nan), axis=0)       # NaN last in both directions, as 2.42 returns them
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(len(vals))[:, None].repeat(vals.shape[1], axis=1), axis=0)
        return Vec(list(v.labels), vals, v.mask, None, rank.astype(np.float64))
    return run


def _string_arg(engine, node, ctx, what):
    val = engine.eval(node, ctx)
    if not isinstance(val, Str):
        raise EvalError("bad_data", f"expected string for {what}")
    return val.value


def _expand(template: str, m, groupindex) -> str:
    """Go regexp.Expand: $1, ${1}, $name, ${name}, $$; unknown groups expand to ''."""
    out = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            j = template.find("}", i + 2)
            name = template[i + 2:j] if j > 0 else ""
            if j < 0 or not name or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                out.append(c)
                i += 1
                continue
            i = j + 1
        else:
            mm = re.match(r"[A-Za-z0-9_]+", template[i + 1:])
            if not mm:
                out.append(c)
                i += 1
                continue
            name = mm.group(0)
            i += 1 + len(name)
        if name.isdigit():
            k = int(name)
            g = m.group(k) if k <= m.re.groups else None
        else:
            k = groupindex.get(name)
            g = m.group(k) if k is not None else None
        out.append(g or "")
    return "".join(out)


def f_label_replace(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    dst = _string_arg(engine, node.args[1], ctx, "label_replace destination")
    repl = _string_arg(engine, node.args[2], ctx, "label_replace replacement")
    src = _string_arg(engine, node.args[3], ctx, "label_replace source")
    regex = _string_arg(engine, node.args[4], ctx, "label_replace regex")
    from storage.matchers import BadRegex, compile_regex
    try:
        rx = compile_regex(regex, "full")
    except BadRegex as exc:
        raise EvalError("execution", f"invalid regular expression in label_replace(): {exc}") from None
    if not LABEL_NAME_RE.match(dst):
        raise EvalError("execution", f"invalid destination label name in label_replace(): {dst}")
    groupindex = dict(getattr(rx, "groupindex", {}) or {})
    labels = []
    for lab in v.labels:
        d = dict(lab)
        m = rx.search(d.get(src, ""))
        if m is not None:
            res = _expand(repl, m, groupindex)
            if res:
                d[dst] = res
            else:
                d.pop(dst, None)
            lab = tuple(sorted(d.items()))
        labels.append(lab)
    return make_vec(labels, v.values, v.mask)


def f_label_join(engine, node, ctx):
    v = engine.expect_vec(node.args[0], ctx)
    dst = _string_arg(engine, node.args[1], ctx, "label_join destination")
    sep = _string_arg(engine, node.args[2], ctx, "label_join separator")
    srcs = [_string_arg(engine, a, ctx, "label_join source") for a in node.args[3:]]
    for s in srcs:
        if not LABEL_NAME_RE.match(s):
            raise EvalError("execution", f"invalid source label name in label_join(): {s}")
    if not LABEL_NAME_RE.match(dst):
        raise EvalError("execution", f"invalid destination label name in label_join(): {dst}")
    labels = []
    for lab in v.labels:
        d = dict(lab)
        val = sep.join(d.get(s, "") for s in srcs)
        if val:
            d[dst] = val
        else:
            d.pop(dst, None)
        labels.append(tuple(sorted(d.items())))
    return make_vec(labels, v.values, v.mask)


def _parse_le(s: str):
    try:
        return float(s.strip())
    except ValueError:
        return None


def f_histogram_quantile(engine, node, ctx):
    q = engine.expect_scalar(node.args[0], ctx)
    v = engine.expect_vec(node.args[1], ctx)
    S = ctx.S
    groups: dict = {}
    for i, lab in enumerate(v.labels):
        le = dict(lab).get("le")
        bound = _parse_le(le) if le is not None else None
        if bound is None:
            continue
        sig = tuple(p for p in lab if p[0] != "le")
        groups.setdefault(sig, []).append((bound, i))
    labels, rows, masks = [], [], []
    for sig, members in groups.items():
        members.sort(key=lambda x: x[0])
        bounds = np.array([b for b, _ in members])
        idx = [i for _, i in members]
        val, ok = _bucket_quantile(q, bounds, v.values[idx], v.mask[idx])
        labels.append(drop_name(tuple(p for p in sig)))
        rows.append(val)
        masks.append(ok)
    if not labels:
        return empty_vec(S)
    return make_vec(labels, np.array(rows), np.array(masks))


def _bucket_quantile(q, bounds, counts, mask):
    """Classic-bucket histogram_quantile for every step at once; rows sorted by upper bound."""
    S = counts.shape[1]
    # coalesce equal bounds (sum the present counts)
    ub, inv = np.unique(bounds, return_inverse=True)
    B = len(ub)
    c = np.zeros((B, S))
    np.add.at(c, inv, np.where(mask, counts, 0.0))
    pm = np.zeros((B, S), bool)
    np.logical_or.at(pm, inv, mask)
    ok = pm.any(axis=0)
    # monotonic counts over the present buckets
    c = np.where(pm, c, -np.inf)
    c = np.maximum.accumulate(c, axis=0)
    idx = np.arange(B)[:, None]
    last_present = np.where(pm, idx, -1).max(axis=0)
    n_present = pm.sum(axis=0)
    cols = np.arange(S)
    lp = np.maximum(last_present, 0)
    has_inf = np.isposinf(ub[lp]) & (last_present >= 0)
    obs = c[lp, cols]
    rank = q * obs
    # the previous present bucket of each bucket
    prev_present = np.where(pm, idx, -1)
    prev_present = np.maximum.accumulate(prev_present, axis=0)
    prev_of = np.vstack([np.full((1, S), -1), prev_present[:-1]])
    cond = pm & (c >= rank[None, :]) & (idx < last_present[None, :])
    found = cond.any(axis=0)
    b = np.argmax(cond, axis=0)
    second_last = prev_of[lp, cols]
    pb = prev_of[b, cols]
    bucket_end = ub[b]
    bucket_start = np.where(pb >= 0, ub[np.maximum(pb, 0)], 0.0)
    cnt = c[b, cols] - np.where(pb >= 0, c[np.maximum(pb, 0), cols], 0.0)
    rk = rank - np.where(pb >= 0, c[np.maximum(pb, 0), cols], 0.0)
    interp = bucket_start + (bucket_end - bucket_start) * (rk / cnt)
    first_nonpos = (pb < 0) & (ub[b] <= 0)
    res = np.where(first_nonpos, ub[b], interp)
    res = np.where(found, res, ub[np.maximum(second_last, 0)])
    res = np.where((n_present < 2) | (obs == 0) | ~has_inf, np.nan, res)
    res = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, res))
    res = np.where(np.isnan(q), np.nan, res)
    return res, ok


def f_native_only(engine, node, ctx):
    """histogram_count/sum/fraction work on native histograms only, which plumbago does not store."""
    for a in node.args:
        engine.eval(a, ctx)
    return empty_vec(ctx.S)


# ---- dispatch -----------------------------------------------------------------------------------------------
def _m(fn):
    return _math(fn)


INSTANT = {
    "abs": _m(np.abs), "ceil": _m(np.ceil), "floor": _m(np.floor), "exp": _m(np.exp), "sqrt": _m(np.sqrt),
    "ln": _m(np.log), "log2": _m(np.log2), "log10": _m(np.log10), "sgn": _m(np.sign),
    "acos": _m(np.arccos), "acosh": _m(np.arccosh), "asin": _m(np.arcsin), "asinh": _m(np.arcsinh),
    "atan": _m(np.arctan), "atanh": _m(np.arctanh), "cos": _m(np.cos), "cosh": _m(np.cosh), "sin": _m(np.sin),
    "sinh": _m(np.sinh), "tan": _m(np.tan), "tanh": _m(np.tanh),
    "deg": _m(lambda x: x * 180 / math.pi), "rad": _m(lambda x: x * math.pi / 180),
    "round": f_round, "clamp": f_clamp, "clamp_min": f_clamp_min, "clamp_max": f_clamp_max,
    "year": _time_part("year"), "month": _time_part("month"), "day_of_month": _time_part("day_of_month"),
    "day_of_week": _time_part("day_of_week"), "day_of_year": _time_part("day_of_year"),
    "days_in_month": _time_part("days_in_month"), "hour": _time_part("hour"), "minute": _time_part("minute"),
    "timestamp": f_timestamp, "vector": f_vector, "scalar": f_scalar, "time": f_time, "pi": f_pi,
    "absent": f_absent, "sort": _sort(False), "sort_desc": _sort(True),
    "label_replace": f_label_replace, "label_join": f_label_join,
    "histogram_quantile": f_histogram_quantile,
    "histogram_count": f_native_only, "histogram_sum": f_native_only, "histogram_fraction": f_native_only,
}

RANGE = {
    "rate": lambda m, S, c: _extrapolated(m, S, True, True),
    "increase": lambda m, S, c: _extrapolated(m, S, True, False),
    "delta": lambda m, S, c: _extrapolated(m, S, False, False),
    "irate": lambda m, S, c: _instant_value(m, S, True),
    "idelta": lambda m, S, c: _instant_value(m, S, False),
    "deriv": f_deriv,
    "changes": lambda m, S, c: _count_pairs(m, S, lambda a, b: ~((a == b) | (np.isnan(a) & np.isnan(b)))),
    "resets": lambda m, S, c: _count_pairs(m, S, lambda a, b: b < a),
    "absent_over_time": f_absent_over_time,
    **{f"{n}_over_time": _over_time(n) for n in
       ("avg", "min", "max", "sum", "count", "stddev", "stdvar", "last", "present")},
}
# range functions with extra scalar arguments: name -> (position of the matrix, positions of the scalars)
RANGE_EXTRA = {
    "predict_linear": (0, (1,), f_predict_linear),
    "holt_winters": (0, (1, 2), f_holt_winters),
    "quantile_over_time": (1, (0,), lambda m, S, c, q: _over_time("quantile")(m, S, c, q)),
}

RETURN_TYPES = {"time": ast.SCALAR, "pi": ast.SCALAR, "scalar": ast.SCALAR}
FUNCTION_NAMES = frozenset(INSTANT) | frozenset(RANGE) | frozenset(RANGE_EXTRA)


def call(engine, node: ast.Call, ctx):
    name = node.func
    if name in RANGE:
        if len(node.args) != 1:
            raise EvalError("bad_data", f"wrong number of arguments for {name}()")
        return RANGE[name](engine.expect_mat(node.args[0], ctx), ctx.S, ctx)
    if name in RANGE_EXTRA:
        mpos, spos, fn = RANGE_EXTRA[name]
        if len(node.args) != 1 + len(spos):
            raise EvalError("bad_data", f"wrong number of arguments for {name}()")
        scalars = [engine.expect_scalar(node.args[p], ctx) for p in spos]
        marg = unwrap(node.args[mpos])
        if name == "predict_linear" and isinstance(marg, ast.MatrixSelector):
            mat = engine.select_matrix(marg, ctx, drift=True)
        else:
            mat = engine.expect_mat(node.args[mpos], ctx)
        return fn(mat, ctx.S, ctx, *scalars)
    fn = INSTANT.get(name)
    if fn is None:
        raise EvalError("bad_data", f"unknown function with name {name!r}")
    return fn(engine, node, ctx)
