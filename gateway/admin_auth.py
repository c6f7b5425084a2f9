"""The admin-key checks of the admin HTTP endpoints: those that answer Convex's
``BadAdminKey`` (environment variables, snapshot export and import) and those the CLI
reaches with its deploy key, answered with ``BadDeployKey`` (push, function logs)."""

from __future__ import annotations

from starlette.requests import Request

from gateway.context import GatewayContext
from gateway.http_errors import HttpError


def require_admin(context: GatewayContext, request: Request, what: str) -> None:
    """Refuse (401 ``BadAdminKey``, naming ``what``) a request without the admin key."""
    identity = context.authenticator.from_authorization_header(request.headers.get("authorization"))
    if not identity.admin:
        raise HttpError(401, "BadAdminKey", f"{what} need the deployment's admin key.")


def bad_deploy_key(context: GatewayContext) -> HttpError:
    """Convex's refusal of a key that is not this deployment's admin key (403)."""
    name = context.settings.instance_name
    return HttpError(
        403,
        "BadDeployKey",
        f"The provided deploy key was invalid for deployment '{name}'. Double check that "
        "the environment this key was generated for matches the desired deployment.",
    )


def require_deploy_key(context: GatewayContext, request: Request) -> None:
    """Refuse (``bad_deploy_key``) a request without the admin key."""
    identity = context.authenticator.from_authorization_header(request.headers.get("authorization"))
    if not identity.admin:
        raise bad_deploy_key(context)
