"""The official clients over the sync protocol: npm ``ConvexClient`` and PyPI ``convex``.

Both run in their own process: the npm client under Node, and the PyPI client
because its Rust core holds the GIL while it waits for the server, which would
starve a server running in this process. Every test runs twice: over the
Python stand-in executor and over the real V8 runtime with the same chat app
written in TypeScript (``fixtures/chat``), so a difference between the two
cannot hide behind the stand-in.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from schemas import CHAT_SCHEMA
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from engine import Database
from gateway.context import GatewayContext
from gateway.server import run_server_in_thread
from gateway.sync_endpoint import SyncHub, sync_routes
from udf.calls import ANONYMOUS
from udf.executor import Executor

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from python_executor import PythonExecutor, chat_functions  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent.parent / "js"
NODE = shutil.which("node")
STEP_TIMEOUT_S = 30
# Clients talk to loopback only: no proxy from the environment may get in the way.
CLIENT_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
CHAT_APP = HERE / "fixtures" / "chat" / "convex"
RUNTIMES = ("python", "v8")


class AnonymousOnly:
    def from_sync_authenticate(self, token_type, value, impersonating):
        return ANONYMOUS

    def from_authorization_header(self, header):
        return ANONYMOUS

    def is_admin_key(self, key):
        return False


def _executor(db: Database, runtime: str, folder: Path):
    """The stand-in with the chat functions, or V8 with the chat app deployed once per folder."""
    if runtime == "python":
        db.set_schema(CHAT_SCHEMA)
        return PythonExecutor(db, chat_functions())
    executor = Executor(db)
    if executor.deployment is None:
        app = folder.parent / f"{folder.name}-app" / "convex"
        shutil.copytree(CHAT_APP, app)
        executor.deploy(app)
    return executor


class ChatServer:
    """The chat functions behind the sync routes, on a data folder that outlives it."""

    def __init__(self, folder: Path, port: int = 0, runtime: str = "python") -> None:
        self.db = Database.open(folder)
        self.runtime = runtime
        self.executor = _executor(self.db, runtime, folder)
        context = GatewayContext(self.executor, AnonymousOnly())
        self.hub = SyncHub(context)

        async def health(request):
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/health", health), *sync_routes(context, self.hub)])
        self.url, self._stop = run_server_in_thread(app, host="127.0.0.1", port=port)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.stopped = False

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.hub.close_all_from_thread()
        self._stop()
        if isinstance(self.executor, Executor):
            self.executor.close()
        self.db.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_npm_client_sees_live_updates_and_resumes_after_a_restart(tmp_path, runtime):
    folder = tmp_path / "data"
    servers = [ChatServer(folder, runtime=runtime)]
    steps: list[dict] = []
    try:
        with subprocess.Popen(
            [NODE, str(HERE / "js" / "sync_client.mjs"), servers[0].url, str(JS_DIR)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CLIENT_ENV,
        ) as process:
            try:
                _follow_npm_client(process, servers, folder, steps)
                assert process.wait(STEP_TIMEOUT_S) == 0, process.stderr.read()
            finally:
                process.kill()
    finally:
        for server in servers:
            server.stop()
    updates = [s["bodies"] for s in steps if s.get("step") == "update"]
    assert updates[0] == [] and ["one"] in updates and updates[-1] == ["one", "two"]
    assert steps[-1]["hasEverConnected"] is True


def _follow_npm_client(process, servers, folder, steps) -> None:
    """Read the script's steps; restart the server (appended to ``servers``) when asked."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    while True:
        try:
            step = json.loads(lines.get(timeout=STEP_TIMEOUT_S))
        except queue.Empty:
            pytest.fail(f"the npm client stalled after {steps}")
        steps.append(step)
        assert "error" not in step, step["error"]
        if step.get("step") == "restart":
            servers[-1].stop()
            # Same port, data and runtime.
            servers.append(ChatServer(folder, servers[-1].port, servers[-1].runtime))
            process.stdin.write("go\n")
            process.stdin.flush()
        if step.get("step") == "done":
            return


PYTHON_CLIENT = """
import json, sys
from convex import ConvexClient, ConvexError

url = sys.argv[1]
client = ConvexClient(url)
out = {"id": client.mutation("messages:send", {"body": "hi"})}
out["query"] = [m["body"] for m in client.query("messages:list")]
out["action"] = client.action("actions:shout", {"text": "hey"})
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


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_python_client_queries_mutates_and_subscribes(tmp_path, runtime):
    server = ChatServer(tmp_path / "data", runtime=runtime)
    try:
        done = subprocess.run(
            [sys.executable, "-c", PYTHON_CLIENT, server.url],
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            env=CLIENT_ENV,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["query"] == ["hi"] and out["action"] == "HEY"
    assert out["error_data"] == {"code": "EMPTY"}
    assert out["first"] == ["hi"] and out["second"] == ["hi", "two"]
    assert server.hub.statistics()["connections_total"] == 2
