"""The dashboard's port: the built app's files with the right caching, client-side
routes answered with index.html, the deployment URL in config.json, a clear answer
when the app is not built, and `headwater serve --dashboard-port` on and off."""

from __future__ import annotations

import json
import socket
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest
import trio

from gateway.dashboard_site import NOT_BUILT, dashboard_app

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
from cli_process import Serve, free_port, headwater  # noqa: E402

API_URL = "http://127.0.0.1:3210"
INDEX = "<!doctype html><title>Headwater dashboard</title><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-Ab12.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("not an asset")
    return tmp_path


class Client:
    """Requests straight into the ASGI app (no socket)."""

    def __init__(self, dist: Path, api_url: str = API_URL, host: str = "dash") -> None:
        self.app = dashboard_app(lambda: api_url, dist)
        self.base = f"http://{host}"

    def get(self, path: str) -> httpx.Response:
        async def one() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=self.base) as http:
                response = await http.get(path)
                await response.aread()
                return response

        return trio.run(one)


def client(dist: Path) -> Client:
    return Client(dist)


def test_assets_are_cached_for_a_year_and_index_never(dist):
    http = client(dist)
    asset = http.get("/dashboard/assets/index-Ab12.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('app')"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["content-type"]
    page = http.get("/dashboard/")
    assert page.status_code == 200
    assert page.text == INDEX
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-type"].startswith("text/html")


def test_every_dashboard_path_is_the_app(dist):
    http = client(dist)
    for path in (
        "/dashboard",
        "/dashboard/data",
        "/dashboard/data/messages?ts=5",
        "/dashboard/log",
    ):
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX, path
        assert response.headers["cache-control"] == "no-cache"


def test_root_redirects_to_the_dashboard(dist):
    response = client(dist).get("/")
    assert response.status_code == 302
    assert response.headers["location"] == "/dashboard/"


def test_config_names_the_deployment(dist):
    response = client(dist).get("/dashboard/config.json")
    assert response.status_code == 200
    assert response.json() == {"deploymentUrl": API_URL}
    assert response.headers["cache-control"] == "no-cache"


def test_a_server_on_every_address_is_named_as_the_browser_reached_it(dist):
    every = Client(dist, "http://0.0.0.0:3210", host="box.lan:6791")
    assert every.get("/dashboard/config.json").json() == {"deploymentUrl": "http://box.lan:3210"}
    v6 = Client(dist, "http://[::]:3210", host="[fd00::1]:6791")
    assert v6.get("/dashboard/config.json").json() == {"deploymentUrl": "http://[fd00::1]:3210"}


def test_a_missing_asset_or_a_path_outside_assets_is_not_found(dist):
    http = client(dist)
    assert http.get("/dashboard/assets/missing.js").status_code == 404
    escape = http.get("/dashboard/assets/..%2Fsecret.txt")
    assert escape.status_code == 404
    assert "not an asset" not in escape.text


def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path):
    http = client(tmp_path / "no-dist")
    for path in ("/dashboard/", "/dashboard/data", "/dashboard/assets/index-Ab12.js"):
        response = http.get(path)
        assert response.status_code == 503, path
        assert response.text == NOT_BUILT
    assert NOT_BUILT == "The dashboard is not built: run `make setup`."


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.status, response.read().decode(), dict(response.headers)


@pytest.mark.slow
def test_serve_prints_the_dashboard_url_with_the_key(tmp_path):
    port = free_port()
    with Serve(tmp_path / "data", "--dashboard-port", str(port)) as server:
        lines = [line for line in server.output if line.startswith("Dashboard: ")]
        expected = f"Dashboard: http://127.0.0.1:{port}/dashboard/#admin_key={server.admin_key}"
        assert [line.strip() for line in lines] == [expected]
        status, body, _ = _get(f"http://127.0.0.1:{port}/dashboard/config.json")
        assert status == 200
        assert json.loads(body) == {"deploymentUrl": server.url}


@pytest.mark.slow
def test_dashboard_port_zero_serves_no_dashboard(tmp_path):
    with Serve(tmp_path / "data", "--dashboard-port", "0") as server:
        assert not [line for line in server.output if line.startswith("Dashboard")]
        assert server.admin_key


def test_a_dashboard_port_in_use_is_refused_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = headwater(
            "serve", "--data", str(tmp_path / "data"), "--port", str(free_port()),
            "--dashboard-port", str(port), timeout_s=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"error: Port {port} on 127.0.0.1 is in use (another server?): stop it, "
        "or choose another port with --dashboard-port."
    )
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
