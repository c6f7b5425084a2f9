"""Where Convex refuses a signed end-user JWT, per provider kind, and in what words.

Source: get-convex/convex-backend ``crates/authentication/src/lib.rs``
(``validate_id_token``) and the libraries it hands tokens to:

- OIDC providers go through openidconnect's ID token verifier: algorithms RS256 and
  EdDSA only; a token without ``kid`` is taken only when the provider's key set has
  exactly one key; ``exp`` must be after now, with no slack; ``iat`` and ``nbf`` are not
  read. Any failure is ``Unauthenticated`` with one text (``OIDC_UNVERIFIED``); a
  discovery or key set that cannot be fetched is ``AuthProviderDiscoveryFailed``.
- customJwt providers go through biscuit's ``decode_with_jwks``: the header must carry a
  ``kid`` that names a key of the set (else ``KID_MISSING`` / ``kid_unmatched``), then
  ``exp``, ``nbf`` and ``iat`` are checked with ``CUSTOM_JWT_EPSILON_S`` of slack
  ("Could not validate token: ..."). Every failure is ``InvalidAuthHeader``.

Pure functions over claims already type-checked by ``gateway.jwt_claims``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from gateway.context import AuthenticationError

OIDC_ALGORITHMS = frozenset({"RS256", "EdDSA"})
CUSTOM_JWT_EPSILON_S = 5  # biscuit TemporalOptions epsilon as Convex sets it
OIDC_UNVERIFIED = (
    "Could not verify OIDC token claim. Check that the token signature is valid and the "
    "token hasn't expired."
)
KID_MISSING = "Could not decode token. JWT may be missing a 'kid' (key ID) header."


def kid_unmatched(kid: str) -> str:
    return (
        f"Could not decode token. The JWT's 'kid' (key ID) header is '{kid}', does this key "
        "match any key in the provider's JWKS?"
    )


def discovery_failed(token_issuer: str) -> AuthenticationError:
    """Convex adds the status and body only for an HTTP error answer; we never have them."""
    return AuthenticationError(
        f"Auth provider discovery of {token_issuer} failed", code="AuthProviderDiscoveryFailed"
    )


def no_provider_message(providers: Iterable[Any]) -> str:
    """``enhance_no_provider_error`` (unredacted, as a development deployment says it)."""
    described = []
    for p in providers:
        if hasattr(p, "domain"):
            described.append(f"OIDC(domain={p.domain}, app_id={p.application_id})")
        else:
            described.append(
                f"CustomJWT(issuer={p.issuer_url}, app_id={p.application_id or 'none'})"
            )
    if not described:
        return (
            "No auth provider found matching the given token (no providers configured). "
            "Check convex/auth.config.ts."
        )
    return (
        "No auth provider found matching the given token. Check that your JWT's issuer and "
        f"audience match one of your configured providers: [{', '.join(described)}]"
    )


def oidc_times_valid(claims: dict[str, Any], now_s: float) -> bool:
    """openidconnect: the current time must be before ``exp``."""
    return now_s < claims["exp"]


def custom_jwt_time_problem(claims: dict[str, Any], now_s: float) -> str | None:
    """biscuit's temporal validation, in its words, or None when the times are fine."""
    now = math.floor(now_s)
    exp = claims.get("exp")
    if exp is not None and now - CUSTOM_JWT_EPSILON_S > exp:
        return f"Token expired {int(now - exp)} seconds ago"
    for name in ("nbf", "iat"):
        starts = claims.get(name)
        if starts is not None and starts > now + CUSTOM_JWT_EPSILON_S:
            return f"Token will be valid in {int(starts - now)} seconds"
    return None
