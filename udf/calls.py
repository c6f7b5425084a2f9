"""The contract between the gateway and the function runtime: calls, identities, outcomes.

The gateway turns HTTP requests and WebSocket messages into ``FunctionCall``s
and hands them to a ``FunctionExecutor``; it never touches the database. The
executor (``udf.executor``) runs them in V8 against engine transactions. Values
here are Python values of the engine's value model (decoded Convex JSON), never
JSON text: encoding is the gateway's job, decoding of the function's own
results the executor's.

Executors are blocking (the engine and V8 are); the gateway calls them from
worker threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from engine.read_set import ReadSet

FunctionKind = Literal["query", "mutation", "action"]


@dataclass(frozen=True)
class Identity:
    """Who is calling: anonymous, an end user (verified JWT claims), or an admin.

    ``user`` holds the UserIdentity object ``ctx.auth.getUserIdentity()`` returns
    (``tokenIdentifier``, ``issuer``, ``subject`` and the other claims); an
    admin may act as a user, in which case both are set.
    """

    user: dict[str, Any] | None = None
    admin: bool = False
    token: str | None = None  # the raw bearer token, for getRequestMetadata
    # HTTP actions run whatever the Authorization header holds; a credential that did
    # not verify makes the action's ctx.auth.getUserIdentity() throw this message.
    auth_error: str | None = None

    @property
    def cache_key(self) -> str:
        """Equal for callers that must see the same query results."""
        if self.user is None:
            return "admin" if self.admin else "anonymous"
        return f"{'admin:' if self.admin else ''}user:{self.user.get('tokenIdentifier')}"


ANONYMOUS = Identity()
ADMIN = Identity(admin=True)


@dataclass(frozen=True)
class FunctionCall:
    path: str  # "messages:list" or "folder/module:export"; ".js" and a missing ":export" allowed
    args: dict[str, Any]
    kind: FunctionKind | None  # the endpoint's kind; None = any kind (admin only)
    identity: Identity = ANONYMOUS
    ts: int | None = None  # queries: read at this snapshot ts (point in time)
    journal: str | None = None  # queries: the pagination journal of the previous run
    request_id: str = ""
    # Mutations over the sync protocol: (session id, request id) — a retried
    # mutation with the same key returns the first outcome without running again.
    idempotency_key: tuple[str, int] | None = None
    # Set by the scheduler: its job's id (``getRequestMetadata().scheduledFunctionId``,
    # passed down to nested calls, as Convex does) and who started the run
    # (``function_log.SOURCE_SCHEDULER`` or ``SOURCE_CRON``), for the function log.
    scheduled_job_id: str | None = None
    started_by: str | None = None
    component_path: str = ""  # the component instance whose function runs ("" = the app)


@dataclass(frozen=True)
class FunctionError:
    message: str  # "Uncaught Error: ...\n    at handler (../convex/file.ts:9:11)"
    data: Any = None  # ConvexError data (a Python value) when is_convex_error
    is_convex_error: bool = False


@dataclass(frozen=True)
class FunctionOutcome:
    value: Any = None
    error: FunctionError | None = None
    log_lines: tuple[str, ...] = ()
    ts: int = 0  # query: snapshot ts; mutation: commit ts; action: newest ts when it ended
    read_set: ReadSet | None = None  # queries only
    journal: str | None = None
    udf_type: FunctionKind | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class MutationHook(Protocol):
    """Writes a scheduled or cron run adds to its mutation's own transaction, so its
    state changes commit with the mutation's writes or not at all."""

    def start(self, tx: Any) -> bool:
        """Before the function runs (each OCC attempt): False skips the run."""
        ...

    def finish(self, tx: Any) -> None:
        """After the function succeeded, before the commit."""
        ...


class Watch(Protocol):
    def close(self) -> None: ...


class FunctionExecutor(Protocol):
    def run(self, call: FunctionCall) -> FunctionOutcome:
        """Run one function to completion (blocking). User errors are in the outcome;
        a call that cannot be made at all (unknown function, wrong kind, internal
        function without admin, bad arguments) is an outcome with an error too,
        worded as Convex words it. Queries run at ``call.ts`` or the newest ts and
        return their read set and that ts."""
        ...

    def cached_query(self, call: FunctionCall) -> FunctionOutcome | None:
        """A query's result from the results still valid at the newest ts, without
        blocking (callable on an event loop); None when there is none: ``run`` it."""
        ...

    def watch(
        self, read_set: ReadSet, since_ts: int, on_invalidated: Callable[[int], None]
    ) -> Watch:
        """One-shot: ``on_invalidated(ts)`` (from another thread) for the first commit
        after ``since_ts`` that touches ``read_set``; at once if one already did."""
        ...

    def processed_ts(self) -> int:
        """Every commit up to this ts has been matched against the watches: a query
        result valid at ts R whose watch has not fired is still valid at this ts."""
        ...

    def wait_processed(self, ts: int, timeout_s: float = 10.0) -> bool:
        """Block until ``processed_ts() >= ts`` (e.g. after a mutation committed at ts)."""
        ...

    def latest_ts(self) -> int:
        """The newest commit ts (what ``/api/query_ts`` answers)."""
        ...


@dataclass
class DeployReport:
    functions: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    ts: int = 0
    outside_inputs: tuple[str, ...] = ()  # files outside the folder its modules import
