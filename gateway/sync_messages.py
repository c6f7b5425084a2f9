"""The sync protocol's server messages, errors, close codes and timestamps.

One JSON object per WebSocket text frame, discriminated by ``"type"``
(spec: sync-protocol §3). Client messages are parsed in
``gateway.sync_client_messages``; malformed ones raise ``SyncProtocolError``
(here). Server messages are frozen dataclasses that ``serialize`` turns into
compact JSON text.

Timestamps travel as standard base64 (with padding) of the 8-byte
little-endian unsigned integer: 0 -> ``"AAAAAAAAAAA="``; they must be at most
2^63-1 because the JS client reads them as a signed 64-bit Long.

A query result is rendered once into an ``EncodedResult`` (the JSON members
after ``"queryId"``, and a digest), so a result shared by many sockets is
serialized once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from engine.convex_json import to_convex_json
from engine.errors import HeadwaterError
from engine.limits import LIMITS
from gateway.timestamps import encode_ts, parse_ts
from udf.call_errors import js_error_text
from udf.calls import FunctionError, FunctionOutcome

U32_MAX = (1 << 32) - 1
ZERO_TS_TEXT = "AAAAAAAAAAA="
# A Transition larger than this is cut into TransitionChunks (npm >= 1.28.0 only).
TRANSITION_CHUNK_BYTES_MAX = 5_000_000
# WebSocket close codes (RFC 6455) the server uses.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

_ABSENT: Any = object()  # a field that is left out of the JSON (not the same as null)


class SyncProtocolError(HeadwaterError):
    """A socket-ending failure, with what the client is told before the close.

    ``fatal``: a deterministic client bug; the server sends ``FatalError`` and the
    JS client gives up for good. Otherwise the socket is just closed with
    ``close_code`` (1011 protocol inconsistency, 1013 overload) and
    ``close_reason``, whose prefix the JS client uses to pick its backoff.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        fatal: bool = False,
        close_code: int = CLOSE_INTERNAL_ERROR,
        close_reason: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.fatal = fatal
        self.close_code = close_code
        if close_reason is None:
            close_reason = "InternalServerError" if close_code == CLOSE_INTERNAL_ERROR else code
        self.close_reason = close_reason[:123]  # the WebSocket limit on reasons


def bad_message(message: str, code: str = "WSMessageInvalidJson") -> SyncProtocolError:
    """A malformed client message: FatalError, then close."""
    return SyncProtocolError(message, code=code, fatal=True, close_code=CLOSE_NORMAL)


def protocol_violation(message: str, code: str = "ProtocolViolation") -> SyncProtocolError:
    """A well-formed message that contradicts the socket's state: close 1011."""
    return SyncProtocolError(message, code=code)


def overloaded(message: str, code: str) -> SyncProtocolError:
    """A limit the client may retry later: close 1013 with ``code`` as the reason."""
    return SyncProtocolError(message, code=code, close_code=CLOSE_TRY_AGAIN_LATER)


# --- timestamps ----------------------------------------------------------------


def decode_ts(text: object, field: str = "ts") -> int:
    """A client's ts string; a bad one is a malformed message."""
    try:
        return parse_ts(text, field)
    except ValueError as exc:
        raise bad_message(str(exc)) from None


# --- server messages -------------------------------------------------------------


def compact_json(value: Any) -> str:
    """JSON text as the clients write it: no spaces, non-ASCII kept, no NaN."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class StateVersion:
    query_set: int = 0
    identity: int = 0
    ts: int = 0

    def to_json(self) -> str:
        return _version_json(self.query_set, self.identity, self.ts)

    def covers(self, other: StateVersion) -> bool:
        """Every component is at least ``other``'s (versions never go backwards)."""
        return (
            self.query_set >= other.query_set
            and self.identity >= other.identity
            and self.ts >= other.ts
        )


INITIAL_VERSION = StateVersion()


@lru_cache(maxsize=LIMITS.sync_encoding_cache_entries_max)
def _version_json(query_set: int, identity: int, ts: int) -> str:
    """Rendered once for every socket that moves to the same version (a fan-out)."""
    return f'{{"querySet":{query_set},"identity":{identity},"ts":"{encode_ts(ts)}"}}'


_RENDERED_IDS_MAX = 64  # query ids whose modification text one result keeps


@dataclass(frozen=True)
class EncodedResult:
    """A query outcome rendered once, for every socket that shows it."""

    ok: bool
    body: str  # JSON members after "queryId": "value" or "errorMessage", "logLines", "journal"
    digest: bytes  # of what the client sees, minus the per-run request id
    journal: str | None = None  # the run's journal: the next run of the query starts from it
    # query id -> rendered modification, shared by the sockets showing this result
    _rendered: dict[int, str] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def modification(self, query_id: int) -> str:
        text = self._rendered.get(query_id)
        if text is None:
            kind = "QueryUpdated" if self.ok else "QueryFailed"
            text = f'{{"type":"{kind}","queryId":{query_id},{self.body}}}'
            if len(self._rendered) < _RENDERED_IDS_MAX:
                self._rendered[query_id] = text
        return text


