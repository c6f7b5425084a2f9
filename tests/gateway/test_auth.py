"""Admin keys and end-user JWTs, alone and through a real HTTP server."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from schemas import CHAT_SCHEMA
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.errors import HeadwaterError
from gateway.admin_key import generate_admin_key, strip_type_prefix
from gateway.app import create_app
from gateway.auth import HeadwaterAuthenticator, parse_auth_config
from gateway.context import AuthenticationError, GatewayContext
from gateway.jwks import JwksCache
from gateway.jwt_rules import OIDC_UNVERIFIED
from gateway.server import run_server_in_thread

sys.path.insert(0, str(Path(__file__).parent))  # the gateway test helpers live beside this file
from jwks_issuer import APPLICATION_ID, JwksIssuer  # noqa: E402
from python_executor import PythonExecutor, chat_functions  # noqa: E402

KEY = generate_admin_key("headwater")
SESSION = "6f1c2e7a-0b7d-4b33-9a51-2f0f6c1e9d10"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer():
    with JwksIssuer() as server:
        yield server


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def auth(issuer, clock):
    issuer.rsa = issuer.rsa[:1]
    return HeadwaterAuthenticator(
        KEY, issuer.auth_config(), jwks=JwksCache(clock=clock, refresh_interval_min_s=10)
    )


def code_of(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


def b64_json(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


# --- admin keys --------------------------------------------------------------------


def test_generated_admin_keys_have_the_reference_shape():
    key = generate_admin_key("my-app")
    assert re.fullmatch(r"my-app\|[0-9a-f]{64}", key)
    assert generate_admin_key("my-app") != key
    with pytest.raises(HeadwaterError) as bad:
        generate_admin_key("no|bars")
    assert bad.value.code == "InvalidInstanceName"


def test_admin_key_header_forms(auth):
    assert auth.from_authorization_header(None).admin is False
    assert auth.from_authorization_header(f"Convex {KEY}").admin
    assert auth.from_authorization_header(f"cONVEX {KEY}").admin  # prefix case-insensitive
    assert auth.from_authorization_header(f"Convex prod:{KEY}").admin  # type prefix dropped
    assert auth.is_admin_key(f"dev:{KEY}") and not auth.is_admin_key(
        KEY[:-1] + ("1" if KEY.endswith("0") else "0")
    )
    assert strip_type_prefix("prod:app|abc:xyz") == "app|abc:xyz"


def test_a_wrong_admin_key_is_refused(auth):
    for header in (f"Convex {KEY[:-4]}beef", "Convex other|" + "0" * 64, "Convex garbage"):
        with pytest.raises(AuthenticationError) as bad:
            auth.from_authorization_header(header)
        assert code_of(bad) == "BadAdminKey"
        assert "admin key was invalid" in bad.value.message


def test_malformed_authorization_headers(auth):
    with pytest.raises(AuthenticationError) as short:
        auth.from_authorization_header("abc")
    assert code_of(short) == "InvalidHeaderFailure"
    for header in ("Basic dXNlcjpwYXNz", "Bearer ", "Bearer    "):
        with pytest.raises(AuthenticationError) as bad:
            auth.from_authorization_header(header)
        assert code_of(bad) == "InvalidAdminKey"


def test_admin_acting_as_a_user(auth):
    who = {"issuer": "https://issuer.test", "subject": "u7", "name": "Ada", "role": "editor"}
    identity = auth.from_authorization_header(f"Convex {KEY}:{b64_json(who)}")
    assert identity.admin
    assert identity.user["tokenIdentifier"] == "https://issuer.test|u7"
    assert identity.user["name"] == "Ada" and identity.user["role"] == "editor"
    explicit = auth.from_authorization_header(
        f"Convex prod:{KEY}:{b64_json({'tokenIdentifier': 't'})}"
    )
    assert explicit.user == {"tokenIdentifier": "t"}


@pytest.mark.parametrize(
    "suffix", ["not*base64", b64_json(["a list"]), b64_json({"name": "no subject"}), "bm90IGpzb24="]
)
def test_a_malformed_acting_identity_is_refused(auth, suffix):
    with pytest.raises(AuthenticationError) as bad:
        auth.from_authorization_header(f"Convex {KEY}:{suffix}")
    assert code_of(bad) == "HeaderParseFailure"


def test_sync_authenticate(auth, issuer):
    assert auth.from_sync_authenticate("None", None, None).user is None
    assert auth.from_sync_authenticate("Admin", KEY, None).admin
    acting = auth.from_sync_authenticate("Admin", KEY, {"issuer": "i", "subject": "s"})
    assert acting.admin and acting.user["tokenIdentifier"] == "i|s"
    user = auth.from_sync_authenticate("User", issuer.mint("u1"), None)
    assert user.user["subject"] == "u1" and not user.admin
    for args in (("Admin", "wrong", None), ("User", None, None), ("Magic", "x", None)):
        with pytest.raises(AuthenticationError):
            auth.from_sync_authenticate(*args)


# --- auth config ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"providers": "nope"},
        {"providers": [{"domain": "https://x.test"}]},  # applicationID missing
        {
            "providers": [
                {"type": "customJwt", "issuer": "i", "jwks": "ftp://k", "algorithm": "RS256"}
            ]
        },
        {
            "providers": [
                {"type": "customJwt", "issuer": "i", "jwks": "https://k", "algorithm": "HS256"}
            ]
        },
        {"providers": [{"type": "saml"}]},
    ],
)
def test_a_malformed_auth_config_is_refused(config):
    with pytest.raises(HeadwaterError) as bad:
        parse_auth_config(config)
    assert bad.value.code == "InvalidAuthConfig"


def test_provider_issuers_are_normalised():
    (oidc, custom) = parse_auth_config(
        {
            "providers": [
                {"domain": "auth.example.test/", "applicationID": "a"},
                {
                    "type": "customJwt",
                    "issuer": "https://x.test/",
                    "jwks": "https://x.test/k",
                    "algorithm": "RS256",
                },
            ]
        }
    )
    assert oidc.issuer == "https://auth.example.test"
    assert custom.issuer == "https://x.test"


# --- JWTs ---------------------------------------------------------------------------


def test_a_valid_oidc_token_gives_the_user_identity(auth, issuer):
    claims = {
        "email": "ada@example.test",
        "email_verified": True,
        "given_name": "Ada",
        "picture": "https://p.test/a.png",
        "updated_at": 0,
        "team": "core",
        "level": 3,
    }
    identity = auth.from_authorization_header(f"Bearer {issuer.mint('ada', claims=claims)}")
    user = identity.user
    assert user["tokenIdentifier"] == f"{issuer.url}|ada"
    assert (user["issuer"], user["subject"]) == (issuer.url, "ada")
    assert user["email"] == "ada@example.test" and user["emailVerified"] is True
    assert user["givenName"] == "Ada" and user["pictureUrl"] == "https://p.test/a.png"
    assert user["updatedAt"].startswith("1970-01-01T00:00:00")
    assert user["team"] == "core" and user["level"] == 3.0  # custom claims pass through
    assert "exp" not in user and "aud" not in user
    assert identity.token is not None and not identity.admin


def test_an_expired_token_is_refused(auth, issuer):
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(expires_in_s=-120))
    assert code_of(bad) == "Unauthenticated" and "expired" in bad.value.message


def test_expiry_slack_follows_the_provider_kind(auth, issuer):
    """crates/authentication/src/lib.rs: openidconnect refuses from exp on, biscuit (customJwt)
    allows 5 s past it."""
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(expires_in_s=-2))
    assert (code_of(bad), bad.value.message) == ("Unauthenticated", OIDC_UNVERIFIED)
    assert auth.verify_token(issuer.mint("c", custom=True, expires_in_s=-2)).user["subject"] == "c"
    with pytest.raises(AuthenticationError) as late:
        auth.verify_token(issuer.mint(custom=True, expires_in_s=-60))
    assert code_of(late) == "InvalidAuthHeader"
    assert re.fullmatch(
        r"Could not validate token: Token expired 6\d seconds ago", late.value.message
    )


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_a_token_from_the_future_is_refused_by_custom_jwt_only(auth, issuer, claim):
    future = {claim: time.time() + 120}
    assert auth.verify_token(issuer.mint("o", claims=future)).user["subject"] == "o"
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(custom=True, claims=future))
    assert code_of(bad) == "InvalidAuthHeader"
    assert re.fullmatch(
        r"Could not validate token: Token will be valid in 1[12]\d seconds", bad.value.message
    )
    # within biscuit's 5 s of slack
    soon = {claim: time.time() + 2}
    assert auth.verify_token(issuer.mint("s", custom=True, claims=soon)).user["subject"] == "s"


def test_a_token_without_kid(auth, issuer):
    """customJwt (biscuit decode_with_jwks) needs a kid; OIDC takes a token without one
    only while the key set holds a single key (openidconnect signing_key)."""
    with pytest.raises(AuthenticationError) as custom:
        auth.verify_token(issuer.mint(custom=True, kid=""))
    assert (code_of(custom), custom.value.message) == (
        "InvalidAuthHeader",
        "Could not decode token. JWT may be missing a 'kid' (key ID) header.",
    )
    assert auth.verify_token(issuer.mint("one-key", kid="")).user["subject"] == "one-key"


def test_an_oidc_token_without_kid_is_refused_when_the_set_has_two_keys(issuer, clock):
    auth = HeadwaterAuthenticator(KEY, issuer.auth_config(), jwks=JwksCache(clock=clock))
    before = list(issuer.rsa)
    issuer.rotate(keep_old=True)
    try:
        with pytest.raises(AuthenticationError) as bad:
            auth.verify_token(issuer.mint(kid=""))
        assert (code_of(bad), bad.value.message) == ("Unauthenticated", OIDC_UNVERIFIED)
        assert auth.verify_token(issuer.mint("with-kid")).user["subject"] == "with-kid"
    finally:
        issuer.rsa = before


@pytest.mark.parametrize(
    "mint_args",
    [{"iss": "https://elsewhere.test"}, {"aud": "another-app"}, {"aud": None}],
    ids=["wrong issuer", "wrong audience", "no audience"],
)
def test_a_token_for_no_configured_provider_is_refused(auth, issuer, mint_args):
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(**mint_args))
    assert code_of(bad) == "NoAuthProvider"
    assert "No auth provider found matching the given token" in bad.value.message


def test_issuer_match_ignores_a_trailing_slash(auth, issuer):
    assert auth.verify_token(issuer.mint("s", iss=issuer.url + "/")).user["subject"] == "s"


def test_an_audience_list_containing_the_application_is_accepted(auth, issuer):
    token = issuer.mint("multi", aud=["other", APPLICATION_ID])
    assert auth.verify_token(token).user["subject"] == "multi"


def test_a_forged_signature_is_refused(auth, issuer):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(signing_key=forger))
    assert code_of(bad) == "Unauthenticated" and "signature" in bad.value.message


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_symmetric_and_unsigned_tokens_are_refused(auth, issuer, algorithm):
    payload = {"iss": issuer.url, "sub": "x", "aud": APPLICATION_ID, "exp": 2**40, "iat": 0}
    token = jwt.encode(payload, "s" * 32 if algorithm == "HS256" else None, algorithm=algorithm)
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(token)
    assert code_of(bad) == "Unauthenticated"


def test_garbage_is_not_a_token(auth):
    with pytest.raises(AuthenticationError) as bad:
        auth.from_authorization_header("Bearer not.a.jwt")
    assert code_of(bad) == "InvalidAuthHeader"


def test_key_rotation_refetches_the_key_set(auth, issuer, clock):
    assert auth.verify_token(issuer.mint("before")).user["subject"] == "before"
    fetched = issuer.requests["/jwks.json"]
    issuer.rotate()
    clock.now += 11  # past the refresh interval
    assert auth.verify_token(issuer.mint("after")).user["subject"] == "after"
    assert issuer.requests["/jwks.json"] == fetched + 1


def test_unknown_key_ids_refetch_at_most_once_per_interval(auth, issuer, clock):
    auth.verify_token(issuer.mint())
    fetched = issuer.requests["/jwks.json"]
    for i in range(20):
        with pytest.raises(AuthenticationError) as bad:
            auth.verify_token(issuer.mint(kid=f"made-up-{i}"))
        assert bad.value.message == OIDC_UNVERIFIED
    assert issuer.requests["/jwks.json"] == fetched  # all within the interval: no refetch
    clock.now += 11
    with pytest.raises(AuthenticationError):
        auth.verify_token(issuer.mint(kid="made-up-again"))
    assert issuer.requests["/jwks.json"] == fetched + 1


def test_keys_are_cached_until_their_ttl(issuer, clock):
    auth = HeadwaterAuthenticator(KEY, issuer.auth_config(), jwks=JwksCache(clock=clock, ttl_s=60))
    before = issuer.requests["/jwks.json"]
    for _ in range(5):
        auth.verify_token(issuer.mint())
    assert issuer.requests["/jwks.json"] == before + 1
    clock.now += 61
    auth.verify_token(issuer.mint())
    assert issuer.requests["/jwks.json"] == before + 2


def test_custom_jwt_provider(auth, issuer):
    identity = auth.verify_token(issuer.mint("c1", custom=True))
    assert identity.user["tokenIdentifier"] == f"{issuer.custom_issuer}|c1"
    # The custom provider only takes its configured algorithm (ES256), not RS256.
    rs256 = issuer.mint("c2", iss=issuer.custom_issuer)
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(rs256)
    assert (code_of(bad), bad.value.message) == (
        "InvalidAuthHeader",
        f"Could not decode token. The JWT's 'kid' (key ID) header is '{issuer.rsa[-1].kid}', "
        "does this key match any key in the provider's JWKS?",
    )


def test_custom_jwt_without_application_id_accepts_any_audience(issuer, clock):
    config = issuer.auth_config()
    del config["providers"][1]["applicationID"]
    auth = HeadwaterAuthenticator(KEY, config, jwks=JwksCache(clock=clock))
    for aud in ("anything", None):
        assert auth.verify_token(issuer.mint("c", custom=True, aud=aud)).user["subject"] == "c"


def test_custom_jwt_with_an_inline_data_url_key_set(issuer):
    jwks = json.dumps({"keys": [issuer.ec[-1].jwk()]}).encode()
    config = {
        "providers": [
            {
                "type": "customJwt",
                "issuer": issuer.custom_issuer,
                "algorithm": "ES256",
                "jwks": "data:text/plain;charset=utf-8;base64," + base64.b64encode(jwks).decode(),
            }
        ]
    }
    auth = HeadwaterAuthenticator(KEY, config)
    assert auth.verify_token(issuer.mint("inline", custom=True)).user["subject"] == "inline"


def test_an_unreachable_issuer_is_a_clear_error(clock):
    config = {"providers": [{"domain": "http://127.0.0.1:9", "applicationID": "a"}]}
    auth = HeadwaterAuthenticator(KEY, config, jwks=JwksCache(clock=clock))
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        {"iss": "http://127.0.0.1:9", "sub": "s", "aud": "a", "exp": 2**40, "iat": 0},
        forger,
        algorithm="RS256",
    )
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(token)
    assert (code_of(bad), bad.value.message) == (
        "AuthProviderDiscoveryFailed",
        "Auth provider discovery of http://127.0.0.1:9 failed",
    )


# --- through HTTP ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, issuer):
    from engine import Database

    db = Database.open(tmp_path_factory.mktemp("auth") / "data")
    db.set_schema(CHAT_SCHEMA)
    authenticator = HeadwaterAuthenticator(KEY, issuer.auth_config())
    context = GatewayContext(PythonExecutor(db, chat_functions()), authenticator)
    url, stop = run_server_in_thread(create_app(context))
    with httpx.Client(base_url=url, trust_env=False) as client:
        yield client
    stop()
    db.close()


def whoami(client: httpx.Client, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.post("/api/query", json={"path": "auth:whoami", "args": {}}, headers=headers)


def test_whoami_over_http_sees_the_subject(server, issuer):
    assert whoami(server, None).json()["value"] is None
    assert whoami(server, f"Bearer {issuer.mint('http-user')}").json()["value"] == "http-user"
    assert (
        whoami(server, f"Bearer {issuer.mint('ec-user', custom=True)}").json()["value"] == "ec-user"
    )
    acting = b64_json({"issuer": "i", "subject": "acted"})
    assert whoami(server, f"Convex {KEY}:{acting}").json()["value"] == "acted"


@pytest.mark.parametrize(
    ("mint_args", "code"),
    [
        ({"expires_in_s": -120}, "Unauthenticated"),
        ({"iss": "https://elsewhere.test"}, "NoAuthProvider"),
        ({"aud": "another-app"}, "NoAuthProvider"),
    ],
)
def test_bad_tokens_are_401_over_http(server, issuer, mint_args, code):
    response = whoami(server, f"Bearer {issuer.mint(**mint_args)}")
    assert response.status_code == 401
    assert response.json()["code"] == code and response.json()["message"]


def test_bad_admin_keys_over_http(server):
    wrong = whoami(server, "Convex headwater|" + "0" * 64)
    assert (wrong.status_code, wrong.json()["code"]) == (401, "BadAdminKey")
    short = whoami(server, "Nope")
    assert (short.status_code, short.json()["code"]) == (400, "InvalidHeaderFailure")
    other = whoami(server, "Basic something")
    assert (other.status_code, other.json()["code"]) == (400, "InvalidAdminKey")


# --- malformed registered claims -----------------------------------------------------------

MALFORMED_CLAIMS = [
    {"exp": "99999999999"},  # a string, even of digits
    {"exp": 1e300},  # past any date a clock can hold
    {"exp": 10**19},
    {"exp": float("inf")},  # PyJWT writes Infinity, which is no JSON
    {"exp": -5},
    {"exp": True},
    {"iat": "now"},
    {"nbf": [1]},
    {"sub": 123},
    {"iss": 5},
    {"aud": [APPLICATION_ID, 7]},
    {"jti": {"id": 1}},
    {"exp": None},  # missing
    {"sub": None},
]


@pytest.mark.parametrize("custom", [False, True], ids=["oidc", "customJwt"])
@pytest.mark.parametrize("claims", MALFORMED_CLAIMS, ids=repr)
def test_malformed_registered_claims_are_refused(auth, issuer, custom, claims):
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(custom=custom, claims=claims))
    assert code_of(bad) == "InvalidAuthHeader", bad.value.message


def test_an_oidc_token_needs_iat_and_times_may_be_fractional(auth, issuer):
    with pytest.raises(AuthenticationError) as bad:
        auth.verify_token(issuer.mint(claims={"iat": None}))
    assert code_of(bad) == "InvalidAuthHeader" and "iat" in bad.value.message
    assert auth.verify_token(issuer.mint("c", custom=True, claims={"iat": None})).user
    fractional = {"exp": time.time() + 300.5, "iat": time.time() - 0.25}
    assert auth.verify_token(issuer.mint("f", claims=fractional)).user["subject"] == "f"


def test_failed_verification_codes_follow_the_provider_kind(auth, issuer):
    """Convex: an OIDC token that fails verification is Unauthenticated, a customJwt
    one InvalidAuthHeader."""
    for custom, code in ((False, "Unauthenticated"), (True, "InvalidAuthHeader")):
        with pytest.raises(AuthenticationError) as expired:
            auth.verify_token(issuer.mint(custom=custom, expires_in_s=-120))
        assert code_of(expired) == code and "expired" in expired.value.message
        with pytest.raises(AuthenticationError) as unknown_key:
            auth.verify_token(issuer.mint(custom=custom, kid="made-up"))
        assert code_of(unknown_key) == code


@pytest.mark.parametrize("claims", [{"exp": "99999999999"}, {"exp": 1e300}], ids=repr)
def test_malformed_claims_are_refused_over_http_and_websocket(server, issuer, claims):
    token = issuer.mint("ws", claims=claims)
    response = whoami(server, f"Bearer {token}")
    assert (response.status_code, response.json()["code"]) == (401, "InvalidAuthHeader")
    ws_url = str(server.base_url).replace("http://", "ws://") + "/api/1.48.0/sync"
    with connect(ws_url, proxy=None, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": SESSION, "connectionCount": 0}))
        ws.send(
            json.dumps(
                {"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}
            )
        )
        error = json.loads(ws.recv(5))
        assert error["type"] == "AuthError" and "exp claim" in error["error"]
        with pytest.raises(ConnectionClosed):
            ws.recv(5)
        assert ws.close_reason == "InvalidAuthHeader"
