"""What the dashboard's browser tests share: the served deployment (with calls through
its HTTP API as the admin) and logging in."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from cli_process import Serve, free_port  # noqa: E402

WAIT_MS = 15_000  # the longest any one step may take in the browser (a busy machine)


@dataclass
class Dashboard:
    """A running `headwater serve` with its dashboard."""

    api_url: str  # the deployment (HTTP API and sync)
    dashboard_url: str  # e.g. http://127.0.0.1:PORT/dashboard/
    admin_key: str
    server: Serve

    def call(self, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run a function through the HTTP API as the admin (internal ones too);
        returns its value (Convex JSON), raises on an error answer."""
        body = json.dumps({"path": path, "args": args or {}, "format": "json"}).encode()
        request = urllib.request.Request(
            f"{self.api_url}/api/{kind}",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Convex {self.admin_key}",
            },
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=15) as response:
            answer = json.loads(response.read())
        if answer.get("status") != "success":
            raise AssertionError(f"{path} failed: {answer}")
        return answer["value"]

    def mutation(self, path: str, args: dict[str, Any] | None = None) -> Any:
        return self.call("mutation", path, args)

    def query(self, path: str, args: dict[str, Any] | None = None) -> Any:
        return self.call("query", path, args)


def login(page: Any, dashboard: Dashboard, path: str = "data") -> None:
    """Open the dashboard with the key in the URL fragment and wait for the navigation."""
    page.goto(f"{dashboard.dashboard_url}{path}#admin_key={dashboard.admin_key}")
    page.get_by_role("button", name="Log out").wait_for()


@contextmanager
def serve_dashboard(data: Path, functions: Path, *extra: str) -> Iterator[Dashboard]:
    """`headwater serve` of ``functions`` on free ports (API, site, dashboard); ``extra``
    options too (``--store URL``)."""
    dashboard_port = free_port()
    server = Serve(
        data,
        "--functions",
        str(functions),
        "--site-port",
        str(free_port()),
        "--dashboard-port",
        str(dashboard_port),
        *extra,
        startup_timeout_s=180,
    )
    try:
        yield Dashboard(
            api_url=server.url,
            dashboard_url=f"http://127.0.0.1:{dashboard_port}/dashboard/",
            admin_key=server.admin_key,
            server=server,
        )
    finally:
        server.stop()


def as_of(page: Any) -> Any:
    """The time-travel bar's "As of <time>" (not a document that says "as of" too)."""
    return page.get_by_role("region", name="Time travel").get_by_text(re.compile(r"^As of \d"))


def documents_loaded(page: Any) -> Any:
    """A table screen once its first page arrived: the "Documents" table, or the note
    that there are none (a test must not assume an earlier test wrote any)."""
    table = page.get_by_role("table", name="Documents")
    return table.or_(page.get_by_text("No documents.", exact=True))
