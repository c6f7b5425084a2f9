"""An app built from npm components, end to end: tests/e2e/components_app uses
@convex-dev/rate-limiter (twice, under two names), aggregate, sharded-counter,
migrations and workpool at pinned versions, deployed by the official CLI (npm
convex 1.48) to `headwater serve` and driven through the HTTP API and the
official JS clients. Each component does what its README says; the two
rate-limiter instances keep their own tables; a component's tables are exported,
imported and read at a past timestamp like the app's; an admin calls a
component's function by its component path.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
from cli_process import Serve, headwater  # noqa: E402
from convex_cli import npx_convex  # noqa: E402

pytestmark = pytest.mark.slow
APP = Path(__file__).parent / "components_app"
CLIENT_SCRIPT = Path(__file__).parent / "js" / "components_client.mjs"
DEPLOY_TIMEOUT_S = 180
BACKGROUND_WAIT_S = 45  # the workpool's and the migration's scheduled runs
COMPONENTS = ("rateLimiter", "signupLimiter", "scoreAggregate", "shardedCounter", "migrations")


class CallFailed(Exception):
    """A function's own error, as the HTTP API answered it."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("errorMessage"))
        self.message = answer.get("errorMessage", "")
        self.data = answer.get("errorData")


def copy_app(root: Path) -> Path:
    """The app in a project folder of its own: its node_modules hard-linked (the CLI
    names components by their path under the project, so no symlink to elsewhere),
    without the committed ``convex/_generated`` (the deploy's codegen writes it)."""
    project = root / "project"

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(APP, project, symlinks=True, copy_function=link_or_copy)
    shutil.rmtree(project / "convex" / "_generated")
    return project


