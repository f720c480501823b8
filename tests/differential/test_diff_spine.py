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
