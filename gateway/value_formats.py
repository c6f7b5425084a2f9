"""How values and timestamps leave the gateway: output formats, client versions, ts.

Output formats (http-api §3.4), chosen by a request's ``format``:

    convex_encoded_json | convex_json    lossless (engine.convex_json.to_convex_json)
    json | convex_clean_json             readable, lossy (to_clean_json)
    export_json                          Int64 as JSON integers (to_export_json)

Without ``format`` the default depends on the ``Convex-Client`` header
(``<client>-<semver>``, the longest semver suffix wins): old npm (< 1.4.1)
and Python (< 0.5.0) clients get ``convex_encoded_json``, everyone else
``json``. Request arguments are always read as convex encoded JSON.

Timestamps travel as standard base64 of the 8-byte little-endian unsigned
integer (sync-protocol §2), e.g. 0 -> ``"AAAAAAAAAAA="``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from engine.convex_json import to_clean_json, to_convex_json, to_export_json
from gateway.http_errors import bad_request
from gateway.timestamps import parse_ts


class ValueFormat(Enum):
    CONVEX_ENCODED_JSON = "convex_encoded_json"
    CLEAN_JSON = "json"
    EXPORT_JSON = "export_json"


_FORMAT_NAMES = {
    "convex_encoded_json": ValueFormat.CONVEX_ENCODED_JSON,
    "convex_json": ValueFormat.CONVEX_ENCODED_JSON,
    "json": ValueFormat.CLEAN_JSON,
    "convex_clean_json": ValueFormat.CLEAN_JSON,
    "export_json": ValueFormat.EXPORT_JSON,
}

_ENCODERS: dict[ValueFormat, Callable[[Any], Any]] = {
    ValueFormat.CONVEX_ENCODED_JSON: to_convex_json,
    ValueFormat.CLEAN_JSON: to_clean_json,
    ValueFormat.EXPORT_JSON: to_export_json,
}


def parse_format(name: object) -> ValueFormat | None:
    """The format a request names; None when it names none; 400 BadFormat otherwise."""
    if name is None:
        return None
    if isinstance(name, str) and name in _FORMAT_NAMES:
        return _FORMAT_NAMES[name]
    known = ", ".join(sorted(_FORMAT_NAMES))
    raise bad_request("BadFormat", f"Invalid format {name!r}: expected one of {known}.")


def encode_value(value: Any, fmt: ValueFormat) -> Any:
    """``value`` as JSON-able Python objects in ``fmt``."""
    return _ENCODERS[fmt](value)


# --- Convex-Client -----------------------------------------------------------

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_NPM_CLIENTS = {"npm", "npm-cli", "actions"}
_PYTHON_CLIENTS = {"python", "python-convex"}
_NPM_UNSUPPORTED_MAX = (0, 19, 1)


@dataclass(frozen=True)
class ClientVersion:
    client: str  # lower-case client name: "npm", "npm-cli", "python", "rust", ..., "unknown"
    version: tuple[int, int, int]
    prerelease: str = ""

    def _key(self) -> tuple[tuple[int, int, int], int]:
        return (self.version, 0 if self.prerelease else 1)  # a prerelease sorts first

    def at_least(self, version: tuple[int, int, int]) -> bool:
        return self._key() >= (version, 1)

    def newer_than(self, version: tuple[int, int, int]) -> bool:
        return self._key() > (version, 1)

    def default_format(self) -> ValueFormat:
        if self.client in _NPM_CLIENTS and not self.at_least((1, 4, 1)):
            return ValueFormat.CONVEX_ENCODED_JSON
        if self.client in _PYTHON_CLIENTS and not self.at_least((0, 5, 0)):
            return ValueFormat.CONVEX_ENCODED_JSON
        return ValueFormat.CLEAN_JSON

    def __str__(self) -> str:
        v = ".".join(map(str, self.version))
        return f"{self.client}-{v}{'-' + self.prerelease if self.prerelease else ''}"


UNKNOWN_CLIENT = ClientVersion("unknown", (0, 0, 0))


def parse_client_version(header: str | None) -> ClientVersion:
    """Parse ``Convex-Client``; 400 InvalidClientVersion when malformed,
    400 ClientVersionUnsupported for npm clients too old to talk to us."""
    if header is None:
        return UNKNOWN_CLIENT
    parts = header.split("-")
    for n in range(1, len(parts)):  # the longest semver suffix wins
        match = _SEMVER.fullmatch("-".join(parts[n:]))
        if match:
            major, minor, patch, pre = match.groups()
            version = ClientVersion(
                "-".join(parts[:n]).lower(), (int(major), int(minor), int(patch)), pre or ""
            )
            break
    else:
        raise bad_request(
            "InvalidClientVersion",
            f"Failed to parse client version string: {header!r}. Expected format is "
            "{client_name}-{semver}, e.g. my-client-0.0.1",
        )
    if version.client in _NPM_CLIENTS and not version.newer_than(_NPM_UNSUPPORTED_MAX):
        raise bad_request(
            "ClientVersionUnsupported",
            f"The Convex {version.client} package at version {'.'.join(map(str, version.version))}"
            " is no longer supported. Update it with `npm update convex`.",
        )
    return version


# --- timestamps --------------------------------------------------------------


def decode_ts(text: object) -> int:
    """The ts a client sent back; 400 InvalidTimestamp unless it is 8 base64 bytes <= 2^63-1."""
    try:
        return parse_ts(text)
    except ValueError as exc:
        raise bad_request("InvalidTimestamp", str(exc)) from None
