"""HTTP actions as a user meets them: `headwater serve` answering `convex/http.ts` routes on
its site port and under `/http/` on the API port, with Convex's answers for what the app
does not handle (no route, a throw, too large a body or header)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.limits import LIMITS
from gateway.backend import Backend
from gateway.server import run_server_in_thread
from tests.gateway.cli_process import Serve
from tests.gateway.jwks_issuer import APPLICATION_ID, JwksIssuer

APP = Path(__file__).parent / "fixtures" / "http_app" / "convex"
BODY_MAX = 20 << 20
SERVER_ERROR = re.compile(r"^\[Request ID: [0-9a-f]{16}\] Server Error: (?P<message>.*)$", re.S)


@pytest.fixture(scope="module")
def issuer() -> Iterator[JwksIssuer]:
    with JwksIssuer() as found:
        yield found


@pytest.fixture(scope="module")
def server(issuer: JwksIssuer) -> Iterator[Serve]:
    """The fixture app, with an auth.config naming the loopback issuer, served for real."""
    root = Path(tempfile.mkdtemp(prefix="http-actions-"))
    functions = root / "app" / "convex"
    shutil.copytree(APP, functions)
    provider = {"domain": issuer.url, "applicationID": APPLICATION_ID}
    (functions / "auth.config.ts").write_text(
        f"export default {{ providers: [{json.dumps(provider)}] }};\n"
    )
    serving = Serve(root / "data", "--functions", str(functions))
    try:
        assert serving.site_url.startswith("http://127.0.0.1:"), serving.output
        yield serving
    finally:
        serving.stop()
        shutil.rmtree(root, ignore_errors=True)


def origins(server: Serve) -> list[str]:
    """Both places the routes are served: the site port, and /http/ on the API port."""
    return [server.site_url, server.url + "/http"]


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, trust_env=False, timeout=60)


def query(server: Serve, path: str) -> object:
    with client(server.url) as api:
        answer = api.post("/api/query", json={"path": path, "args": {}}).json()
    assert answer["status"] == "success", answer
    return answer["value"]


def test_a_webhook_writes_through_a_mutation_and_answers_json(server: Serve) -> None:
    before = len(query(server, "messages:list"))  # type: ignore[arg-type]
    for n, base in enumerate(origins(server), start=1):
        with client(base) as site:
            answer = site.post("/messages", json={"body": f"hi {n}", "author": "hook"})
        assert answer.status_code == 201, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["count"] == before + n
    bodies = [m["body"] for m in query(server, "messages:list")]  # type: ignore[union-attr]
    assert bodies[-2:] == ["hi 1", "hi 2"]


def test_the_site_url_is_what_the_cli_is_told(server: Serve) -> None:
    with client(server.url) as api:
        answer = api.get(
            "/api/v1/get_canonical_urls", headers={"Authorization": f"Convex {server.admin_key}"}
        )
    assert answer.json() == {"convexCloudUrl": server.url, "convexSiteUrl": server.site_url}


def test_path_prefix_routes_see_the_url_as_requested(server: Serve) -> None:
    for base in origins(server):
        with client(base) as site:
            answer = site.get("/files/a/b.txt", params={"x": "1"})
        assert answer.status_code == 200
        # Under /http/ the handler sees the path without the prefix, as in Convex.
        origin = base.removesuffix("/http")
        assert answer.json() == {"url": f"{origin}/files/a/b.txt?x=1", "method": "GET"}


def test_no_route_and_method_mismatch_get_convexs_404(server: Serve) -> None:
    for base in origins(server):
        with client(base) as site:
            for method, path in (("GET", "/nowhere"), ("POST", "/hello"), ("GET", "/files")):
                answer = site.request(method, path)
                assert answer.status_code == 404, (method, path)
                assert answer.text == "No matching routes found"
                assert answer.headers["content-type"] == "text/plain; charset=utf-8"
            # HEAD routes as GET, without the body; a method Convex cannot route is 405.
            head = site.head("/hello")
            assert (head.status_code, head.content) == (200, b"")
            assert site.request("TRACE", "/hello").status_code == 405


def test_a_throwing_handler_gets_convexs_500_body(server: Serve) -> None:
    with client(server.site_url) as site:
        answer = site.get("/boom")
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert SERVER_ERROR.match(body["code"])["message"] == "Uncaught Error: the handler failed"
        assert body["trace"].startswith("Uncaught Error: the handler failed\n    at ")
        assert "../convex/http.ts:" in body["trace"]
        assert "data" not in body
        data = site.get("/convex-error").json()
        assert data["data"] == {"reason": "teapot"}
        # The server keeps serving.
        assert site.get("/hello").text == "hello from /hello"


def test_auth_comes_from_the_authorization_header(server: Serve, issuer: JwksIssuer) -> None:
    with client(server.site_url) as site:
        anonymous = site.get("/whoami").json()
        signed_in = site.get("/whoami", headers={"Authorization": f"Bearer {issuer.mint('ada')}"})
        expired = site.get(
            "/whoami", headers={"Authorization": f"Bearer {issuer.mint(expires_in_s=-120)}"}
        )
    assert anonymous == {"subject": None, "viaQuery": None}
    # The action and the query it runs see the same user.
    assert signed_in.json() == {"subject": "ada", "viaQuery": "ada"}
    # A token that does not verify still runs the action; getUserIdentity throws why.
    assert expired.status_code == 500
    assert "expired" in expired.json()["code"].lower()


def test_cors_headers_written_by_the_app_pass_through_unchanged(server: Serve) -> None:
    for base in origins(server):
        with client(base) as site:
            preflight = site.options(
                "/cors",
                headers={
                    "Origin": "https://other.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "x-custom",
                },
            )
            post = site.post("/cors", headers={"Origin": "https://other.example"})
        assert preflight.status_code == 204
        cors = {k: v for k, v in preflight.headers.items() if k.startswith("access-control")}
        assert cors == {
            "access-control-allow-origin": "https://app.example",
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": "x-custom",
            "access-control-max-age": "60",
        }
        assert post.headers.get_list("access-control-allow-origin") == ["https://app.example"]
        assert "access-control-allow-credentials" not in post.headers
        assert "vary" not in post.headers


def test_request_bodies_up_to_20_mib_reach_the_handler(server: Serve) -> None:
    body = bytes(range(256)) * (BODY_MAX // 256)
    with client(server.site_url) as site:
        answer = site.put("/echo", content=body)
        assert answer.status_code == 200
        assert answer.headers["x-length"] == str(BODY_MAX)
        assert answer.content == body
        too_large = site.put("/echo", content=body + b"!")
    assert too_large.status_code == 413
    assert too_large.text == "Failed to buffer the request body: length limit exceeded"


def test_a_body_past_the_limit_without_a_length_fails_the_read(server: Serve) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(21):
            yield b"x" * (1 << 20)

    with client(server.site_url) as site:
        answer = site.put("/echo", content=chunks())
    assert answer.status_code == 500
    assert "length limit exceeded" in answer.json()["code"]


def test_responses_are_cut_at_20_mib(server: Serve) -> None:
    with client(server.site_url) as site:
        answer = site.get("/huge")
    assert answer.status_code == 200
    assert len(answer.content) == BODY_MAX
    huge = [e for e in http_log_entries(server) if e["identifier"] == "GET /huge"]
    assert huge[-1]["logLines"][-1] == (
        "[ERROR] HttpResponseTooLarge: HTTP actions support responses up to 20 MiB"
    )


def test_a_huge_header_is_refused_cleanly(server: Serve) -> None:
    port = int(server.site_url.rsplit(":", 1)[1])
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(request)
        status_line = raw.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 431")
    with client(server.site_url) as site:
        assert site.get("/hello").status_code == 200


def test_a_streamed_response_is_read_as_it_is_produced(server: Serve) -> None:
    with client(server.site_url) as site:
        started = time.monotonic()
        with site.stream("GET", "/stream", params={"parts": "3"}) as answer:
            lines = answer.iter_lines()
            assert next(lines) == "part 0"
            first_s = time.monotonic() - started
            assert list(lines) == ["part 1", "part 2"]
            all_s = time.monotonic() - started
    # The handler waits 200 ms before each later part: the first came before them.
    assert all_s >= 0.4
    assert first_s < all_s - 0.3


def http_log_entries(server: Serve) -> list[dict]:
    """The HTTP actions' entries of the function log, as `npx convex logs` reads it."""
    with client(server.url) as api:
        answer = api.get(
            "/api/stream_function_logs",
            params={"cursor": 0},
            headers={"Authorization": f"Convex {server.admin_key}"},
        )
    return [e for e in answer.json()["entries"] if e["udfType"] == "HttpAction"]


