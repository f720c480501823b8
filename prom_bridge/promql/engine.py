"""PromQL evaluation (Prometheus 2.42 semantics) over numpy matrices.

A query is evaluated for all of its steps at once: an instant vector is a `[series x steps]` value matrix plus a
presence mask (NaN is a legitimate sample value, so absence cannot be encoded as NaN). A range vector is kept as
per-series raw samples plus the window end of every step; range functions reduce those windows with numpy.
An instant query is a range query of one step.

Public API: `Engine(querier_factory).instant(expr_or_text, time_ms)` / `.range(expr, start, end, step)` return
`Scalar`, `String`, `Vector` or `Matrix`; every failure is an `EvalError(kind, message)`.
"""
from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass, field

import numpy as np

from . import ast

STALE_BITS = 0x7ff0000000000002
NAME = "__name__"


# ---- public result types ------------------------------------------------------------------------------------
from storage.limits import LimitError


class EvalError(Exception):
    """kind is one of bad_data, execution, timeout, canceled (the API maps them to HTTP codes)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Scalar:
    ts: int
    value: float


@dataclass
class String:
    ts: int
    value: str


@dataclass
class Sample:
    labels: tuple
    ts: int
    value: float


@dataclass
class Vector:
    samples: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.samples)

    def __len__(self):
        return len(self.samples)


@dataclass
class SeriesResult:
    labels: tuple
    ts: np.ndarray
    values: np.ndarray


@dataclass
class Matrix:
    series: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.series)

    def __len__(self):
        return len(self.series)


# ---- internal values ----------------------------------------------------------------------------------------
class Sc:
    """A scalar per step."""
    __slots__ = ("values",)

    def __init__(self, values):
        self.values = values


class Str:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Vec:
    """An instant vector over all steps. `ts` (sample timestamps) only comes straight from a selector, for
    timestamp(); `order` (per-series sort key, per step) only from sort/topk, for instant-query output order."""
    __slots__ = ("labels", "values", "mask", "ts", "order")

    def __init__(self, labels, values, mask, ts=None, order=None):
        self.labels = labels
        self.values = values
        self.mask = mask
        self.ts = ts
        self.order = order


class Mat:
    """A range vector: per series (ts, values) without stale markers; step j sees [ends[j]-range, ends[j]]."""
    __slots__ = ("labels", "series", "ends", "range_ms", "node", "eval_ts")

    def __init__(self, labels, series, ends, range_ms, node=None, eval_ts=None):
        self.eval_ts = eval_ts if eval_ts is not None else ends
        self.labels = labels
        self.series = series
        self.ends = ends
        self.range_ms = range_ms
        self.node = node


class Ctx:
    __slots__ = ("querier", "T", "start", "end", "engine", "deadline", "samples")

    def __init__(self, querier, T, start, end, engine, deadline):
        self.querier = querier
        self.T = T
        self.start = start
        self.end = end
        self.engine = engine
        self.deadline = deadline
        self.samples = [0]

    def sub(self, T):
        c = Ctx(self.querier, T, self.start, self.end, self.engine, self.deadline)
        c.samples = self.samples
        return c

    @property
    def S(self):
        return len(self.T)


# ---- label helpers ------------------------------------------------------------------------------------------
def drop_name(labels: tuple) -> tuple:
    return tuple(p for p in labels if p[0] != NAME)


def labels_str(labels) -> str:
    """Prometheus' labels.String(): {a="b", c="d"}."""
    return "{" + ", ".join(f'{k}={_go_quote(v)}' for k, v in labels) + "}"


