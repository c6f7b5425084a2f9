"""Errors to HTTP statuses: the one place that maps error codes to status lines.

Protocol and auth failures leave as ``{"code": <ShortCode>, "message": <text>}``
with a 4xx/5xx status (http-api §1); function errors are not here: they are
200 responses with ``status: "error"`` (http-api §4.4). An error we did not
expect is logged and becomes a 500 whose message reveals nothing; a client that
leaves before its request was read is a 408 ``ClientDisconnected``, as Convex logs it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from engine.errors import HeadwaterError
from gateway.context import AuthenticationError
from udf.call_errors import js_error_text

INTERNAL_ERROR_MESSAGE = "Your request couldn't be completed. Try again later."

_log = logging.getLogger("headwater.server")

# Codes whose status is not the family default below.
_STATUS_BY_CODE: dict[str, int] = {
    # auth (gateway.auth)
    "Unauthenticated": 401,
    "BadAdminKey": 401,
    "NoAuthProvider": 401,
    "InvalidAuthHeader": 401,
    "AuthProviderDiscoveryFailed": 400,  # ErrorMetadata::bad_request in validate_id_token
    "InvalidAdminKey": 400,
    "InvalidHeaderFailure": 400,
    "HeaderParseFailure": 400,
    "BadDeployKey": 403,
    # engine and runtime errors a request can cause
    "DocumentNotFound": 404,
    "OptimisticConcurrencyControlFailure": 503,
    "TooManyConflicts": 503,
    "IntegrityError": 500,
    "NodeSetupFailed": 500,
    # pushes (udf.push): a module named by a hash the server does not hold
    "MissingExistingModule": 409,
    "ExistingModuleHashConflict": 409,
    "ExistingModuleEnvConflict": 409,
    # the gateway's own
    "PayloadTooLarge": 413,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "InternalServerError": 500,
    "ClientDisconnected": 408,
}


class HttpError(Exception):
    """A request the gateway refuses: ``status`` with ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(code: str, message: str) -> HttpError:
    return HttpError(400, code, message)


def status_for_code(code: str, default: int = 400) -> int:
    return _STATUS_BY_CODE.get(code, default)


def to_http_error(exc: BaseException) -> HttpError:
    """The HttpError a caught exception stands for (unexpected ones become a bare 500)."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, ClientDisconnect):  # the client's doing: no traceback, not a 500
        _log.info("the client disconnected before its request was read")
        return HttpError(408, "ClientDisconnected", "Client disconnected")
    if isinstance(exc, AuthenticationError):
        return HttpError(status_for_code(exc.code, 401), exc.code, exc.message)
    if isinstance(exc, HeadwaterError):
        status = status_for_code(exc.code)
        if status >= 500:
            _log.error("request failed: %s: %s", exc.code, exc.message)
            return HttpError(500, "InternalServerError", INTERNAL_ERROR_MESSAGE)
        return HttpError(status, exc.code, exc.message)
    _log.exception("unexpected error while serving a request", exc_info=exc)
    return HttpError(500, "InternalServerError", INTERNAL_ERROR_MESSAGE)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Compact JSON; NaN and infinities never reach here (the value formats encode them)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def error_response(exc: BaseException) -> Response:
    error = to_http_error(exc)
    return json_response({"code": error.code, "message": error.message}, error.status)


def function_error_message(request_id: str, message: str) -> str:
    """The ``errorMessage`` of a failed function (sync-protocol §7.1)."""
    # RedactedJsError's Display (crates/application/src/redaction.rs): the JsError text ends
    # in a newline, which the npm client keeps before its "\n  Called by client".
    return f"[Request ID: {request_id}] Server Error\n{js_error_text(message)}"
