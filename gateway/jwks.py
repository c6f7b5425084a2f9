"""Signing keys of JWT issuers: OIDC discovery, JWKS fetching, caching, rotation.

An OIDC provider publishes ``<domain>/.well-known/openid-configuration``,
whose ``jwks_uri`` names its JSON Web Key Set; a customJwt provider names
its JWKS URL directly (``https:``, ``http:`` or an inline ``data:`` URL).
Documents are cached for ``ttl_s``. A token signed with a key id the cache
does not know triggers one refetch (key rotation), but at most once per
``refresh_interval_min_s`` per URL, so a flood of made-up key ids cannot turn
us into a load generator against the issuer.

Caveats: fetching is blocking I/O (urllib) and must run in a worker thread,
never on the event loop; concurrent fetches of one URL are coalesced by a
per-URL lock. A failed refresh keeps serving the previous keys.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from gateway.context import AuthenticationError
from gateway.json_input import JsonInputError, parse_json

FETCH_TIMEOUT_S = 10.0
DOCUMENT_BYTES_MAX = 1 << 20  # a JWKS or discovery document larger than this is refused
DISCOVERY_PATH = "/.well-known/openid-configuration"

FetchJson = Callable[[str], Any]

_log = logging.getLogger("headwater.auth")


def _is_loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _data_url(url: str) -> bytes:
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        raise ValueError("a data: URL needs a comma before its payload")
    if header.endswith(";base64"):
        return base64.b64decode(payload, validate=True)
    return urllib.parse.unquote_to_bytes(payload)


def fetch_json(url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> Any:
    """GET ``url`` and parse it as JSON (blocking). ``data:`` URLs are read in place."""
    if url.startswith("data:"):
        return _parse_document(_data_url(url))
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"only http(s) and data: URLs can be fetched, not {url!r}")
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parsed.hostname) else []
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with opener.open(request, timeout=timeout_s) as response:
        body = response.read(DOCUMENT_BYTES_MAX + 1)
    if len(body) > DOCUMENT_BYTES_MAX:
        raise ValueError(f"the document is larger than {DOCUMENT_BYTES_MAX} bytes")
    return _parse_document(body)


def _parse_document(body: bytes) -> Any:
    try:
        return parse_json(body)
    except JsonInputError as exc:
        raise ValueError(exc.message) from None


@dataclass(frozen=True)
class SigningKey:
    kid: str | None
    algorithm: str | None  # the JWK's "alg", when it names one
    key: Any  # a cryptography public key


def parse_jwks(document: Any) -> tuple[SigningKey, ...]:
    """The usable signature keys of a JWKS document; keys we cannot use are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS must be a JSON object with a "keys" array')
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(jwk).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
        kid = jwk.get("kid")
        keys.append(SigningKey(kid if isinstance(kid, str) else None, jwk.get("alg"), key))
    return tuple(keys)


@dataclass
class _Entry:
    value: Any = None  # the parsed document (keys tuple for a JWKS, jwks_uri for discovery)
    fetched_at: float | None = None
    failed_at: float | None = None
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Cached discovery documents and key sets, shared by every provider and thread."""

    def __init__(
        self,
        *,
        fetch: FetchJson = fetch_json,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = 3600.0,
        refresh_interval_min_s: float = 10.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self.ttl_s = ttl_s
        self.refresh_interval_min_s = refresh_interval_min_s
        self._entries: dict[str, _Entry] = {}
        self._entries_lock = threading.Lock()
        self._fetches = 0

    def statistics(self) -> dict[str, int]:
        return {"fetches": self._fetches, "cached_documents": len(self._entries)}

    def jwks_uri(self, issuer: str) -> str:
        """The ``jwks_uri`` that ``issuer``'s OIDC discovery document names."""
        return self._get(issuer.rstrip("/") + DISCOVERY_PATH, _parse_discovery, force=False)

    def signing_keys(self, jwks_url: str, kid: str | None) -> tuple[SigningKey, ...]:
        """Keys that may have signed a token with ``kid`` (all keys when it has none).

        An unknown ``kid`` refetches the set once (rate-limited) before giving up."""
        keys = self._get(jwks_url, parse_jwks, force=False)
        if kid is None:
            return keys
        found = tuple(k for k in keys if k.kid == kid)
        if not found:
            keys = self._get(jwks_url, parse_jwks, force=True)
            found = tuple(k for k in keys if k.kid == kid)
        if not found:
            raise AuthenticationError(
                f"Could not verify the token: no key with kid {kid!r} in the key set at {jwks_url}",
                code="Unauthenticated",
            )
        return found

    def _entry(self, url: str) -> _Entry:
        with self._entries_lock:
            return self._entries.setdefault(url, _Entry())

    def _get(self, url: str, parse: Callable[[Any], Any], *, force: bool) -> Any:
        entry = self._entry(url)
        with entry.lock:  # one fetch per URL at a time; the others use its result
            now = self._clock()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < self.ttl_s
            if fresh and not force:
                return entry.value
            if not self._may_fetch(entry, now):
                if entry.fetched_at is not None:
                    return entry.value
                raise _fetch_failed(url, entry.error)
            try:
                self._fetches += 1
                value = parse(self._fetch(url))
            except (OSError, ValueError, http.client.HTTPException) as exc:
                entry.failed_at, entry.error = now, str(exc) or type(exc).__name__
                if entry.fetched_at is not None:
                    _log.warning("refreshing %s failed (%s); keeping the cached copy", url, exc)
                    return entry.value
                raise _fetch_failed(url, entry.error) from None
            entry.value, entry.fetched_at, entry.failed_at = value, now, None
            return value

    def _may_fetch(self, entry: _Entry, now: float) -> bool:
        """At most one attempt per URL per ``refresh_interval_min_s``, success or not."""
        attempts = [t for t in (entry.fetched_at, entry.failed_at) if t is not None]
        return not attempts or now - max(attempts) >= self.refresh_interval_min_s


def _parse_discovery(document: Any) -> str:
    uri = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(uri, str) or not uri:
        raise ValueError("the OpenID configuration names no jwks_uri")
    return uri


class KeySetUnavailable(AuthenticationError):
    """A provider's discovery document or key set could not be fetched or read; the
    authenticator words it per provider kind, as Convex does."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Could not fetch the token's signing keys from {url}: {reason}",
            code="Unauthenticated",
        )
        self.url = url
        self.reason = reason


def _fetch_failed(url: str, reason: str) -> AuthenticationError:
    return KeySetUnavailable(url, reason)
