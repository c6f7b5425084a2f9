"""`headwater deploy` and `serve --functions` never remove every function by accident.

A real `headwater serve` runs the chat example; deploys of a missing folder, an
empty folder, a project folder and a folder whose modules define no function
are refused (client side, and server side for what the client cannot see),
and the server still answers its queries afterwards. Removing everything takes
`--allow-empty`. The start banner suggests a query the served app really has.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from cli_process import CHAT_APP, ROOT, Serve, assert_one_line_error, headwater  # noqa: E402

pytestmark = pytest.mark.slow
STORE_APP = ROOT / "tests" / "udf" / "fixtures" / "store" / "convex"
NO_FUNCTIONS = "export const greeting = 'hello';\n"


def query(url: str, path: str) -> dict:
    request = urllib.request.Request(
        f"{url}/api/query",
        data=json.dumps({"path": path, "args": {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    functions = root / "convex"
    shutil.copytree(CHAT_APP, functions)
    with Serve(root / "data", "--functions", str(functions)) as server:
        server.root = root
        yield server


def deploy(server: Serve, folder: Path, *extra: str):
    key = server.admin_key
    return headwater("deploy", str(folder), "--url", server.url, "--admin-key", key, *extra)


def test_deploys_that_would_remove_every_function_are_refused(chat_server):
    root = chat_server.root
    empty = root / "empty"
    empty.mkdir()
    assert_one_line_error(deploy(chat_server, root / "missing"), "does not exist")
    assert_one_line_error(deploy(chat_server, empty), "no function modules", "--allow-empty")
    project = root / "project"
    shutil.copytree(CHAT_APP, project / "convex")
    assert_one_line_error(deploy(chat_server, project), "deploy its convex folder")
    # A module that defines no function passes the client's look at the folder; the
    # server's analysis refuses it.
    helpers = root / "helpers"
    helpers.mkdir()
    (helpers / "constants.ts").write_text(NO_FUNCTIONS)
    assert_one_line_error(deploy(chat_server, helpers), "EmptyDeployment", "--allow-empty")
    assert not (empty / "_generated").exists() and not (project / "_generated").exists()
    assert query(chat_server.url, "channels:list")["status"] == "success"


def test_allow_empty_removes_everything_when_asked(chat_server, tmp_path):
    (tmp_path / "constants.ts").write_text(NO_FUNCTIONS)
    done = deploy(chat_server, tmp_path, "--allow-empty")
    assert done.returncode == 0, done.stderr
    assert "Deployed 0 functions" in done.stdout and "messages.js" in done.stdout
    assert query(chat_server.url, "channels:list")["status"] == "error"
    again = deploy(chat_server, chat_server.root / "convex")
    assert again.returncode == 0, again.stderr
    assert query(chat_server.url, "channels:list")["status"] == "success"


def test_serve_refuses_a_functions_folder_that_would_remove_everything(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(STORE_APP, tmp_path / "convex")
    made = headwater(
        "run",
        "teams:create",
        '{"name": "a"}',
        "--data",
        str(data),
        "--functions",
        str(tmp_path / "convex"),
    )
    assert made.returncode == 0, made.stderr
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "constants.ts").write_text(NO_FUNCTIONS)
    for folder in (tmp_path / "helpers", tmp_path / "missing"):
        done = headwater(
            "serve", "--data", str(data), "--port", "0", "--functions", str(folder), timeout_s=60
        )
        assert_one_line_error(done)
    still = headwater("run", "teams:byName", '{"name": "a"}', "--data", str(data))
    assert still.returncode == 0 and json.loads(still.stdout)


def suggested_query(server: Serve) -> str:
    line = next(line for line in server.output if line.startswith("Try:"))
    path = re.search(r'"path": "([^"]+)"', line)
    assert path is not None, line
    return path[1]


def test_the_start_banner_suggests_a_query_of_the_served_app(chat_server, tmp_path):
    assert suggested_query(chat_server) == "channels:list"
    functions = tmp_path / "convex"
    shutil.copytree(STORE_APP, functions)
    with Serve(tmp_path / "data", "--functions", str(functions)) as server:
        # The store app's public queries that `{}` satisfies; not a mutation, not internal.
        assert suggested_query(server) in {"counters:hog", "counters:random"}


def test_the_banner_of_an_app_without_functions_says_how_to_deploy(tmp_path):
    with Serve(tmp_path / "data") as server:
        assert any(line.startswith("Deploy functions: headwater deploy") for line in server.output)
