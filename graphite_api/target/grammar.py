"""Graphite render targets: text -> a small immutable AST.

The language is graphite-web 1.1's (`render/grammar_unsafe.py`, `render/evaluator.py`): calls, path
expressions, literal arguments, `a|f(x)` pipes and `template(...)`. The grammar is built once at import;
`parse_target` returns frozen dataclasses, so a parsed target can be cached and shared between requests.

Where we differ from graphite-web it is almost always by accepting more:
  * trailing text after a complete target is an error (graphite-web silently ignores it);
  * calls may take keyword arguments only (`f(x=1)`), templates may mix positional and keyword values;
  * `true`, `false`, `None`, `inf` are literals only when followed by `,` `)` or the end, like numbers,
    so an argument path that merely starts with such a word (`inf.cpu`) parses instead of failing;
  * `-inf` is negative infinity (graphite-web reads it as a path that can match nothing);
  * a backslash may escape any character in a path, and the escape is kept in `PathExpr.text` so the glob
    layer can tell `a\\*` (literal star) from `a*`; `{}` groups may nest and have empty alternatives;
  * a template value substituted as a whole argument becomes an int when it is all digits (graphite-web
    makes every numeric-looking string a float, which node-index arguments then reject).
"""
from __future__ import annotations

import functools
import math
import re
import sys
from dataclasses import dataclass, field

import pyparsing as pp

__all__ = [
    "Bool", "Call", "NoneLit", "Number", "PathExpr", "String", "Node", "TargetSyntaxError",
    "MAX_DEPTH", "MAX_TARGET_LENGTH", "parse_target", "format_target", "path_expressions",
]

MAX_DEPTH = 100                 # nested calls; deeper targets are refused before pyparsing recurses
MAX_TARGET_LENGTH = 64 * 1024   # characters


class TargetSyntaxError(ValueError):
    """A target that does not parse. `column` is 1-based (None when the error has no position)."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message)
        self.column = column


# --- AST -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PathExpr:
    """A metric path or glob pattern, as written (backslash escapes kept)."""
    text: str


@dataclass(frozen=True)
class String:
    value: str          # outer quotes stripped, backslash escapes NOT processed (graphite-web)


@dataclass(frozen=True)
class Number:
    value: int | float


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class NoneLit:
    pass


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple = ()
    kwargs: tuple = ()      # ((name, node), ...) in the order written
    # The call's text as written (for a piped call, the `f(x)` after the `|`); "" when template
    # substitution rewrote the call. graphite-web uses it as the pathExpression of seriesByTag results.
    raw: str = field(default="", compare=False)

    def kwarg(self, name: str, default=None):
        for key, value in self.kwargs:
            if key == name:
                return value
        return default


Node = PathExpr | String | Number | Bool | NoneLit | Call


@dataclass(frozen=True)
class _Kwarg:
    """Parse-time marker for `name=value` inside an argument list."""
    name: str
    value: object
    loc: int


# --- grammar ---------------------------------------------------------------------------------------

_PATH_STOP = frozenset("(){},.'\"\\|")


class _PathToken(pp.Token):
    """A path expression, scanned by hand.

    A hand scanner is faster than a tower of pyparsing Combines, handles nested `{}` groups and gives
    precise error positions. Elements are separated by `.`; an element is made of printable characters
    other than `( ) { } , . ' " \\ |` and whitespace, backslash escapes (kept verbatim) and `{a,b}` groups.
    `;` and `=` are plain, so `name;tag=v` is one path.
    """

    def __init__(self):
        super().__init__()
        self.set_name("path expression")
        self.mayReturnEmpty = False
        self.mayIndexError = False
        self.errmsg = "Expected path expression"

    def parseImpl(self, instring, loc, do_actions=True):
        s, n = instring, len(instring)
        i = elem_start = loc
        depth = 0
        brace_at: list[int] = []
        while i < n:
            c = s[i]
            if c == "\\":
                if i + 1 >= n or not s[i + 1].isprintable():
                    raise pp.ParseException(s, i + 1, "Expected a character after '\\'", self)
                i += 2
            elif c == "{":
                depth += 1
                brace_at.append(i)
                i += 1
            elif c == "}" and depth:
                depth -= 1
                brace_at.pop()
                i += 1
            elif c == "," and depth:
                i += 1
            elif c == ".":
                if depth:
                    # graphite-web splits patterns on '.' before expanding braces, so a dot inside braces
                    # can never mean what the user wants.
                    raise pp.ParseException(s, i, "'.' is not allowed inside '{...}'", self)
                if i == elem_start:
                    break
                i += 1
                elem_start = i
            elif c in _PATH_STOP or c.isspace() or not c.isprintable():
                if depth:
                    raise pp.ParseException(s, brace_at[-1], "Expected '}' to close '{'", self)
                break
            else:
                i += 1
        if depth:
            raise pp.ParseException(s, brace_at[-1], "Expected '}' to close '{'", self)
        if i == loc:
            raise pp.ParseException(s, loc, self.errmsg, self)
        if i == elem_start:
            raise pp.ParseException(s, i, "Expected path element after '.'", self)
        return i, [PathExpr(s[loc:i])]


def _build_grammar() -> pp.ParserElement:
    expression = pp.Forward().set_name("expression")
    # Numbers, true/false, None and inf count only when the argument ends right after them (graphite-web's
    # `afterNumber`); one regex with a lookahead, because every failed alternative costs an exception.
    scalar = pp.Regex(r"(?:-?\d+(?:\.\d+)?(?:[eE]-?\d+)?|(?i:true|false|none|-?inf))(?=\s*(?:[,)]|\Z))")
    scalar.set_name("literal").set_parse_action(lambda t: _scalar(t[0]))
    # No escape processing, but a backslash does keep the next quote from closing the string.
    string = pp.Regex(r""""(?:[^"\\\n\r]|\\.)*"|'(?:[^'\\\n\r]|\\.)*'""").set_name("quoted string")
    string.set_parse_action(lambda t: String(t[0][1:-1]))
    literal = scalar | string

    kwname = pp.Regex(r"[A-Za-z_][A-Za-z0-9_]*\s*=").set_parse_action(lambda t: t[0][:-1].rstrip())
    kwarg = kwname + (literal | expression)
    kwarg.set_parse_action(lambda s, loc, t: _Kwarg(t[0], t[1], loc))
    arg = (kwarg | literal | expression).set_name("argument")
    # Once `name(` is seen nothing but a call can follow (a path cannot hold '('), so `-` commits to it:
    # a mistake inside the parentheses is reported where it is instead of as a failure of the whole call.
    close = pp.Suppress(")").set_name("',' or ')'")
    arglist = arg + pp.ZeroOrMore(pp.Suppress(",") - arg)
    opening = pp.Regex(r"[A-Za-z_][A-Za-z0-9_]*\s*\(").set_name("function call")
    opening.set_parse_action(lambda t: t[0][:-1].rstrip())
    call = pp.Located(opening
                      - (pp.Suppress(")").set_name("')'") | (arglist + close)).set_name("argument or ')'"))
    call.set_name("function call").set_parse_action(_make_call)
    path = _PathToken()
    pipe = pp.Suppress("|") - call
    expression <<= (call | path).set_name("function call or path expression") + pp.ZeroOrMore(pipe)
    expression.set_parse_action(_fold_pipes)

    target = expression + pp.StringEnd().set_name("end of target")
    target.parse_with_tabs()   # keep locations exact: `raw` slices the original string
    return target


