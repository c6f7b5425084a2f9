"""``GET /api/stream_function_logs?cursor=N`` (admin key): the function log, long-polled.

What ``npx convex logs`` and ``npx convex dev`` poll. The answer is
``{"entries": [...], "newCursor": N}`` with the entries newer than ``cursor``; when
there are none yet, the request waits for the next execution, or answers
``{"entries": [], "newCursor": cursor}`` after ``function_log_poll_s`` (the
reference waits 60 s). A caller without the admin key is refused as the reference
refuses it (403 ``BadDeployKey``); a wrong key is ``BadAdminKey`` like every route.
When the server begins to stop, waiting polls answer 503 at once (as the reference
fails them on shutdown) so they do not hold the drain; the CLI retries later.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio
import sniffio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engine.limits import LIMITS
from gateway.admin_auth import require_deploy_key
from gateway.context import AuthenticationError, GatewayContext
from gateway.http_errors import HttpError, error_response, to_http_error
from udf.function_log import FunctionLog, FunctionLogEntry


class LongPolls:
    """The waiting polls, released at once when the server starts to stop."""

    def __init__(self) -> None:
        self.stopping = False
        self._released: set[anyio.Event] = set()

    def stop(self) -> None:
        """On the event loop: every waiting poll ends, and new ones do not wait."""
        self.stopping = True
        for released in list(self._released):
            released.set()

    async def wait_stopping(self) -> None:
        if self.stopping:
            return
        released = anyio.Event()
        self._released.add(released)
        try:
            await released.wait()
        finally:
            self._released.discard(released)


def function_log_routes(
    context: GatewayContext,
    log: FunctionLog,
    polls: LongPolls,
    *,
    poll_s: float = LIMITS.function_log_poll_s,
) -> list[BaseRoute]:
    async def stream(request: Request) -> Response:
        try:
            require_deploy_key(context, request)
            cursor = _cursor(request.query_params.get("cursor"))
        except (AuthenticationError, HttpError) as exc:
            return error_response(to_http_error(exc))

        async def gone() -> None:  # the client left, or the server is stopping
            async with anyio.create_task_group() as either:
                either.start_soon(_cancel_when, lambda: _disconnected(request), either.cancel_scope)
                either.start_soon(_cancel_when, polls.wait_stopping, either.cancel_scope)

        entries, new_cursor = await wait_entries_after(log, cursor, poll_s, gone=gone)
        if polls.stopping and not entries:
            stopping = HttpError(503, "ServerShutdown", "The server is shutting down.")
            return error_response(stopping)
        # Structured console lines for the clients known to read them, as the reference.
        client = request.headers.get("convex-client", "")
        structured = client.startswith(("npm-cli-", "dashboard-"))
        found = [e.to_json(structured=structured) for e in entries]
        return JSONResponse({"entries": found, "newCursor": new_cursor})

    return [Route("/api/stream_function_logs", stream, methods=["GET"])]


async def wait_entries_after(
    log: FunctionLog,
    cursor_ms: float,
    timeout_s: float,
    *,
    gone: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[FunctionLogEntry], float]:
    """The entries after ``cursor_ms``, waiting up to ``timeout_s`` for the first one,
    or until ``gone()`` returns (the client left: it holds no listener any longer).
    Appends happen on worker threads; they wake this task through the event loop."""
    entries, new_cursor = log.entries_after(cursor_ms)
    if entries:
        return entries, new_cursor
    arrived = anyio.Event()
    wake = _threadsafe(arrived.set)

    def on_entry(_entry: FunctionLogEntry) -> None:
        wake()

    log.add_listener(on_entry)
    try:
        entries, new_cursor = log.entries_after(cursor_ms)  # one may have come meanwhile
        if not entries:
            async with anyio.create_task_group() as waiting:
                if gone is not None:
                    waiting.start_soon(_cancel_when, gone, waiting.cancel_scope)
                with anyio.move_on_after(timeout_s):
                    await arrived.wait()
                waiting.cancel_scope.cancel()
            entries, new_cursor = log.entries_after(cursor_ms)
    finally:
        log.remove_listener(on_entry)
    return entries, new_cursor


async def _cancel_when(gone: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
    await gone()
    scope.cancel()


async def _disconnected(request: Request) -> None:
    """Returns when the client has closed the connection (the body was read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _threadsafe(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` scheduled on this task's event loop, callable from any thread, never blocking."""
    if sniffio.current_async_library() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def on_trio() -> None:
            try:
                token.run_sync_soon(fn)
            except trio.RunFinishedError:
                pass

        return on_trio
    import asyncio

    loop = asyncio.get_running_loop()

    def on_asyncio() -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(fn)

    return on_asyncio


def _cursor(raw: str | None) -> float:
    if raw is None:
        raise HttpError(400, "BadQueryArgs", "Missing query parameter: cursor")
    try:
        cursor = float(raw)
    except ValueError:
        cursor = math.nan
    if not math.isfinite(cursor):
        raise HttpError(400, "BadQueryArgs", f"cursor must be a number, got {raw!r}")
    return cursor
