"""The sync protocol's client messages: one WebSocket text frame parsed into a dataclass.

Client messages become frozen dataclasses; unknown fields are ignored, anything
else malformed raises a fatal ``SyncProtocolError`` that names the message and
the field. Apart from the server's messages (``gateway.sync_messages``, with the
protocol's errors, close codes and timestamps) because parsing untrusted input
is its own job, and the server half only renders.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from engine.convex_json import from_convex_json
from engine.errors import InvalidValueError
from gateway.json_input import JsonInputError, parse_json
from gateway.sync_messages import U32_MAX, bad_message, decode_ts

_ABSENT: Any = object()  # a field that is left out of the JSON (not the same as null)


@dataclass(frozen=True)
class Connect:
    session_id: str
    connection_count: int = 0
    last_close_reason: str | None = None
    client_ts: float | None = None  # ms on the client's clock
    max_observed_timestamp: int | None = None


@dataclass(frozen=True)
class QueryAdd:
    query_id: int
    udf_path: str
    args: list[Any]  # raw convex encoded JSON, decoded when the query runs
    journal: str | None = None
    component_path: str | None = None


@dataclass(frozen=True)
class QueryRemove:
    query_id: int


@dataclass(frozen=True)
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: tuple[QueryAdd | QueryRemove, ...]


@dataclass(frozen=True)
class Mutation:
    request_id: int
    udf_path: str
    args: list[Any]
    component_path: str | None = None


@dataclass(frozen=True)
class Action:
    request_id: int
    udf_path: str
    args: list[Any]
    component_path: str | None = None


@dataclass(frozen=True)
class Authenticate:
    token_type: Literal["User", "Admin", "None"]
    base_version: int
    value: str | None = None
    impersonating: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    event_type: str
    event: Any = None


ClientMessage = Connect | ModifyQuerySet | Mutation | Action | Authenticate | Event


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _u32(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key, _ABSENT)
    if value is _ABSENT:
        raise bad_message(f"{where} is missing {key!r}")
    if type(value) is not int or not 0 <= value <= U32_MAX:
        raise bad_message(f"{where}.{key} must be an integer in 0..2^32-1, got {_show(value)}")
    return value


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key, _ABSENT)
    if not isinstance(value, str):
        what = "missing" if value is _ABSENT else f"not a string: {_show(value)}"
        raise bad_message(f"{where}.{key} is {what}")
    return value


def _optional_string(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_message(f"{where}.{key} must be a string or null, got {_show(value)}")
    return value


def _args(obj: dict[str, Any], where: str) -> list[Any]:
    value = obj.get("args", _ABSENT)
    if not isinstance(value, list):
        what = "missing" if value is _ABSENT else f"not an array: {_show(value)}"
        raise bad_message(f"{where}.args is {what} (expected [{{...arguments}}])")
    return value


def _parse_connect(obj: dict[str, Any]) -> Connect:
    session_id = _string(obj, "sessionId", "Connect")
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise bad_message(
            f"Connect.sessionId must be a UUID, got {_show(session_id)}", "InvalidSessionId"
        ) from None
    count = obj.get("connectionCount", 0)
    if type(count) is not int or count < 0:
        raise bad_message(f"Connect.connectionCount must be a non-negative integer, got {count!r}")
    client_ts = obj.get("clientTs")
    if client_ts is not None and (type(client_ts) not in (int, float)):
        raise bad_message(f"Connect.clientTs must be a number, got {_show(client_ts)}")
    observed = obj.get("maxObservedTimestamp")
    return Connect(
        session_id=session_id,
        connection_count=count,
        last_close_reason=_optional_string(obj, "lastCloseReason", "Connect"),
        client_ts=client_ts,
        max_observed_timestamp=None
        if observed is None
        else decode_ts(observed, "Connect.maxObservedTimestamp"),
    )


def _parse_modification(item: object, index: int) -> QueryAdd | QueryRemove:
    where = f"ModifyQuerySet.modifications[{index}]"
    if not isinstance(item, dict):
        raise bad_message(f"{where} must be an object, got {_show(item)}")
    kind = item.get("type")
    if kind == "Add":
        return QueryAdd(
            query_id=_u32(item, "queryId", where),
            udf_path=_string(item, "udfPath", where),
            args=_args(item, where),
            journal=_optional_string(item, "journal", where),
            component_path=_optional_string(item, "componentPath", where),
        )
    if kind == "Remove":
        return QueryRemove(_u32(item, "queryId", where))
    raise bad_message(f"{where}.type must be 'Add' or 'Remove', got {_show(kind)}")


def _parse_modify_query_set(obj: dict[str, Any]) -> ModifyQuerySet:
    modifications = obj.get("modifications", _ABSENT)
    if not isinstance(modifications, list):
        raise bad_message("ModifyQuerySet.modifications must be an array")
    return ModifyQuerySet(
        base_version=_u32(obj, "baseVersion", "ModifyQuerySet"),
        new_version=_u32(obj, "newVersion", "ModifyQuerySet"),
        modifications=tuple(_parse_modification(m, i) for i, m in enumerate(modifications)),
    )


def _parse_request(obj: dict[str, Any], kind: type[Mutation] | type[Action]) -> Mutation | Action:
    where = kind.__name__
    return kind(
        request_id=_u32(obj, "requestId", where),
        udf_path=_string(obj, "udfPath", where),
        args=_args(obj, where),
        component_path=_optional_string(obj, "componentPath", where),
    )


def _parse_authenticate(obj: dict[str, Any]) -> Authenticate:
    token_type = obj.get("tokenType")
    if token_type not in ("User", "Admin", "None"):
        raise bad_message(
            f"Authenticate.tokenType must be 'User', 'Admin' or 'None', got {_show(token_type)}"
        )
    value = None
    if token_type != "None":
        value = _string(obj, "value", "Authenticate")
    impersonating = obj.get("impersonating", obj.get("actingAs"))
    if impersonating is not None and not isinstance(impersonating, dict):
        raise bad_message(
            f"Authenticate.impersonating must be an object, got {_show(impersonating)}"
        )
    return Authenticate(
        token_type=token_type,
        base_version=_u32(obj, "baseVersion", "Authenticate"),
        value=value,
        impersonating=impersonating,
    )


def _parse_event(obj: dict[str, Any]) -> Event:
    return Event(event_type=str(obj.get("eventType", "")), event=obj.get("event"))


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "Connect": _parse_connect,
    "ModifyQuerySet": _parse_modify_query_set,
    "Mutation": lambda obj: _parse_request(obj, Mutation),
    "Action": lambda obj: _parse_request(obj, Action),
    "Authenticate": _parse_authenticate,
    "Event": _parse_event,
}


def parse_client_message(text: str) -> ClientMessage:
    """One client frame; raises a fatal SyncProtocolError naming what is wrong."""
    try:
        obj = parse_json(text)
    except JsonInputError as exc:
        raise bad_message(f"Invalid JSON: {exc.message}") from None
    if not isinstance(obj, dict):
        raise bad_message(f"A message must be a JSON object, got {_show(obj)}")
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        known = ", ".join(_PARSERS)
        raise bad_message(f"Unknown message type {_show(kind)}; expected one of {known}")
    return parser(obj)


def decode_args(raw: list[Any], udf_path: str = "") -> dict[str, Any]:
    """The argument object of ``[{...}]``; InvalidValueError (a per-request error) if bad."""
    if not raw:
        return {}
    if len(raw) != 1 or not isinstance(raw[0], dict):
        raise InvalidValueError(
            f"Invalid arguments for {udf_path or 'the function'}: expected an array holding "
            f"one object, got {_show(raw)}"
        )
    return from_convex_json(raw[0])