def _scalar(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return Bool(low == "true")
    if low == "none":
        return NoneLit()
    if low in ("inf", "-inf"):
        return Number(-math.inf if low[0] == "-" else math.inf)
    if re.fullmatch(r"-?\d+", text):
        return Number(int(text))
    return Number(float(text))


def _make_call(s, loc, t):
    start, parts, end = t[0], t[1], t[2]
    name, items = parts[0], list(parts[1:])
    args, kwargs, seen = [], [], set()
    for item in items:
        if isinstance(item, _Kwarg):
            if item.name in seen:
                raise pp.ParseFatalException(s, item.loc, f"duplicate keyword argument {item.name!r}")
            seen.add(item.name)
            kwargs.append((item.name, item.value))
        elif kwargs:
            raise pp.ParseFatalException(s, start, f"positional argument follows keyword argument in {name}()")
        else:
            args.append(item)
    return Call(name, tuple(args), tuple(kwargs), raw=s[start:end])


def _fold_pipes(t):
    # `a|f(x)|g()` is `g(f(a,x))`: each piped call gets the expression so far as its first argument.
    node = t[0]
    for piped in t[1:]:
        node = Call(piped.name, (node,) + piped.args, piped.kwargs, raw=piped.raw)
    return node


_GRAMMAR = _build_grammar()


# --- parsing ---------------------------------------------------------------------------------------

def _paren_depth(text: str) -> int:
    """Deepest call nesting, found with one linear scan so that a bomb is refused before pyparsing
    recurses into it."""
    depth = deepest = 0
    quote, i, n = "", 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise TargetSyntaxError(
                    f"target nests calls more than {MAX_DEPTH} levels deep (column {i + 1})", i + 1)
            deepest = max(deepest, depth)
        elif c == ")":
            depth = max(depth - 1, 0)
        i += 1
    return deepest


def _ast_depth(node) -> int:
    # Pipes nest calls without parentheses, so the tree is measured too (iteratively: it may be deep).
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, Call):
            deepest = max(deepest, d)
            stack.extend((a, d + 1) for a in n.args)
            stack.extend((v, d + 1) for _, v in n.kwargs)
    return deepest


def _ensure_stack(depth: int) -> None:
    # pyparsing spends about 17-22 Python frames per nesting level, so 100 levels need more than
    # CPython's default limit of 1000. Raise it just enough, never lower it (other threads may be deep).
    # On 3.11+ Python-to-Python calls do not grow the C stack, so this is safe in worker threads too.
    frame, used = sys._getframe(), 0
    while frame is not None:
        used += 1
        frame = frame.f_back
    need = used + 25 * depth + 200
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)


