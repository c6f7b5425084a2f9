"""The per-socket sync state machine, as pure logic (no I/O, no event loop).

A ``SyncSession`` holds what one WebSocket has agreed with its client
(spec: sync-protocol §4): the session id, the version triple of the last
Transition sent, the query-set and identity versions received, the query-set
modifications and identity not yet reflected in a Transition, and the query
set with the digest of each query's last result sent.

An update is two calls around the (asynchronous) work of getting results:
``begin_update`` applies the pending modifications and says which queries
need a live subscription (new ones, or all of them after an identity change)
and which lose theirs; ``finish_update`` takes a result valid at ``ts`` for
every query in the set and returns the Transition, which starts exactly at
the previous one's end. Only new queries and changed results are in it:
results are compared by a digest of what the client sees (value or error and
log lines, not the per-run request id). Each query keeps the journal of its
newest result, sent or not, so a re-subscription (after an identity change)
keeps a paginated query's page end, as the reference's sync worker does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.convex_json import to_convex_json
from engine.errors import HeadwaterError
from gateway.sync_client_messages import Connect, ModifyQuerySet, QueryAdd
from gateway.sync_messages import (
    INITIAL_VERSION,
    EncodedResult,
    QueryChanged,
    QueryRemoved,
    StateVersion,
    Transition,
    bad_message,
    compact_json,
    encode_ts,
    function_error_message,
    new_request_id,
    protocol_violation,
)
from udf.calls import ANONYMOUS, FunctionError, FunctionOutcome, Identity

COMPONENT_PATH_FORBIDDEN = (
    "Only admin or system users can call functions on non-root components directly"
)
"""Convex's words (sync worker ``parse_admin_component_path``) for a componentPath
from a client that is not an admin."""


# --- results: rendered once, compared by digest --------------------------------------


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def encode_query_outcome(outcome: FunctionOutcome, request_id: str) -> EncodedResult:
    """Render a query outcome; a value that cannot be encoded becomes a failure."""
    log_lines = compact_json(list(outcome.log_lines))
    journal = compact_json(outcome.journal)
    if outcome.error is None:
        try:
            value = compact_json(to_convex_json(outcome.value))
        except (HeadwaterError, ValueError, TypeError) as exc:
            error = FunctionError(f"Uncaught Error: the query returned an invalid value: {exc}")
            return encode_query_outcome(FunctionOutcome(error=error), request_id)
        body = f'"value":{value},"logLines":{log_lines},"journal":{journal}'
        return EncodedResult(True, body, _digest("ok", value, log_lines), outcome.journal)
    error = outcome.error
    message = compact_json(function_error_message(request_id, error.message))
    data = compact_json(to_convex_json(error.data)) if error.is_convex_error else ""
    body = f'"errorMessage":{message},"logLines":{log_lines},"journal":{journal}'
    if error.is_convex_error:
        body += f',"errorData":{data}'
    digest = _digest("error", error.message, data, log_lines)
    return EncodedResult(False, body, digest, outcome.journal)


def failed_result(message: str) -> EncodedResult:
    """A QueryFailed the server itself produces (a limit, an unsupported feature)."""
    return encode_query_outcome(FunctionOutcome(error=FunctionError(message)), new_request_id())


@dataclass
class SessionQuery:
    """One query of the socket's query set."""

    query_id: int
    udf_path: str
    args: list[Any]
    journal: str | None = None  # from Add, then the newest result's (re-subscriptions use it)
    last_digest: bytes | None = None  # of the last result sent; None until one is sent
    live: Any = None  # the shared live query held for it (owned by the endpoint)
    refused: EncodedResult | None = None  # shown instead of running it (a limit, ...)
    component_path: str = ""  # the component whose query it is (admin only)


@dataclass(frozen=True)
class UpdatePlan:
    """What ``begin_update`` applied; handed back to ``finish_update``."""

    query_set_version: int
    identity_version: int
    identity: Identity
    removed: tuple[int, ...] = ()  # ids the client removed: each gets QueryRemoved
    release: tuple[SessionQuery, ...] = ()  # queries whose live subscription must go
    subscribe: tuple[SessionQuery, ...] = ()  # queries that need a live subscription
    added: frozenset[int] = field(default_factory=frozenset)  # always sent