def deploy(server: Serve) -> str:
    done = npx_convex(server, "deploy", "--yes", timeout_s=DEPLOY_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("components")
    with Serve(root / "data") as server:
        server.project = copy_app(root)
        server.deploy_output = deploy(server)
        yield server


def post(server: Serve, endpoint: str, body: dict[str, Any], admin: bool = False) -> Any:
    headers = {"Content-Type": "application/json"}
    if admin:
        headers["Authorization"] = f"Convex {server.admin_key}"
    request = urllib.request.Request(
        f"{server.url}/api/{endpoint}", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def call(server: Serve, kind: str, path: str, args: dict[str, Any] | None = None, **extra: Any):
    """The function's value; its error raised as ``CallFailed``."""
    admin = kind == "function"
    answer = post(server, kind, {"path": path, "args": args or {}, **extra}, admin=admin)
    if answer["status"] != "success":
        raise CallFailed(answer)
    return answer["value"]


def query(server: Serve, path: str, args: dict[str, Any] | None = None):
    return call(server, "query", path, args)


def mutation(server: Serve, path: str, args: dict[str, Any] | None = None):
    return call(server, "mutation", path, args)


def wait_for(description: str, read, done, timeout_s: float = BACKGROUND_WAIT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {description}; last: {value!r}")
        time.sleep(0.2)


# --- deploy ----------------------------------------------------------------------------------


def test_the_official_cli_deploys_the_components_and_generates_their_api(app):
    generated = (app.project / "convex" / "_generated" / "api.d.ts").read_text()
    for name in (*COMPONENTS, "jobs"):
        assert f"{name}:" in generated or f'"{name}"' in generated, name
    # A second deploy of the same code is accepted and changes nothing it runs.
    mutation(app, "counters:add", {"name": "redeploy", "n": 2})
    deploy(app)
    assert query(app, "counters:count", {"name": "redeploy"}) == 2


def test_serve_functions_runs_the_app_with_its_components(tmp_path):
    with Serve(tmp_path / "data", "--functions", str(APP / "convex")) as server:
        mutation(server, "counters:add", {"name": "served", "n": 4})
        assert query(server, "counters:count", {"name": "served"}) == 4
        assert mutation(server, "limits:send", {"key": "served"})["ok"] is True


# --- rate limiter ----------------------------------------------------------------------------


def test_a_token_bucket_refuses_past_its_capacity_with_retry_after(app):
    statuses = [mutation(app, "limits:send", {"key": "alice"}) for _ in range(4)]
    assert [s["ok"] for s in statuses] == [True, True, True, False]
    # 3 per minute: the next token is at most a third of a minute away.
    assert 0 < statuses[3]["retryAfter"] <= 20_000
    assert query(app, "limits:check", {"key": "alice"})["ok"] is False
    assert mutation(app, "limits:send", {"key": "bob"})["ok"] is True  # its own bucket
    with pytest.raises(CallFailed) as refused:
        mutation(app, "limits:sendOrThrow", {"key": "alice"})
    assert refused.value.data["kind"] == "RateLimited"
    assert refused.value.data["name"] == "send" and refused.value.data["retryAfter"] > 0
    mutation(app, "limits:reset", {"key": "alice"})
    assert mutation(app, "limits:send", {"key": "alice"})["ok"] is True


def test_a_fixed_window_refuses_until_the_next_window(app):
    statuses = [mutation(app, "limits:signup") for _ in range(3)]
    assert [s["ok"] for s in statuses] == [True, True, False]
    assert 0 < statuses[2]["retryAfter"] <= 3_600_000


def test_a_failed_mutation_gives_its_token_back(app):
    for _ in range(3):
        with pytest.raises(CallFailed) as failed:
            mutation(app, "limits:sendThenFail", {"key": "carol"})
        assert "failed after taking a token" in failed.value.message
    statuses = [mutation(app, "limits:send", {"key": "carol"}) for _ in range(4)]
    assert [s["ok"] for s in statuses] == [True, True, True, False]


def test_two_instances_of_one_component_keep_their_own_state(app):
    for _ in range(3):
        mutation(app, "limits:send", {"key": "dave"})
    assert mutation(app, "limits:send", {"key": "dave"})["ok"] is False
    # signupLimiter has a limit of the same name and key, in its own tables.
    assert all(mutation(app, "limits:sendOther", {"key": "dave"})["ok"] for _ in range(10))
    assert mutation(app, "limits:sendOther", {"key": "dave"})["ok"] is False
    rows = streamed_rows(app)
    keyed = {(r["_component"], r.get("key")) for r in rows if r["_table"] == "rateLimits"}
    assert ("rateLimiter", "dave") in keyed and ("signupLimiter", "dave") in keyed
    assert not any(r["_table"] == "rateLimits" and r["_component"] == "" for r in rows)
    # The official CLI lists one instance's table, not the other's nor the app's.
    done = npx_convex(
        app, "data", "--component", "signupLimiter", "rateLimits", "--format", "jsonl"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {r.get("key") for r in listed} == {"dave"}, listed


# --- aggregate -------------------------------------------------------------------------------


def test_the_aggregate_counts_and_sums_the_table(app):
    ids = [
        mutation(app, "scores:add", {"player": p, "points": n})
        for p, n in (("ann", 10), ("ben", 25), ("cat", 7), ("dan", 40))
    ]
    stats = query(app, "scores:stats")
    assert stats == {"count": 4, "sum": 82, "max": 40, "tableCount": 4}
    assert query(app, "scores:stats", {"atLeast": 10})[("count")] == 3
    assert query(app, "scores:stats", {"atLeast": 10})["sum"] == 75
    mutation(app, "scores:setPoints", {"id": ids[2], "points": 70})
    mutation(app, "scores:remove", {"id": ids[3]})
    assert query(app, "scores:stats") == {"count": 3, "sum": 105, "max": 70, "tableCount": 3}


# --- sharded counter -------------------------------------------------------------------------


def test_the_sharded_counter_totals_its_shards(app):
    for _ in range(5):
        mutation(app, "counters:inc", {"name": "clicks"})
    mutation(app, "counters:add", {"name": "clicks", "n": 10})
    mutation(app, "counters:dec", {"name": "clicks"})
    mutation(app, "counters:inc", {"name": "views"})
    assert query(app, "counters:count", {"name": "clicks"}) == 14
    assert query(app, "counters:count", {"name": "views"}) == 1
    shards = [
        r
        for r in streamed_rows(app)
        if r["_component"] == "shardedCounter" and r.get("name") == "clicks"
    ]
    assert 1 <= len(shards) <= 4 and sum(r["value"] for r in shards) == 14


# --- migrations ------------------------------------------------------------------------------


def test_a_migration_runs_in_batches_to_completion(app):
    mutation(app, "migrations:seed", {"n": 10})
    assert query(app, "migrations:statuses").count(None) == 7
    mutation(app, "migrations:start")
    status = wait_for(
        "the migration to finish",
        lambda: query(app, "migrations:status")[0],
        lambda s: s.get("state") == "success",
    )
    assert status["isDone"] is True and status["processed"] == 10
    statuses = query(app, "migrations:statuses")
    assert statuses.count("active") == 7 and statuses.count("kept") == 3
    # Run again: already done, nothing rewritten.
    mutation(app, "migrations:start")
    assert query(app, "migrations:status")[0]["state"] == "success"


# --- workpool --------------------------------------------------------------------------------


def test_the_workpool_runs_enqueued_work_and_calls_on_complete(app):
    work_ids = mutation(app, "work:start", {"n": 21})
    assert len(work_ids) == 3 and len(set(work_ids)) == 3
    completions = wait_for(
        "three onComplete calls",
        lambda: query(app, "work:completions"),
        lambda c: len(c) >= 3,
    )
    assert completions == [
        {"job": "double", "kind": "success", "returnValue": 42},
        {"job": "fail", "kind": "failed", "returnValue": completions[1]["returnValue"]},
        {"job": "record", "kind": "success", "returnValue": 21},
    ]
    assert "this job fails" in completions[1]["returnValue"]
    assert query(app, "work:results") == [{"job": "record", "value": 21}]
    for work_id in work_ids:
        assert query(app, "work:status", {"id": work_id}) == {"state": "finished"}


# --- the official JS clients -----------------------------------------------------------------


def test_the_js_clients_see_component_state_live(app):
    done = subprocess.run(
        [shutil.which("node") or "node", str(CLIENT_SCRIPT), app.url, str(ROOT / "js")],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    steps = {}
    for line in done.stdout.splitlines():
        step = json.loads(line)
        steps[step["step"]] = step
    assert done.returncode == 0, done.stdout + done.stderr
    assert steps["counter"]["seen"] == [0, 1, 2, 3]
    assert steps["limit"]["errorData"]["kind"] == "RateLimited"
    assert steps["limit"]["oks"] == [True, True, True]
    assert steps["aggregate"]["count"] == steps["aggregate"]["before"] + 1


# --- admin APIs, history, export and import --------------------------------------------------


def test_an_admin_calls_a_component_function_by_its_path(app):
    mutation(app, "counters:add", {"name": "direct", "n": 5})
    value = call(
        app, "function", "public:count", {"name": "direct"}, componentPath="shardedCounter"
    )
    assert value == 5
    call(
        app,
        "function",
        "public:add",
        {"name": "direct", "count": 2, "shard": 0},
        componentPath="shardedCounter",
    )
    assert query(app, "counters:count", {"name": "direct"}) == 7
    # The component's functions are not the app's: no public function of that name.
    with pytest.raises(CallFailed) as missing:
        query(app, "public:count", {"name": "direct"})
    assert "Could not find public function" in missing.value.message
    # The official CLI's `run --component` reaches it the same way.
    done = npx_convex(
        app, "run", "--component", "shardedCounter", "public:count", '{"name": "direct"}'
    )
    assert done.returncode == 0 and done.stdout.strip() == "7", done.stdout + done.stderr


def test_an_admin_call_with_a_component_path_needs_the_admin_key(app):
    body = {"path": "public:count", "args": {"name": "x"}, "componentPath": "shardedCounter"}
    request = urllib.request.Request(
        f"{app.url}/api/function",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()  # the refusal holds the connection
    assert refused.value.code in (401, 403)


def test_a_component_table_is_read_at_a_past_timestamp(app):
    mutation(app, "counters:add", {"name": "history", "n": 3})
    then = post(app, "query_ts", {})["ts"]
    mutation(app, "counters:add", {"name": "history", "n": 4})
    past = post(
        app, "query_at_ts", {"path": "counters:count", "args": {"name": "history"}, "ts": then}
    )
    assert past["status"] == "success" and past["value"] == 3
    assert query(app, "counters:count", {"name": "history"}) == 7
    assert struct.unpack("<Q", base64.b64decode(then))[0] > 0


def streamed_rows(server: Serve) -> list[dict[str, Any]]:
    """Every document of the deployment, from the streaming export's snapshot pages."""
    rows: list[dict[str, Any]] = []
    cursor: dict[str, Any] = {}
    while True:
        query_string = "&".join(f"{k}={v}" for k, v in cursor.items())
        request = urllib.request.Request(
            f"{server.url}/api/list_snapshot?{query_string}",
            headers={"Authorization": f"Convex {server.admin_key}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            page = json.loads(response.read())
        rows.extend(page["values"])
        if not page["hasMore"]:
            return rows
        cursor = {"snapshot": page["snapshot"], "cursor": page["cursor"]}


def test_export_then_import_carries_component_tables(app, tmp_path):
    mutation(app, "counters:add", {"name": "exported", "n": 9})
    mutation(app, "scores:add", {"player": "exp", "points": 1})
    before = query(app, "scores:stats")
    snapshot = tmp_path / "snapshot.zip"
    done = npx_convex(app, "export", "--path", str(snapshot))
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(snapshot) as archive:
        names = archive.namelist()
    assert any(n.startswith("_components/shardedCounter/") for n in names), names

    # A second server gets the code from `headwater deploy`, then the data from the zip.
    with Serve(tmp_path / "second") as second:
        second.project = app.project
        pushed = headwater(
            "deploy",
            str(app.project / "convex"),
            "--url",
            second.url,
            "--admin-key",
            second.admin_key,
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        done = npx_convex(second, "import", "--replace-all", "-y", str(snapshot))
        assert done.returncode == 0, done.stdout + done.stderr
        assert query(second, "counters:count", {"name": "exported"}) == 9
        assert query(second, "scores:stats") == before
        # The imported aggregate goes on working.
        mutation(second, "scores:add", {"player": "new", "points": 2})
        assert query(second, "scores:stats")["sum"] == before["sum"] + 2
