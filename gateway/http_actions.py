"""HTTP actions over HTTP: the site port's app, and the same under ``/http/`` on the API port.

Every request becomes one run of the deployment's ``http.js`` router
(``udf.http_actions``) on a worker thread; the bodies stream both ways
between this event loop and the isolate's thread (``_Exchange``). As in
Convex (crates/local_backend/src/http_actions.rs, router.rs, proxy.rs):

- routable methods are GET, POST, PUT, DELETE, OPTIONS, PATCH and HEAD (routed
  as GET, its body dropped); any other is 405 with an empty body;
- GET, HEAD and OPTIONS requests pass no body to the handler;
- ``request.url`` is ``<scheme>://<Host header><path>[?query]``, the scheme from
  ``X-Forwarded-Proto`` or ``Forwarded: proto=``, else ``http``; under ``/http/``
  the prefix is stripped from the path the router and the handler see;
- the ``Authorization`` header is checked like the HTTP API's, but a credential
  that does not verify does not refuse the request: the handler runs, and its
  ``ctx.auth.getUserIdentity()`` throws the reason;
- a body over 20 MiB is refused: 413 "Failed to buffer the request body: length
  limit exceeded" (axum's words for Convex's ``DefaultBodyLimit``) when
  ``Content-Length`` says so, else the handler's read fails at the limit;
- no CORS headers are added: what the handler writes goes out unchanged.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from gateway.app import drain_body
from gateway.context import AuthenticationError, GatewayContext
from udf.calls import Identity
from udf.executor import Executor
from udf.http_actions import (
    HttpActionRequest,
    HttpBodyError,
    run_http_action,
    server_error_body,
)

HTTP_PREFIX = "/http"
ROUTABLE_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"})
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
# A failure of ours, not the handler's (Convex's words for an internal error).
_INTERNAL = "InternalServerError: Your request couldn't be completed. Try again later."
# Headers that describe the connection, not the response: the server sets its own.
_HOP_BY_HOP = frozenset({b"connection", b"transfer-encoding", b"keep-alive"})

logger = logging.getLogger("headwater.http_actions")


class HttpActionsApp:
    """ASGI: every HTTP request is an HTTP action (the site port serves only this)."""

    def __init__(self, context: GatewayContext, executor: Executor) -> None:
        self.context = context
        self.executor = executor
        self.bytes_max = executor.limits.http_body_bytes_max

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a WebSocket upgrade: not accepted, the server refuses it
        await self.serve(scope, receive, send, strip="")

    async def serve(self, scope: dict, receive: Any, send: Any, *, strip: str) -> None:
        method = scope["method"]
        if method not in ROUTABLE_METHODS:
            await _plain(send, 405, b"")
            return
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        declared = _header(headers, "content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.bytes_max:
            await _plain(send, 413, TOO_LARGE.encode(), close=True)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0][len(strip) :] or "/"
        query = scope.get("query_string", b"").decode("latin-1")
        request = HttpActionRequest(
            method=method,
            path=path,
            url=f"{_scheme(headers)}://{_host(headers, scope)}{path}{'?' + query if query else ''}",
            headers=tuple(headers),
            has_body=method not in _NO_BODY_METHODS,
            request_id=secrets.token_hex(8),
        )
        exchange = _Exchange(
            receive,
            send,
            self.bytes_max,
            self.executor.limits.http_body_idle_timeout_s,
            head_only=method == "HEAD",
        )
        if not request.has_body:
            exchange.body_done.set()
        authorization = _header(headers, "authorization")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(exchange.watch_disconnect)
            try:
                await anyio.to_thread.run_sync(self._run, request, authorization, exchange)
            except Exception:
                logger.exception("HTTP action %s %s failed", method, path)
                if not exchange.started:
                    message = (
                        "InternalServerError: Your request couldn't be completed. Try again later."
                    )
                    body = server_error_body(request.request_id, message, message)
                    await _plain(send, 500, json.dumps(body).encode(), "application/json")
                    exchange.started = True
            finally:
                tasks.cancel_scope.cancel()
        await exchange.finish()

    def _run(self, request: HttpActionRequest, authorization: str | None, exchange: Any) -> None:
        try:
            identity = self.context.authenticator.from_authorization_header(authorization)
        except AuthenticationError as exc:
            identity = Identity(auth_error=exc.message)
        run_http_action(self.executor, request, identity, exchange)


class HttpPrefixMount:
    """ASGI: ``/http/...`` to the HTTP actions (prefix stripped), the rest to ``app``.

    Outside ``app``, so its CORS and body-limit middleware never touch an HTTP
    action's request or response."""

    def __init__(self, app: Any, actions: HttpActionsApp) -> None:
        self.app = app
        self.actions = actions
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(HTTP_PREFIX + "/"):
            await self.actions.serve(scope, receive, send, strip=HTTP_PREFIX)
            return
        await self.app(scope, receive, send)


