"""The in-memory tagged index of one tenant (DESIGN §3).

Series ids are global integers handed out by the SQL series table; this index maps keys to ids, keeps
postings (label name -> value -> ids) for matcher queries, and a node tree of untagged Graphite names for
find/expand/globs. Memory per series matters (1M series must stay under 1 KiB each), so single-id postings
are stored as plain ints and leaf-only tree nodes as the id itself.
"""
from __future__ import annotations

import threading
from array import array
from typing import Callable, Iterable, Iterator

import numpy as np

from .labels import Labels, key_to_labels
from .matchers import EQ, Matcher

_LEAF = "\x00"   # key of the series id inside a tree node that is both a branch and a leaf
ANY = object()   # a pattern node matching every child (a bare `*`)
_EMPTY = np.empty(0, dtype=np.int64)


def _as_array(entry) -> np.ndarray:
    if isinstance(entry, int):
        return np.array([entry], dtype=np.int64)
    return np.frombuffer(entry, dtype=np.int64)


def _children(node: dict, pat) -> list[tuple[str, object]]:
    """(name, child) of a tree node that a pattern node matches: a literal, ANY, a frozenset or a predicate."""
    if isinstance(pat, str):
        return [(pat, node[pat])] if pat in node and pat != _LEAF else []
    if pat is ANY:
        return [(n, c) for n, c in node.items() if n != _LEAF]
    if isinstance(pat, frozenset):      # a finite set of names ({a,b}): direct lookups
        return [(n, node[n]) for n in sorted(pat) if n in node and n != _LEAF]
    return [(n, c) for n, c in node.items() if n != _LEAF and pat(n)]