def _go_quote(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def is_stale(values: np.ndarray) -> np.ndarray:
    """Stale markers by bit pattern: an ordinary NaN is data."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64) == STALE_BITS


def make_vec(labels, values, mask, strict=False, order=None, ts=None) -> Vec:
    """Build a vector, merging rows with identical label sets. Two of them present at the same step (or, when
    `strict`, anywhere - Prometheus' check on range-function output) is the duplicate-labelset error."""
    keep = mask.any(axis=1) if mask.size else np.zeros(len(labels), bool)
    if not keep.all():
        idx = np.nonzero(keep)[0]
        labels = [labels[i] for i in idx]
        values, mask = values[idx], mask[idx]
        order = order[idx] if order is not None else None
        ts = ts[idx] if ts is not None else None
    if len(set(labels)) == len(labels):
        return Vec(list(labels), values, mask, ts, order)
    groups: dict = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    out_labels, rows_v, rows_m, rows_o = [], [], [], []
    for lab, rows in groups.items():
        if len(rows) == 1:
            r = rows[0]
            out_labels.append(lab)
            rows_v.append(values[r])
            rows_m.append(mask[r])
            rows_o.append(order[r] if order is not None else None)
            continue
        sub_m = mask[rows]
        if strict or (sub_m.sum(axis=0) > 1).any():
            raise EvalError("execution", "vector cannot contain metrics with the same labelset")
        v = np.zeros(values.shape[1])
        for r in rows:
            v = np.where(mask[r], values[r], v)
        out_labels.append(lab)
        rows_v.append(v)
        rows_m.append(sub_m.any(axis=0))
        if order is not None:
            o = np.zeros(values.shape[1])
            for r in rows:
                o = np.where(mask[r], order[r], o)
            rows_o.append(o)
    S = values.shape[1]
    return Vec(out_labels, np.array(rows_v).reshape(-1, S), np.array(rows_m, bool).reshape(-1, S), None,
               np.array(rows_o).reshape(-1, S) if order is not None else None)


def empty_vec(S: int) -> Vec:
    return Vec([], np.zeros((0, S)), np.zeros((0, S), bool))


def unwrap(node):
    while isinstance(node, ast.ParenExpr):
        node = node.expr
    return node


def value_type(node) -> str:
    """Static type of an expression (for the checks the engine cannot leave to the parser)."""
    node = unwrap(node)
    if isinstance(node, ast.NumberLiteral):
        return ast.SCALAR
    if isinstance(node, ast.StringLiteral):
        return ast.STRING
    if isinstance(node, (ast.MatrixSelector, ast.SubqueryExpr)):
        return ast.MATRIX
    if isinstance(node, ast.UnaryExpr):
        return value_type(node.expr)
    if isinstance(node, ast.BinaryExpr):
        if value_type(node.lhs) == ast.SCALAR and value_type(node.rhs) == ast.SCALAR:
            return ast.SCALAR
        return ast.VECTOR
    if isinstance(node, ast.Call):
        from .functions import RETURN_TYPES
        return RETURN_TYPES.get(node.func, ast.VECTOR)
    return ast.VECTOR


# ---- the engine ---------------------------------------------------------------------------------------------
class Engine:
    def __init__(self, querier_factory, lookback_ms: int = 300_000, max_samples: int = 50_000_000,
                 default_subquery_step_ms: int = 60_000, timeout_s: float | None = None):
        """querier_factory() returns an object with `select(matchers, start_ms, end_ms)` (storage.querier)."""
        self.querier_factory = querier_factory
        self.lookback_ms = int(lookback_ms)
        self.max_samples = int(max_samples)
        self.default_subquery_step_ms = int(default_subquery_step_ms)
        self.timeout_s = timeout_s
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Make running and future evaluations of this engine fail with kind "canceled"."""
        self._cancel.set()

    # -- entry points --
    def _parse(self, expr):
        if isinstance(expr, str):
            try:
                from .parser import ParseError, parse_expr
            except ImportError as exc:  # the parser module is missing: a deployment bug, not bad input
                raise EvalError("execution", f"PromQL parser unavailable: {exc}") from None
            try:
                return parse_expr(expr)
            except ParseError as exc:
                raise EvalError("bad_data", str(exc)) from None
        return expr

    def _querier(self, querier):
        return querier if querier is not None else self.querier_factory()

    def instant(self, expr, time_ms: int, querier=None):
        node = self._parse(expr)
        time_ms = int(time_ms)
        ctx = self._ctx(querier, np.array([time_ms], np.int64), time_ms, time_ms)
        val = self._run(node, ctx)
        if isinstance(val, Sc):
            return Scalar(time_ms, float(val.values[0]))
        if isinstance(val, Str):
            return String(time_ms, val.value)
        if isinstance(val, Mat):
            out = []
            for lab, (ts, vs) in zip(val.labels, val.series):
                lo = np.searchsorted(ts, val.ends[0] - val.range_ms, "left")
                hi = np.searchsorted(ts, val.ends[0], "right")
                if hi > lo:
                    out.append(SeriesResult(lab, ts[lo:hi].copy(), vs[lo:hi].copy()))
            return Matrix(out)
        rows = np.nonzero(val.mask[:, 0])[0]
        if val.order is not None and len(rows):
            rows = rows[np.argsort(val.order[rows, 0], kind="stable")]
        return Vector([Sample(val.labels[i], time_ms, float(val.values[i, 0])) for i in rows.tolist()])

    def range(self, expr, start_ms: int, end_ms: int, step_ms: int, querier=None):
        node = self._parse(expr)
        start_ms, end_ms, step_ms = int(start_ms), int(end_ms), int(step_ms)
        if step_ms <= 0:
            raise EvalError("bad_data", "zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise EvalError("bad_data", "end timestamp must not be before start time")
        vt = value_type(node)
        if vt not in (ast.SCALAR, ast.VECTOR):
            kind = "range vector" if vt == ast.MATRIX else vt
            raise EvalError("bad_data", f'invalid expression type "{kind}" for range query, '
                                        "must be Scalar or instant Vector")
        T = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        ctx = self._ctx(querier, T, start_ms, end_ms)
        val = self._run(node, ctx)
        if isinstance(val, Sc):
            return Matrix([SeriesResult((), T.copy(), val.values.astype(np.float64))])
        if not isinstance(val, Vec):
            raise EvalError("bad_data", "invalid expression type for range query, must be Scalar or instant Vector")
        out = []
        for i in sorted(range(len(val.labels)), key=lambda i: val.labels[i]):
            m = val.mask[i]
            if m.any():
                out.append(SeriesResult(val.labels[i], T[m], val.values[i][m]))
        return Matrix(out)

    def _ctx(self, querier, T, start, end):
        deadline = _time.monotonic() + self.timeout_s if self.timeout_s else None
        return Ctx(self._querier(querier), T, start, end, self, deadline)

    def _run(self, node, ctx):
        try:
            with np.errstate(all="ignore"):
                return self.eval(node, ctx)
        except EvalError:
            raise
        except RecursionError:
            raise EvalError("bad_data", "expression too deeply nested") from None

    # -- evaluation --
    def check_deadline(self, ctx):
        if self._cancel.is_set():
            raise EvalError("canceled", "query was canceled in expression evaluation")
        if ctx.deadline is not None and _time.monotonic() > ctx.deadline:
            raise EvalError("timeout", "query timed out in expression evaluation")

    def eval(self, node, ctx):
        self.check_deadline(ctx)
        if isinstance(node, ast.NumberLiteral):
            return Sc(np.full(ctx.S, float(node.value)))
        if isinstance(node, ast.StringLiteral):
            return Str(node.value)
        if isinstance(node, ast.ParenExpr):
            return self.eval(node.expr, ctx)
        if isinstance(node, ast.VectorSelector):
            return self.select_vector(node, ctx)
        if isinstance(node, ast.MatrixSelector):
            return self.select_matrix(node, ctx)
        if isinstance(node, ast.SubqueryExpr):
            return self.subquery(node, ctx)
        if isinstance(node, ast.UnaryExpr):
            val = self.eval(node.expr, ctx)
            if node.op == "+":
                return val
            if isinstance(val, Sc):
                return Sc(-val.values)
            if isinstance(val, Vec):
                return make_vec([drop_name(lab) for lab in val.labels], -val.values, val.mask)
            raise EvalError("bad_data", "unary expression only allowed on expressions of type scalar or instant vector")
        if isinstance(node, ast.Call):
            from .functions import call
            return call(self, node, ctx)
        if isinstance(node, ast.AggregateExpr):
            from .aggregations import aggregate
            return aggregate(self, node, ctx)
        if isinstance(node, ast.BinaryExpr):
            from .binops import binary
            return binary(self, node, ctx)
        raise EvalError("bad_data", f"unexpected expression node {type(node).__name__}")

    def expect_vec(self, node, ctx) -> Vec:
        val = self.eval(node, ctx)
        if not isinstance(val, Vec):
            raise EvalError("bad_data", f"expected instant vector, got {_type_name(val)}")
        return val

    def expect_scalar(self, node, ctx) -> np.ndarray:
        val = self.eval(node, ctx)
        if not isinstance(val, Sc):
            raise EvalError("bad_data", f"expected scalar, got {_type_name(val)}")
        return val.values

    def expect_mat(self, node, ctx) -> Mat:
        val = self.eval(node, ctx)
        if not isinstance(val, Mat):
            raise EvalError("bad_data", f"expected range vector, got {_type_name(val)}")
        return val

    def eval_times(self, ctx, at_ms, at_modifier, offset_ms, drift=False) -> np.ndarray:
        """Per-step evaluation time of a selector. `drift` reproduces 2.42 for a `@` range selector inside a
        function that is unsafe for `@` (predict_linear): `@` is turned into an offset from the query start,
        so over a range query the window moves with the step."""
        if drift and (at_modifier or at_ms is not None):
            pinned = self.eval_times(ctx, at_ms, at_modifier, 0)
            return pinned + (ctx.T - ctx.start) - int(offset_ms or 0)
        if at_modifier == "start":
            base = np.full(ctx.S, ctx.start, np.int64)
        elif at_modifier == "end":
            base = np.full(ctx.S, ctx.end, np.int64)
        elif at_ms is not None:
            base = np.full(ctx.S, int(at_ms), np.int64)
        else:
            base = ctx.T
        return base - int(offset_ms or 0)

    def _select(self, ctx, matchers, start, end):
        try:
            series = ctx.querier.select(list(matchers), int(start), int(end))
        except EvalError:
            raise
        except LimitError as exc:
            raise EvalError("execution", str(exc)) from None
        except ValueError as exc:
            raise EvalError("bad_data", str(exc)) from None
        series.sort(key=lambda s: _sort_key(s.labels))
        self._count(ctx, sum(len(s.ts) for s in series))
        return series

    def _count(self, ctx, n: int) -> None:
        """A cumulative sample budget per query (Prometheus' max-samples guard, counted more simply)."""
        ctx.samples[0] += n
        if ctx.samples[0] > self.max_samples:
            raise EvalError("execution", "query processing would load too many samples into memory in query execution")

    def select_vector(self, node: ast.VectorSelector, ctx) -> Vec:
        eff = self.eval_times(ctx, node.at_ms, node.at_modifier, node.offset_ms)
        S = ctx.S
        series = self._select(ctx, node.matchers, eff.min() - self.lookback_ms, eff.max())
        labels, vals, masks, tss = [], [], [], []
        for s in series:
            ts = np.asarray(s.ts, np.int64)
            vs = np.asarray(s.values, np.float64)
            idx = np.searchsorted(ts, eff, "right") - 1
            ok = idx >= 0
            idx = np.maximum(idx, 0)
            sts = ts[idx]
            v = vs[idx]
            ok &= sts >= eff - self.lookback_ms
            ok &= ~is_stale(v)
            if ok.any():
                labels.append(tuple(s.labels))
                vals.append(v)
                masks.append(ok)
                tss.append(sts)
        if not labels:
            return empty_vec(S)
        masks = np.array(masks)
        self._count(ctx, int(masks.sum()))   # the selector's points are held in memory too
        return Vec(labels, np.array(vals), masks, np.array(tss))

    def select_matrix(self, node: ast.MatrixSelector, ctx, drift=False) -> Mat:
        vs = node.vector
        eff = self.eval_times(ctx, vs.at_ms, vs.at_modifier, vs.offset_ms, drift)
        # storage is read for the pinned window only, even when the per-step windows drift (2.42 does the same)
        pinned = self.eval_times(ctx, vs.at_ms, vs.at_modifier, vs.offset_ms) if drift else eff
        series = self._select(ctx, vs.matchers, pinned.min() - node.range_ms, pinned.max())
        labels, data = [], []
        for s in series:
            ts = np.asarray(s.ts, np.int64)
            v = np.asarray(s.values, np.float64)
            st = is_stale(v)
            if st.any():
                ts, v = ts[~st], v[~st]
            if len(ts):
                labels.append(tuple(s.labels))
                data.append((ts, v))
        return Mat(labels, data, eff, int(node.range_ms), node, ctx.T)

    def subquery(self, node: ast.SubqueryExpr, ctx) -> Mat:
        eff = self.eval_times(ctx, node.at_ms, node.at_modifier, node.offset_ms)
        step = int(node.step_ms) or self.default_subquery_step_ms
        lo = int(eff.min()) - int(node.range_ms)
        first = -((-lo) // step) * step          # first absolute multiple of the step >= lo
        T = np.arange(first, int(eff.max()) + 1, step, dtype=np.int64)
        labels, data = [], []
        if len(T):
            inner = self.eval(node.expr, ctx.sub(T))
            if isinstance(inner, Sc):
                labels, data = [()], [(T, inner.values.astype(np.float64))]
            elif isinstance(inner, Vec):
                for lab, v, m in zip(inner.labels, inner.values, inner.mask):
                    if m.any():
                        labels.append(lab)
                        data.append((T[m], v[m]))
            else:
                raise EvalError("bad_data", "subquery is only allowed on instant vector or scalar expressions")
        return Mat(labels, data, eff, int(node.range_ms), node, ctx.T)


def _sort_key(labels):
    return tuple(labels)


def _type_name(val) -> str:
    return {Sc: "scalar", Str: "string", Vec: "instant vector", Mat: "range vector"}.get(type(val), "unknown")
