"""Node actions joined with the scheduler and file storage, through `headwater serve`:
a node action scheduled from a mutation runs once and its job records success (or
failure, with the error); a cron naming a node action runs it; inside it,
``ctx.storage`` store/get/getUrl (over the server's own URLs), ``ctx.scheduler``
and ``getRequestMetadata().scheduledFunctionId`` work; the function log on the
server's stderr labels scheduled and cron runs with Convex's caller names."""

from __future__ import annotations

import json
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
APP = Path(__file__).resolve().parent / "node_scheduling_app" / "convex"
STEP_TIMEOUT_S = 120
WAIT_S = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("node-scheduling")
    project = convex_cli.make_project(root, APP)
    stderr_path = root / "serve.stderr"
    with stderr_path.open("w") as stderr, Serve(root / "data", stderr=stderr) as serve:
        serve.project = project
        serve.stderr_path = stderr_path
        done = convex_cli.npx_convex(serve, "deploy", "--yes", timeout_s=STEP_TIMEOUT_S)
        assert done.returncode == 0, done.stdout + done.stderr
        yield serve


def call(server: Serve, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
    body = json.dumps({"path": path, "args": args or {}, "format": "json"}).encode()
    request = urllib.request.Request(
        f"{server.url}/api/{kind}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=STEP_TIMEOUT_S) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["value"]


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runs_tagged(server: Serve, tag: str) -> list[dict[str, Any]]:
    return [r for r in call(server, "query", "jobs:runs") if r["tag"] == tag]


def finished_job(server: Serve, job_id: str) -> dict[str, Any]:
    def done() -> Any:
        job = call(server, "query", "jobs:job", {"id": job_id})
        return job if job["state"]["kind"] not in ("pending", "inProgress") else None

    return wait_for(done, f"job {job_id} to finish")


def test_a_node_action_scheduled_from_a_mutation_runs_once_with_storage_and_scheduler(server):
    job_id = call(server, "mutation", "jobs:scheduleNode", {"tag": "first", "fail": False})
    job = finished_job(server, job_id)
    assert job["state"] == {"kind": "success"}
    assert job["name"] == "nodeWork.js:work"
    (run,) = wait_for(lambda: runs_tagged(server, "first"), "the node action's run")
    details = run["details"]
    assert details["ownId"] == job_id and run["scheduledFunctionId"] == job_id
    assert details["text"] == "hello first" and details["type"] == "text/plain"
    assert details["served"] == "hello first"
    # ctx.scheduler from the node action: the V8 mutation it scheduled ran, as its own job.
    (scheduled,) = wait_for(lambda: runs_tagged(server, "first-v8"), "the V8 job")
    assert scheduled["scheduledFunctionId"] not in (None, job_id)
    time.sleep(1.5)  # no second run
    assert len(runs_tagged(server, "first")) == 1


def test_a_failing_scheduled_node_action_fails_its_job_with_the_error(server):
    job_id = call(server, "mutation", "jobs:scheduleNode", {"tag": "bad", "fail": True})
    job = finished_job(server, job_id)
    assert job["state"]["kind"] == "failed"
    assert "node job bad failed" in job["state"]["error"]


def test_a_cron_runs_a_node_action(server):
    (run, *_) = wait_for(lambda: runs_tagged(server, "cron"), "the cron's node action")
    assert run["details"]["ownId"] is None and run["scheduledFunctionId"] is None


def test_a_client_call_has_no_scheduled_function_id(server):
    assert call(server, "action", "nodeWork:direct") == {"ownId": None}


def test_the_function_log_labels_scheduled_and_cron_runs(server):
    call(server, "mutation", "jobs:scheduleNode", {"tag": "logged", "fail": False})
    wait_for(lambda: runs_tagged(server, "logged"), "the logged run")

    def lines() -> list[str]:
        text = server.stderr_path.read_text()
        found = [line for line in text.splitlines() if "nodeWork:" in line]
        has_job = any("nodeWork:work (from Scheduler)" in line for line in found)
        has_cron = any("nodeWork:tick (from Cron)" in line for line in found)
        return found if has_job and has_cron else []

    found = wait_for(lines, "the scheduled and cron runs in the log")
    client = [line for line in found if "nodeWork:direct" in line]
    assert all("(from" not in line for line in client)
