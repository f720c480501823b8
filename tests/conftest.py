"""Shared fixtures: a real `plumbago serve` process on a free port, talked to over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def empty_postgres_url() -> str:
    """PLUMBAGO_TEST_DATABASE_URL with an empty plumbago schema (the test is skipped when it is unset)."""
    url = os.environ.get("PLUMBAGO_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PLUMBAGO_TEST_DATABASE_URL not set")
    from storage import sql
    engine = sql.connect(url)
    sql.metadata.drop_all(engine)   # each test starts from an empty schema
    engine.dispose()
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A plumbago process. start() waits for /ready; kill() is kill -9; stop() is SIGTERM."""

    def __init__(self, data_dir: Path, extra_args=(), config: str | None = None, env=None):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.config = config
        self.env = env
        self.proc = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 30.0) -> "Server":
        args = [sys.executable, "-m", "graphite_api.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir), *self.extra_args]
        if "--carbon-port" not in self.extra_args:
            args += ["--carbon-port", "0"]
        if self.config:
            cfg = self.data_dir.parent / f"plumbago-{self.port}.yaml"
            cfg.write_text(self.config)
            args += ["--config", str(cfg)]
        env = {**os.environ, **(self.env or {})}
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"plumbago exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"plumbago not ready:\n{self.log_path.read_text()[-3000:]}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        self.log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(data_dir=None, **kwargs) -> Server:
        srv = Server(data_dir or tmp_path / "data", **kwargs)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        if srv.proc and srv.proc.poll() is None:
            srv.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("plumbago") / "data").start()
    yield srv
    srv.stop()
