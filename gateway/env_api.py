"""The deployment environment variable endpoints, as Convex serves them (admin key only).

``POST /api/update_environment_variables`` with
``{"changes": [{"name": N, "value": V}, ...]}`` (``"value": null`` removes N)
applies the whole batch as one commit and answers 200 with an empty body;
``GET /api/list_environment_variables`` answers
``{"environmentVariables": {name: value, ...}}``. A bad name or value, or a
batch past the count or size limit, is a 400 with Convex's code
(``EnvironmentVariableNameInvalid``, ``EnvironmentVariableNameTooLong``,
``EnvironmentVariableValueTooLarge``, ``EnvVarLimitMet``,
``EnvVarTotalSizeLimitMet``) and changes nothing; so is a change that
leaves ``auth.config`` naming a missing variable
(``AuthConfigMissingEnvironmentVariable``).

``npx convex env list/get`` read through the system queries in
``udf.system_functions``; ``env set/remove`` post here.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.environment_variables import EnvChange, read_all
from gateway.admin_auth import require_admin
from gateway.context import GatewayContext
from gateway.http_errors import bad_request, error_response, json_response
from gateway.json_input import JsonInputError, parse_json
from udf.executor import Executor


def env_routes(context: GatewayContext, executor: Executor) -> list[BaseRoute]:
    async def update(request: Request) -> Response:
        try:
            require_admin(context, request, "Environment variables")
            changes = _changes(await request.body())
            await anyio.to_thread.run_sync(executor.update_environment_variables, changes)
        except Exception as exc:  # noqa: BLE001 - every refusal leaves as code + message
            return error_response(exc)
        return Response(status_code=200)

    async def list_all(request: Request) -> Response:
        try:
            require_admin(context, request, "Environment variables")
            found = await anyio.to_thread.run_sync(executor.db.query, read_all)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        return json_response({"environmentVariables": found.value})

    return [
        Route("/api/update_environment_variables", update, methods=["POST"]),
        Route("/api/list_environment_variables", list_all, methods=["GET"]),
    ]


def _changes(raw: bytes) -> list[EnvChange]:
    """``{"changes": [{"name": str, "value": str | null}, ...]}`` as a batch."""
    try:
        body: Any = parse_json(raw)
    except JsonInputError as exc:
        raise bad_request("BadJsonBody", f"Invalid JSON body: {exc.message}") from None
    changes = body.get("changes") if isinstance(body, dict) else None
    if not isinstance(changes, list):
        raise bad_request(
            "BadJsonBody", 'The body must be {"changes": [{"name": ..., "value": ...}]}.'
        )
    batch = []
    for change in changes:
        if not isinstance(change, dict) or not isinstance(change.get("name"), str):
            raise bad_request("BadJsonBody", "Each change needs a string `name`.")
        value = change.get("value")
        if value is not None and not isinstance(value, str):
            raise bad_request("BadJsonBody", f"The value of {change['name']} must be a string.")
        batch.append(EnvChange(change["name"], value))
    return batch
