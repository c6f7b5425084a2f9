"""The handler the executor gives a call, without a database: fetch and crypto ops."""

from __future__ import annotations

from typing import Any

from udf.call_handler import CallContext, CallHandler
from udf.calls import Identity
from udf.fetch_client import FetchOps


class FakeRunner:  # the executor side a call's handler needs: fetch limits only
    instance_name = "test"

    def __init__(self, *, timeout_s: float = 5.0, body_bytes_max: int = 64 << 20) -> None:
        self._limits = (timeout_s, body_bytes_max)

    def fetch_ops(self) -> FetchOps:
        return FetchOps(timeout_s=self._limits[0], body_bytes_max=self._limits[1])


def web_handler(kind: str, **limits: Any) -> CallHandler:
    """The handler the executor gives a call (no database): fetch and crypto ops."""
    context = CallContext(kind, "web:run", Identity(), "request", 0)  # type: ignore[arg-type]
    return CallHandler(FakeRunner(**limits), context)  # type: ignore[arg-type]
