"""Label matchers shared by PromQL, Graphite tag expressions and globs.

One vocabulary (`=`, `!=`, `=~`, `!~`) serves both query languages. PromQL anchors regexes at both ends,
Graphite tag expressions only at the start; the caller says which through `anchor`. Regexes are compiled
with google-re2 so that no user pattern can take more than linear time.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import re2

EQ, NEQ, RE, NRE = "=", "!=", "=~", "!~"
_OPTIONS = re2.Options()
_OPTIONS.max_mem = 8 << 20   # a pathological pattern fails to compile instead of eating memory
_OPTIONS.log_errors = False


class BadRegex(ValueError):
    """A user regex that RE2 cannot compile; the message names the pattern."""


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str, anchor: str = "full"):
    """Compile `pattern` anchored at both ends ("full") or at the start ("start")."""
    if anchor == "full":
        text = f"^(?:{pattern})$"
    elif anchor == "start":
        text = pattern if pattern.startswith("^") else f"^(?:{pattern})"
    else:
        text = pattern
    try:
        return re2.compile(text, options=_OPTIONS)
    except Exception as exc:  # re2.error has no stable public type across versions
        raise BadRegex(f"invalid regex {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    anchor: str = "full"
    _regex: object = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self):
        if self.op not in (EQ, NEQ, RE, NRE):
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if self.op in (RE, NRE):
            object.__setattr__(self, "_regex", compile_regex(self.value, self.anchor))

    def matches(self, value: str) -> bool:
        """Whether a label value matches; an absent label is the empty string."""
        op = self.op
        if op == EQ:
            return value == self.value
        if op == NEQ:
            return value != self.value
        hit = self._regex.search(value) is not None
        return hit if op == RE else not hit

    @property
    def matches_empty(self) -> bool:
        return self.matches("")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value!r}"