@functools.lru_cache(maxsize=2048)
def _parse_cached(text: str):
    _ensure_stack(_paren_depth(text))
    try:
        node = _GRAMMAR.parse_string(text, parse_all=True)[0]
    except pp.ParseBaseException as exc:
        column = exc.loc + 1
        found = repr(text[exc.loc]) if exc.loc < len(text) else "end of target"
        msg = exc.msg
        if msg.startswith("Expected end of target"):
            msg = "Expected ',' or ')' or '|' or end of target"   # what could have continued the target
        raise TargetSyntaxError(f"invalid target at column {column}: {msg} (found {found})", column) from None
    except RecursionError:
        raise TargetSyntaxError("target is nested too deeply") from None
    if _ast_depth(node) > MAX_DEPTH:
        raise TargetSyntaxError(f"target nests calls more than {MAX_DEPTH} levels deep (counting pipes)")
    return node


def parse_target(text: str, template_params: dict | None = None) -> Node:
    """Parse one render target. `template_params` are the request's `template[name]=value` values,
    which override a `template()` call's own arguments (graphite-web)."""
    if len(text) > MAX_TARGET_LENGTH:
        raise TargetSyntaxError(f"target is longer than {MAX_TARGET_LENGTH} characters")
    if not text.strip():
        raise TargetSyntaxError("empty target")
    node = _parse_cached(text)
    if "template" in text:
        node = _resolve_templates(node, None, template_params or {})
    return node


# --- template() ------------------------------------------------------------------------------------

_TEMPLATE_SYNTAX = "invalid template() syntax, only string/numeric arguments are allowed"


def _literal_value(node):
    if isinstance(node, (String, Number)):
        return node.value
    raise TargetSyntaxError(_TEMPLATE_SYNTAX)


def _resolve_templates(node, replacements: dict | None, request_params: dict):
    if isinstance(node, PathExpr):
        return _substitute(node, replacements) if replacements else node
    if not isinstance(node, Call):
        return node
    if node.name == "template":
        if not node.args or not isinstance(node.args[0], (PathExpr, Call)):
            raise TargetSyntaxError("template() needs a path or call as its first argument")
        # graphite-web: keyword values by name, positional ones as "1", "2", ..., then the request's
        # template[...] parameters on top. An inner template gets its own set, not the outer one.
        params = {name: _literal_value(value) for name, value in node.kwargs}
        params.update({str(i): _literal_value(value) for i, value in enumerate(node.args[1:], 1)})
        params.update(request_params)
        return _resolve_templates(node.args[0], params, request_params)
    args = tuple(_resolve_templates(a, replacements, request_params) for a in node.args)
    kwargs = tuple((k, _resolve_templates(v, replacements, request_params)) for k, v in node.kwargs)
    if args == node.args and kwargs == node.kwargs:
        return node
    return Call(node.name, args, kwargs)     # rewritten: the original text no longer describes it


def _substitute(node: PathExpr, replacements: dict):
    # Same order and rules as graphite-web's evaluator: a path that is exactly `$name` becomes the value
    # itself (numeric-looking strings become numbers); otherwise `$name` is replaced textually.
    text = node.text
    for name, value in replacements.items():
        token = "$" + name
        if text == token:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                return String(str(value))
            if not isinstance(value, str):
                return Number(value)
            if re.fullmatch(r"-?\d+", value):
                return Number(int(value))         # graphite-web gives a float; an int suits node indexes
            if re.fullmatch(r"-?[\d.]+", value):
                try:
                    return Number(float(value))
                except ValueError:
                    return String(value)
            return String(value)
        text = text.replace(token, str(value))
    return PathExpr(text)


# --- walking and printing --------------------------------------------------------------------------

def path_expressions(node) -> list[str]:
    """Every path expression and every `seriesByTag(...)` call (as its raw text) in one or more trees,
    deduplicated in order of appearance, so the evaluator can fetch them all in one batch."""
    found: dict[str, None] = {}

    def walk(n):
        if isinstance(n, PathExpr):
            found.setdefault(n.text, None)
        elif isinstance(n, Call):
            if n.name == "seriesByTag":
                found.setdefault(n.raw or format_target(n), None)
                return
            for a in n.args:
                walk(a)
            for _, v in n.kwargs:
                walk(v)

    for root in (node if isinstance(node, (list, tuple)) else (node,)):
        walk(root)
    return list(found)


def _format_number(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    return text.replace("e+", "e")     # `1e+20` would not parse back as a number


def _format_string(value: str) -> str:
    # The grammar cannot escape a quote (escapes are not processed), so pick the quote the value lacks.
    return f"'{value}'" if '"' in value and "'" not in value else f'"{value}"'


def format_target(node) -> str:
    """Print an AST back as target text in graphite-web's style: `f(a.b,"x",k=1)`."""
    if isinstance(node, PathExpr):
        return node.text
    if isinstance(node, String):
        return _format_string(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Number):
        return _format_number(node.value)
    if isinstance(node, NoneLit):
        return "None"
    if isinstance(node, Call):
        parts = [format_target(a) for a in node.args]
        parts += [f"{k}={format_target(v)}" for k, v in node.kwargs]
        return f"{node.name}({','.join(parts)})"
    raise TypeError(f"not a target node: {node!r}")
