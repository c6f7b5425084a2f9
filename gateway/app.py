"""The ASGI app: every HTTP route, the WebSocket sync routes, CORS and the body limit.

    GET  /                  "This Headwater deployment is running." (text)
    GET  /version, /instance_version, /instance_name   plain text
    GET  /health            "ok" once the app has started (503 before)
    POST /echo              the request body, back
    /api/...                the function API (gateway.http_api)
    /api/sync, /api/{version}/sync   WebSocket (gateway.sync_endpoint, when present)

CORS (http-api §1): every HTTP response mirrors the request's ``Origin`` and
allows credentials; a preflight ``OPTIONS`` is answered here with the
requested headers mirrored, the methods GET/POST/OPTIONS/PATCH/DELETE/PUT and
a max-age of one day. A body over ``settings.message_bytes_max`` (or its route's
own limit, ``body_limits``: file uploads) is refused with 413 ``PayloadTooLarge``,
and every body is read to its end before the answer starts
(``RequestBodyMiddleware``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from engine.limits import LIMITS
from gateway.context import GatewayContext
from gateway.http_api import http_api_routes
from gateway.http_errors import HttpError, error_response, json_response

CORS_METHODS = "GET, POST, OPTIONS, PATCH, DELETE, PUT"
CORS_MAX_AGE_S = 86400


class CorsMiddleware:
    """Browsers call the API directly: mirror the origin, answer preflights."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await _preflight(send, origin, headers.get(b"access-control-request-headers"))
            return

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_cors(origin)]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _headers(scope: dict) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _cors(origin: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


async def _preflight(send: Any, origin: bytes, requested_headers: bytes | None) -> None:
    headers = [
        *_cors(origin),
        (b"access-control-allow-methods", CORS_METHODS.encode()),
        (b"access-control-max-age", str(CORS_MAX_AGE_S).encode()),
        (b"content-length", b"0"),
    ]
    if requested_headers is not None:
        headers.append((b"access-control-allow-headers", requested_headers))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class RequestBodyMiddleware:
    """Every request body is read to its end, and no further than ``bytes_max``.

    Over the limit: 413 at once by Content-Length, else while reading. And before
    any answer starts, what the handler left unread (``/api/query_ts`` reads
    nothing; an error may come before the body) is read and dropped, bounded, so
    a keep-alive connection's next request starts where the parser expects it
    and a client still sending reads the answer instead of a cut connection.
    """

    def __init__(self, app: Any, bytes_max: int, limits_by_path: Mapping[str, int]) -> None:
        self.app = app
        self.bytes_max = bytes_max
        self.limits_by_path = dict(limits_by_path)  # routes with their own limit (uploads)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bytes_max = self.limits_by_path.get(scope["path"], self.bytes_max)
        declared = _headers(scope).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > bytes_max:
            ended = await _drain(receive)
            response = error_response(self._too_large(int(declared), bytes_max))
            if not ended:
                response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        body = _Body(receive, bytes_max, lambda size: self._too_large(size, bytes_max))

        async def send_after_body(message: dict) -> None:
            if message["type"] == "http.response.start" and not body.ended:
                if not await body.drain():
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, body.receive, send_after_body)

    def _too_large(self, size: int, bytes_max: int) -> HttpError:
        name = "message_bytes_max" if bytes_max == self.bytes_max else "the route's limit"
        return HttpError(
            413,
            "PayloadTooLarge",
            f"The request body is {size} bytes or more, larger than the limit of "
            f"{bytes_max} bytes ({name}).",
        )


