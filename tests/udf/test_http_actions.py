"""One HTTP action in-process: the router run in an action isolate, the answer as the
gateway's exchange receives it (a recording exchange stands in for the connection)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Database
from udf.calls import ANONYMOUS, Identity
from udf.executor import Executor
from udf.http_actions import NO_ROUTE, NOT_ENABLED, HttpActionRequest, run_http_action

APP = Path(__file__).parents[1] / "gateway" / "fixtures" / "http_app" / "convex"


class RecordingExchange:
    """The connection as a list of what was sent; the request body from a list of chunks."""

    def __init__(self, body: list[bytes] | None = None, *, gone_after_chunks: int = -1) -> None:
        self.body = list(body or [])
        self.head: tuple[int, dict[str, str]] | None = None
        self.chunks: list[bytes] = []
        self.whole = False
        self.gone_after_chunks = gone_after_chunks

    def read_body(self) -> bytes | None:
        return self.body.pop(0) if self.body else None

    def start_response(
        self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> bool:
        assert self.head is None, "a second head"
        self.head = (status, dict(headers))
        self.whole = end
        if body:
            self.chunks.append(body)
        return True

    def write_body(self, chunk: bytes) -> bool:
        assert self.head is not None, "a body before the head"
        assert not self.whole, "more body after a whole answer"
        self.chunks.append(chunk)
        return len(self.chunks) != self.gone_after_chunks

    @property
    def status(self) -> int | None:
        return None if self.head is None else self.head[0]

    @property
    def content(self) -> bytes:
        return b"".join(self.chunks)


def request(method: str, path: str, *, body: bool = False) -> HttpActionRequest:
    return HttpActionRequest(method, path, f"http://site.test{path}", (), body, "0123456789abcdef")


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Executor]:
    db = Database.open(tmp_path_factory.mktemp("http-actions"))
    found = Executor(db)
    found.deploy(APP)
    try:
        yield found
    finally:
        found.close()
        db.close()


def run(executor: Executor, req: HttpActionRequest, exchange: RecordingExchange) -> object:
    return run_http_action(executor, req, ANONYMOUS, exchange)


def test_a_plain_response_is_one_whole_answer(executor: Executor) -> None:
    exchange = RecordingExchange()
    result = run(executor, request("GET", "/hello"), exchange)
    assert exchange.status == 200
    assert exchange.whole  # head and body at once: sent after the call
    assert exchange.content == b"hello from /hello"
    assert result.identifier == "GET /hello"  # type: ignore[attr-defined]


def test_the_request_body_is_read_as_the_handler_asks(executor: Executor) -> None:
    exchange = RecordingExchange([b"ab", b"", b"cd" * 1000])
    run(executor, request("PUT", "/echo", body=True), exchange)
    assert exchange.status == 200
    assert exchange.content == b"ab" + b"cd" * 1000
    assert exchange.head is not None and exchange.head[1]["x-length"] == "2002"


def test_a_streamed_body_goes_out_after_its_head(executor: Executor) -> None:
    exchange = RecordingExchange()
    run(executor, request("GET", "/stream"), exchange)
    assert exchange.status == 200 and not exchange.whole
    assert exchange.chunks == [b"part 0\n", b"part 1\n", b"part 2\n"]


def test_a_client_gone_stops_the_stream(executor: Executor) -> None:
    exchange = RecordingExchange(gone_after_chunks=2)
    run(executor, request("GET", "/huge"), exchange)
    assert len(exchange.chunks) == 2


def test_a_client_gone_aborts_the_request_signal(executor: Executor) -> None:
    exchange = RecordingExchange(gone_after_chunks=3)
    result = run(executor, request("GET", "/until-gone"), exchange)
    assert exchange.chunks == [b"tick\n"] * 3
    assert result.log_lines == (  # type: ignore[attr-defined]
        "[LOG] 'cancelled; request.signal.aborted =' true",
    )


def test_no_route_and_a_throw(executor: Executor) -> None:
    missing = RecordingExchange()
    result = run(executor, request("DELETE", "/hello"), missing)
    assert (missing.status, missing.content) == (404, NO_ROUTE.encode())
    assert result.identifier == "DELETE /hello"  # type: ignore[attr-defined]
    thrown = RecordingExchange()
    result = run(executor, request("GET", "/convex-error"), thrown)
    assert thrown.status == 500
    body = json.loads(thrown.content)
    assert body["code"] == (
        '[Request ID: 0123456789abcdef] Server Error: Uncaught ConvexError: {"reason":"teapot"}'
    )
    assert body["data"] == {"reason": "teapot"}
    assert result.error.data == {"reason": "teapot"}  # type: ignore[attr-defined]


def test_an_unverified_credential_throws_in_get_user_identity(executor: Executor) -> None:
    exchange = RecordingExchange()
    identity = Identity(auth_error="Token expired")
    run_http_action(executor, request("GET", "/whoami"), identity, exchange)
    assert exchange.status == 500
    assert "Server Error: Uncaught Error: Token expired" in json.loads(exchange.content)["code"]


def test_a_deployment_without_http_js(tmp_path: Path) -> None:
    db = Database.open(tmp_path)
    bare = Executor(db)
    try:
        exchange = RecordingExchange()
        run(bare, request("GET", "/x"), exchange)
    finally:
        bare.close()
        db.close()
    assert (exchange.status, exchange.content) == (404, NOT_ENABLED.encode())
