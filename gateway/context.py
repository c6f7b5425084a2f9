"""What every part of the gateway shares: the executor, the authenticator, the settings.

``gateway.app.create_app`` builds one ``GatewayContext`` and hands it to the
HTTP routes and the WebSocket sync endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from udf.calls import FunctionExecutor, Identity


class AuthenticationError(Exception):
    """A credential was presented and is not valid (bad signature, expired, unknown issuer)."""

    def __init__(self, message: str, *, code: str = "Unauthenticated") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Authenticator(Protocol):
    def from_authorization_header(self, header: str | None) -> Identity:
        """``Bearer <JWT>`` / ``Convex <admin key>[:<b64 identity>]`` / absent → Identity.
        Raises AuthenticationError (invalid or expired token, wrong admin key)."""
        ...

    def from_sync_authenticate(
        self, token_type: str, value: str | None, impersonating: dict[str, Any] | None
    ) -> Identity:
        """The WebSocket ``Authenticate`` message (tokenType "User" | "Admin" | "None")."""
        ...

    def is_admin_key(self, key: str) -> bool: ...


@dataclass(frozen=True)
class GatewaySettings:
    instance_name: str = "headwater"
    version: str = "0.1.0"
    # A WebSocket message or HTTP body larger than this is refused.
    message_bytes_max: int = 16 * 1024 * 1024 + 2000
    connections_max: int = 10_000
    subscriptions_max: int = 100_000  # live queries across the server
    queries_per_connection_max: int = 10_000
    # Unsent server messages per socket before the client is dropped as too slow.
    send_buffer_messages_max: int = 1000
    ping_interval_s: float = 15.0  # application-level {"type":"Ping"} after this silence
    idle_timeout_s: float = 120.0  # close a socket that sent nothing for this long
    mutations_in_flight_max: int = 1000


@dataclass
class GatewayContext:
    executor: FunctionExecutor
    authenticator: Authenticator
    settings: GatewaySettings = field(default_factory=GatewaySettings)
