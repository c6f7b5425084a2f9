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
a max-age of one day. A body over ``settings.message_bytes_max`` is refused
with 413 ``PayloadTooLarge``, and every body is read to its end before the
answer starts (``RequestBodyMiddleware``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

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

    def __init__(self, app: Any, bytes_max: int) -> None:
        self.app = app
        self.bytes_max = bytes_max

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _headers(scope).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.bytes_max:
            ended = await _drain(receive)
            response = error_response(self._too_large(int(declared)))
            if not ended:
                response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0
        ended = False

        async def limited_receive() -> dict:
            nonlocal received, ended
            message = await receive()
            if message["type"] != "http.request":
                ended = True  # the client is gone
                return message
            received += len(message.get("body", b""))
            more = message.get("more_body", False)
            ended = not more
            if received > self.bytes_max:
                ended = not more or await _drain(receive)
                raise self._too_large(received)
            return message

        async def send_after_body(message: dict) -> None:
            nonlocal ended
            if message["type"] == "http.response.start" and not ended:
                ended = True
                if not await _drain(receive):
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, limited_receive, send_after_body)

    def _too_large(self, size: int) -> HttpError:
        return HttpError(
            413,
            "PayloadTooLarge",
            f"The request body is {size} bytes or more, larger than the limit of "
            f"{self.bytes_max} bytes (message_bytes_max).",
        )


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


def _sync_routes(context: GatewayContext) -> list[BaseRoute]:
    """The WebSocket routes, when the sync endpoint module is part of this build."""
    try:
        from gateway.sync_endpoint import sync_routes
    except ModuleNotFoundError as exc:
        if exc.name != "gateway.sync_endpoint":
            raise  # the module exists but something it imports is missing: say so
        return []
    return list(sync_routes(context))


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


def create_app(context: GatewayContext, *, extra_routes: Iterable[BaseRoute] = ()) -> Starlette:
    """The whole HTTP and WebSocket surface over one GatewayContext."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False

    app = Starlette(
        routes=[
            *_plain_routes(context),
            *http_api_routes(context),
            *_sync_routes(context),
            *extra_routes,
        ],
        middleware=[
            Middleware(CorsMiddleware),
            Middleware(RequestBodyMiddleware, bytes_max=context.settings.message_bytes_max),
        ],
        exception_handlers={
            HTTPException: _http_exception,
            HttpError: _gateway_error,
            ClientDisconnect: _gateway_error,
        },
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.ready = False
    return app
