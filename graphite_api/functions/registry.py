"""The render-function table: each function registered once with its parameter spec.

The same spec checks call arguments (a wrong type is a 400 naming the function and parameter) and
produces graphite-web's `/functions` JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# graphite-web parameter types (functions/params.py)
SERIES_LIST, SERIES_LISTS, STRING, INTEGER, FLOAT, BOOLEAN = "seriesList", "seriesLists", "string", "integer", "float", "boolean"
INTERVAL, INT_OR_INTERVAL, NODE, NODE_OR_TAG, TAG, ANY, AGG_FUNC, AGG_OR_SERIES_FUNC = (
    "interval", "intOrInterval", "node", "nodeOrTag", "tag", "any", "aggFunc", "aggOrSeriesFunc")
INT_OR_INF, DATE, SERIES = "intOrInf", "date", "series"


class FunctionError(ValueError):
    """Bad arguments to a render function: HTTP 400 naming the function and parameter."""


@dataclass
class Param:
    name: str
    type: str
    required: bool = False
    default: Any = None
    multiple: bool = False
    options: list | None = None
    suggestions: list | None = None

    def as_json(self) -> dict:
        out: dict = {"name": self.name, "type": self.type}
        if self.required:
            out["required"] = True
        if self.default is not None:
            out["default"] = self.default
        if self.multiple:
            out["multiple"] = True
        if self.options is not None:
            out["options"] = self.options
        if self.suggestions is not None:
            out["suggestions"] = self.suggestions
        return out


@dataclass
class FunctionSpec:
    name: str
    func: Callable
    params: list[Param]
    group: str
    description: str = ""
    module: str = ""
    aliases: tuple = ()
    raw_args: bool = False          # gets unevaluated AST args (seriesByTag, template helpers)
    extra: dict = field(default_factory=dict)
    python_signature: str | None = None   # graphite-web's Python arguments, where they differ from its params

    def signature(self) -> str:
        """graphite-web's `function` text: Python's formatargspec of the implementation's arguments."""
        if self.python_signature:
            return f"{self.name}({self.python_signature})"
        parts = []
        for p in self.params:
            if p.multiple:
                text = "*" + p.name
            elif p.default is not None:
                text = f"{p.name}={p.default!r}"
            elif not p.required:
                text = f"{p.name}=None"
            else:
                text = p.name
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"


REGISTRY: dict[str, FunctionSpec] = {}

# graphite-web 1.1.10 declares these parameters differently from its Python arguments, and /functions shows
# the Python ones in `function` (a default on a required parameter, a renamed *args).
PYTHON_SIGNATURES = {
    "aggregateWithWildcards": "seriesList, func, *positions",
    "powSeries": "*seriesLists",
    "round": "seriesList, precision=None",
    "timeShift": "seriesList, timeShift, resetEnd=True, alignDST=False",
    "highest": "seriesList, n=1, func='average'",
    "lowest": "seriesList, n=1, func='average'",
    "legendValue": "seriesList, *valueTypes",
    "stacked": "seriesLists, stackName='__DEFAULT__'",
}


def register(name: str, params: list[Param], group: str, aliases: tuple = (), raw_args: bool = False):
    def wrap(fn: Callable) -> Callable:
        spec = FunctionSpec(name=name, func=fn, params=params, group=group,
                            description=(fn.__doc__ or "").strip(), module=fn.__module__,
                            aliases=aliases, raw_args=raw_args, python_signature=PYTHON_SIGNATURES.get(name))
        REGISTRY[name] = spec
        for alias in aliases:
            REGISTRY[alias] = spec
        return fn
    return wrap


def _check_type(spec: FunctionSpec, param: Param, value):
    t = param.type
    where = f"{spec.name}: parameter '{param.name}'"
    if value is None:
        return value
    if t in (SERIES_LIST, SERIES, SERIES_LISTS):
        if not isinstance(value, list):
            raise FunctionError(f"{where} must be a series list, got {value!r}")
        # mapSeries' list of series lists is only an argument of reduceSeries (graphite-web fails with a 500)
        if t != SERIES_LISTS and value and any(isinstance(s, list) for s in value):
            raise FunctionError(f"{where} must be a series list, got a list of series lists (from mapSeries?)")
    elif t == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise FunctionError(f"{where} must be an integer, got {value!r}")
    elif t == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FunctionError(f"{where} must be a number, got {value!r}")
    elif t == BOOLEAN:
        if not isinstance(value, bool):
            raise FunctionError(f"{where} must be a boolean, got {value!r}")
    elif t in (STRING, INTERVAL, TAG, AGG_FUNC, DATE):
        if not isinstance(value, str):
            if t == DATE and isinstance(value, (int, float)):
                return value
            raise FunctionError(f"{where} must be a string, got {value!r}")
    elif t in (INT_OR_INTERVAL,):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            raise FunctionError(f"{where} must be an integer or an interval string, got {value!r}")
    elif t in (NODE_OR_TAG,):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            raise FunctionError(f"{where} must be a node number or a tag name, got {value!r}")
    elif t == NODE:
        if not isinstance(value, int) or isinstance(value, bool):
            raise FunctionError(f"{where} must be a node number, got {value!r}")
    if param.options is not None and not param.multiple and value not in param.options:
        raise FunctionError(f"{where} must be one of {param.options}, got {value!r}")
    return value


def bind(spec: FunctionSpec, args: list, kwargs: dict) -> tuple[list, dict]:
    """Check call arguments against the spec; returns positional and keyword values to call with."""
    params = spec.params
    out_args = []
    i = 0
    for p in params:
        if p.multiple:
            rest = args[i:]
            out_args.extend(_check_type(spec, p, v) for v in rest)
            if p.required and not rest and p.name not in kwargs:
                raise FunctionError(f"{spec.name}: missing required parameter '{p.name}'")
            i = len(args)
            break
        if i < len(args):
            out_args.append(_check_type(spec, p, args[i]))
            i += 1
        elif p.name in kwargs:
            break
        elif p.required:
            raise FunctionError(f"{spec.name}: missing required parameter '{p.name}'")
        else:
            break
    if i < len(args):
        raise FunctionError(f"{spec.name}: too many arguments ({len(args)} given)")
    names = {p.name: p for p in params}
    out_kwargs = {}
    for key, value in kwargs.items():
        if key not in names:
            raise FunctionError(f"{spec.name}: unknown parameter '{key}'")
        out_kwargs[key] = _check_type(spec, names[key], value)
    given = {p.name for p in params[:len(out_args)]} | set(out_kwargs)
    for p in params:
        if p.required and not p.multiple and p.name not in given:
            raise FunctionError(f"{spec.name}: missing required parameter '{p.name}'")
    return out_args, out_kwargs
