import numpy as np
import pytest

from storage.index import TenantIndex
from storage.labels import graphite_display, graphite_to_labels, key_to_labels, series_key
from storage.matchers import BadRegex, Matcher


def make_index():
    idx = TenantIndex("t")
    names = ["a.b.c", "a.b.d", "a.x", "a.b", "z.y;dc=east;host=h1", "z.y;dc=west;host=h2", "up;job=prom"]
    for sid, name in enumerate(names, start=1):
        idx.add(sid, series_key(graphite_to_labels(name)))
    return idx


def test_labels_roundtrip_and_display():
    labels = graphite_to_labels("disk.used;rack=a1;datacenter=dc1")
    assert labels == (("__name__", "disk.used"), ("datacenter", "dc1"), ("rack", "a1"))
    assert graphite_display(labels) == "disk.used;datacenter=dc1;rack=a1"
    assert series_key(labels) == "disk.used;datacenter=dc1;rack=a1"
    odd = (("__name__", "x"), ("path", "a;b"))
    key = series_key(odd)
    assert key.startswith("\x00") and key_to_labels(key) == odd


def test_select_matchers():
    idx = make_index()
    assert idx.select([Matcher("__name__", "=", "a.b.c")]).tolist() == [1]
    assert idx.select([Matcher("dc", "=", "east")]).tolist() == [5]
    assert idx.select([Matcher("__name__", "=~", "z\\..*")]).tolist() == [5, 6]
    # an absent label is the empty value: dc!="east" matches every series without dc too
    assert idx.select([Matcher("dc", "!=", "east")]).tolist() == [1, 2, 3, 4, 6, 7]
    assert idx.select([Matcher("dc", "=~", "e", anchor="start"), Matcher("host", "=", "h1")]).tolist() == [5]
    assert idx.select([Matcher("dc", "=", "north")]).tolist() == []
    assert idx.select([]).tolist() == []


def test_regex_bomb_is_linear_and_bad_regex_rejected():
    idx = make_index()
    assert idx.select([Matcher("__name__", "=~", "(a*)*b")]).tolist() == []
    with pytest.raises(BadRegex):
        Matcher("__name__", "=~", "(unclosed")


def test_tree_walk_and_remove():
    idx = make_index()
    hits = dict(idx.find_nodes(["a", lambda n: True]))
    assert sorted(hits) == ["a.b", "a.x"]
    assert idx.leaf_id(hits["a.b"]) == 4 and idx.is_branch(hits["a.b"])
    assert idx.leaf_id(hits["a.x"]) == 3 and not idx.is_branch(hits["a.x"])
    assert sorted(p for p, _ in idx.find_nodes([None])) == ["a", "a.b", "a.b.c", "a.b.d", "a.x"]
    assert sorted(p for p, _ in idx.find_nodes(["a", None, "c"])) == ["a.b.c"]
    assert sorted(idx.leaves_under(hits["a.b"])) == [1, 2, 4]
    assert idx.remove([1, 2, 5]) == 3
    assert sorted(p for p, _ in idx.find_nodes([None])) == ["a", "a.b", "a.x"]
    assert idx.select([Matcher("dc", "=~", ".+")]).tolist() == [6]
    assert idx.label_values("host") == {"h2": 1}
    assert len(idx) == 4


def test_postings_grow_from_int_to_array():
    idx = TenantIndex("t")
    for sid in range(1, 6):
        idx.add(sid, f"m;i={sid};job=j{sid % 2}")
    idx.add(9, "m;i=1;job=j1")                  # the same key again is a no-op
    assert idx.select([Matcher("job", "=", "j1")]).tolist() == [1, 3, 5]
    assert idx.label_values("__name__") == {"m": 5}
    assert isinstance(idx.all_ids(), np.ndarray)


def test_level_walk_matches_the_recursive_walk():
    """find_nodes walks globs without `**` level by level; same nodes, same order as the recursive walk."""
    import random
    from storage.index import ANY
    rnd = random.Random(5)
    idx = TenantIndex("t")
    names = sorted({".".join(rnd.choice("abc") + str(rnd.randint(0, 3)) for _ in range(rnd.randint(1, 4)))
                    for _ in range(300)})
    for sid, name in enumerate(names):
        idx.add(sid, name)
    choices = [ANY, "a1", "b2", frozenset({"a0", "c3", "zz"}), lambda n: n.startswith("b")]
    for _ in range(200):
        pats = [rnd.choice(choices) for _ in range(rnd.randint(1, 4))]
        assert list(idx.find_nodes(pats)) == list(idx._walk(idx.tree, "", pats, 0))
