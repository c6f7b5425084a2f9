"""The admin-key check of the admin HTTP endpoints that answer Convex's ``BadAdminKey``
(environment variables, snapshot export and import)."""

from __future__ import annotations

from starlette.requests import Request

from gateway.context import GatewayContext
from gateway.http_errors import HttpError


def require_admin(context: GatewayContext, request: Request, what: str) -> None:
    """Refuse (401 ``BadAdminKey``, naming ``what``) a request without the admin key."""
    identity = context.authenticator.from_authorization_header(request.headers.get("authorization"))
    if not identity.admin:
        raise HttpError(401, "BadAdminKey", f"{what} need the deployment's admin key.")
