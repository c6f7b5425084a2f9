"""Idempotent mutations over the sync protocol: a mutation's outcome recorded per
(session, request) in ``_session_requests``, in the mutation's own transaction, so a
client that resends after a reconnect gets the first outcome instead of a second run."""

from __future__ import annotations

import json

from engine.commit_ts import loads_result, resolve_value, uncommitted_json
from engine.ids import decode_id
from engine.system_tables import SESSION_REQUESTS_TABLE, keyed_system_id
from engine.transaction import Transaction
from udf.calls import FunctionCall, FunctionOutcome


def session_request_id(key: tuple[str, int]) -> str:
    return keyed_system_id(SESSION_REQUESTS_TABLE, f"{key[0]}:{key[1]}")


def earlier_outcome(tx: Transaction, call: FunctionCall) -> FunctionOutcome | None:
    """The outcome recorded for this call's (session, request), if it ran before."""
    if call.idempotency_key is None:
        return None
    doc_id = session_request_id(call.idempotency_key)
    found = tx.get(doc_id)
    if found is None:
        return None
    version = tx.snapshot.get(decode_id(doc_id).storage_key())
    ts = version[0] if version is not None else tx.snapshot_ts
    value = resolve_value(loads_result(found["result"], True), ts)
    return FunctionOutcome(value, None, tuple(found["logLines"]), ts, None, None, "mutation")


def record_outcome(tx: Transaction, call: FunctionCall, outcome: FunctionOutcome) -> None:
    """Record a successful mutation's outcome in its own transaction."""
    assert call.idempotency_key is not None
    tx.write_system(
        SESSION_REQUESTS_TABLE,
        session_request_id(call.idempotency_key),
        {
            "sessionId": call.idempotency_key[0],
            "requestId": float(call.idempotency_key[1]),
            "result": json.dumps(uncommitted_json(outcome.value), separators=(",", ":")),
            "logLines": list(outcome.log_lines),
        },
    )
