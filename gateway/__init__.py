"""The edge of Headwater: the ``headwater`` command line and the server it runs.

The server speaks Convex's wire protocols: the HTTP API (``/api/query``,
``/api/mutation``, ``/api/function``, streaming export, …) and the WebSocket
sync protocol (``/api/sync``), as a Starlette app on hypercorn and trio. Only
this package knows HTTP, JSON, WebSockets and JWTs; nothing imports it.

Users need ``Backend`` (a data folder, functions and the whole app, what
``headwater serve`` runs), or ``create_app`` over their own ``GatewayContext``,
and ``serve`` / ``run_server_in_thread`` to put an app on a port. Names are
resolved lazily (PEP 562), so ``headwater --version`` does not load the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy_exports import lazy_exports

_EXPORTS = {
    "Backend": "gateway.backend",
    "GatewayContext": "gateway.context",
    "GatewaySettings": "gateway.context",
    "create_app": "gateway.app",
    "run_server_in_thread": "gateway.server",
    "serve": "gateway.server",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from gateway.app import create_app  # noqa: F401
    from gateway.backend import Backend  # noqa: F401
    from gateway.context import GatewayContext, GatewaySettings  # noqa: F401
    from gateway.server import run_server_in_thread, serve  # noqa: F401
