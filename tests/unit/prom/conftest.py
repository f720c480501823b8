"""A Starlette app around prom_bridge.api.routes() with a real Storage in a temp dir."""
from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.testclient import TestClient

from prom_bridge import api
from storage.engine import EngineOptions, Storage


class _Tenant(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        request.state.tenant = request.headers.get("X-Scope-OrgID", "anonymous")
        return await call_next(request)


@pytest.fixture
def storage(tmp_path):
    s = Storage(str(tmp_path / "data"), options=EngineOptions(wal_fsync=False))
    yield s
    s.close()


@pytest.fixture
def client(storage):
    app = Starlette(routes=api.routes(), middleware=[Middleware(_Tenant)])
    app.state.storage = storage
    app.state.settings = {"data_dir": storage.data_dir}
    with TestClient(app) as c:
        yield c