class _Exchange:
    """One request's connection, seen from the isolate's thread (``HttpExchange``).

    Each call hops onto the event loop and waits there: reading the body, sending
    the head, sending a chunk (the client's pace is the handler's pace). A whole
    answer (head and complete body at once) waits for ``finish`` instead: one hop
    less for the common case."""

    def __init__(
        self, receive: Any, send: Any, bytes_max: int, idle_timeout_s: float, *, head_only: bool
    ) -> None:
        self._receive = receive
        self._send = send
        self._bytes_max = bytes_max
        self._idle_timeout_s = idle_timeout_s
        self._head_only = head_only
        self._token = anyio.lowlevel.current_token()
        self._received = 0
        self.body_done = anyio.Event()
        self.gone = False
        self.started = False
        self.unread_body = False
        self._whole: tuple[dict, bytes] | None = None  # a whole answer, sent by finish()

    # -- on the isolate's thread ----------------------------------------------------

    def read_body(self) -> bytes | None:
        return anyio.from_thread.run(self._read, token=self._token)

    def start_response(
        self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> bool:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        raw = [(k, v) for k, v in raw if k not in _HOP_BY_HOP]
        if self.unread_body:  # the rest of the request is not read: no next request here
            raw.append((b"connection", b"close"))
        message = {"type": "http.response.start", "status": status, "headers": raw}
        first = b"" if self._head_only else body
        self.started = True
        if end:  # the whole answer: sent once the call is over, without a hop now
            self._whole = (message, first)
            return True
        return anyio.from_thread.run(self._send_start, message, first, token=self._token)

    def write_body(self, chunk: bytes) -> bool:
        if self._head_only:
            return not self.gone
        return anyio.from_thread.run(self._send_chunk, chunk, token=self._token)

    # -- on the event loop ----------------------------------------------------------

    async def _read(self) -> bytes | None:
        if self.body_done.is_set():
            return None
        with anyio.move_on_after(self._idle_timeout_s) as waited:
            message = await self._receive()
        if waited.cancelled_caught:  # given up on: no draining it, the connection closes
            self.unread_body = True
            self.body_done.set()
            raise HttpBodyError(f"The request body stalled: no data for {self._idle_timeout_s:g} s")
        if message["type"] != "http.request":
            self.gone = True
            self.body_done.set()
            raise HttpBodyError("The client disconnected before the request body ended")
        chunk = message.get("body", b"")
        self._received += len(chunk)
        if not message.get("more_body", False):
            self.body_done.set()
        if self._received > self._bytes_max:
            self.unread_body = not self.body_done.is_set()
            raise HttpBodyError(TOO_LARGE)
        return chunk if chunk or self.body_done.is_set() else b""

    async def _send_start(self, message: dict, first: bytes) -> bool:
        if self.unread_body and not self.body_done.is_set():
            await drain_body(self._receive)  # read and dropped (bounded): then the answer
            self.body_done.set()
        try:
            await self._send(message)
        except Exception:  # noqa: BLE001 - the connection is gone, whatever the server says
            self.gone = True
        return await self._send_chunk(first) if first else not self.gone

    async def _send_chunk(self, chunk: bytes) -> bool:
        if self.gone:
            return False
        with anyio.move_on_after(self._idle_timeout_s) as waited:
            try:
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                await self._send(message)
            except Exception:  # noqa: BLE001 - the connection is gone, whatever the server says
                self.gone = True
        if waited.cancelled_caught:  # a client that reads nothing is as good as gone
            self.gone = True
        return not self.gone

    async def watch_disconnect(self) -> None:
        """Once the body is read, the next message can only say the client left."""
        await self.body_done.wait()
        if self.gone:
            return
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.gone = True

    async def finish(self) -> None:
        if self.gone:
            return
        if not self.body_done.is_set():
            # The handler left the request body unread: read and drop it (bounded), so
            # the connection ends cleanly or serves the next request.
            await drain_body(self._receive)
            self.body_done.set()
        try:
            if not self.started:
                await _plain(self._send, 500, b"")
                return
            if self._whole is not None:
                await self._send_start(*self._whole)
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # noqa: BLE001 - the client left, or the body broke its length
            self.gone = True


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k == name), None)


def _scheme(headers: list[tuple[str, str]]) -> str:
    given = _header(headers, "x-forwarded-proto")
    if given:
        return given
    forwarded = _header(headers, "forwarded")
    if forwarded:
        for pair in forwarded.split(",", 1)[0].split(";"):
            key, _, value = pair.partition("=")
            if key.strip().lower() == "proto" and value:
                return value.strip().strip('"')
    return "http"


def _host(headers: list[tuple[str, str]], scope: dict) -> str:
    host = _header(headers, "host")
    if host:
        return host
    server = scope.get("server") or ("127.0.0.1", 80)
    return f"{server[0]}:{server[1]}"


async def _plain(
    send: Any,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    close: bool = False,
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", content_type.encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
