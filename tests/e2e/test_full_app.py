"""One app using the rest of the runtime together, through `headwater serve`: an
``http.ts`` webhook writes through a mutation, which schedules an action; the
action `fetch`es another service (a loopback server this test runs), stores its
answer with ``ctx.storage.store`` and patches the message; a query hands out the
file's URL, which serves the bytes (whole and by range); a 1 s cron ticks
meanwhile. Each part has its own tests; this one shows they work as one app.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
from cli_process import Serve  # noqa: E402

pytestmark = pytest.mark.slow
APP = Path(__file__).parent / "full_app" / "convex"
WAIT_S = 30


class Echo(BaseHTTPRequestHandler):
    """The other service: answers ``echo: <text>``."""

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        text = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["text"][0]
        body = f"echo: {text}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def request(url: str, body: dict | None = None, headers: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    with urllib.request.urlopen(urllib.request.Request(url, data, all_headers), timeout=30) as r:
        return r.status, r.headers, r.read()


def query(server: Serve, path: str):
    _, _, raw = request(server.url + "/api/query", {"path": path, "args": {}})
    answer = json.loads(raw)
    assert answer["status"] == "success", answer
    return answer["value"]


def wait_for(what: str, check):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_webhook_scheduler_fetch_storage_and_cron_work_together(tmp_path):
    app = tmp_path / "convex"
    shutil.copytree(APP, app)
    echo = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        with Serve(tmp_path / "data", "--functions", str(app)) as server:
            admin = {"Authorization": f"Convex {server.admin_key}"}
            echo_url = f"http://127.0.0.1:{echo.server_address[1]}/echo"
            change = {"changes": [{"name": "ECHO_URL", "value": echo_url}]}
            request(server.url + "/api/update_environment_variables", change, admin)

            status, _, raw = request(server.site_url + "/webhook", {"body": "hi there"})
            assert status == 202 and "id" in json.loads(raw)

            def enriched():
                rows = query(server, "messages:list")
                return rows if rows and rows[0]["url"] else None

            (row,) = wait_for("the scheduled action", enriched)
            assert row["body"] == "hi there" and row["fetched"] == "echo: hi there"
            status, headers, content = request(row["url"])
            assert (status, content) == (200, b"echo: hi there")
            assert headers["Content-Type"] == "text/plain"
            status, _, part = request(row["url"], headers={"Range": "bytes=6-7"})
            assert (status, part) == (206, b"hi")

            ticks = wait_for("two cron ticks", lambda: query(server, "messages:ticks") >= 2)
            assert ticks
    finally:
        echo.shutdown()
        echo.server_close()
