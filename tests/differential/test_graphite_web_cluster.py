"""graphite-web 1.1.10 configured with plumbago as a cluster server finds and renders through it
(pickle/msgpack find and render, trailing-slash paths, local=1)."""
import json
import os
import subprocess
import textwrap

import pytest

from .conftest import DATASET, FROM, TOOL, UNTIL, VENV

DRIVER = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, os.environ["GWREF_TOOL"])
    import local_settings as base
    # graphite-web reads its settings module by name: make one that adds the cluster server
    import types
    mod = types.ModuleType("cluster_settings")
    mod.__dict__.update({k: v for k, v in vars(base).items() if k.isupper()})
    mod.CLUSTER_SERVERS = [os.environ["PLUMBAGO_ADDR"]]
    mod.STORAGE_FINDERS = ("graphite.finders.remote.RemoteFinder", "graphite.finders.standard.StandardFinder")
    mod.REMOTE_FIND_TIMEOUT = 10
    mod.REMOTE_FETCH_TIMEOUT = 30
    mod.REMOTE_RETRY_DELAY = 0
    sys.modules["cluster_settings"] = mod
    os.environ["GRAPHITE_SETTINGS_MODULE"] = "cluster_settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0, interactive=False)
    from django.test import Client
    c = Client()
    out = []
    for path, params in json.loads(sys.argv[1]):
        r = c.get(path, params)
        out.append({"status": r.status_code, "body": r.content.decode()})
    print(json.dumps(out))
""")


def graphite_web_via_cluster(plumbago, requests):
    env = {**os.environ, "GWREF_TOOL": str(TOOL), "PLUMBAGO_ADDR": f"127.0.0.1:{plumbago.port}",
           "GWREF_STORAGE_DIR": str(plumbago.data_dir.parent / "gw-cluster")}
    r = subprocess.run([os.path.join(VENV, "bin", "python"), "-c", DRIVER, json.dumps(requests)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_graphite_web_finds_and_renders_through_plumbago(plumbago):
    requests = [
        ["/metrics/find/", {"query": "app.*"}],
        ["/render/", {"target": "app.web1.requests.count", "from": str(FROM), "until": str(UNTIL), "format": "json"}],
        ["/render/", {"target": "sumSeries(app.*.requests.count)", "from": str(FROM), "until": str(UNTIL),
                      "format": "json"}],
    ]
    find, render_one, render_sum = graphite_web_via_cluster(plumbago, requests)
    assert find["status"] == 200, find
    assert sorted(n["text"] for n in json.loads(find["body"])) == ["web1", "web2", "web3"]
    assert render_one["status"] == 200, render_one
    (series,) = json.loads(render_one["body"])
    want = [[p[1], p[0]] for p in DATASET["points"]["app.web1.requests.count"] if FROM < p[0] <= UNTIL]
    assert series["datapoints"] == want
    assert render_sum["status"] == 200
    assert json.loads(render_sum["body"])[0]["target"] == "sumSeries(app.*.requests.count)"
