"""Deployment environment variables through a real `headwater serve`: the HTTP
endpoints, `headwater env ...`, and the official `npx convex env ...` and
`npx convex run --watch` (its live subscription re-runs when a variable changes).

The official CLI talks to the server on loopback only: Sentry is off (``CI``),
and its version and provisioning hosts point at a closed loopback port.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from cli_process import (  # noqa: E402
    CONVEX_CLI,
    ROOT,
    Serve,
    assert_one_line_error,
    convex_cli_env,
    headwater,
)

pytestmark = pytest.mark.slow
ENV_APP = ROOT / "tests" / "udf" / "fixtures" / "env" / "convex"
STEP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("env")
    project = root / "project"
    shutil.copytree(ENV_APP, project / "convex")
    (project / "package.json").write_text('{"name": "env-test", "dependencies": {"convex": "*"}}')
    (project / "node_modules").symlink_to(ROOT / "js" / "node_modules")
    with Serve(root / "data", "--functions", str(project / "convex")) as running:
        running.root = root
        running.project = project
        yield running


def post(server, route, body, key=None):
    request = urllib.request.Request(
        server.url + route,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Convex {key or server.admin_key}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def listed(server):
    request = urllib.request.Request(
        server.url + "/api/list_environment_variables",
        headers={"Authorization": f"Convex {server.admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["environmentVariables"]


def query(server, path, args):
    request = urllib.request.Request(
        server.url + "/api/query",
        data=json.dumps({"path": path, "args": args}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["value"]


def set_vars(server, **values):
    changes = [{"name": n, "value": v} for n, v in values.items()]
    status, body = post(server, "/api/update_environment_variables", {"changes": changes})
    assert status == 200, body


def convex_env(server):
    return convex_cli_env(server.url, server.admin_key)


def npx_convex(server, *args):
    return subprocess.run(
        [str(CONVEX_CLI), *args],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        cwd=server.project,
        env=convex_env(server),
        stdin=subprocess.DEVNULL,
    )


def test_a_batch_is_one_change_and_functions_see_it(server):
    set_vars(server, API_HOST="example.test", REMOVED_SOON="x")
    assert query(server, "env:read", {"name": "API_HOST"}) == "example.test"
    status, _ = post(
        server,
        "/api/update_environment_variables",
        {"changes": [{"name": "REMOVED_SOON", "value": None}, {"name": "MODE", "value": "on"}]},
    )
    assert status == 200
    assert listed(server) == {"API_HOST": "example.test", "MODE": "on"}
    assert query(server, "env:names", {}) == ["API_HOST", "MODE"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"name": "1BAD", "value": "x"}, "EnvironmentVariableNameInvalid"),
        ({"name": "BAD-NAME", "value": "x"}, "EnvironmentVariableNameInvalid"),
        ({"name": "N" * 257, "value": "x"}, "EnvironmentVariableNameTooLong"),
        ({"name": "BIG", "value": "v" * (8 * 1024 + 1)}, "EnvironmentVariableValueTooLarge"),
    ],
)
def test_names_and_values_past_convex_limits_are_refused_and_change_nothing(server, change, code):
    before = listed(server)
    # A good change in the same batch is not applied either.
    body = {"changes": [{"name": "GOOD_ONE", "value": "y"}, change]}
    status, raw = post(server, "/api/update_environment_variables", body)
    assert status == 400
    assert json.loads(raw)["code"] == code
    assert listed(server) == before
    assert query(server, "env:read", {"name": "GOOD_ONE"}) is None


def test_the_limits_themselves_are_accepted(server):
    set_vars(server, **{"N" * 256: "v" * (8 * 1024)})
    assert listed(server)["N" * 256] == "v" * 8192
    status, _ = post(
        server, "/api/update_environment_variables", {"changes": [{"name": "N" * 256}]}
    )
    assert status == 200 and "N" * 256 not in listed(server)


def test_too_many_variables_are_refused(server):
    before = listed(server)
    changes = [{"name": f"MANY_{i}", "value": "1"} for i in range(513)]
    status, raw = post(server, "/api/update_environment_variables", {"changes": changes})
    assert status == 400 and json.loads(raw)["code"] == "EnvVarLimitMet"
    assert listed(server) == before


def test_the_endpoints_need_the_admin_key(server):
    status, raw = post(
        server, "/api/update_environment_variables", {"changes": []}, key="not-the-key"
    )
    assert status in (400, 401), raw
    request = urllib.request.Request(server.url + "/api/list_environment_variables")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    with refused.value:
        assert refused.value.code == 401


def test_headwater_env_commands_against_the_server(server):
    where = ("--url", server.url, "--admin-key", server.admin_key)
    done = headwater("env", "set", "CLI_VAR", "a value with spaces", *where)
    assert done.returncode == 0 and "Successfully set CLI_VAR" in done.stdout, done.stderr
    assert query(server, "env:read", {"name": "CLI_VAR"}) == "a value with spaces"
    done = headwater("env", "get", "CLI_VAR", *where)
    assert done.stdout == "a value with spaces\n"
    # Without --url: the server holding --data is found, with the key stored there.
    done = headwater("env", "list", "--data", str(server.root / "data"))
    assert "CLI_VAR=a value with spaces" in done.stdout.splitlines(), done.stderr
    line = assert_one_line_error(headwater("env", "set", "9LIVES", "x", *where))
    assert "EnvironmentVariableNameInvalid" in line
    done = headwater("env", "remove", "CLI_VAR", *where)
    assert done.returncode == 0 and "Successfully unset CLI_VAR" in done.stdout
    assert query(server, "env:read", {"name": "CLI_VAR"}) is None
    assert_one_line_error(headwater("env", "get", "CLI_VAR", *where), '"CLI_VAR" not found')


def test_official_convex_env_commands(server):
    done = npx_convex(server, "env", "set", "FROM_NPX", "npx value")
    assert done.returncode == 0, done.stderr
    assert query(server, "env:read", {"name": "FROM_NPX"}) == "npx value"
    done = npx_convex(server, "env", "get", "FROM_NPX")
    assert done.returncode == 0 and done.stdout.strip() == "npx value", done.stderr
    done = npx_convex(server, "env", "list", "--include-values")
    assert done.returncode == 0, done.stderr
    assert "FROM_NPX=npx value" in done.stdout.splitlines(), done.stdout
    done = npx_convex(server, "env", "set", "BAD-NAME", "x")
    assert done.returncode != 0 and "EnvironmentVariableNameInvalid" in done.stderr
    done = npx_convex(server, "env", "remove", "FROM_NPX")
    assert done.returncode == 0, done.stderr
    assert "FROM_NPX" not in listed(server)
    done = npx_convex(server, "env", "get", "FROM_NPX")
    assert "not found" in done.stderr


def test_a_live_subscription_reruns_when_the_variable_changes(server):
    set_vars(server, WATCHED="first")
    watcher = subprocess.Popen(
        [str(CONVEX_CLI), "run", "env:read", '{"name": "WATCHED"}', "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=server.project,
        env=convex_env(server),
        stdin=subprocess.DEVNULL,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.put(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert lines.get(timeout=STEP_TIMEOUT_S) == '"first"'
        set_vars(server, WATCHED="second")
        assert lines.get(timeout=STEP_TIMEOUT_S) == '"second"'
        set_vars(server, WATCHED=None)
        assert lines.get(timeout=STEP_TIMEOUT_S) == "null"
    finally:
        watcher.kill()
        watcher.wait(10)
        reader.join(10)
        assert watcher.stdout is not None
        watcher.stdout.close()


def test_variables_survive_a_restart_and_are_exported(tmp_path):
    project = tmp_path / "convex"
    shutil.copytree(ENV_APP, project)
    data = tmp_path / "data"
    with Serve(data, "--functions", str(project)) as first:
        set_vars(first, KEPT="across restarts")
    with Serve(data) as second:
        assert listed(second) == {"KEPT": "across restarts"}
        assert query(second, "env:read", {"name": "KEPT"}) == "across restarts"
    done = headwater("export", "--out", str(tmp_path / "snap.zip"), "--data", str(data))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "snap.zip") as zf:
        lines = zf.read("_environment_variables/documents.jsonl").decode().splitlines()
    exported = [json.loads(line) for line in lines]
    assert [(d["name"], d["value"]) for d in exported] == [("KEPT", "across restarts")]


def test_headwater_env_on_a_data_folder_no_server_holds(tmp_path):
    project = tmp_path / "convex"
    shutil.copytree(ENV_APP, project)
    data = tmp_path / "data"
    with Serve(data, "--functions", str(project)):
        pass  # a data folder with the app deployed, and no server now
    done = headwater("env", "set", "OFFLINE", "set without a server", "--data", str(data))
    assert done.returncode == 0, done.stderr
    done = headwater("env", "list", "--data", str(data))
    assert done.stdout.splitlines() == ["OFFLINE=set without a server"], done.stderr
    line = assert_one_line_error(headwater("env", "set", "X", "v" * 8193, "--data", str(data)))
    assert "EnvironmentVariableValueTooLarge" in line
    with Serve(data) as server:
        assert query(server, "env:read", {"name": "OFFLINE"}) == "set without a server"
