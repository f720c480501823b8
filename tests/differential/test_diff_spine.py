"""Fetching, globs, tags and consolidateBy agree with graphite-web 1.1.10."""
import pytest

from .conftest import assert_same


@pytest.mark.parametrize("target", [
    "app.web1.requests.count",
    "app.*.requests.count",
    "app.web{1,2}.*.*",
    "app.web[12].latency.mean",
    "app.web?.requests.count",
    "sys.*.net.bytes",
    "neg.values",
    "empty.mostly",
    "misc.slow",
    "seriesByTag('name=disk.used')",
    "seriesByTag('name=disk.used','dc=east')",
    "seriesByTag('dc=~ea','host!=h3')",
    "seriesByTag('name=~disk.*','host=~h[12]')",
    "disk.used;dc=east;host=h1",
    "consolidateBy(app.web1.requests.count,'max')",
])
def test_fetch_matches_graphite_web(reference, plumbago, target):
    assert_same(reference, plumbago, target, tags=True)


def test_functions_index_matches_graphite_web(reference, plumbago):
    """Every name graphite-web registers, with the same signature text, group and parameter specs."""
    import json

    import httpx
    want = reference.functions()
    text = httpx.get(plumbago.url + "/functions", timeout=30).text
    got = json.loads(text)            # Python's json reads 1e9999 as inf, as graphite-web's encoder meant
    assert sorted(got) == sorted(want)
    for name, info in want.items():
        for key in ("name", "function", "group", "params"):
            assert got[name][key] == info[key], (name, key, got[name][key], info[key])