class _Body:
    """One reader of a request's ``receive`` at a time.

    A streamed answer (StreamingResponse, FileResponse) listens for a disconnect
    while it is sent, so it waits on ``receive`` at the moment the drain before the
    answer wants the rest of the body. Two waiters on one ``receive`` split its
    messages between them: the listener can take the body's last message and the
    drain then waits for a disconnect that never comes. Here every read holds a
    lock and the drain stops as soon as the body has ended, whoever read its end.
    """

    def __init__(self, receive: Any, bytes_max: int, too_large: Any) -> None:
        self._receive = receive
        self._lock = anyio.Lock()
        self._bytes_max = bytes_max
        self._too_large = too_large
        self.received = 0
        self.ended = False
        self._given_up = False  # the drain stopped at its bound: close the connection

    async def receive(self) -> dict:
        async with self._lock:
            message = await self._receive()
        if message["type"] != "http.request":
            self.ended = True  # the client is gone
            return message
        self.received += len(message.get("body", b""))
        more = message.get("more_body", False)
        self.ended = self.ended or not more
        if self.received > self._bytes_max:
            if more:
                await self.drain()
            raise self._too_large(self.received)
        return message

    async def drain(self) -> bool:
        """Read and drop the rest of the body, at most ``request_drain_bytes_max``;
        whether the connection is fit for another request."""
        drained = 0
        while not self.ended:
            if self._given_up or drained > LIMITS.request_drain_bytes_max:
                self._given_up = True
                return False
            async with self._lock:
                if self.ended:
                    break
                message = await self._receive()
            if message["type"] != "http.request":
                self.ended = True
                break
            drained += len(message.get("body", b""))
            self.ended = not message.get("more_body", False)
        return True


async def _drain(receive: Any) -> bool:
    """Read and drop the rest of a body, at most ``request_drain_bytes_max``; whether
    the connection is fit for another request (the body ended, or the client left)."""
    drained = 0
    while drained <= LIMITS.request_drain_bytes_max:
        message = await receive()
        if message["type"] != "http.request":
            return True
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


drain_body = _drain  # for the HTTP actions' own requests (gateway.http_actions)


def _plain_routes(context: GatewayContext) -> list[BaseRoute]:
    settings = context.settings

    async def root(request: Request) -> Response:
        return PlainTextResponse("This Headwater deployment is running.")

    async def version(request: Request) -> Response:
        return PlainTextResponse(settings.version)

    async def instance_name(request: Request) -> Response:
        return PlainTextResponse(settings.instance_name)

    async def health(request: Request) -> Response:
        if not getattr(request.app.state, "ready", False):
            return PlainTextResponse("starting", status_code=503)
        return PlainTextResponse("ok")

    async def echo(request: Request) -> Response:
        media_type = request.headers.get("content-type", "application/octet-stream")
        return Response(await request.body(), media_type=media_type)

    return [
        Route("/", root, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/instance_version", version, methods=["GET"]),
        Route("/instance_name", instance_name, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/echo", echo, methods=["POST"]),
    ]


def _sync_routes(context: GatewayContext) -> tuple[list[BaseRoute], Any]:
    """The WebSocket routes and their hub, when the sync endpoint module is part of
    this build (else no routes and no hub)."""
    try:
        from gateway.sync_endpoint import SyncHub, sync_routes
    except ModuleNotFoundError as exc:
        if exc.name != "gateway.sync_endpoint":
            raise  # the module exists but something it imports is missing: say so
        return [], None
    hub = SyncHub(context)
    return list(sync_routes(context, hub)), hub


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
    message = exc.detail
    if exc.status_code in (404, 405):
        message = f"No route for {request.method} {request.url.path}."
    return json_response(
        {"code": code, "message": message}, exc.status_code, dict(exc.headers or {})
    )


async def _gateway_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


def create_app(
    context: GatewayContext,
    *,
    extra_routes: Iterable[BaseRoute] = (),
    body_limits: Mapping[str, int] | None = None,
) -> Starlette:
    """The whole HTTP and WebSocket surface over one GatewayContext (``body_limits``:
    a path's own body limit in place of ``message_bytes_max``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False

    websocket_routes, hub = _sync_routes(context)
    app = Starlette(
        routes=[
            *_plain_routes(context),
            *http_api_routes(context),
            *websocket_routes,
            *extra_routes,
        ],
        middleware=[
            Middleware(CorsMiddleware),
            Middleware(
                RequestBodyMiddleware,
                bytes_max=context.settings.message_bytes_max,
                limits_by_path=body_limits or {},
            ),
        ],
        exception_handlers={
            HTTPException: _http_exception,
            HttpError: _gateway_error,
            ClientDisconnect: _gateway_error,
        },
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.sync_hub = hub  # its live figures: the dashboard's health gauges
    app.state.ready = False
    return app
