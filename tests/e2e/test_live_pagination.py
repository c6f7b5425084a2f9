"""Live pagination with the official npm client against `headwater serve`.

The npm ``ConvexClient``'s paginated query (the machinery ``usePaginatedQuery``
runs: one subscription per page, journals kept and re-sent on reconnect, pages
split at the server's ``splitCursor``) holds two pages of a query in each order
while documents are inserted inside page 1, page 1's last document is deleted,
page 1 grows past twice its size (the client splits it), and the server is killed
and started again (the client re-sends its pages with their journals).
After every change the pages the client shows are the start of the whole result:
nothing lost, nothing twice.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ports import free_port  # noqa: E402
from test_end_to_end import CLIENT_ENV, JS_DIR, NODE, ServeProcess  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
STEP_TIMEOUT_S = 40


def test_npm_paginated_query_loses_nothing_at_page_boundaries(tmp_path):
    functions = tmp_path / "convex"
    shutil.copytree(HERE / "pages_app" / "convex", functions)
    data = tmp_path / "data"
    servers = [ServeProcess(data, functions, free_port())]
    steps: list[dict] = []
    try:
        with subprocess.Popen(
            [NODE, str(HERE / "js" / "live_pagination_client.mjs"), servers[0].url, str(JS_DIR)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CLIENT_ENV,
        ) as client:
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(
                target=lambda: [lines.put(x) for x in client.stdout], daemon=True
            ).start()
            try:
                while True:
                    try:
                        step = json.loads(lines.get(timeout=STEP_TIMEOUT_S))
                    except queue.Empty:
                        pytest.fail(f"the npm client stalled after {steps}")
                    steps.append(step)
                    if "error" in step:
                        logs = ["".join(server.output) for server in servers]
                        pytest.fail(f"{step['error']}\nserver output:\n" + "\n".join(logs))
                    if step["step"] == "restart":  # killed: the journals live in the client
                        servers[-1].process.kill()
                        servers[-1].process.wait()
                        servers.append(ServeProcess(data, functions, servers[-1].port))
                        client.stdin.write("go\n")
                        client.stdin.flush()
                    if step["step"] == "done":
                        break
                assert client.wait(STEP_TIMEOUT_S) == 0, client.stderr.read()
            finally:
                client.kill()
    finally:
        for server in servers:
            server.stop()
    shown = [s for s in steps if "ranks" in s]
    assert {s["order"] for s in shown} == {"asc", "desc"}
    assert len(shown) == 2 * 8
    for step in shown:
        ranks, whole = step["ranks"], step["all"]
        assert len(set(ranks)) == len(ranks), f"a document twice: {step}"
        assert ranks == whole[: len(ranks)], f"a document lost: {step}"
    for step in shown:
        if step["step"] == "insert in page 1":
            assert len(step["ranks"]) == 5  # page 1 grew by one; page 2 kept its two
        if step["step"] == "split":
            assert step["pages"] > 2
        if step["step"] == "exhausted":
            assert step["ranks"] == step["all"]
    fresh = [s["size"] for s in steps if s["step"] == "fresh page 1"]
    assert fresh == [2, 2]  # a new subscriber's page 1 does not share the grown one
    refused = next(s for s in steps if s["step"] == "two pages refused")
    assert "ran multiple paginated queries" in refused["message"]
