"""An app with "use node" actions pushed by the official CLI to `headwater serve` and
called by the official npm client: node:crypto, a package from the app's package.json
(a local `file:` package, which the CLI bundles), calls from and to V8 functions,
a ConvexError's data, and a worker that exits without harming the next call; the
same node actions run by the scheduler (from a V8 mutation) and from an HTTP action."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
import convex_cli  # noqa: E402
from cli_process import Serve  # noqa: E402

pytestmark = pytest.mark.slow
NODE_APP = ROOT / "tests" / "udf" / "fixtures" / "nodeapp"
JS_DIR = ROOT / "js"
STEP_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("node-e2e")
    project = root / "project"
    shutil.copytree(NODE_APP, project)
    modules = project / "node_modules"
    modules.mkdir()
    for entry in (JS_DIR / "node_modules").iterdir():  # the convex package and its deps
        (modules / entry.name).symlink_to(entry)
    shutil.copytree(project / "vendor" / "hw-greeter", modules / "hw-greeter")
    with Serve(root / "data") as serve:
        serve.project = project
        done = convex_cli.npx_convex(serve, "deploy", "--yes", timeout_s=STEP_TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        yield serve


def test_the_official_cli_deploys_node_actions_and_the_npm_client_calls_them(server):
    client = subprocess.run(
        [
            "node",
            str(ROOT / "tests" / "e2e" / "js" / "node_actions_client.mjs"),
            server.url,
            str(JS_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert client.returncode == 0, client.stderr
    out = json.loads(client.stdout)
    digest = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
    assert out["sha256"] == digest and out["viaV8"] == digest and out["after"] == digest
    assert out["greet"] == "Hello ada from linux (YWRh)"
    assert out["roundTrip"]["notes"] == ["from npm"] and out["roundTrip"]["doubled"] == 2
    assert out["convexError"]["data"] == {"code": 42, "why": "bad"}
    assert "process.exit() called with exit code 3" in out["exits"]["message"]


def call(server: Serve, kind: str, path: str, args: dict[str, Any]) -> Any:
    body = json.dumps({"path": path, "args": args, "format": "json"}).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{server.url}/api/{kind}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["value"]


def test_a_node_action_using_a_package_runs_when_the_scheduler_calls_it(server):
    job_id = call(server, "mutation", "notes:scheduleGreeting", {"name": "bo"})
    deadline = time.monotonic() + 30
    while call(server, "query", "notes:job", {"id": job_id})["state"]["kind"] != "success":
        assert time.monotonic() < deadline, call(server, "query", "notes:job", {"id": job_id})
        time.sleep(0.2)
    notes = call(server, "query", "notes:list", {})
    assert notes.count("Hello bo from linux (Ym8=) 3d099d0f") == 1


def test_an_http_action_calls_a_node_action(server):
    with urllib.request.urlopen(f"{server.site_url}/greet?name=ada", timeout=30) as response:
        assert json.loads(response.read()) == {"greeting": "Hello ada from linux (YWRh)"}
