"""The WebSocket sync endpoint: ``/api/sync`` and ``/api/{client_version}/sync``.

``sync_routes`` serves both paths through one ``SyncHub``: every socket of the
server (a ``gateway.sync_connection.SyncConnection`` each, which holds the
protocol's tasks, ordering and fan-out) and the live queries they share
(``gateway.live_queries``). The hub refuses a malformed client version in the
URL (400, before the upgrade), closes a socket past ``connections_max`` with
1013, tells npm clients from 1.28.0 that Transitions may come in chunks, and
closes every socket (1001) when the server shuts down.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import anyio.from_thread
import anyio.lowlevel
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from gateway.context import GatewayContext
from gateway.live_queries import LiveQueryRegistry
from gateway.sync_connection import SyncConnection
from gateway.sync_messages import CLOSE_GOING_AWAY, TRANSITION_CHUNK_BYTES_MAX

logger = logging.getLogger("headwater.sync")

_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")
_CHUNKS_SINCE = (1, 28, 0)  # npm clients from this version reassemble TransitionChunks


def _chunks_allowed(websocket: WebSocket) -> bool | None:
    """Whether this client reassembles TransitionChunks; None for a malformed version."""
    path_version = websocket.path_params.get("client_version")
    header = websocket.headers.get("convex-client")
    if path_version is None:
        return False
    match = _SEMVER.fullmatch(path_version)
    if match is None:
        return None
    if header is not None and not header.lower().startswith("npm-"):
        return False
    return tuple(int(g) for g in match.groups()[:3]) >= _CHUNKS_SINCE


class SyncHub:
    """Every sync socket of one server, and the live queries they share."""

    def __init__(self, context: GatewayContext) -> None:
        self.context = context
        self.registry = LiveQueryRegistry(
            context.executor,
            subscriptions_max=context.settings.subscriptions_max,
            refresh_fired=True,
        )
        self._connections: set[SyncConnection] = set()
        self._token: Any = None
        self.connections_total = 0
        self.transitions_sent = 0
        self.transition_chunk_bytes_max = TRANSITION_CHUNK_BYTES_MAX

    async def serve(self, websocket: WebSocket) -> None:
        chunks_allowed = _chunks_allowed(websocket)
        if chunks_allowed is None:
            version = websocket.path_params.get("client_version")
            response = PlainTextResponse(
                f"Invalid client version {version!r} in the sync URL: expected a semver such "
                f"as 1.48.0",
                status_code=400,
            )
            await websocket.send_denial_response(response)
            return
        self._token = anyio.lowlevel.current_token()
        await websocket.accept()
        if len(self._connections) >= self.context.settings.connections_max:
            limit = self.context.settings.connections_max
            logger.warning("sync connection refused: %d connections is the limit", limit)
            await websocket.close(1013, "TooManyConnections")
            return
        connection = SyncConnection(self, websocket, chunks_allowed)
        self._connections.add(connection)
        self.connections_total += 1
        await connection.run()

    def forget(self, connection: SyncConnection) -> None:
        """A socket has ended: it no longer counts against the limit."""
        self._connections.discard(connection)

    def close_all(self, reason: str = "ServerShutdown") -> None:
        """Event loop: close every socket (1001); clients reconnect elsewhere or later."""
        for connection in list(self._connections):
            connection.fail(CLOSE_GOING_AWAY, reason)

    def close_all_from_thread(self, reason: str = "ServerShutdown") -> None:
        """The same, from any thread other than the server's event loop."""
        if self._token is not None:
            try:
                anyio.from_thread.run_sync(self.close_all, reason, token=self._token)
            except Exception:  # the loop has already finished
                pass

    def statistics(self) -> dict[str, int]:
        return {
            "connections": len(self._connections),
            "connections_total": self.connections_total,
            "transitions_sent": self.transitions_sent,
            **self.registry.statistics(),
        }


def sync_routes(context: GatewayContext, hub: SyncHub | None = None) -> list[BaseRoute]:
    """The sync protocol's WebSocket routes, sharing one ``SyncHub``."""
    hub = hub if hub is not None else SyncHub(context)

    async def sync(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    return [
        WebSocketRoute("/api/sync", sync, name="sync"),
        WebSocketRoute("/api/{client_version}/sync", sync, name="sync_versioned"),
    ]