class TenantIndex:
    def __init__(self, tenant: str):
        self.tenant = tenant
        self.by_key: dict[str, int] = {}
        self.key_of: dict[int, str] = {}
        self.postings: dict[str, dict[str, object]] = {}
        self.tree: dict = {}
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.by_key)

    # ---- mutation -------------------------------------------------------------------------------
    def add(self, sid: int, key: str, labels: Labels | None = None) -> None:
        with self.lock:
            if key in self.by_key:
                return
            labels = labels or key_to_labels(key)
            self.by_key[key] = sid
            self.key_of[sid] = key
            for name, value in labels:
                values = self.postings.setdefault(name, {})
                entry = values.get(value)
                if entry is None:
                    values[value] = sid
                elif isinstance(entry, int):
                    values[value] = array("q", (entry, sid))
                else:
                    entry.append(sid)
            if len(labels) == 1:
                self._tree_add(labels[0][1], sid)

    def remove(self, sids: Iterable[int]) -> int:
        """Forget series; returns how many were known. Postings are rebuilt only where touched."""
        with self.lock:
            gone = [s for s in sids if s in self.key_of]
            touched: set[tuple[str, str]] = set()
            for sid in gone:
                key = self.key_of.pop(sid)
                del self.by_key[key]
                labels = key_to_labels(key)
                touched.update(labels)
                if len(labels) == 1:
                    self._tree_remove(labels[0][1])
            dead = np.array(sorted(gone), dtype=np.int64)
            for name, value in touched:
                values = self.postings[name]
                kept = _as_array(values[value])
                kept = kept[~np.isin(kept, dead)]
                if len(kept) == 0:
                    del values[value]
                    if not values:
                        del self.postings[name]
                elif len(kept) == 1:
                    values[value] = int(kept[0])
                else:
                    values[value] = array("q", kept.tolist())
            return len(gone)

    def _tree_add(self, path: str, sid: int) -> None:
        node = self.tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, int):
                child = node[part] = {_LEAF: child}
            node = child
        last = parts[-1]
        child = node.get(last)
        if isinstance(child, dict):
            child[_LEAF] = sid
        else:
            node[last] = sid

    def _tree_remove(self, path: str) -> None:
        trail = []
        node = self.tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                return
            trail.append((node, part))
            node = child
        last = parts[-1]
        child = node.get(last)
        if isinstance(child, dict):
            child.pop(_LEAF, None)
            if not child:
                del node[last]
        elif child is not None:
            del node[last]
        for parent, part in reversed(trail):   # prune branches left empty
            if parent[part]:
                break
            del parent[part]

    # ---- queries ----------------------------------------------------------------------------------
    def labels(self, sid: int) -> Labels:
        return key_to_labels(self.key_of[sid])

    def all_ids(self) -> np.ndarray:
        with self.lock:
            return np.fromiter(self.key_of.keys(), dtype=np.int64, count=len(self.key_of))

    def ids_with_label(self, name: str) -> np.ndarray:
        values = self.postings.get(name)
        if not values:
            return _EMPTY
        return np.unique(np.concatenate([_as_array(e) for e in values.values()]))

    def _matching(self, m: Matcher) -> np.ndarray:
        values = self.postings.get(m.name, {})
        if m.op == EQ and m.value:
            entry = values.get(m.value)
            return _EMPTY if entry is None else _as_array(entry)
        hits = [_as_array(e) for v, e in values.items() if m.matches(v)]
        found = np.unique(np.concatenate(hits)) if hits else _EMPTY
        if m.matches(""):   # an absent label has the empty value
            absent = np.setdiff1d(self.all_ids(), self.ids_with_label(m.name), assume_unique=True)
            found = np.union1d(found, absent)
        return found

    def select(self, matchers: list[Matcher]) -> np.ndarray:
        """Sorted ids of the series matching every matcher (an empty list matches nothing)."""
        if not matchers:
            return _EMPTY
        # Equality matchers are cheap and selective: evaluate them first and stop early when empty.
        ordered = sorted(matchers, key=lambda m: 0 if (m.op == EQ and m.value) else 1)
        with self.lock:
            result = None
            for m in ordered:
                ids = self._matching(m)
                result = ids if result is None else np.intersect1d(result, ids, assume_unique=True)
                if len(result) == 0:
                    break
            return np.sort(result)

    def label_names(self) -> list[str]:
        with self.lock:
            return sorted(self.postings)

    def label_values(self, name: str) -> dict[str, int]:
        """value -> number of series carrying it."""
        with self.lock:
            return {v: (1 if isinstance(e, int) else len(e)) for v, e in self.postings.get(name, {}).items()}

    # ---- Graphite tree ------------------------------------------------------------------------------
    def find_nodes(self, node_matchers: list[Callable[[str], bool] | str | None]) -> Iterator[tuple[str, object]]:
        """Walk the tree: each pattern node is a literal string, ANY, a frozenset of names, a predicate, or None
        for `**` (any depth, including none). Yields (path, node) where node is a dict (branch, maybe also a leaf) or an int leaf."""
        with self.lock:
            if None in node_matchers:
                found = list(self._walk(self.tree, "", node_matchers, 0))
            else:
                found = self._walk_levels(node_matchers)
        yield from found

    def _walk_levels(self, pats: list) -> list[tuple[str, object]]:
        """find_nodes without `**`: level by level over lists, not one generator per node (a glob over 1,000
        hosts visits thousands of nodes). All results lie at one depth, so the order is the recursive walk's."""
        if not pats:
            return []
        level: list[tuple[str, object]] = [("", self.tree)]
        last = len(pats) - 1
        for i, pat in enumerate(pats):
            found: list[tuple[str, object]] = []
            for prefix, node in level:
                for name, child in _children(node, pat):
                    if i == last or isinstance(child, dict):
                        found.append((prefix + name, child))
            if i < last:
                level = [(path + ".", node) for path, node in found]
            else:
                level = found
        return level

    def _walk(self, node: dict, prefix: str, pats: list, i: int):
        if i == len(pats):
            return
        pat = pats[i]
        last = i == len(pats) - 1
        if pat is None:   # globstar: zero or more levels
            if last:
                yield from self._descendants(node, prefix)
                return
            yield from self._walk(node, prefix, pats, i + 1)
            for name, child in node.items():
                if name != _LEAF and isinstance(child, dict):
                    yield from self._walk(child, f"{prefix}{name}.", pats, i)
            return
        for name, child in _children(node, pat):
            path = prefix + name
            if last:
                yield path, child
            elif isinstance(child, dict):
                yield from self._walk(child, path + ".", pats, i + 1)

    def _descendants(self, node: dict, prefix: str):
        for name, child in node.items():
            if name == _LEAF:
                continue
            yield prefix + name, child
            if isinstance(child, dict):
                yield from self._descendants(child, f"{prefix}{name}.")

    @staticmethod
    def leaf_id(node) -> int | None:
        if isinstance(node, int):
            return node
        return node.get(_LEAF)

    @staticmethod
    def is_branch(node) -> bool:
        return isinstance(node, dict) and any(k != _LEAF for k in node)

    def leaves_under(self, node) -> list[int]:
        """Every series id at or below a tree node (recursive delete)."""
        if isinstance(node, int):
            return [node]
        out = []
        stack = [node]
        while stack:
            cur = stack.pop()
            for name, child in cur.items():
                if name == _LEAF:
                    out.append(child)
                elif isinstance(child, int):
                    out.append(child)
                else:
                    stack.append(child)
        return out


class Index:
    """All tenants' indexes."""

    def __init__(self):
        self.tenants: dict[str, TenantIndex] = {}
        self._lock = threading.Lock()

    def tenant(self, tenant: str) -> TenantIndex:
        idx = self.tenants.get(tenant)
        if idx is None:
            with self._lock:
                idx = self.tenants.setdefault(tenant, TenantIndex(tenant))
        return idx

    def series_count(self) -> int:
        return sum(len(t) for t in self.tenants.values())