def function_error_message(request_id: str, message: str) -> str:
    """The text clients show for a failed function (sync-protocol §7.1)."""
    # RedactedJsError's Display (crates/application/src/redaction.rs): the JsError text ends
    # in a newline, which the npm client keeps before its "\n  Called by client".
    return f"[Request ID: {request_id}] Server Error\n{js_error_text(message)}"


def new_request_id() -> str:
    return secrets.token_hex(8)


def session_request_id(session_id: str | None, request_id: int) -> str:
    """Deterministic for WebSocket requests: a retried request keeps its id."""
    if session_id is None:
        return new_request_id()
    return hashlib.sha256(f"{session_id}|{request_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class QueryRemoved:
    query_id: int


@dataclass(frozen=True)
class QueryChanged:
    query_id: int
    result: EncodedResult


@dataclass(frozen=True)
class Transition:
    start: StateVersion
    end: StateVersion
    modifications: tuple[QueryChanged | QueryRemoved, ...]
    client_clock_skew_ms: int | None = None
    server_ts_ns: int = 0


@dataclass(frozen=True)
class FunctionResponse:
    """MutationResponse (``kind="Mutation"``) or ActionResponse (``kind="Action"``)."""

    kind: Literal["Mutation", "Action"]
    request_id: int
    success: bool
    result: Any  # JSON-ready: the convex encoded value, or the error message
    log_lines: tuple[str, ...] = ()
    ts: int | None = None  # mutations: the commit ts on success
    error_data: Any = _ABSENT  # JSON-ready ConvexError data, only for ConvexError


@dataclass(frozen=True)
class AuthError:
    error: str
    base_version: int | None
    auth_update_attempted: bool = True


@dataclass(frozen=True)
class FatalError:
    error: str


@dataclass(frozen=True)
class Ping:
    pass


ServerMessage = Transition | FunctionResponse | AuthError | FatalError | Ping


def function_response(
    kind: Literal["Mutation", "Action"], request_id: int, outcome: FunctionOutcome, server_id: str
) -> FunctionResponse:
    """The response a client gets for a finished mutation or action."""
    logs = tuple(outcome.log_lines)
    if outcome.error is None:
        try:
            value = to_convex_json(outcome.value)
        except HeadwaterError as exc:
            error = FunctionError(f"Uncaught Error: the function returned an invalid value: {exc}")
            return function_response(kind, request_id, FunctionOutcome(error=error), server_id)
        ts = outcome.ts if kind == "Mutation" else None
        return FunctionResponse(kind, request_id, True, value, logs, ts)
    error = outcome.error
    data = to_convex_json(error.data) if error.is_convex_error else _ABSENT
    message = function_error_message(server_id, error.message)
    return FunctionResponse(kind, request_id, False, message, logs, None, data)


def _serialize_transition(t: Transition) -> str:
    mods = ",".join(
        f'{{"type":"QueryRemoved","queryId":{m.query_id}}}'
        if isinstance(m, QueryRemoved)
        else m.result.modification(m.query_id)
        for m in t.modifications
    )
    skew = "null" if t.client_clock_skew_ms is None else str(int(t.client_clock_skew_ms))
    return (
        f'{{"type":"Transition","startVersion":{t.start.to_json()},'
        f'"endVersion":{t.end.to_json()},"modifications":[{mods}],'
        f'"clientClockSkew":{skew},"serverTs":{int(t.server_ts_ns)}}}'
    )


def _serialize_response(r: FunctionResponse) -> str:
    obj: dict[str, Any] = {
        "type": f"{r.kind}Response",
        "requestId": r.request_id,
        "success": r.success,
        "result": r.result,
    }
    if r.kind == "Mutation":
        obj["ts"] = encode_ts(r.ts) if r.success and r.ts is not None else None
    obj["logLines"] = list(r.log_lines)
    if not r.success and r.error_data is not _ABSENT:
        obj["errorData"] = r.error_data
    return compact_json(obj)


def serialize(message: ServerMessage) -> str:
    """Compact JSON text of a server message."""
    if isinstance(message, Transition):
        return _serialize_transition(message)
    if isinstance(message, FunctionResponse):
        return _serialize_response(message)
    if isinstance(message, AuthError):
        return compact_json(
            {
                "type": "AuthError",
                "error": message.error,
                "baseVersion": message.base_version,
                "authUpdateAttempted": message.auth_update_attempted,
            }
        )
    if isinstance(message, FatalError):
        return compact_json({"type": "FatalError", "error": message.error})
    if isinstance(message, Ping):
        return '{"type":"Ping"}'
    raise TypeError(f"not a server message: {message!r}")


def transition_chunks(text: str, chunk_bytes_max: int = TRANSITION_CHUNK_BYTES_MAX) -> list[str]:
    """A serialized Transition as one frame, or as TransitionChunk frames if it is large.

    Pieces are at most ``chunk_bytes_max`` UTF-8 bytes and never split a character.
    """
    if len(text) <= chunk_bytes_max // 4:  # small enough whatever its characters
        return [text]
    data = text.encode()
    if len(data) <= chunk_bytes_max:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + chunk_bytes_max, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    head = {"type": "TransitionChunk", "totalParts": len(pieces), "transitionId": str(len(data))}
    return [
        compact_json({**head, "chunk": piece, "partNumber": n}) for n, piece in enumerate(pieces)
    ]
