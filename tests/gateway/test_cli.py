"""The `headwater` command line as a user runs it: run, codegen, replay."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from component_project import make_component_app

ROOT = Path(__file__).resolve().parents[2]
STORE_APP = ROOT / "tests" / "udf" / "fixtures" / "store" / "convex"


def headwater(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@pytest.fixture
def app(tmp_path):
    functions = tmp_path / "convex"
    shutil.copytree(STORE_APP, functions)
    return functions


def test_run_deploys_runs_and_prints_convex_json(app, tmp_path):
    data = str(tmp_path / "data")
    made = headwater(
        "run", "teams:create", '{"name": "a"}', "--data", data, "--functions", str(app)
    )
    assert made.returncode == 0, made.stderr
    team = json.loads(made.stdout)
    added = headwater(
        "run",
        "items:add",
        json.dumps(
            {
                "team": team,
                "title": "t",
                "count": {"$integer": "AQAAAAAAAAA="},
                "details": {"tags": []},
            }
        ),
        "--data",
        data,
        "--functions",
        str(app),
    )
    assert added.returncode == 0, added.stderr
    item = json.loads(
        headwater(
            "run", "items:get", json.dumps({"id": json.loads(added.stdout)}), "--data", data
        ).stdout
    )
    assert item["count"] == {"$integer": "AQAAAAAAAAA="}
    # Internal functions run too: the CLI acts with admin rights.
    assert json.loads(headwater("run", "teams:secret", "--data", data).stdout) == "internal only"


def test_run_at_a_past_timestamp(app, tmp_path):
    data = str(tmp_path / "data")
    headwater("run", "teams:create", '{"name": "a"}', "--data", data, "--functions", str(app))
    from engine import Database

    with Database.open(data) as db:
        before = db.latest_ts()
    headwater("run", "counters:increment", '{"name": "c"}', "--data", data)
    now = headwater("run", "counters:value", '{"name": "c"}', "--data", data)
    then = headwater("run", "counters:value", '{"name": "c"}', "--data", data, "--ts", str(before))
    assert json.loads(now.stdout) == 1 and json.loads(then.stdout) == 0


def test_a_failing_function_exits_nonzero_with_the_users_file_and_line(app, tmp_path):
    data = str(tmp_path / "data")
    failed = headwater(
        "run", "items:finish", '{"id": "bogus"}', "--data", data, "--functions", str(app)
    )
    assert failed.returncode == 1
    assert "ArgumentValidationError" in failed.stderr
    team = json.loads(headwater("run", "teams:create", '{"name": "b"}', "--data", data).stdout)
    item = json.loads(
        headwater(
            "run",
            "items:add",
            json.dumps(
                {
                    "team": team,
                    "title": "t",
                    "count": {"$integer": "AAAAAAAAAAA="},
                    "details": {"tags": []},
                }
            ),
            "--data",
            data,
        ).stdout
    )
    headwater("run", "items:remove", json.dumps({"id": item}), "--data", data)
    thrown = headwater("run", "items:finish", json.dumps({"id": item}), "--data", data)
    assert thrown.returncode == 1
    assert "Uncaught ConvexError" in thrown.stderr and "items.ts:" in thrown.stderr
    assert headwater("run", "items:get", "{not json", "--data", data).returncode == 2


def test_codegen_writes_generated_files(tmp_path):
    functions = tmp_path / "convex"
    functions.mkdir()
    done = headwater("codegen", str(functions))
    assert done.returncode == 0, done.stderr
    names = {p.name for p in (functions / "_generated").iterdir()}
    assert {"server.js", "server.d.ts", "api.js", "api.d.ts"} <= names


def test_replay_rebuilds_and_reports_speed(app, tmp_path):
    data = str(tmp_path / "data")
    headwater("run", "teams:create", '{"name": "a"}', "--data", data, "--functions", str(app))
    done = headwater("replay", "--data", data)
    assert done.returncode == 0, done.stderr
    assert "entries/s" in done.stdout
    assert json.loads(headwater("run", "teams:byName", '{"name": "a"}', "--data", data).stdout)


def test_run_refuses_a_bad_component_path(app, tmp_path):
    data = str(tmp_path / "data")
    bad = headwater("run", "lib:check", "--component", "rate-limiter", "--data", data)
    assert bad.returncode == 2
    assert "--component 'rate-limiter': Identifier rate-limiter has invalid character '-'" in (
        bad.stderr
    )


def test_run_calls_the_function_of_a_component(tmp_path):
    functions = make_component_app(tmp_path / "app")
    data = str(tmp_path / "data")
    args = '{"name": "a", "count": 2}'
    added = headwater(
        "run",
        "lib:add",
        args,
        "--component",
        "counter",
        "--data",
        data,
        "--functions",
        str(functions),
    )
    assert added.returncode == 0, added.stderr
    got = headwater("run", "lib:get", '{"name": "a"}', "--component", "counter", "--data", data)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == 2
    # The app has no such function: the component's are only reachable through --component.
    app_side = headwater("run", "lib:get", '{"name": "a"}', "--data", data)
    assert app_side.returncode != 0