def test_function_logs_show_http_actions_by_route(server: Serve) -> None:
    with client(server.site_url) as site:
        site.get("/files/x")
        site.get("/boom")
        site.get("/nowhere")
        site.post("/messages", json={"body": "logged", "author": "hook"})
    entries = http_log_entries(server)
    identifiers = {e["identifier"] for e in entries}
    assert {"GET /files/*", "GET /boom", "GET /nowhere", "POST /messages"} <= identifiers
    boom = next(e for e in entries if e["identifier"] == "GET /boom")
    assert boom["error"].startswith("Uncaught Error: the handler failed")


def test_a_deployment_without_http_ts_says_so(tmp_path: Path) -> None:
    backend = Backend.open(tmp_path / "data")
    url, stop = run_server_in_thread(backend.app)
    try:
        with client(url) as api:
            answer = api.get("/http/anything")
    finally:
        stop()
        backend.close()
    assert answer.status_code == 404
    assert answer.text == "This Convex deployment does not have HTTP actions enabled."


def test_npx_convex_deploy_pushes_the_routes_and_is_told_the_site_url(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))  # convex_cli imports its helpers so
    from convex_cli import make_project, npx_convex

    with Serve(tmp_path / "data") as server:
        project = make_project(tmp_path, APP, "http-actions-test")
        server.project = project  # type: ignore[attr-defined]
        done = npx_convex(server, "deploy", "--yes", "--cmd", 'echo "$CONVEX_SITE_URL" > site.txt')
        assert done.returncode == 0, done.stdout + done.stderr
        site = (project / "site.txt").read_text().strip()
        assert site == server.site_url
        with client(site) as site_client:
            answer = site_client.post("/messages", json={"body": "from the CLI", "author": "npx"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["count"] == 1


def test_a_stalled_request_body_fails_the_read_and_frees_the_isolate(tmp_path: Path) -> None:
    backend = Backend.open(tmp_path / "data", functions_dir=APP)
    backend.executor.limits = dataclasses.replace(LIMITS, http_body_idle_timeout_s=1)
    url, stop = run_server_in_thread(backend.app)
    port = int(url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            raw.sendall(b"PUT /http/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            started = time.monotonic()
            answer = b""
            while chunk := raw.recv(65536):  # the answer says "connection: close"
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 500"), answer
        assert b"The request body stalled: no data for 1 s" in answer
        assert time.monotonic() - started < 10
        with client(url) as api:
            assert api.get("/http/hello").status_code == 200
    finally:
        stop()
        backend.close()
