"""Combine family, grouping half: *WithWildcards, groupByNode(s), groupByTags, mapSeries/reduceSeries, applyByNode.

Each groups series by a key (graphite-web 1.1.10 semantics: groups in first-seen order) and combines every group
with an aggregation (combine.aggregate_series, one 2-D numpy reduction per group) or a named render function.
"""
from __future__ import annotations

from ..series import Series
from ..target import grammar as g
from .combine import AGG_FUNCS, aggregate_series, agg_func_param, agg_or_series_func_options
from .common import agg_key
from .registry import (NODE, NODE_OR_TAG, SERIES_LIST, SERIES_LISTS, STRING, TAG, AGG_OR_SERIES_FUNC,
                       FunctionError, Param, bind, register)

GROUP = "Combine"

# graphite-web looks a callback up among the render functions first; of the aggregation names only "sum" and
# "avg" are also function names there. The rest always mean aggregate(), whatever else gets registered.
_AGG_ONLY = frozenset(AGG_FUNCS) - {"sum", "avg"}


def _group_by(series_list, key_of) -> tuple[list[str], dict[str, list[Series]]]:
    keys: list[str] = []
    groups: dict[str, list[Series]] = {}
    for s in series_list:
        key = key_of(s)
        if key not in groups:
            groups[key] = []
            keys.append(key)
        groups[key].append(s)
    return keys, groups


def _call_function(ctx, name: str, args: list):
    """Call a render function by name as graphite-web's SeriesFunctions[name](requestContext, *args) does."""
    from .registry import REGISTRY
    spec = REGISTRY.get(name)
    if spec is None:
        raise FunctionError(f"Received request for unknown function: {name}")
    if spec.raw_args:
        raise FunctionError(f"{name} cannot be used as a callback")
    args, kwargs = bind(spec, list(args), {})
    return spec.func(ctx, *args, **kwargs)


def _apply_callback(ctx, callback: str, group: list[Series]) -> Series:
    from .registry import REGISTRY
    if callback in REGISTRY and callback not in _AGG_ONLY:
        result = _call_function(ctx, callback, [group])
    else:
        result = aggregate_series(ctx, group, callback)
    if not result or not isinstance(result[0], Series):
        raise FunctionError(f"callback {callback} returned no series")   # graphite-web: IndexError
    return result[0]


# --- *WithWildcards ---------------------------------------------------------------------------------------------

def aggregate_with_wildcards(ctx, series_list, func, positions) -> list[Series]:
    drop = set(positions)

    def key_of(s: Series) -> str:
        return ".".join(part for i, part in enumerate(s.name.split(".")) if i not in drop)

    keys, groups = _group_by(series_list, key_of)
    out = []
    for key in keys:
        result = aggregate_series(ctx, groups[key], func)[0]
        result.name = key
        out.append(result)
    return out


@register("aggregateWithWildcards", [Param("seriesList", SERIES_LIST, required=True), agg_func_param(),
                                     Param("position", NODE, multiple=True)], group=GROUP)
def aggregate_with_wildcards_fn(ctx, seriesList, func, *position):
    """Groups series by their name with the given node positions removed and aggregates each group."""
    return aggregate_with_wildcards(ctx, seriesList, func, position)


def _wildcards(func: str, name: str, doc: str):
    def fn(ctx, seriesList, *position):
        return aggregate_with_wildcards(ctx, seriesList, func, position)
    fn.__name__ = name
    fn.__doc__ = doc
    register(name, [Param("seriesList", SERIES_LIST, required=True), Param("position", NODE, multiple=True)],
             group=GROUP)(fn)
    return fn


sum_series_with_wildcards = _wildcards(
    "sum", "sumSeriesWithWildcards", "sumSeries over each group of series that agree outside the given nodes.")
average_series_with_wildcards = _wildcards(
    "average", "averageSeriesWithWildcards",
    "averageSeries over each group of series that agree outside the given nodes.")
multiply_series_with_wildcards = _wildcards(
    "multiply", "multiplySeriesWithWildcards",
    "multiplySeries over each group of series that agree outside the given nodes.")


# --- groupBy* ---------------------------------------------------------------------------------------------------

