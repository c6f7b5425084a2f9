"""Commits between the nodes of a cluster, over HTTP (admin key only).

``POST /api/headwater/cluster/commit`` takes a forwarded ``PendingCommit``
(``engine.commit_wire`` bytes) and answers ``{"ts": n}`` once it is durable in
the shared store; ``409`` with Convex's OCC code when it conflicts (the sender
retries its mutation, as locally); ``421 NotLeader`` when this node does not
lead (the sender asks the store who does and sends again).

``http_forward`` is the sending side that ``engine.cluster`` calls: a refused
connection was never received (safe to resend), while a failure after the
request left is ambiguous and reported so (``LeaderUnreachableError.sent``).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.cluster import Forward, LeaderUnreachableError
from engine.commit_wire import decode_pending, encode_pending
from engine.database import Database
from engine.errors import ConflictError
from engine.pending_commit import PendingCommit
from gateway.admin_auth import require_admin
from gateway.context import GatewayContext
from gateway.http_errors import error_response, json_response
from log.shared_store import FencedError

COMMIT_PATH = "/api/headwater/cluster/commit"
FORWARD_TIMEOUT_S = 30.0


def cluster_routes(context: GatewayContext, db: Database) -> list[BaseRoute]:
    async def commit(request: Request) -> Response:
        try:
            require_admin(context, request, "Cluster commits")
            pending = decode_pending(await request.body())
            ts = await anyio.to_thread.run_sync(db.committer.commit_forwarded, pending)
        except ConflictError as exc:
            return json_response({"code": exc.code, "message": exc.message}, 409)
        except FencedError as exc:
            return json_response({"code": exc.code, "message": exc.message}, 421)
        except Exception as exc:  # noqa: BLE001 - every refusal leaves as code + message
            return error_response(exc)
        return json_response({"ts": ts})

    return [Route(COMMIT_PATH, commit, methods=["POST"])]


def http_forward(admin_key: str) -> Forward:
    """The ``forward`` of a ``ClusterNode``: POST the commit to the leader's API."""
    client = httpx.Client(
        timeout=httpx.Timeout(FORWARD_TIMEOUT_S, connect=2.0),
        headers={"Authorization": f"Convex {admin_key}"},
    )

    def forward(leader: str, pending: PendingCommit) -> int:
        try:
            response = client.post(
                leader.rstrip("/") + COMMIT_PATH, content=encode_pending(pending)
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise LeaderUnreachableError(f"{leader}: {exc}", sent=False) from None
        except httpx.HTTPError as exc:
            raise LeaderUnreachableError(f"{leader}: {exc}", sent=True) from None
        body = _json(response)
        if response.status_code == 200 and type(body.get("ts")) is int:
            return body["ts"]
        message = str(body.get("message") or response.text[:200])
        if response.status_code == 409:
            raise ConflictError(message)
        if response.status_code == 421:
            raise FencedError(message)
        if response.status_code >= 500:  # it may have committed before failing
            raise LeaderUnreachableError(f"{leader}: {message}", sent=True)
        raise LeaderUnreachableError(
            f"{leader} refused the forwarded commit ({response.status_code} "
            f"{body.get('code')}): {message}",
            sent=False,
        )

    return forward


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except json.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
