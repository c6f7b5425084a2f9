"""A Convex developer's whole day with the official CLI (npm convex 1.48) against
`headwater serve`, in one story: deploy an app whose module imports ``../lib``,
call it, change one module and deploy again, `dev --once`, environment
variables seen by a function, `logs` showing a call's console.log, `data`, and
`export` then `import` into a second fresh server giving the same documents.

The CLI gets nothing but ``CONVEX_SELF_HOSTED_URL`` and
``CONVEX_SELF_HOSTED_ADMIN_KEY`` (and the switches that keep it on loopback).
The step-by-step refusals live beside each command's own tests
(tests/e2e/test_official_cli_push.py, tests/gateway/test_cli_data_export_import.py,
tests/gateway/test_env_api.py, tests/gateway/test_function_log_cli.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
from cli_process import CONVEX_CLI, Serve, convex_cli_env  # noqa: E402
from convex_cli import npx_convex  # noqa: E402

pytestmark = pytest.mark.slow
APP = Path(__file__).parent / "cli_app"
LOGS_WAIT_S = 45


def copy_app(root: Path) -> Path:
    project = root / "project"
    shutil.copytree(APP, project)
    (project / "node_modules").symlink_to(ROOT / "js" / "node_modules")
    return project


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout + done.stderr


def run(server: Serve, *args: str) -> str:
    return ok(npx_convex(server, "run", *args)).strip()


def logs_while_calling(server: Serve) -> str:
    """`npx convex logs` output while `notes:add` is called until a call shows in it."""
    tail = subprocess.Popen(
        [str(CONVEX_CLI), "logs"],
        cwd=server.project,
        env=convex_cli_env(server.url, server.admin_key),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(tail.stdout), daemon=True)
    reader.start()
    try:
        # The CLI prints only what happens after its first poll: call until one shows.
        deadline = time.monotonic() + LOGS_WAIT_S
        while time.monotonic() < deadline and not any("logged" in line for line in printed):
            run(server, "notes:add", '{"text": "logged"}')
            time.sleep(0.5)
    finally:
        os.kill(tail.pid, signal.SIGTERM)
        tail.wait(20)
        reader.join(5)
        tail.stdout.close()
        tail.stderr.close()
    return "".join(printed)


def test_a_convex_developers_day(tmp_path):
    project = copy_app(tmp_path)
    with Serve(tmp_path / "data") as first:
        first.project = project
        ok(npx_convex(first, "deploy", "--yes"))
        run(first, "notes:add", '{"text": "  hello "}')
        assert "note: hello" in run(first, "notes:list")  # ../lib/format.ts did the trimming
        assert run(first, "notes:version") == '"v1"'

        notes = project / "convex" / "notes.ts"
        notes.write_text(notes.read_text().replace('"v1"', '"v2"'))
        ok(npx_convex(first, "deploy", "--yes"))
        assert run(first, "notes:version") == '"v2"'
        ok(npx_convex(first, "dev", "--once"))

        ok(npx_convex(first, "env", "set", "GREETING", "good morning"))
        assert "GREETING=good morning" in ok(npx_convex(first, "env", "list"))
        assert run(first, "notes:greeting") == '"good morning"'
        ok(npx_convex(first, "env", "remove", "GREETING"))
        assert run(first, "notes:greeting") == '"no greeting"'

        shown = logs_while_calling(first)
        assert "[LOG] 'adding' 'logged'" in shown, shown

        assert "note: hello" in ok(npx_convex(first, "data", "notes"))
        listed = ok(npx_convex(first, "data", "notes", "--format", "jsonl"))
        snapshot = tmp_path / "snapshot.zip"
        ok(npx_convex(first, "export", "--path", str(snapshot)))

    with Serve(tmp_path / "second") as second:
        second.project = project
        ok(npx_convex(second, "import", str(snapshot), "-y"))
        assert ok(npx_convex(second, "data", "notes", "--format", "jsonl")) == listed
