"""Serving the ASGI app: hypercorn on trio, graceful shutdown, one log line per request.

``serve`` is what ``headwater serve`` runs: it binds, calls ``on_ready`` with
the URL, and on SIGINT or SIGTERM stops accepting, lets in-flight requests
finish (up to ``graceful_timeout_s``) and returns. ``run_server_in_thread`` is
for tests: the same server on a free loopback port in a background thread with
its own trio loop, returned once ``/health`` answers.

On stop, WebSocket sessions are ended at once with close code 1001 (going
away): a sync socket never finishes by itself, so waiting for it would hold
every shutdown for the whole graceful timeout.

Caveats: a worker thread running a function cannot be interrupted; a drain
waits for it up to the graceful timeout, then the process exits anyway.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from engine.limits import LIMITS
from gateway.memory_release import BigRequestMiddleware, MemoryReleaser

ACCESS_LOGGER = "headwater.access"
GRACEFUL_TIMEOUT_S = 10.0
GOING_AWAY = 1001  # WebSocket close code: the server is shutting down
_CLOSE_SEND_TIMEOUT_S = 0.5
_STARTUP_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 15.0

access_log = logging.getLogger(ACCESS_LOGGER)

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Any]


class AccessLogMiddleware:
    """Logs ``method=… path=… status=… ms=…`` once per finished HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_logged(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            ms = (time.perf_counter() - started) * 1000
            access_log.info(
                "method=%s path=%s status=%d ms=%.1f", scope["method"], scope["path"], status, ms
            )


class WebSocketShutdownMiddleware:
    """Ends every WebSocket session when ``stop`` is set: the app is cancelled, then
    the socket is closed with 1001 so clients know to reconnect elsewhere or later."""

    def __init__(self, app: ASGIApp, stop: trio.Event) -> None:
        self.app = app
        self.stop = stop
        # One cancel scope per open socket, cancelled by the one ``cancel_on_stop`` task
        # (not a waiting task per socket: at 10,000 sockets each task costs memory).
        self._sessions: set[trio.CancelScope] = set()

    async def cancel_on_stop(self) -> None:
        """Run once beside the server: cancel every session when ``stop`` is set."""
        await self.stop.wait()
        for session in list(self._sessions):
            session.cancel()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        state = {"accepted": False, "closed": False}

        async def send_tracked(message: dict) -> None:
            await send(message)
            if message["type"] == "websocket.accept":
                state["accepted"] = True
            elif message["type"] == "websocket.close":
                state["closed"] = True

        with trio.CancelScope() as session:
            if self.stop.is_set():
                session.cancel()
            self._sessions.add(session)
            try:
                await self.app(scope, receive, send_tracked)
            finally:
                self._sessions.discard(session)
        if self.stop.is_set() and state["accepted"] and not state["closed"]:
            with trio.move_on_after(_CLOSE_SEND_TIMEOUT_S):
                try:
                    await send({"type": "websocket.close", "code": GOING_AWAY, "reason": ""})
                except Exception:  # the peer is gone already: nothing left to tell it
                    pass


def _config(host: str, port: int, graceful_timeout_s: float) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout_s
    config.accesslog = None  # AccessLogMiddleware writes our own line
    config.errorlog = logging.getLogger("headwater.server")
    return config


def _log_to_stderr() -> None:
    """Route our loggers to stderr, once, unless the caller configured logging already."""
    for name in (ACCESS_LOGGER, "headwater.server"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


async def serve_async(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    graceful_timeout_s: float = GRACEFUL_TIMEOUT_S,
    handle_signals: bool = True,
    on_stop: Callable[[], None] | None = None,
    sites: Sequence[Site] = (),
) -> None:
    """Serve until SIGINT/SIGTERM (or ``shutdown_trigger`` returns), then drain;
    ``on_stop()`` runs (on the event loop) as the drain begins, to end long polls.
    ``sites``: more apps, each on its own port (HTTP actions, the dashboard), bound
    and announced in order before the main one, stopped with it."""
    stop = trio.Event()

    async def stop_when_asked() -> None:
        await stop.wait()
        if on_stop is not None:
            on_stop()

    config = _config(host, port, graceful_timeout_s)

    async def stop_on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logging.getLogger("headwater.server").info(
                    "received %s: draining in-flight requests", signal.Signals(signum).name
                )
                stop.set()
                return

    async def stop_on_trigger() -> None:
        assert shutdown_trigger is not None
        await shutdown_trigger()
        stop.set()

    releaser = MemoryReleaser()
    wrapped = BigRequestMiddleware(app, releaser, LIMITS.memory_release_after_request_bytes)
    sockets = WebSocketShutdownMiddleware(wrapped, stop)
    wrapped = AccessLogMiddleware(sockets)
    try:
        async with trio.open_nursery() as helpers:
            helpers.start_soon(stop_when_asked)
            helpers.start_soon(sockets.cancel_on_stop)
            if handle_signals:
                helpers.start_soon(stop_on_signal)
            if shutdown_trigger is not None:
                helpers.start_soon(stop_on_trigger)
            async with trio.open_nursery() as server:
                for site in sites:
                    site_config = _config(host, site.port, graceful_timeout_s)
                    site_wrapped = AccessLogMiddleware(site.app)
                    site_binds = await server.start(
                        partial(
                            hypercorn_serve,
                            cast(Any, site_wrapped),
                            site_config,
                            shutdown_trigger=stop.wait,
                        )
                    )
                    site.on_ready(site_binds[0])
                binds = await server.start(
                    partial(hypercorn_serve, cast(Any, wrapped), config, shutdown_trigger=stop.wait)
                )
                if on_ready is not None:
                    on_ready(binds[0])
            # hypercorn has stopped and drained; the helpers are no longer needed.
            helpers.cancel_scope.cancel()
    finally:
        releaser.close()


@dataclass(frozen=True)
class Site:
    """Another app served beside the main one on its own port (the HTTP actions' site
    origin, the dashboard)."""

    app: ASGIApp
    port: int  # 0: a free one
    on_ready: Callable[[str], None]


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None = None,
    graceful_timeout_s: float = GRACEFUL_TIMEOUT_S,
    on_stop: Callable[[], None] | None = None,
    sites: Sequence[Site] = (),
) -> None:
    """Run the server in this (main) thread until SIGINT/SIGTERM; returns after the drain."""
    _log_to_stderr()
    trio.run(
        partial(
            serve_async,
            app,
            host=host,
            port=port,
            on_ready=on_ready,
            graceful_timeout_s=graceful_timeout_s,
            on_stop=on_stop,
            sites=sites,
        )
    )


def run_server_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start a real server in a background thread; return ``(url, stop)``.

    Returns once ``GET /health`` answers 200. ``stop()`` drains and joins the
    thread; calling it twice is harmless.
    """
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["token"] = trio.lowlevel.current_trio_token()
        state["stop"] = stop_event = trio.Event()

        def on_ready(url: str) -> None:
            state["url"] = url
            ready.set()

        await serve_async(
            app,
            host=host,
            port=port,
            on_ready=on_ready,
            shutdown_trigger=stop_event.wait,
            graceful_timeout_s=5.0,
            handle_signals=False,
        )

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the caller of run_server_in_thread
            state["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="headwater-server", daemon=True)
    thread.start()
    if not ready.wait(_STARTUP_TIMEOUT_S) or "url" not in state:
        raise RuntimeError(f"the server did not start: {state.get('error')!r}")
    url = state["url"]

    def stop() -> None:
        if thread.is_alive():
            try:
                trio.from_thread.run_sync(state["stop"].set, trio_token=state["token"])
            except trio.RunFinishedError:
                pass
            thread.join(_STOP_TIMEOUT_S)
        if "error" in state:
            raise RuntimeError("the server thread failed") from state.pop("error")

    try:
        _wait_healthy(url)
    except BaseException:
        stop()
        raise
    return url, stop


def _wait_healthy(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while True:
        try:
            with opener.open(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/health did not answer 200 within {_STARTUP_TIMEOUT_S} s")
        time.sleep(0.02)
