"""The same service on PostgreSQL (PLUMBAGO_TEST_DATABASE_URL): ingest, kill -9, restart, read back."""
import os
import time

import pytest

URL = os.environ.get("PLUMBAGO_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not URL, reason="PLUMBAGO_TEST_DATABASE_URL not set")
NOW = int(time.time()) // 60 * 60 - 600


@pytest.fixture
def clean_db():
    from storage import sql
    engine = sql.connect(URL)
    sql.metadata.drop_all(engine)
    engine.dispose()


def test_postgres_store_survives_kill_and_restart(server_factory, tmp_path, clean_db):
    srv = server_factory(tmp_path / "pg", extra_args=["--database-url", URL])
    with srv.client() as c:
        m = [{"name": "pg.s", "interval": 10, "value": float(i), "time": NOW + 10 * i, "tags": ["k=v"]}
             for i in range(1, 31)]
        assert c.post("/metrics", json=m).json()["Published"] == 30
        aggs = "[sum]\npattern = .*\nxFilesFactor = 0\naggregationMethod = sum\n"
        assert c.post("/graphite/config/storageAggregations", content=aggs.encode()).status_code == 200
    srv.kill()
    srv2 = server_factory(tmp_path / "pg", extra_args=["--database-url", URL])
    with srv2.client() as c:
        r = c.get("/render", params={"target": "seriesByTag('k=v')", "from": str(NOW), "until": str(NOW + 300),
                                     "maxDataPoints": "0"})
        assert [v for v, _ in r.json()[0]["datapoints"]] == [float(i) for i in range(1, 31)]
        assert c.get("/graphite/config/storageAggregations").text.startswith("[sum]")
    assert srv2.stop() == 0
    srv3 = server_factory(tmp_path / "pg", extra_args=["--database-url", URL])   # now from SQL chunks
    with srv3.client() as c:
        r = c.get("/render", params={"target": "pg.s;k=v", "from": str(NOW), "until": str(NOW + 300),
                                     "maxDataPoints": "0"})
        assert [v for v, _ in r.json()[0]["datapoints"]] == [float(i) for i in range(1, 31)]
