"""The server: the test helper, access logs, draining on stop and on SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import trio

from engine import Database
from gateway.admin_key import generate_admin_key
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.context import GatewayContext
from gateway.server import ACCESS_LOGGER, run_server_in_thread

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from python_executor import PyFunction, PythonExecutor  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def slow_functions(on_start: Callable[[], None] = lambda: None) -> dict[str, PyFunction]:
    def wait(executor, args, identity):
        on_start()
        time.sleep(args["s"])
        return "done"

    return {"slow:wait": PyFunction("action", wait)}


@pytest.fixture
def context(tmp_path):
    db = Database.open(tmp_path / "data")
    started = threading.Event()
    yield (
        GatewayContext(
            PythonExecutor(db, slow_functions(started.set)),
            HeadwaterAuthenticator(generate_admin_key("headwater")),
        ),
        started,
    )
    db.close()


def slow_call(url: str, seconds: float) -> httpx.Response:
    with httpx.Client(base_url=url, trust_env=False, timeout=20) as client:
        return client.post("/api/action", json={"path": "slow:wait", "args": {"s": seconds}})


def test_run_server_in_thread_serves_and_stops(context):
    url, stop = run_server_in_thread(create_app(context[0]))
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/health", trust_env=False).text == "ok"
    stop()
    stop()  # harmless twice
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", trust_env=False, timeout=2)


def test_each_request_logs_one_line(context, caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        url, stop = run_server_in_thread(create_app(context[0]))
        try:
            httpx.get(f"{url}/instance_name", trust_env=False)
            httpx.post(f"{url}/api/query", content=b"{", trust_env=False)
        finally:
            stop()  # the line is written as the response ends; stop waits for that
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    lines = [line for line in lines if "path=/health" not in line]  # the helper's probes
    assert len(lines) == 2
    assert lines[0].startswith("method=GET path=/instance_name status=200 ms=")
    assert lines[1].startswith("method=POST path=/api/query status=400 ms=")


def test_stop_drains_requests_in_flight(context):
    ctx, started = context
    url, stop = run_server_in_thread(create_app(ctx))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(slow_call, url, 0.5)
        assert started.wait(10)
        stop()  # returns only after the in-flight request has been answered
        response = pending.result(timeout=10)
    assert response.status_code == 200 and response.json()["value"] == "done"


def asgi_get(app, path: str) -> tuple[int, bytes]:
    """One GET straight into the ASGI app, without a server (and without its lifespan)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    trio.run(app, scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_health_is_503_until_the_app_has_started(context):
    app = create_app(context[0])
    assert asgi_get(app, "/health") == (503, b"starting")
    url, stop = run_server_in_thread(app)
    assert httpx.get(f"{url}/health", trust_env=False).text == "ok"
    stop()
    assert asgi_get(app, "/health")[0] == 503  # and again once it has shut down


SERVE_SCRIPT = """
import sys
sys.path[:0] = sys.argv[2:5]
from engine import Database
from gateway.admin_key import generate_admin_key
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.context import GatewayContext
from gateway.server import serve
from python_executor import PythonExecutor
from test_server import slow_functions

db = Database.open(sys.argv[1])
started = sys.argv[1] + ".started"
context = GatewayContext(
    PythonExecutor(db, slow_functions(lambda: open(started, "w").close())),
    HeadwaterAuthenticator(generate_admin_key("t")),
)
serve(create_app(context), host="127.0.0.1", port=0, on_ready=lambda url: print(url, flush=True))
db.close()
print("exited cleanly", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_in_flight_requests_and_exits_cleanly(tmp_path, signum):
    paths = [str(ROOT), str(ROOT / "tests"), str(HERE)]
    with subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(tmp_path / "data"), *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(slow_call, url, 1.0)
                marker = tmp_path / "data.started"  # written when the action has begun
                deadline = time.monotonic() + 10
                while not marker.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                proc.send_signal(signum)
                response = pending.result(timeout=15)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert response.status_code == 200 and response.json()["value"] == "done"
    assert proc.returncode == 0, err
    assert "exited cleanly" in out
    assert "method=POST path=/api/action status=200 ms=" in err
    assert f"received {signal.Signals(signum).name}" in err
