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