def group_by_nodes(ctx, series_list, callback, nodes) -> list[Series]:
    keys, groups = _group_by(series_list, lambda s: agg_key(s, nodes))
    out = []
    for key in keys:
        result = _apply_callback(ctx, callback, groups[key])
        result.name = key                      # only the name: tags and pathExpression stay the callback's
        out.append(result)
    return out


@register("groupByNode", [Param("seriesList", SERIES_LIST, required=True),
                          Param("nodeNum", NODE_OR_TAG, required=True),
                          Param("callback", AGG_OR_SERIES_FUNC, default="average",
                                options=agg_or_series_func_options())], group=GROUP)
def group_by_node(ctx, seriesList, nodeNum, callback="average"):
    """Groups series by one node (or tag) and combines each group with the callback (an aggregation name or a
    render function such as sumSeries); the results are named by the node."""
    return group_by_nodes(ctx, seriesList, callback, [nodeNum])


@register("groupByNodes", [Param("seriesList", SERIES_LIST, required=True),
                           Param("callback", AGG_OR_SERIES_FUNC, required=True,
                                 options=agg_or_series_func_options()),
                           Param("nodes", NODE_OR_TAG, multiple=True)], group=GROUP)
def group_by_nodes_fn(ctx, seriesList, callback, *nodes):
    """Groups series by several nodes (or tags) and combines each group with the callback; the results are named by
    the nodes joined with '.'."""
    return group_by_nodes(ctx, seriesList, callback, nodes)


def parse_tagged_name(path: str) -> dict:
    """graphite-web TaggedSeries.parse (carbon form `name;tag=value;...`) → tags including `name`."""
    metric, *segments = path.split(";")
    if not metric:
        raise FunctionError(f"Cannot parse path {path}, no metric found")
    tags = {}
    for segment in segments:
        tag, sep, value = segment.partition("=")
        if not sep or not tag:
            raise FunctionError(f"Cannot parse path {path}, invalid segment {segment}")
        if not value:
            raise FunctionError(f'Value for tag "{tag}" may not be empty')
        if any(c in tag for c in ";!^="):
            raise FunctionError(f'Tag "{tag}" may not contain any of ";!^="')
        if value[0] == "~":
            raise FunctionError(f'Tag values are not allowed to start with "~" in tag "{tag}"')
        tags[tag] = value
    name = metric.lstrip("~")
    if not name:
        raise FunctionError(f"Cannot use metric name {metric} as tag value, results in emptry string")
    tags["name"] = name
    return tags


@register("groupByTags", [Param("seriesList", SERIES_LIST, required=True),
                          Param("callback", AGG_OR_SERIES_FUNC, required=True, options=agg_or_series_func_options()),
                          Param("tags", TAG, required=True, multiple=True)], group=GROUP)
def group_by_tags(ctx, seriesList, callback, *tags):
    """Groups series by the values of the given tags and combines each group with the callback; each result is named
    `<name>;tag=value;...` and carries those tags (`<name>` is the common name tag, else the callback)."""
    if not tags:
        raise FunctionError("groupByTags(): no tags specified")
    by_name = "name" in tags
    if not by_name:
        names = {s.tags.get("name", s.name) for s in seriesList}
        common = next(iter(names)) if len(names) == 1 else callback

    def key_of(s: Series) -> str:
        if by_name:
            return ";".join([s.tags.get("name", s.name)]
                            + sorted(f"{t}={s.tags.get(t, '')}" for t in tags if t != "name"))
        return ";".join([common] + sorted(f"{t}={s.tags.get(t, '')}" for t in tags))

    keys, groups = _group_by(seriesList, key_of)
    out = []
    for key in keys:
        result = _apply_callback(ctx, callback, groups[key])
        result.name = key
        result.path_expression = key
        # a tag missing from a series gives an empty value, which graphite-web's parse rejects (HTTP 500 there)
        result.tags = parse_tagged_name(key)
        out.append(result)
    return out


# --- map / reduce -------------------------------------------------------------------------------------------------

@register("mapSeries", [Param("seriesList", SERIES_LIST, required=True),
                        Param("mapNodes", NODE_OR_TAG, required=True, multiple=True)], group=GROUP,
          aliases=("map",))
