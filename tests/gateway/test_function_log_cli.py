"""The function log as a user meets it: `headwater serve`'s stderr (text, json, none)
and the official `npx convex logs` following a running server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.cli_process import CONVEX_CLI, Serve, convex_cli_env, headwater

NOTES_TS = """
import { mutation } from "./_generated/server";
import { v } from "convex/values";

export const add = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    console.log("adding", text);
    await ctx.db.insert("notes", { text });
    return null;
  },
});
export const fail = mutation({
  args: {},
  handler: async () => {
    throw new Error("the mill wheel broke\\nsecond line");
  },
});
"""
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \[M\] notes:add \d+ms ok$")


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    folder = tmp_path / "app" / "convex"
    folder.mkdir(parents=True)
    (folder / "notes.ts").write_text(NOTES_TS)
    return folder


def mutate(server: Serve, path: str, args: dict | None = None) -> dict:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        response = client.post("/api/mutation", json={"path": path, "args": args or {}})
    assert response.status_code == 200, response.text
    return response.json()


def served_stderr(tmp_path: Path, functions: Path, *extra: str) -> list[str]:
    """Two calls against `headwater serve`, then its stderr without the access log."""
    errors = tmp_path / "stderr.txt"
    with (
        errors.open("w") as sink,
        Serve(tmp_path / "data", "--functions", str(functions), *extra, stderr=sink) as server,
    ):
        mutate(server, "notes:add", {"text": "rye"})
        mutate(server, "notes:fail")
    lines = errors.read_text().splitlines()
    return [line for line in lines if "headwater." not in line and "method=" not in line]


def test_serve_prints_one_line_per_call_with_its_console_lines(tmp_path, functions):
    lines = served_stderr(tmp_path, functions)
    assert len(lines) == 3, lines
    assert LINE.match(lines[0]), lines
    assert lines[1] == "    [LOG] 'adding' 'rye'"
    assert re.match(
        r"^\d\d:\d\d:\d\d\.\d{3} \[M\] notes:fail \d+ms error: Uncaught Error: the mill wheel "
        r"broke$",
        lines[2],
    ), lines


def test_serve_log_format_json_is_one_object_per_line(tmp_path, functions):
    lines = served_stderr(tmp_path, functions, "--log-format", "json")
    entries = [json.loads(line) for line in lines]
    assert [(e["identifier"], e["error"] is None) for e in entries] == [
        ("notes:add", True),
        ("notes:fail", False),
    ]
    assert entries[0]["logLines"][0]["messages"] == ["'adding' 'rye'"]
    assert entries[0]["executionTime"] > 0


def test_serve_log_format_none_prints_no_calls(tmp_path, functions):
    assert served_stderr(tmp_path, functions, "--log-format", "none") == []


def test_npx_convex_logs_shows_a_console_log_of_a_call_made_meanwhile(tmp_path, functions):
    with Serve(tmp_path / "data", "--functions", str(functions)) as server:
        # The CLI's first poll only finds the head cursor; it prints what comes after.
        mutate(server, "notes:add", {"text": "before"})
        env = convex_cli_env(server.url, server.admin_key)
        env.pop("CONVEX_DEPLOYMENT", None)
        logs = subprocess.Popen(
            [str(CONVEX_CLI), "logs"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        printed: list[str] = []
        reader = threading.Thread(target=lambda: printed.extend(logs.stdout), daemon=True)
        reader.start()
        try:
            # Until the CLI (node starting up) has its cursor, a call is not shown: call
            # again each second, bounded, until one is.
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and not any("meanwhile" in x for x in printed):
                mutate(server, "notes:add", {"text": "meanwhile"})
                time.sleep(1)
        finally:
            os.kill(logs.pid, signal.SIGTERM)
            logs.wait(20)
            reader.join(5)
            err = logs.stderr.read()
            logs.stdout.close()
            logs.stderr.close()
    out = "".join(printed)
    assert "[CONVEX M(notes:add)] [LOG] 'adding' 'meanwhile'" in out, (out, err)
    assert "'before'" not in out


def test_a_headwater_run_mutation_beside_the_server_is_in_its_log(tmp_path, functions):
    errors = tmp_path / "stderr.txt"
    data = tmp_path / "data"
    with (
        errors.open("w") as sink,
        Serve(data, "--functions", str(functions), stderr=sink) as server,
    ):
        done = headwater("run", "notes:add", '{"text": "by run"}', "--data", str(data))
        assert done.returncode == 0, done.stderr
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            response = client.get(
                "/api/stream_function_logs",
                params={"cursor": 0},
                headers={"Authorization": f"Convex {server.admin_key}"},
            )
    [entry] = response.json()["entries"]
    assert (entry["udfType"], entry["identifier"]) == ("Mutation", "notes:add")
    assert entry["logLines"] == ["[LOG] 'adding' 'by run'"]  # not the CLI: plain strings
    assert "    [LOG] 'adding' 'by run'" in errors.read_text().splitlines()


def test_a_waiting_log_poll_does_not_hold_up_sigterm(tmp_path, functions):
    with Serve(tmp_path / "data", "--functions", str(functions)) as server:
        mutate(server, "notes:add", {"text": "head"})
        answers: list[httpx.Response] = []

        def wait_for_news() -> None:
            with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
                head = client.get(
                    "/api/stream_function_logs",
                    params={"cursor": 0},
                    headers={"Authorization": f"Convex {server.admin_key}"},
                ).json()["newCursor"]
                answers.append(
                    client.get(
                        "/api/stream_function_logs",
                        params={"cursor": head},
                        headers={"Authorization": f"Convex {server.admin_key}"},
                    )
                )

        poller = threading.Thread(target=wait_for_news)
        poller.start()
        time.sleep(1)  # the second poll is waiting for news that will not come
        started = time.monotonic()
        server.stop()
        stopped_s = time.monotonic() - started
        poller.join(10)
    assert server.process.returncode == 0
    assert stopped_s < 5, stopped_s  # not the 10 s drain deadline, nor the 60 s poll
    [answer] = answers
    assert answer.status_code == 503 and answer.json()["code"] == "ServerShutdown"
