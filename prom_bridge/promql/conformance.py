"""Runs Prometheus' own PromQL test scripts (the `.test` format of v2.42 `promql/test.go`) against plumbago.

Commands: `load <step>` + indented series descriptions (`metric{l="v"} 1+2x10 _ stale ...`), `clear`, and
`eval[_fail|_ordered] instant at <time> <expr>` followed by the expected `<labels> <value>` lines (or a bare
number for a scalar). Data goes through the real storage engine (a fresh `Storage` in a temp dir per `clear`,
tenant "test", via `write_labels`) and queries through the real engine. Comparison follows test.go: relative
epsilon 1e-6, NaN equals NaN, label sets exact, order only for eval_ordered; every non-ordered eval is also
re-run as a range query [t-1m, t+1m] step 1m whose middle step must match.

Usage: python -m prom_bridge.promql.conformance [dir-or-file ...]
"""
from __future__ import annotations

import math
import os
import re
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

DEFAULT_DIR = os.environ.get("PLUMBAGO_PROMQL_CONFORMANCE", "/work/shared/conformance/promql-v2.42")
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7ff0000000000002))[0]
MIN_NORMAL = struct.unpack("<d", struct.pack("<Q", 0x0010000000000000))[0]
EPSILON = 1e-6

_EVAL_RE = re.compile(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_LOAD_RE = re.compile(r"^load\s+(.+?)$")
_DUR_RE = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_DUR_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
           "y": 31_536_000_000}


class ScriptError(ValueError):
    pass


def parse_duration(text: str) -> int:
    """Prometheus model.ParseDuration (`1h30m`, `50m`, `0s`) -> ms."""
    text = text.strip()
    if text == "0":
        return 0
    pos, total = 0, 0
    for m in _DUR_RE.finditer(text):
        if m.start() != pos:
            raise ScriptError(f"invalid duration {text!r}")
        total += int(m.group(1)) * _DUR_MS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ScriptError(f"invalid duration {text!r}")
    return total


# ---- series descriptions ------------------------------------------------------------------------------------
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LNAME_RE = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*")


def _read_string(s: str, i: int):
    q = s[i]
    if q not in "\"'`":
        raise ScriptError(f"expected a quoted string at {s[i:]!r}")
    j = i + 1
    out = []
    while j < len(s):
        c = s[j]
        if c == q:
            return "".join(out), j + 1
        if c == "\\" and q != "`":
            j += 1
            esc = s[j]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(esc, "\\" + esc))
        else:
            out.append(c)
        j += 1
    raise ScriptError(f"unterminated string in {s!r}")


def parse_series_desc(line: str):
    """`metric{a="b"} 1+2x3 _ stale` -> (labels tuple incl. __name__, rest-of-line)."""
    s = line.strip()
    labels = {}
    i = 0
    m = _NAME_RE.match(s)
    if m:
        labels["__name__"] = m.group(0)
        i = m.end()
    if i < len(s) and s[i] == "{":
        i += 1
        while True:
            while i < len(s) and s[i] in " \t,":
                i += 1
            if i < len(s) and s[i] == "}":
                i += 1
                break
            lm = _LNAME_RE.match(s, i)
            if not lm:
                raise ScriptError(f"bad label set in {line!r}")
            value, i = _read_string(s, lm.end())
            labels[lm.group(1)] = value
    elif not m:
        raise ScriptError(f"bad series description {line!r}")
    labels = {k: v for k, v in labels.items() if v != ""}
    return tuple(sorted(labels.items())), s[i:].strip()


def _parse_number(tok: str) -> float:
    t = tok.strip()
    low = t.lower().lstrip("+-")
    if low in ("inf", "infinity"):
        return -math.inf if t.startswith("-") else math.inf
    if low == "nan":
        return math.nan
    try:
        return float(int(t, 0))
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise ScriptError(f"bad number {tok!r}") from None


def _split_offset(body: str):
    """`-2+1.5` -> ('-2', '+1.5'); a sign right after an exponent `e` belongs to the number."""
    for i in range(1, len(body)):
        if body[i] in "+-" and body[i - 1] not in "eE":
            return body[:i], body[i:]
    return body, None