def map_series(ctx, seriesList, *mapNodes):
    """Splits a series list into lists of series that share the given nodes/tags (input for reduceSeries)."""
    keys, groups = _group_by(seriesList, lambda s: agg_key(s, mapNodes))
    return [groups[k] for k in keys]


@register("reduceSeries", [Param("seriesLists", SERIES_LISTS, required=True),
                           Param("reduceFunction", STRING, required=True),
                           Param("reduceNode", NODE, required=True),
                           Param("reduceMatchers", STRING, required=True, multiple=True)], group=GROUP,
          aliases=("reduce",))
def reduce_series(ctx, seriesLists, reduceFunction, reduceNode, *reduceMatchers):
    """For each mapped list, passes the series whose node `reduceNode` equals each matcher (in matcher order) to
    reduceFunction; the result is named `<nodes before reduceNode>.reduce.<reduceFunction>`."""
    keys: list[str] = []
    slots: dict[str, list] = {}
    for series_list in seriesLists:
        if isinstance(series_list, Series):
            raise FunctionError("reduceSeries: parameter 'seriesLists' must be a list of series lists "
                                "(as mapSeries returns)")
        for s in series_list:
            nodes = s.name.split(".")
            try:
                node = nodes[reduceNode]
            except IndexError:
                raise FunctionError(f"reduceSeries: series {s.name} has no node {reduceNode}") from None
            if node not in reduceMatchers:
                continue
            key = ".".join(nodes[:reduceNode]) + ".reduce." + reduceFunction
            if key not in slots:
                slots[key] = [None] * len(reduceMatchers)
                keys.append(key)
            slots[key][reduceMatchers.index(node)] = s
    out = []
    for key in keys:
        missing = [m for m, s in zip(reduceMatchers, slots[key]) if s is None]
        if missing:   # graphite-web hands None to the function and fails (HTTP 500)
            raise FunctionError(f"reduceSeries: no series matches {missing[0]!r} for {key}")
        result = _call_function(ctx, reduceFunction, [[s] for s in slots[key]])
        if not result:
            raise FunctionError(f"reduceSeries: {reduceFunction} returned no series for {key}")
        result = result[0]
        result.name = key
        out.append(result)
    return out


# --- applyByNode --------------------------------------------------------------------------------------------------

@register("applyByNode", [Param("seriesList", SERIES_LIST, required=True), Param("nodeNum", NODE, required=True),
                          Param("templateFunction", STRING, required=True), Param("newName", STRING)],
          group=GROUP, raw_args=True)
def apply_by_node(ctx, node):
    """For each unique prefix of the series names (nodes 0..nodeNum), evaluates templateFunction with '%' replaced by
    the prefix (a new query); newName, if given, names the results the same way."""
    from ..evaluator import evaluate, evaluate_in_window
    from .registry import REGISTRY
    args = [evaluate(ctx, a) for a in node.args]
    kwargs = {k: evaluate(ctx, a) for k, a in node.kwargs}
    args, kwargs = bind(REGISTRY["applyByNode"], args, kwargs)
    params = ["seriesList", "nodeNum", "templateFunction", "newName"]
    values = {**dict(zip(params, args)), **kwargs}
    series_list, node_num = values["seriesList"], values["nodeNum"]
    template, new_name = values["templateFunction"], values.get("newName")
    if not series_list:
        return []
    prefixes = sorted({".".join(s.name.split(".")[:node_num + 1]) for s in series_list})
    # graphite-web stamps every result with the start/end of the *last* input series (a leaked loop variable)
    last = series_list[-1]
    out = []
    for prefix in prefixes:
        tree = g.parse_target(template.replace("%", prefix))
        results = evaluate_in_window(ctx, tree, ctx.start, ctx.end)
        if not isinstance(results, list):
            raise FunctionError(f"applyByNode: {template!r} does not evaluate to a series list")
        for r in results:
            if new_name:
                r.name = new_name.replace("%", prefix)
            r.path_expression = prefix
            r.start = last.start
            n = max(0, (last.end - last.start) // r.step + 1)
            if len(r.values) > n:
                r.values = r.values[:n]
            out.append(r)
    return out
