"""Admin keys: minting, the ``prod:``/``dev:`` prefix, acting as a user, comparison.

A Headwater admin key is ``<instance name>|<64 lowercase hex>``: 32 random
bytes behind the instance name, so tools that split on ``|`` see the shape
they expect (http-api §2.2). It is an opaque secret compared in constant
time; nothing is encrypted inside it. In an ``Authorization: Convex …``
header the key may carry a deployment-type prefix (``prod:name|…``), which is
dropped, and a ``:<base64 JSON>`` suffix naming a user to act as.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from typing import Any

from engine.convex_json import from_convex_json
from engine.errors import HeadwaterError, InvalidValueError
from gateway.context import AuthenticationError
from gateway.json_input import JsonInputError, parse_json

ADMIN_KEY_SECRET_BYTES = 32
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def generate_admin_key(instance_name: str) -> str:
    """A fresh admin key ``<instance_name>|<64 hex chars>``."""
    if not _INSTANCE_NAME.fullmatch(instance_name):
        raise HeadwaterError(
            f"Invalid instance name {instance_name!r}: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit.",
            code="InvalidInstanceName",
        )
    return f"{instance_name}|{secrets.token_hex(ADMIN_KEY_SECRET_BYTES)}"


def strip_type_prefix(key: str) -> str:
    """``prod:name|secret`` -> ``name|secret``: the prefix only labels the deployment."""
    name, bar, secret = key.partition("|")
    if not bar:
        return key
    _, colon, bare_name = name.partition(":")
    return f"{bare_name if colon else name}|{secret}"


def split_acting_user(key: str) -> tuple[str, str | None]:
    """``key:<base64 identity>`` -> (key, base64 identity); after the prefix is stripped."""
    key = strip_type_prefix(key)
    bare, colon, acting = key.partition(":")
    return (bare, acting) if colon else (key, None)


def keys_equal(presented: str, expected: str) -> bool:
    """Constant-time comparison, so response timing does not leak the key."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _malformed(detail: str) -> AuthenticationError:
    return AuthenticationError(
        f"Malformed Authorization header: {detail}", code="HeaderParseFailure"
    )


def decode_acting_user(encoded: str) -> dict[str, Any]:
    """The user an admin acts as, from the header's base64 JSON (http-api §2.1)."""
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        obj = parse_json(raw)
    except (binascii.Error, ValueError, JsonInputError):
        raise _malformed("the identity after the admin key is not base64 of JSON") from None
    return acting_user_identity(obj)


def acting_user_identity(obj: object) -> dict[str, Any]:
    """A UserIdentity from the attributes an admin names: ``tokenIdentifier`` defaults
    to ``issuer|subject``; other keys pass through as custom claims."""
    if not isinstance(obj, dict):
        raise _malformed("the identity to act as must be a JSON object")
    try:
        user = from_convex_json(obj, path="identity")
    except InvalidValueError as exc:
        raise _malformed(exc.message) from None
    if not isinstance(user.get("tokenIdentifier"), str):
        issuer, subject = user.get("issuer"), user.get("subject")
        if not (isinstance(issuer, str) and isinstance(subject, str)):
            raise _malformed("the identity needs tokenIdentifier, or issuer and subject")
        user["tokenIdentifier"] = f"{issuer}|{subject}"
    return user
