"""Request bodies over real keep-alive connections: read to the end before every answer,
a client leaving mid-body logged as its doing."""

from __future__ import annotations

import http.client
import logging
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from schemas import CHAT_SCHEMA
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

import gateway.app as app_module
from engine import Database
from engine.limits import LIMITS
from gateway.admin_key import generate_admin_key
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator
from gateway.context import GatewayContext
from gateway.server import run_server_in_thread

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from python_executor import PythonExecutor, chat_functions  # noqa: E402

BODY = b"x" * (2 << 20)  # 2 MiB, under the body limit
ROUNDS = 8
STREAMED = b"streamed " * 1000


async def _streamed(request: Request) -> Response:
    async def chunks():
        for i in range(0, len(STREAMED), 1000):
            yield STREAMED[i : i + 1000]

    return StreamingResponse(chunks(), media_type="text/plain")


STREAMED_ROUTE = Route("/streamed", _streamed, methods=["GET", "POST"])


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    db = Database.open(tmp_path_factory.mktemp("body") / "data")
    db.set_schema(CHAT_SCHEMA)
    authenticator = HeadwaterAuthenticator(generate_admin_key("headwater"))
    context = GatewayContext(PythonExecutor(db, chat_functions()), authenticator)
    url, stop = run_server_in_thread(create_app(context, extra_routes=[STREAMED_ROUTE]))
    parts = urlsplit(url)
    yield parts.hostname, parts.port
    stop()
    db.close()


def exchange(conn: http.client.HTTPConnection, path: str, body: bytes, **headers: str):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    return response.status, response.getheader("connection"), response.read()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/query_ts", {}),  # answers without needing the body
        ("/api/query", {"Convex-Client": "garbage"}),  # refused before the body is read
    ],
)
def test_an_unread_body_does_not_break_the_next_request(address, path, headers):
    for _ in range(ROUNDS):
        conn = http.client.HTTPConnection(*address, timeout=5)
        try:
            status, connection, _ = exchange(conn, path, BODY, **headers)
            assert status in (200, 400) and connection != "close"
            sock = conn.sock
            status, _, answer = exchange(conn, "/api/query_ts", b"")
            assert status == 200 and b'"ts"' in answer
            assert conn.sock is sock  # the same keep-alive connection answered both
        finally:
            conn.close()


def test_a_client_leaving_mid_body_is_logged_as_its_doing(address, caplog):
    caplog.set_level(logging.INFO)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(
            b"POST /api/mutation HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1048576\r\n\r\n" + b'{"path":"messages:send","args":{"body":"'
        )
        time.sleep(0.2)  # the handler is waiting for the rest of the body
    deadline = time.monotonic() + 5
    while not any("path=/api/mutation" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "no access log line for the abandoned request"
        time.sleep(0.02)
    access = [r.getMessage() for r in caplog.records if "path=/api/mutation" in r.getMessage()]
    assert "status=408" in access[0], access
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_past_the_drain_bound_the_connection_closes_after_the_answer(address, monkeypatch):
    monkeypatch.setattr(app_module, "LIMITS", replace(LIMITS, request_drain_bytes_max=1 << 20))
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        status, connection, _ = exchange(conn, "/api/query_ts", b"x" * (512 << 10))
        assert (status, connection) == (200, None)  # drained: the connection stays
        status, connection, _ = exchange(conn, "/api/query_ts", BODY)
        assert (status, connection) == (200, "close")  # not read past the bound
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", b"unread " * 1000)])
def test_a_streamed_answer_to_an_unread_body_is_sent(address, method, body):
    """The drain before the answer and the answer's disconnect listener share one
    ``receive``: neither may wait for a message the other took."""
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        for _ in range(ROUNDS):
            conn.request(method, "/streamed", body=body)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, STREAMED)
    finally:
        conn.close()
