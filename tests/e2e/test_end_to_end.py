"""End to end: `headwater serve` as a real process, the official clients against it.

The npm ConvexHttpClient and ConvexClient (Node) and the PyPI ConvexClient
(Python, in its own process) query, mutate, call actions and receive live
updates; the server is restarted on the same data folder and port and the
npm client resumes.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ports import free_port

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
JS_DIR = ROOT / "js"
NODE = shutil.which("node")
STEP_TIMEOUT_S = 40
CLIENT_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


class ServeProcess:
    """`headwater serve` on a loopback port; ``admin_key`` is read from its output."""

    def __init__(self, data: Path, functions: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = dict(CLIENT_ENV, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--data",
                str(data),
                "--port",
                str(port),
                "--functions",
                str(functions),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.output: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith("Admin key:"):
                    self.admin_key = line.split(":", 1)[1].strip()
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            pytest.fail("headwater serve did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture
def served(tmp_path):
    functions = tmp_path / "convex"
    shutil.copytree(HERE / "fixtures" / "convex", functions)
    data = tmp_path / "data"
    servers = [ServeProcess(data, functions, free_port())]
    yield servers, data, functions
    for server in servers:
        server.stop()


def test_npm_clients_against_headwater_serve(served):
    servers, data, functions = served
    steps: list[dict] = []
    with subprocess.Popen(
        [NODE, str(HERE / "js" / "e2e_client.mjs"), servers[0].url, str(JS_DIR)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLIENT_ENV,
    ) as client:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in client.stdout], daemon=True).start()
        try:
            while True:
                try:
                    step = json.loads(lines.get(timeout=STEP_TIMEOUT_S))
                except queue.Empty:
                    pytest.fail(f"the npm client stalled after {steps}")
                steps.append(step)
                assert "error" not in step, step["error"]
                if step["step"] == "restart":
                    servers[-1].stop()
                    servers.append(ServeProcess(data, functions, servers[-1].port))
                    client.stdin.write("go\n")
                    client.stdin.flush()
                if step["step"] == "done":
                    break
            assert client.wait(STEP_TIMEOUT_S) == 0, client.stderr.read()
        finally:
            client.kill()
    http = next(s for s in steps if s["step"] == "http")
    assert http["before"] == [] and http["count"] == 0
    assert http["errorData"] == {"code": "EMPTY"} and http["internal"] is True
    assert next(s for s in steps if s["step"] == "live")["ms"] < 5000
    assert steps[-1]["hasEverConnected"] is True


PYTHON_CLIENT = """
import json, sys
from convex import ConvexClient, ConvexError
url = sys.argv[1]
client = ConvexClient(url)
out = {"id": client.mutation("messages:send", {"body": "hi"})}
out["query"] = [m["body"] for m in client.query("messages:list")]
out["count"] = client.action("messages:count")
try:
    client.mutation("messages:send", {"body": ""})
except ConvexError as exc:
    out["error_data"] = exc.data
updates = iter(client.subscribe("messages:list", {}))
out["first"] = [m["body"] for m in next(updates)]
ConvexClient(url).mutation("messages:send", {"body": "two"})
out["second"] = [m["body"] for m in next(updates)]
print(json.dumps(out))
"""


def test_pypi_client_against_headwater_serve(served):
    servers, _, _ = served
    done = subprocess.run(
        [sys.executable, "-c", PYTHON_CLIENT, servers[0].url],
        capture_output=True,
        text=True,
        timeout=60,
        env=CLIENT_ENV,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["query"] == ["hi"] and out["count"] == 1
    assert out["error_data"] == {"code": "EMPTY"}
    assert out["first"] == ["hi"] and out["second"] == ["hi", "two"]


def test_deploy_command_updates_a_running_server(served, tmp_path):
    servers, _, watched = served
    # Deployed from another copy: a change in the folder serve watches would make serve
    # deploy it too, and one of the two pushes would be refused as a race.
    functions = tmp_path / "elsewhere" / "convex"
    shutil.copytree(watched, functions, ignore=shutil.ignore_patterns("_generated"))
    extra = functions / "extra.ts"
    extra.write_text(
        'import { query } from "./_generated/server";\n'
        "export const hello = query({ args: {}, handler: async () => 'hello' });\n"
    )
    env = dict(CLIENT_ENV, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "deploy",
            str(functions),
            "--url",
            servers[0].url,
            "--admin-key",
            servers[0].admin_key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    import urllib.request

    request = urllib.request.Request(
        servers[0].url + "/api/query",
        data=b'{"path":"extra:hello","args":{}}',
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        if body.get("value") == "hello" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body == {"status": "success", "value": "hello"}
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "deploy",
            str(functions),
            "--url",
            servers[0].url,
            "--admin-key",
            "headwater|nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert wrong.returncode == 1


def test_search_app_against_headwater_serve(tmp_path):
    import urllib.request

    functions = tmp_path / "convex"
    shutil.copytree(ROOT / "tests" / "udf" / "fixtures" / "search" / "convex", functions)
    server = ServeProcess(tmp_path / "data", functions, free_port())

    def call(kind: str, path: str, args: dict) -> dict:
        request = urllib.request.Request(
            f"{server.url}/api/{kind}",
            data=json.dumps({"path": path, "args": args, "format": "json"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        for body, vector in (("red apples", [1.0, 0.0, 0.0]), ("green pears", [0.0, 1.0, 0.0])):
            added = call(
                "mutation", "notes:add", {"body": body, "author": "a", "embedding": vector}
            )
            assert added["status"] == "success", added
        found = call("query", "notes:search", {"text": "appl"})
        assert found == {"status": "success", "value": ["red apples"]}
        deadline = time.monotonic() + 20
        while True:
            similar = call("action", "notes:similar", {"vector": [0.0, 1.0, 0.0]})
            if similar["status"] == "success" or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the vector index may still be backfilling right after a deploy
        assert similar["status"] == "success", similar
        assert len(similar["value"]) == 2 and similar["value"][0]["score"] > 0.99
    finally:
        server.stop()
