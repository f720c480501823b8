"""Shared pieces of the benchmarks: a plumbago process, timing, the graphite-web reference venv."""
from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
GWREF_TOOL = Path(os.environ.get("GWREF_TOOL") or ROOT.parent / "shared" / "tools" / "graphite-reference")
GWREF_VENV = Path(os.environ.get("GWREF_VENV") or ROOT / ".gwref-venv")


class HttpClient:
    """A keep-alive HTTP/1.1 client on http.client: timed requests should measure the server, and httpx
    spends ~0.8 ms of Python per request (a 20-request dashboard: ~18 ms), more than some renders take.
    Both sides of a comparison use the same client."""

    def __init__(self, base_url: str, timeout: float = 300):
        import http.client
        from urllib.parse import urlsplit
        url = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)

    def get(self, path: str, params: dict | None = None) -> tuple[int, bytes]:
        import http.client
        from urllib.parse import urlencode
        url = path + ("?" + urlencode(params) if params else "")
        for attempt in (1, 2):
            try:
                self.conn.request("GET", url)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()      # the server closed an idle keep-alive connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get_ok(self, path: str, params: dict | None = None) -> bytes:
        status, body = self.get(path, params)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        return body

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Plumbago:
    def __init__(self, data_dir: str | None = None, carbon_port: int = 0, config: str | None = None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="plumbago-bench-")
        self.port = free_port()
        self.carbon_port = carbon_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.proc = None

    def start(self) -> "Plumbago":
        import httpx
        args = [sys.executable, "-m", "graphite_api.cli", "serve", "--port", str(self.port),
                "--data-dir", self.data_dir, "--carbon-port", str(self.carbon_port), "--log-level", "warning"]
        if self.config:
            path = os.path.join(self.data_dir, "bench.yaml")
            os.makedirs(self.data_dir, exist_ok=True)
            with open(path, "w") as f:
                f.write(self.config)
            args += ["--config", path]
        self.proc = subprocess.Popen(args, cwd=ROOT)
        for _ in range(300):
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("plumbago did not become ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(120)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def timed(fn, repeat: int = 5) -> float:
    """Median wall time of `repeat` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gwref_module():
    sys.path.insert(0, str(GWREF_TOOL))
    import gwref
    if not gwref.available(str(GWREF_VENV)):
        subprocess.run(["sh", str(GWREF_TOOL / "setup.sh"), str(GWREF_VENV)], check=True, stdout=subprocess.DEVNULL)
    return gwref


def report(name: str, ours: float, reference: float, unit: str, target: str, higher_is_better: bool) -> None:
    ratio = ours / reference if higher_is_better else reference / ours
    print(f"{name}: plumbago={ours:.4g}{unit} reference={reference:.4g}{unit} ratio={ratio:.2f}x ({target})",
          flush=True)


WHISPER_WRITER = r"""
import os, sys, whisper
root, names_file, n, start, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import json
spec = json.load(open(names_file))
for name, values in spec:
    path = os.path.join(root, "whisper", *name.split(".")) + ".wsp"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    whisper.create(path, [(step, n * 2)], xFilesFactor=0.0, aggregationMethod="average")
    whisper.update_many(path, [(start + k * step, v) for k, v in enumerate(values) if v is not None])
"""


def write_whisper(storage_dir: str, series: dict, n: int, start: int, step: int) -> None:
    """Whisper files of `series` (name -> values, None = gap) through the graphite-web reference venv."""
    import json
    spec = os.path.join(storage_dir, "series.json")
    os.makedirs(storage_dir, exist_ok=True)
    with open(spec, "w") as f:
        json.dump([[k, v] for k, v in series.items()], f)
    subprocess.run([str(GWREF_VENV / "bin" / "python"), "-c", WHISPER_WRITER, storage_dir, spec, str(n),
                    str(start), str(step)], check=True)


def load_plaintext(srv: "Plumbago", series: dict, n: int, start: int, step: int) -> None:
    """Carbon plaintext into plumbago, time-major like a live feed; waits until every point is written."""
    import httpx
    import numpy as np
    names = list(series)
    ts = (start + step * np.arange(n)).astype(str)
    expected = 0
    with socket.create_connection(("127.0.0.1", srv.carbon_port)) as s:
        for k in range(0, n, 60):
            lines = []
            for name in names:
                for j, v in enumerate(series[name][k:k + 60]):
                    if v is not None:
                        lines.append(f"{name} {v!r} {ts[k + j]}\n")
            expected += len(lines)
            s.sendall("".join(lines).encode())
    deadline = time.time() + 900
    while time.time() < deadline:
        text = httpx.get(srv.url + "/metrics").text
        done = [float(l.split()[1]) for l in text.splitlines() if l.startswith("plumbago_samples_written_total ")]
        if done and done[0] >= expected:
            return
        time.sleep(0.5)
    raise RuntimeError("plumbago did not take every point")


def wait_compacted(srv: "Plumbago", timeout: float = 600) -> None:
    """Wait until a maintenance round merged nothing: measurements must not race background compaction."""
    import httpx
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in httpx.get(srv.url + "/metrics").text.splitlines():
            if line.startswith("plumbago_compaction_last_merged ") and float(line.split()[1]) == 0:
                return
        time.sleep(1)