class SyncSession:
    def __init__(self, *, queries_max: int = 10_000) -> None:
        self.queries_max = queries_max
        self.session_id: str | None = None
        self.client_clock_skew_ms: int | None = None
        self.current = INITIAL_VERSION  # the end version of the last Transition sent
        self.received_query_set = 0
        self.received_identity = 0
        self.identity: Identity = ANONYMOUS  # the identity of the queries in the set
        self.queries: dict[int, SessionQuery] = {}
        self._pending: list[QueryAdd | int] = []  # adds, and removed ids
        self._pending_identity: Identity | None = None
        self._declared: set[int] = set()  # query ids after every received modification
        self.transitions = 0

    # -- client messages ------------------------------------------------------------

    @property
    def caller_identity(self) -> Identity:
        """Who mutations and actions run as: the newest identity the client sent."""
        return self._pending_identity or self.identity

    @property
    def update_pending(self) -> bool:
        return (
            bool(self._pending)
            or self._pending_identity is not None
            or self.received_query_set != self.current.query_set
        )

    def connect(self, message: Connect, *, latest_ts: int, now_ms: float) -> None:
        """Record the session id; refuse a client that saw a ts this server never made."""
        observed = message.max_observed_timestamp
        if observed is not None and observed > latest_ts:
            raise protocol_violation(
                f"Client has observed a timestamp {encode_ts(observed)} ahead of the "
                f"server's newest timestamp {encode_ts(latest_ts)}",
                "TimestampAhead",
            )
        self.session_id = message.session_id
        if message.client_ts is not None:
            self.client_clock_skew_ms = int(message.client_ts - now_ms)

    def modify_query_set(self, message: ModifyQuerySet) -> None:
        """Queue the modifications for the next Transition (versions checked now)."""
        if message.base_version != self.received_query_set:
            raise bad_message(
                f"Base version {message.base_version} passed up doesn't match the current "
                f"version {self.received_query_set}",
                "BaseVersionMismatch",
            )
        if message.new_version <= message.base_version:
            raise bad_message(
                f"New query set version {message.new_version} must be greater than the base "
                f"version {message.base_version}",
                "BaseVersionMismatch",
            )
        declared = set(self._declared)
        for mod in message.modifications:
            if isinstance(mod, QueryAdd):
                if mod.query_id in declared:
                    raise protocol_violation(f"Duplicate query ID: {mod.query_id}")
                declared.add(mod.query_id)
            elif mod.query_id not in declared:
                raise protocol_violation(f"Nonexistent query id: {mod.query_id}")
            else:
                declared.discard(mod.query_id)
        self._declared = declared
        self._pending.extend(
            m if isinstance(m, QueryAdd) else m.query_id for m in message.modifications
        )
        self.received_query_set = message.new_version

    def authenticate(self, base_version: int, identity: Identity) -> None:
        """An accepted token: the next Transition confirms identity version base+1."""
        if base_version != self.received_identity:
            raise protocol_violation(
                f"Authenticate base version {base_version} doesn't match the current "
                f"identity version {self.received_identity}",
                "IdentityVersionMismatch",
            )
        self._pending_identity = identity
        self.received_identity = base_version + 1

    # -- updates ----------------------------------------------------------------

    def begin_update(self) -> UpdatePlan:
        """Apply pending modifications and identity; say what to (un)subscribe."""
        if not self._pending and self._pending_identity is None:  # a fan-out's update
            return UpdatePlan(self.received_query_set, self.received_identity, self.identity)
        pending, self._pending = self._pending, []
        new_identity, self._pending_identity = self._pending_identity, None
        removed: list[int] = []
        release: list[SessionQuery] = []
        added: dict[int, SessionQuery] = {}
        for mod in pending:
            if isinstance(mod, int):
                query = self.queries.pop(mod)
                removed.append(mod)
                added.pop(mod, None)
                if query.live is not None:
                    release.append(query)
                continue
            query = SessionQuery(mod.query_id, mod.udf_path, mod.args, mod.journal)
            query.component_path = mod.component_path or ""
            identity = new_identity if new_identity is not None else self.identity
            if query.component_path and not identity.admin:
                query.refused = failed_result(COMPONENT_PATH_FORBIDDEN)
            elif len(self.queries) >= self.queries_max:
                query.refused = failed_result(
                    f"TooManySubscriptions: a connection may subscribe to at most "
                    f"{self.queries_max} queries; unsubscribe from some first."
                )
            self.queries[mod.query_id] = query
            added[mod.query_id] = query
        if new_identity is not None:
            self.identity = new_identity
            release.extend(q for q in self.queries.values() if q.live is not None)
            subscribe = [q for q in self.queries.values() if q.refused is None]
        else:
            subscribe = [q for q in added.values() if q.refused is None]
        return UpdatePlan(
            query_set_version=self.received_query_set,
            identity_version=self.received_identity,
            identity=self.identity,
            removed=tuple(removed),
            release=tuple(release),
            subscribe=tuple(subscribe),
            added=frozenset(added),
        )

    def finish_update(
        self,
        plan: UpdatePlan,
        ts: int,
        results: Mapping[int, EncodedResult],
        *,
        server_ts_ns: int = 0,
    ) -> Transition:
        """The Transition to ``ts``: every query's result in ``results`` is valid at ``ts``."""
        end = StateVersion(plan.query_set_version, plan.identity_version, ts)
        if not end.covers(self.current):
            # Our bug, never the client's: the clients break on a version going back.
            raise RuntimeError(f"sync version would go backwards: {self.current} -> {end}")
        changes: dict[int, QueryChanged | QueryRemoved] = {
            query_id: QueryRemoved(query_id) for query_id in plan.removed
        }
        added = plan.added
        for query_id, query in self.queries.items():
            result = query.refused or results[query_id]
            if query.refused is None:
                # Kept even when the result is unchanged (and not sent), as the reference
                # keeps it: a re-run after an identity change starts from it.
                query.journal = result.journal
            if result.digest != query.last_digest or query_id in added:
                changes[query_id] = QueryChanged(query_id, result)
                query.last_digest = result.digest
        if len(changes) > 1:
            modifications = tuple(changes[k] for k in sorted(changes))
        else:
            modifications = tuple(changes.values())
        transition = Transition(
            start=self.current,
            end=end,
            modifications=modifications,
            client_clock_skew_ms=self.client_clock_skew_ms,
            server_ts_ns=server_ts_ns,
        )
        self.current = end
        self.transitions += 1
        return transition
