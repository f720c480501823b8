"""The PromQL function table of Prometheus 2.42 (`promql/parser/functions.go`).

One table serves the parser (name, argument count and types) and the engine (return type), so the two can
never disagree. `variadic` follows Prometheus: 0 = exactly the listed arguments; n > 0 = the last listed
argument is optional and at most len(arg_types) - 1 + n arguments are allowed (n == 1: "optional");
-1 = the last argument is optional and may repeat without limit (label_join).
"""
from __future__ import annotations

from typing import NamedTuple

from prom_bridge.promql.ast import MATRIX, SCALAR, STRING, VECTOR


class FunctionSpec(NamedTuple):
    arg_types: tuple
    variadic: int
    return_type: str


def _f(args, ret=VECTOR, variadic=0):
    return FunctionSpec(tuple(args), variadic, ret)


_V, _M, _S, _STR = VECTOR, MATRIX, SCALAR, STRING

FUNCTIONS: dict[str, FunctionSpec] = {
    "abs": _f([_V]),
    "absent": _f([_V]),
    "absent_over_time": _f([_M]),
    "acos": _f([_V]),
    "acosh": _f([_V]),
    "asin": _f([_V]),
    "asinh": _f([_V]),
    "atan": _f([_V]),
    "atanh": _f([_V]),
    "avg_over_time": _f([_M]),
    "ceil": _f([_V]),
    "changes": _f([_M]),
    "clamp": _f([_V, _S, _S]),
    "clamp_max": _f([_V, _S]),
    "clamp_min": _f([_V, _S]),
    "cos": _f([_V]),
    "cosh": _f([_V]),
    "count_over_time": _f([_M]),
    "days_in_month": _f([_V], variadic=1),
    "day_of_month": _f([_V], variadic=1),
    "day_of_week": _f([_V], variadic=1),
    "day_of_year": _f([_V], variadic=1),
    "deg": _f([_V]),
    "delta": _f([_M]),
    "deriv": _f([_M]),
    "exp": _f([_V]),
    "floor": _f([_V]),
    "histogram_count": _f([_V]),
    "histogram_sum": _f([_V]),
    "histogram_fraction": _f([_S, _S, _V]),
    "histogram_quantile": _f([_S, _V]),
    "holt_winters": _f([_M, _S, _S]),
    "hour": _f([_V], variadic=1),
    "idelta": _f([_M]),
    "increase": _f([_M]),
    "irate": _f([_M]),
    "label_replace": _f([_V, _STR, _STR, _STR, _STR]),
    "label_join": _f([_V, _STR, _STR, _STR], variadic=-1),
    "last_over_time": _f([_M]),
    "ln": _f([_V]),
    "log10": _f([_V]),
    "log2": _f([_V]),
    "max_over_time": _f([_M]),
    "min_over_time": _f([_M]),
    "minute": _f([_V], variadic=1),
    "month": _f([_V], variadic=1),
    "pi": _f([], ret=_S),
    "predict_linear": _f([_M, _S]),
    "present_over_time": _f([_M]),
    "quantile_over_time": _f([_S, _M]),
    "rad": _f([_V]),
    "rate": _f([_M]),
    "resets": _f([_M]),
    "round": _f([_V, _S], variadic=1),
    "scalar": _f([_V], ret=_S),
    "sgn": _f([_V]),
    "sin": _f([_V]),
    "sinh": _f([_V]),
    "sort": _f([_V]),
    "sort_desc": _f([_V]),
    "sqrt": _f([_V]),
    "stddev_over_time": _f([_M]),
    "stdvar_over_time": _f([_M]),
    "sum_over_time": _f([_M]),
    "tan": _f([_V]),
    "tanh": _f([_V]),
    "time": _f([], ret=_S),
    "timestamp": _f([_V]),
    "vector": _f([_S]),
    "year": _f([_V], variadic=1),
}


def arg_bounds(name: str) -> tuple[int, int | None]:
    """(minimum, maximum or None for unlimited) number of arguments of a function."""
    spec = FUNCTIONS[name]
    n = len(spec.arg_types)
    if spec.variadic == 0:
        return n, n
    if spec.variadic < 0:
        return n - 1, None
    return n - 1, n - 1 + spec.variadic