def parse_values(text: str) -> list:
    """Expanding notation -> list of floats, None for omitted points."""
    out = []
    for tok in text.split():
        if tok == "_":
            out.append(None)
            continue
        if tok == "stale":
            out.append(STALE_NAN)
            continue
        m = re.match(r"^(.*)x(\d+)$", tok)
        if m and m.group(1) != "":
            body, times = m.group(1), int(m.group(2))
            if body == "_":
                out.extend([None] * times)
                continue
            start, off = _split_offset(body)
            cur = _parse_number(start)
            if off is None:
                out.extend([cur] * (times + 1))
                continue
            step = _parse_number(off)
            out.append(cur)
            for _ in range(times):
                cur += step            # repeated addition, as the Go parser accumulates
                out.append(cur)
            continue
        out.append(_parse_number(tok))
    return out


# ---- script model -------------------------------------------------------------------------------------------
@dataclass
class Load:
    step_ms: int
    series: list            # [(labels, [values])]


@dataclass
class Clear:
    pass


@dataclass
class Eval:
    line: int
    expr: str
    at_ms: int
    fail: bool = False
    ordered: bool = False
    scalar: float | None = None
    expected: list = field(default_factory=list)     # [(labels, value)] in order


@dataclass
class EvalResult:
    file: str
    line: int
    expr: str
    passed: bool
    message: str = ""

    @property
    def key(self) -> str:
        return f"{self.file}:{self.line}"


def parse_script(text: str) -> list:
    lines = [("" if l.strip().startswith("#") else l.strip()) for l in text.split("\n")]
    cmds = []
    i = 0
    while i < len(lines):
        l = lines[i]
        if not l:
            i += 1
            continue
        word = l.split(None, 1)[0].lower()
        if word == "clear":
            cmds.append(Clear())
            i += 1
        elif word == "load":
            m = _LOAD_RE.match(l)
            if not m:
                raise ScriptError(f"line {i + 1}: invalid load command")
            load = Load(parse_duration(m.group(1)), [])
            i += 1
            while i < len(lines) and lines[i]:
                labels, rest = parse_series_desc(lines[i])
                load.series.append((labels, parse_values(rest)))
                i += 1
            cmds.append(load)
        elif word.startswith("eval"):
            m = _EVAL_RE.match(l)
            if not m:
                raise ScriptError(f"line {i + 1}: invalid eval command {l!r}")
            ev = Eval(line=i + 1, expr=m.group(3), at_ms=parse_duration(m.group(2) or "0s"),
                      fail=m.group(1) == "fail", ordered=m.group(1) == "ordered")
            i += 1
            while i < len(lines) and lines[i]:
                d = lines[i]
                i += 1
                try:
                    ev.scalar = _parse_number(d)
                    break
                except ScriptError:
                    pass
                labels, rest = parse_series_desc(d)
                vals = parse_values(rest)
                if len(vals) != 1:
                    raise ScriptError(f"line {i}: expecting exactly one value in instant evaluation")
                ev.expected.append((labels, vals[0]))
            cmds.append(ev)
        else:
            raise ScriptError(f"line {i + 1}: invalid command {l!r}")
    return cmds


# ---- comparison ---------------------------------------------------------------------------------------------
def almost_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < MIN_NORMAL:
        return diff < EPSILON * MIN_NORMAL
    return diff / (abs(a) + abs(b)) < EPSILON


def compare(ev: Eval, result) -> str | None:
    """None when the result matches; otherwise what differs."""
    from .engine import Matrix, Scalar, Vector
    if isinstance(result, Matrix):
        return "received range result on instant evaluation"
    if isinstance(result, Scalar):
        if ev.scalar is None:
            return f"expected a vector, got scalar {result.value}"
        if not almost_equal(ev.scalar, result.value):
            return f"expected scalar {ev.scalar} but got {result.value}"
        return None
    if not isinstance(result, Vector):
        return f"unexpected result type {type(result).__name__}"
    expected = {labels: (pos, val) for pos, (labels, val) in enumerate(ev.expected)}
    seen = set()
    for pos, s in enumerate(result.samples):
        lab = tuple(s.labels)
        if lab not in expected:
            return f"unexpected metric {_fmt(lab)} in result (value {s.value})"
        epos, val = expected[lab]
        if ev.ordered and epos != pos:
            return f"expected metric {_fmt(lab)} at position {epos + 1} but was at {pos + 1}"
        if not almost_equal(val, s.value):
            return f"expected {val} for {_fmt(lab)} but got {s.value}"
        seen.add(lab)
    for lab in expected:
        if lab not in seen:
            return f"expected metric {_fmt(lab)} not found (got {len(result.samples)} samples)"
    return None


