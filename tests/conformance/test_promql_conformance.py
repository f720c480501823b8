"""Prometheus 2.42's own PromQL test scripts (`promql/testdata/*.test`, 566 evals) run through plumbago's storage
and engine by `prom_bridge.promql.conformance`. One pytest case per eval, plus a summary that pins the count."""
from __future__ import annotations

import os

import pytest

from prom_bridge.promql import conformance

DIR = conformance.DEFAULT_DIR
TOTAL_EVALS = 566

# "file:line" -> reason. Every entry must really fail; the goal is an empty set.
EXPECTED_FAILURES: dict[str, str] = {}

pytestmark = pytest.mark.skipif(not os.path.isdir(DIR), reason=f"conformance data not found at {DIR}")

_cache: dict[str, dict] = {}


def _results(fname: str) -> dict:
    if fname not in _cache:
        _cache[fname] = {r.key: r for r in conformance.run_file(os.path.join(DIR, fname))}
    return _cache[fname]


def _cases():
    if not os.path.isdir(DIR):
        return []
    out = []
    for path in conformance.test_files(DIR):
        fname = os.path.basename(path)
        with open(path, encoding="utf-8") as fh:
            for cmd in conformance.parse_script(fh.read()):
                if isinstance(cmd, conformance.Eval):
                    out.append(pytest.param(fname, f"{fname}:{cmd.line}", id=f"{fname}:{cmd.line}"))
    return out


@pytest.mark.parametrize("fname,key", _cases())
def test_eval(fname, key):
    res = _results(fname)[key]
    if key in EXPECTED_FAILURES:
        assert not res.passed, f"{key} now passes: remove it from EXPECTED_FAILURES"
        pytest.xfail(EXPECTED_FAILURES[key])
    assert res.passed, f"{key} {res.expr}: {res.message}"


def test_summary_pass_count():
    results = [r for path in conformance.test_files(DIR) for r in _results(os.path.basename(path)).values()]
    passed = sum(r.passed for r in results)
    print(f"\nPromQL conformance (Prometheus v2.42 testdata): {passed}/{len(results)} evals pass")
    assert len(results) == TOTAL_EVALS
    assert passed == TOTAL_EVALS - len(EXPECTED_FAILURES)
    assert {r.key for r in results if not r.passed} == set(EXPECTED_FAILURES)


def test_harness_detects_wrong_answers():
    """The comparison is not vacuous: a wrong value, a missing series and a missing error all fail."""
    script = """
load 1m
  m{a="1"} 1+1x5
  m{a="2"} 10 stale

eval instant at 2m m
  m{a="1"} 3

eval instant at 2m m
  m{a="1"} 4

eval instant at 30s m
  m{a="1"} 1

eval_fail instant at 0m m

eval instant at 0m sum(m)
  11

eval instant at 0m 1 + 1
  2
"""
    res = conformance.run_script(script)
    assert [r.passed for r in res] == [True, False, False, False, False, True]


def test_series_notation():
    vals = conformance.parse_values("1+2x3 _x2 -1-1x1 5x2 stale")
    assert vals[:4] == [1, 3, 5, 7] and vals[4:6] == [None, None] and vals[6:8] == [-1, -2]
    assert vals[8:11] == [5, 5, 5]
    assert conformance.parse_duration("1h30m") == 5_400_000
