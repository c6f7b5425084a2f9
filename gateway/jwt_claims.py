"""A JWT read before it is trusted: its parts parsed, its registered claims type-checked.

Convex reads every bearer token's payload into typed registered claims before it
picks a provider, and refuses the token (401 ``InvalidAuthHeader``) when one of
them has the wrong JSON type or range; its verifiers then need ``exp`` and
``sub`` (OIDC ID tokens ``iat`` too). The rules, per claim (absent or ``null``
means not given):

    iss, sub, jti     a string
    aud               a string, or an array of strings
    exp, nbf, iat     a number of seconds since 1970: an integer or a finite float,
                      at least 0 and at most NUMERIC_DATE_MAX_S (not a string, not a
                      boolean, not 1e300)

so ``{"exp": "99999999999"}`` or ``{"exp": 1e300}`` in a validly signed token is
refused, never read as "expires in the far future". Pure functions; no keys here.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from gateway.context import AuthenticationError
from gateway.json_input import JsonInputError, parse_json

# The latest instant Convex's clock type can hold (year 262143, chrono's
# NaiveDateTime::MAX), in seconds; a later NumericDate cannot be a real expiry.
NUMERIC_DATE_MAX_S = 8_210_298_412_799
STRING_CLAIMS = ("iss", "sub", "jti")
TIME_CLAIMS = ("exp", "nbf", "iat")


def invalid_token(message: str) -> AuthenticationError:
    return AuthenticationError(message, code="InvalidAuthHeader")


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = parse_json(raw)
    except (binascii.Error, ValueError, JsonInputError) as exc:
        detail = exc.message if isinstance(exc, JsonInputError) else "not base64url of JSON"
        raise invalid_token(f"Could not parse the token's {what}: {detail}") from None
    if not isinstance(value, dict):
        raise invalid_token(f"Could not parse the token's {what}: it must be a JSON object.")
    return value


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the claims of a JWT, unverified; InvalidAuthHeader if it is not
    three base64url parts of JSON objects, or a registered claim is malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise invalid_token(
            "Could not parse the token as a JWT: expected three base64url parts "
            f"separated by dots, got {len(parts)}."
        )
    header = _json_segment(parts[0], "header")
    claims = _json_segment(parts[1], "payload")
    check_registered_claims(claims)
    return header, claims


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_registered_claims(claims: dict[str, Any]) -> None:
    """InvalidAuthHeader if a registered claim has the wrong type or range (module doc)."""
    for name in STRING_CLAIMS:
        value = claims.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid_token(
                f"The token's {name} claim must be a string, got {_describe(value)}."
            )
    aud = claims.get("aud")
    if aud is not None and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise invalid_token(
            f"The token's aud claim must be a string or an array of strings, got {_describe(aud)}."
        )
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and not _is_numeric_date(value):
            raise invalid_token(
                f"The token's {name} claim must be a number of seconds since 1970 between 0 "
                f"and {NUMERIC_DATE_MAX_S}, got {_describe(value)}."
            )


def _is_numeric_date(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return 0 <= round(value) <= NUMERIC_DATE_MAX_S


def check_required_claims(claims: dict[str, Any], required: tuple[str, ...]) -> None:
    """InvalidAuthHeader naming the first of ``required`` the token lacks."""
    for name in required:
        if claims.get(name) is None:
            raise invalid_token(f"The token has no {name} claim, which is required.")
