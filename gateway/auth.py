"""Who is calling: the admin key, end-user JWTs from the app's auth providers.

``HeadwaterAuthenticator(admin_key, auth_config)`` implements the gateway's
``Authenticator``. ``auth_config`` is the default export of the app's
``convex/auth.config.ts`` as a plain dict (function-runtime §2.6)::

    {"providers": [{"domain": ..., "applicationID": ...},               # OIDC
                   {"type": "customJwt", "issuer": ..., "jwks": ...,
                    "algorithm": "RS256" | "ES256", "applicationID"?: ...}]}

A bearer token's registered claims are type-checked first (``gateway.jwt_claims``:
a string ``exp`` or one of ``1e300`` is refused, never read as "far future").
It is then matched to the provider whose issuer equals the token's
``iss`` (``https://`` assumed when the config omits a scheme, a trailing
``/`` ignored) and whose ``applicationID`` is among its audiences; then its
signature, audience and times (``exp``, ``nbf``, ``iat``, with ``leeway_s``) are
verified against the provider's keys.
The identity is the OIDC standard claims in camelCase, ``tokenIdentifier``
= ``iss|sub``, and every other claim passed through.

Verifying a token may fetch keys (blocking): call these methods from a
worker thread, never on the event loop.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

import jwt

from engine.convex_json import from_convex_json
from engine.errors import HeadwaterError, InvalidValueError
from gateway.admin_key import (
    acting_user_identity,
    decode_acting_user,
    keys_equal,
    split_acting_user,
    strip_type_prefix,
)
from gateway.context import AuthenticationError
from gateway.jwks import JwksCache, SigningKey
from gateway.jwt_claims import check_required_claims, invalid_token, unverified_parts
from udf.calls import ANONYMOUS, Identity

LEEWAY_S = 10.0  # clock skew tolerated on exp/nbf
OIDC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}
)
CUSTOM_JWT_ALGORITHMS = frozenset({"RS256", "ES256"})

# OIDC standard claims -> UserIdentity fields.
_STANDARD_CLAIMS = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "nickname": "nickname",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "email": "email",
    "email_verified": "emailVerified",
    "gender": "gender",
    "birthdate": "birthday",
    "zoneinfo": "timezone",
    "locale": "language",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
    "address": "address",
    "updated_at": "updatedAt",
}
# Claims about the token itself, not the user: not passed through.
_PROTOCOL_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "at_hash",
        "c_hash",
    }
)


def _normalize_issuer(issuer: str) -> str:
    issuer = issuer.strip()
    if "://" not in issuer:
        issuer = "https://" + issuer
    return issuer.rstrip("/")


@dataclass(frozen=True)
class OidcProvider:
    domain: str
    application_id: str

    @property
    def issuer(self) -> str:
        return _normalize_issuer(self.domain)


@dataclass(frozen=True)
class CustomJwtProvider:
    issuer_url: str
    jwks: str
    algorithm: str
    application_id: str | None = None

    @property
    def issuer(self) -> str:
        return _normalize_issuer(self.issuer_url)


Provider = OidcProvider | CustomJwtProvider


def _config_error(message: str) -> HeadwaterError:
    return HeadwaterError(f"Invalid auth config: {message}", code="InvalidAuthConfig")


def _required_str(entry: dict, key: str, index: int) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise _config_error(f"providers[{index}].{key} must be a non-empty string")
    return value


def parse_auth_config(config: dict[str, Any] | None) -> tuple[Provider, ...]:
    """The providers of an ``auth.config`` default export; InvalidAuthConfig when malformed."""
    if config is None:
        return ()
    providers = config.get("providers", []) if isinstance(config, dict) else None
    if not isinstance(providers, list):
        raise _config_error('expected {"providers": [...]}')
    parsed: list[Provider] = []
    for i, entry in enumerate(providers):
        if not isinstance(entry, dict):
            raise _config_error(f"providers[{i}] must be an object")
        kind = entry.get("type")
        if kind == "customJwt":
            algorithm = _required_str(entry, "algorithm", i)
            if algorithm not in CUSTOM_JWT_ALGORITHMS:
                raise _config_error(
                    f"providers[{i}].algorithm {algorithm!r} must be one of "
                    f"{sorted(CUSTOM_JWT_ALGORITHMS)}"
                )
            app_id = entry.get("applicationID")
            if app_id is not None and not isinstance(app_id, str):
                raise _config_error(f"providers[{i}].applicationID must be a string")
            jwks = _required_str(entry, "jwks", i)
            if not jwks.startswith(("https://", "http://", "data:")):
                raise _config_error(f"providers[{i}].jwks must be an http(s) or data: URL")
            parsed.append(
                CustomJwtProvider(_required_str(entry, "issuer", i), jwks, algorithm, app_id)
            )
        elif kind in (None, "oidc"):
            parsed.append(
                OidcProvider(
                    _required_str(entry, "domain", i), _required_str(entry, "applicationID", i)
                )
            )
        else:
            raise _config_error(f"providers[{i}].type {kind!r} is not 'customJwt' or 'oidc'")
    return tuple(parsed)


def _unauthenticated(message: str, code: str = "Unauthenticated") -> AuthenticationError:
    return AuthenticationError(message, code=code)


class HeadwaterAuthenticator:
    """The admin key and the app's JWT providers; see the module docstring."""

    def __init__(
        self,
        admin_key: str,
        auth_config: dict[str, Any] | None = None,
        *,
        jwks: JwksCache | None = None,
        leeway_s: float = LEEWAY_S,
    ) -> None:
        self._admin_key = strip_type_prefix(admin_key)
        self._providers = parse_auth_config(auth_config)
        self._jwks = jwks if jwks is not None else JwksCache()
        self.leeway_s = leeway_s

    @property
    def providers(self) -> tuple[Provider, ...]:
        return self._providers

    def set_auth_config(self, auth_config: dict[str, Any] | None) -> None:
        """Replace the providers (a deploy re-evaluates ``auth.config``)."""
        self._providers = parse_auth_config(auth_config)

    # -- the Authenticator protocol ------------------------------------------------

    def is_admin_key(self, key: str) -> bool:
        return keys_equal(strip_type_prefix(key), self._admin_key)

    def from_authorization_header(self, header: str | None) -> Identity:
        if header is None:
            return ANONYMOUS
        if len(header) < 7:
            raise _unauthenticated("Invalid authentication header", "InvalidHeaderFailure")
        scheme = header[:7].lower()
        if scheme == "convex ":
            key, acting = split_acting_user(header[7:].strip())
            self._check_admin_key(key)
            user = decode_acting_user(acting) if acting is not None else None
            return Identity(user=user, admin=True)
        token = header[7:].strip()
        if scheme != "bearer " or not token:
            raise _unauthenticated("Invalid admin key", "InvalidAdminKey")
        return self.verify_token(token)

    def from_sync_authenticate(
        self, token_type: str, value: str | None, impersonating: dict[str, Any] | None
    ) -> Identity:
        if token_type == "None":
            return ANONYMOUS
        if not isinstance(value, str) or not value:
            raise _unauthenticated(f"Authenticate with tokenType {token_type!r} needs a value")
        if token_type == "User":
            return self.verify_token(value)
        if token_type == "Admin":
            key, acting = split_acting_user(value)
            self._check_admin_key(key)
            if impersonating is not None:
                return Identity(user=acting_user_identity(impersonating), admin=True)
            user = decode_acting_user(acting) if acting is not None else None
            return Identity(user=user, admin=True)
        raise _unauthenticated(f"Unknown tokenType {token_type!r}: expected User, Admin or None")

    # -- admin key -------------------------------------------------------------------

    def _check_admin_key(self, key: str) -> None:
        if not self.is_admin_key(key):
            raise _unauthenticated(
                "The provided admin key was invalid for this instance", "BadAdminKey"
            )

    # -- JWT ---------------------------------------------------------------------------

    def verify_token(self, token: str) -> Identity:
        """Verify an end-user JWT against the configured providers.

        Error codes as Convex's: a token that does not parse, or whose registered
        claims are malformed or missing, is ``InvalidAuthHeader``; one that fails
        verification is ``Unauthenticated`` for an OIDC provider and
        ``InvalidAuthHeader`` for a customJwt one."""
        header, unverified = unverified_parts(token)
        issuer = unverified.get("iss")
        if issuer is None:
            raise invalid_token(
                "The token has no issuer claim ('iss'): it must name one of the configured "
                "auth providers."
            )
        provider = self._provider_for(issuer, _audiences(unverified.get("aud")))
        if isinstance(provider, CustomJwtProvider):
            check_required_claims(unverified, ("exp", "sub"))
            try:
                return self._verified_identity(token, header, provider)
            except AuthenticationError as exc:
                raise invalid_token(exc.message) from None
        check_required_claims(unverified, ("exp", "iat", "sub"))  # an OIDC ID token's
        return self._verified_identity(token, header, provider)

    def _verified_identity(
        self, token: str, header: dict[str, Any], provider: Provider
    ) -> Identity:
        algorithm = header.get("alg")
        allowed = (
            {provider.algorithm} if isinstance(provider, CustomJwtProvider) else OIDC_ALGORITHMS
        )
        if not isinstance(algorithm, str) or algorithm not in allowed:
            raise _unauthenticated(
                f"The token is signed with {algorithm!r}; this provider accepts {sorted(allowed)}"
            )
        claims = self._verified_claims(token, provider, algorithm, header.get("kid"))
        return Identity(user=_user_identity(claims), token=token)

    def _provider_for(self, issuer: str, audiences: list[str]) -> Provider:
        wanted = _normalize_issuer(issuer)
        for p in self._providers:
            if p.issuer != wanted:
                continue
            if p.application_id is None or p.application_id in audiences:
                return p
        configured = ", ".join(_describe(p) for p in self._providers) or "none configured"
        raise _unauthenticated(
            "No auth provider found matching the given token: its issuer "
            f"{issuer!r} and audience {audiences} match none of the providers ({configured}).",
            "NoAuthProvider",
        )

    def _keys_for(self, provider: Provider, kid: str | None) -> tuple[SigningKey, ...]:
        if isinstance(provider, CustomJwtProvider):
            url = provider.jwks
        else:
            url = self._jwks.jwks_uri(provider.issuer)
        return self._jwks.signing_keys(url, kid if isinstance(kid, str) else None)

    def _verified_claims(
        self, token: str, provider: Provider, algorithm: str, kid: Any
    ) -> dict[str, Any]:
        # The times are checked below, on claims jwt_claims has type-checked: PyJWT
        # would refuse a fractional or null iat that Convex takes.
        options: Any = {
            "require": ["exp", "iss", "sub"],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        }
        if provider.application_id is None:
            options["verify_aud"] = False
        problem = "no usable key in the provider's key set"
        for key in self._keys_for(provider, kid):
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    audience=provider.application_id,
                    options=options,
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
                problem = "the signature does not match any key of the provider"
            except jwt.PyJWTError as exc:
                raise _unauthenticated(f"Could not verify the token: {exc}") from None
            else:
                self._check_times(claims)
                return claims
        raise _unauthenticated(f"Could not verify the token: {problem}")

    def _check_times(self, claims: dict[str, Any]) -> None:
        """Expired, or not valid yet (nbf, iat in the future), give or take the leeway."""
        now = time.time()
        if now - claims["exp"] > self.leeway_s:
            raise _unauthenticated(
                "The token has expired: its exp claim is in the past. Fetch a fresh token."
            )
        for name in ("nbf", "iat"):
            starts = claims.get(name)
            if starts is not None and starts - now > self.leeway_s:
                raise _unauthenticated(
                    f"The token is not valid yet: its {name} claim is in the future."
                )


def _audiences(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _describe(p: Provider) -> str:
    if isinstance(p, OidcProvider):
        return f"OIDC(domain={p.domain}, applicationID={p.application_id})"
    return f"customJwt(issuer={p.issuer_url}, applicationID={p.application_id})"


def _standard_value(claim: str, value: Any) -> Any:
    if claim == "updated_at" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.UTC).isoformat()
    if claim == "address" and isinstance(value, dict):
        return value.get("formatted", "")
    return value


def _user_identity(claims: dict[str, Any]) -> dict[str, Any]:
    """The UserIdentity a verified token stands for."""
    user: dict[str, Any] = {}
    for name, value in claims.items():
        if name in _PROTOCOL_CLAIMS:
            continue
        field_name = _STANDARD_CLAIMS.get(name, name)
        try:
            user.update(from_convex_json({field_name: _standard_value(name, value)}))
        except InvalidValueError:
            continue  # a claim that is no Convex value (or has a bad name) is left out
    iss, sub = claims["iss"], str(claims["sub"])
    user.update(tokenIdentifier=f"{iss}|{sub}", issuer=iss, subject=sub)
    return user
