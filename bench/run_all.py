"""`make bench`: every benchmark, each printing its ratio against a reference measured in the same run."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bytes_per_sample.py", "index_rss.py", "ingest_vs_carbon.py", "render_vs_graphite_web.py",
           "dashboard_vs_graphite_web.py", "prom_vs_prometheus.py"]

failed = []
for script in SCRIPTS:
    print(f"== {script}", flush=True)
    if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent).returncode != 0:
        failed.append(script)
print("missed targets or failed:", ", ".join(failed) if failed else "none")
sys.exit(1 if failed else 0)
