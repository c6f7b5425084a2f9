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
``kid``, signature, audience and times are verified against the provider's keys
by the rules of that provider kind (``gateway.jwt_rules``).
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
from gateway.jwks import JwksCache, KeySetUnavailable, SigningKey
from gateway.jwt_claims import check_required_claims, invalid_token, unverified_parts
from gateway.jwt_rules import (
    KID_MISSING,
    OIDC_ALGORITHMS,
    OIDC_UNVERIFIED,
    custom_jwt_time_problem,
    discovery_failed,
    kid_unmatched,
    no_provider_message,
    oidc_times_valid,
)
from udf.calls import ANONYMOUS, Identity

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
    ) -> None:
        self._admin_key = strip_type_prefix(admin_key)
        self._providers = parse_auth_config(auth_config)
        self._jwks = jwks if jwks is not None else JwksCache()

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

        As Convex's ``validate_id_token`` (crates/authentication/src/lib.rs): a token
        that does not parse, or whose registered claims are malformed or missing, is
        ``InvalidAuthHeader``; then each provider kind verifies as its library does
        (module docstring of ``jwt_rules``)."""
        header, unverified = unverified_parts(token)
        issuer = unverified.get("iss")
        if issuer is None:
            raise invalid_token(
                "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' "
                "claim that matches one of your configured auth providers."
            )
        provider = self._provider_for(issuer, _audiences(unverified.get("aud")))
        if isinstance(provider, CustomJwtProvider):
            check_required_claims(unverified, ("exp", "sub"))
            claims = self._custom_jwt_claims(token, header, provider)
        else:
            check_required_claims(unverified, ("exp", "iat", "sub"))  # an OIDC ID token's
            claims = self._oidc_claims(token, header, provider, issuer)
        return Identity(user=_user_identity(claims), token=token)

    def _provider_for(self, issuer: str, audiences: list[str]) -> Provider:
        wanted = _normalize_issuer(issuer)
        for p in self._providers:
            if p.issuer != wanted:
                continue
            if p.application_id is None or p.application_id in audiences:
                return p
        raise _unauthenticated(no_provider_message(self._providers), "NoAuthProvider")

    def _oidc_claims(
        self, token: str, header: dict[str, Any], provider: OidcProvider, token_issuer: str
    ) -> Any:
        """openidconnect's ID token verifier: RS256 or EdDSA, a ``kid`` may be left out
        when the key set has one key, ``exp`` strictly after now, ``iat``/``nbf`` not read.
        Its failures are one Unauthenticated text; a failed discovery is its own error."""
        try:
            url = self._jwks.jwks_uri(provider.issuer)
            kid = header.get("kid")
            keys = self._jwks.signing_keys(url, kid if isinstance(kid, str) else None)
        except KeySetUnavailable:
            raise discovery_failed(str(token_issuer)) from None
        except AuthenticationError:
            raise _unauthenticated(OIDC_UNVERIFIED) from None
        algorithm = header.get("alg")
        if algorithm not in OIDC_ALGORITHMS or (header.get("kid") is None and len(keys) != 1):
            raise _unauthenticated(OIDC_UNVERIFIED)
        claims = _decoded(token, keys, algorithm, provider.application_id)
        if claims is None or not oidc_times_valid(claims, time.time()):
            raise _unauthenticated(OIDC_UNVERIFIED)
        return claims

    def _custom_jwt_claims(
        self, token: str, header: dict[str, Any], provider: CustomJwtProvider
    ) -> Any:
        """biscuit's ``decode_with_jwks``: a ``kid`` naming a key of the set is required,
        then the times with 5 s of slack; every failure is InvalidAuthHeader."""
        try:
            keys = self._jwks.signing_keys(provider.jwks, None)
        except KeySetUnavailable as exc:
            raise invalid_token(
                f"Could not fetch JWKS from URL '{provider.jwks}': {exc.reason}. Check that the "
                "URL is correct and accessible."
            ) from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise invalid_token(KID_MISSING)
        matching = tuple(k for k in keys if k.kid == kid)
        if not matching:
            try:
                matching = self._jwks.signing_keys(provider.jwks, kid)
            except AuthenticationError:
                raise invalid_token(kid_unmatched(kid)) from None
        if header.get("alg") != provider.algorithm:
            raise invalid_token(kid_unmatched(kid))
        claims = _decoded(token, matching, provider.algorithm, provider.application_id)
        if claims is None:
            raise invalid_token(kid_unmatched(kid))
        problem = custom_jwt_time_problem(claims, time.time())
        if problem is not None:
            raise invalid_token(f"Could not validate token: {problem}")
        return claims


def _decoded(
    token: str, keys: tuple[SigningKey, ...], algorithm: str, audience: str | None
) -> dict[str, Any] | None:
    """The token's claims if one of ``keys`` signed it (audience checked when given);
    the times are left to the caller, on claims ``jwt_claims`` has type-checked (PyJWT
    would refuse a fractional or null iat that Convex takes)."""
    options: Any = {
        "require": ["exp", "iss", "sub"],
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": audience is not None,
    }
    for key in keys:
        try:
            return jwt.decode(
                token, key.key, algorithms=[algorithm], audience=audience, options=options
            )
        except jwt.PyJWTError:
            continue
    return None


def _audiences(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


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
