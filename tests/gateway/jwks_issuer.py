"""A loopback OIDC issuer for auth tests: discovery, a JWKS, and token minting.

Serves on 127.0.0.1 (a threading ``http.server``):

    /.well-known/openid-configuration   {"issuer": <url>, "jwks_uri": <url>/jwks.json}
    /jwks.json                          the RSA keys (RS256) of the OIDC issuer
    /custom/jwks.json                   the EC keys (ES256) of a customJwt issuer <url>/custom

``rotate()`` replaces the signing key (a new ``kid``), as real issuers do;
``requests`` counts the fetches per path so tests can see caching at work.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

APPLICATION_ID = "headwater-tests"


@dataclass
class _Key:
    kid: str
    algorithm: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS256" else ECAlgorithm.to_jwk
        jwk = to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def _new_key(kid: str, algorithm: str) -> _Key:
    if algorithm == "RS256":
        return _Key(kid, algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _Key(kid, algorithm, ec.generate_private_key(ec.SECP256R1()))


class JwksIssuer:
    def __init__(self) -> None:
        self.rsa = [_new_key("rsa-1", "RS256")]
        self.ec = [_new_key("ec-1", "ES256")]
        self.requests: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def custom_issuer(self) -> str:
        return f"{self.url}/custom"

    def auth_config(self) -> dict[str, Any]:
        """An auth.config with both provider kinds pointing at this issuer."""
        return {
            "providers": [
                {"domain": self.url, "applicationID": APPLICATION_ID},
                {
                    "type": "customJwt",
                    "issuer": self.custom_issuer,
                    "jwks": f"{self.url}/custom/jwks.json",
                    "algorithm": "ES256",
                    "applicationID": APPLICATION_ID,
                },
            ]
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> JwksIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rotate(self, *, keep_old: bool = False) -> str:
        """A new RSA signing key; the JWKS serves it (and the old one if ``keep_old``)."""
        key = _new_key(f"rsa-{len(self.rsa) + 1}", "RS256")
        self.rsa = [*self.rsa, key] if keep_old else [key]
        return key.kid

    def mint(
        self,
        sub: str = "user-1",
        *,
        iss: str | None = None,
        aud: str | list[str] | None = APPLICATION_ID,
        expires_in_s: float = 300,
        custom: bool = False,
        kid: str | None = None,
        signing_key: Any = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A signed token: RS256 from the OIDC issuer, or ES256 from the custom one.
        ``claims`` are set last, as given (even malformed; ``None`` writes null);
        ``kid=""`` leaves the key id out of the header."""
        key = (self.ec if custom else self.rsa)[-1]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": iss if iss is not None else (self.custom_issuer if custom else self.url),
            "sub": sub,
            "iat": now,
            "exp": now + int(expires_in_s),
        }
        if aud is not None:
            payload["aud"] = aud
        payload.update(claims or {})
        # Signed as raw JSON: PyJWT's encode would refuse the malformed claims tests need.
        return jwt.api_jws.encode(
            json.dumps(payload).encode(),
            signing_key if signing_key is not None else key.private,
            algorithm=key.algorithm,
            headers={} if kid == "" else {"kid": kid if kid is not None else key.kid},
        )

    def _documents(self) -> dict[str, Any]:
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"],
            },
            "/jwks.json": {"keys": [k.jwk() for k in self.rsa]},
            "/custom/jwks.json": {"keys": [k.jwk() for k in self.ec]},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server naming
                issuer.requests[self.path] += 1
                document = issuer._documents().get(self.path)
                body = json.dumps(document if document is not None else {"error": "not found"})
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