def _fmt(labels) -> str:
    from .engine import labels_str
    return labels_str(labels)


# ---- running ------------------------------------------------------------------------------------------------
class _Env:
    """A fresh storage + engine; `clear` makes a new one."""

    def __init__(self):
        from storage.engine import EngineOptions, Storage
        from storage.querier import Querier

        from .engine import Engine
        self.dir = tempfile.mkdtemp(prefix="promql-conf-")
        self.storage = Storage(self.dir, options=EngineOptions(wal_fsync=False))
        self.engine = Engine(lambda: Querier(self.storage, "test"), lookback_ms=300_000,
                             default_subquery_step_ms=60_000)

    def load(self, cmd: Load):
        label_sets, ts, vals = [], [], []
        defs = {}
        for labels, values in cmd.series:
            defs[labels] = values          # a series defined twice in one load: the last definition wins
        for labels, values in defs.items():
            for k, v in enumerate(values):
                if v is None:
                    continue
                label_sets.append(labels)
                ts.append(k * cmd.step_ms)
                vals.append(v)
        if label_sets:
            arr = np.array(vals, dtype=np.float64)
            self.storage.write_labels("test", label_sets, np.array(ts, np.int64), arr)

    def close(self):
        try:
            self.storage.wal.close()
            self.storage.db.dispose()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_eval(engine, ev: Eval) -> str | None:
    from .engine import EvalError, Scalar
    try:
        res = engine.instant(ev.expr, ev.at_ms)
    except EvalError as exc:
        return None if ev.fail else f"error: [{exc.kind}] {exc.message}"
    except Exception as exc:   # an engine bug: report it as a failure of this eval, keep running the rest
        return f"crash: {type(exc).__name__}: {exc}"
    if ev.fail:
        return "expected an error but got none"
    err = compare(ev, res)
    if err:
        return err
    try:
        rng = engine.range(ev.expr, ev.at_ms - 60_000, ev.at_ms + 60_000, 60_000)
    except EvalError as exc:
        return f"range mode error: [{exc.kind}] {exc.message}"
    except Exception as exc:
        return f"range mode crash: {type(exc).__name__}: {exc}"
    if ev.ordered:
        return None
    from .engine import Sample, Vector
    vec = []
    for s in rng.series:
        hit = np.nonzero(s.ts == ev.at_ms)[0]
        if len(hit):
            vec.append(Sample(s.labels, ev.at_ms, float(s.values[hit[0]])))
    if isinstance(res, Scalar):
        if not vec:
            return "range mode: no scalar value at the middle step"
        err = compare(ev, Scalar(ev.at_ms, vec[0].value))
    else:
        err = compare(ev, Vector(vec))
    return f"range mode: {err}" if err else None


def run_script(text: str, name: str = "<script>") -> list[EvalResult]:
    cmds = parse_script(text)
    results = []
    env = _Env()
    try:
        for cmd in cmds:
            if isinstance(cmd, Clear):
                env.close()
                env = _Env()
            elif isinstance(cmd, Load):
                env.load(cmd)
            else:
                err = run_eval(env.engine, cmd)
                results.append(EvalResult(name, cmd.line, cmd.expr, err is None, err or ""))
    finally:
        env.close()
    return results


def test_files(path: str = DEFAULT_DIR) -> list[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".test"))


def run_file(path: str) -> list[EvalResult]:
    with open(path, encoding="utf-8") as fh:
        return run_script(fh.read(), os.path.basename(path))


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:]) or [DEFAULT_DIR]
    total = passed = 0
    for p in paths:
        for f in test_files(p):
            res = run_file(f)
            ok = sum(r.passed for r in res)
            total += len(res)
            passed += ok
            print(f"{os.path.basename(f)}: {ok}/{len(res)}")
            for r in res:
                if not r.passed:
                    print(f"  FAIL {r.key} {r.expr}\n       {r.message}")
    print(f"total: {passed}/{total}")
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
