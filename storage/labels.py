"""Label sets and the Graphite <-> label mapping (DESIGN §2).

A series is identified by a label set that always has `__name__`. The Graphite path `a.b.c;dc=east` is
`{__name__="a.b.c", dc="east"}`. The index key of a series is its Graphite display form
(`name;k1=v1;k2=v2`, tags sorted by their `k=v` text as graphite-web does) whenever that form is
unambiguous, so the Graphite ingest path can look series up by the name it received without parsing it.
Label sets that cannot be written that way (a `;` in a value, `=` in a name...) get a NUL-separated key.
"""
from __future__ import annotations

NAME = "__name__"
Labels = tuple  # tuple[tuple[str, str], ...] sorted by label name

_SEP, _KV = "\x00", "\x01"


def graphite_to_labels(path: str) -> Labels:
    """`a.b;k=v` -> (("__name__", "a.b"), ("k", "v")). The caller has validated the tags."""
    if ";" not in path:
        return ((NAME, path),)
    name, *tags = path.split(";")
    pairs = {NAME: name}
    for tag in tags:
        key, _, value = tag.partition("=")
        if key != "name":
            pairs[key] = value
    return tuple(sorted(pairs.items()))


def _displayable(labels: Labels) -> bool:
    for key, value in labels:
        if key == NAME:
            if ";" in value or not value:
                return False
        elif (not key or not value or key == "name" or ";" in value or value[0] == "~"
              or any(c in key for c in ";!^=")):
            return False
    return True


def graphite_display(labels: Labels) -> str:
    """Graphite's canonical `name;k=v` form (tags sorted by `k=v`), whether or not it is a valid key."""
    name = ""
    tags = []
    for key, value in labels:
        if key == NAME:
            name = value
        else:
            tags.append(f"{key}={value}")
    tags.sort()
    return ";".join([name, *tags]) if tags else name


def series_key(labels: Labels) -> str:
    """The unique index key of a label set (see module docstring)."""
    if _displayable(labels):
        return graphite_display(labels)
    return _SEP + _SEP.join(f"{k}{_KV}{v}" for k, v in labels)


def key_to_labels(key: str) -> Labels:
    if key.startswith(_SEP):
        return tuple(tuple(part.split(_KV, 1)) for part in key[1:].split(_SEP))
    return graphite_to_labels(key)


def graphite_tags(labels: Labels) -> dict:
    """The `tags` object graphite-web puts in render output: every tag plus `name`."""
    out = {}
    for key, value in labels:
        out["name" if key == NAME else key] = value
    return out


def metric_name(labels: Labels) -> str:
    for key, value in labels:
        if key == NAME:
            return value
    return ""
