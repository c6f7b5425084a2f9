"""The dashboard's system functions: ``_system/dashboard/<module>:<name>``, admin only.

The web dashboard is a client of Headwater like any other: it calls these through
the official ``convex`` client over the sync protocol, so its screens are live
subscriptions. Queries run at a snapshot with a read set (``atTs`` in the args, a
decimal string of nanoseconds, reads the deployment as of that commit instead);
mutations run through ``Database.mutate`` as one commit. Handlers are registered
by module: ``udf.dashboard_data`` (tables, documents, history, the log) and
``udf.dashboard_ops`` (functions, deploys, schedules, files, health). These calls
are not function executions of the app, so they stay out of the function log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import Database
from engine.errors import HeadwaterError, SnapshotOutOfRangeError
from engine.transaction import Transaction
from udf import dashboard_data, dashboard_ops
from udf.call_errors import not_found_any, not_found_public
from udf.calls import FunctionCall, FunctionError, FunctionOutcome
from udf.commit_origins import dashboard_origin

DASHBOARD_PREFIX = "_system/dashboard/"


@dataclass
class DashboardContext:
    """What a dashboard function may look at beyond its transaction."""

    db: Database
    executor: Any  # udf.executor.Executor: function log, deployment, scheduler
    # Live figures only the gateway knows (connections, subscriptions, exporters),
    # registered by name by the composition root; each returns a JSON-able dict.
    gauges: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)


Handler = Callable[[DashboardContext, Transaction, dict[str, Any]], Any]

QUERIES: dict[str, Handler] = {**dashboard_data.QUERIES, **dashboard_ops.QUERIES}
MUTATIONS: dict[str, Handler] = {**dashboard_data.MUTATIONS, **dashboard_ops.MUTATIONS}


def is_dashboard_path(path: str) -> bool:
    return path.startswith(DASHBOARD_PREFIX)


def _read_ts(call: FunctionCall) -> int | None:
    at = call.args.get("atTs")
    if at is None:
        return call.ts
    if isinstance(at, int) or (isinstance(at, str) and at.isdigit()):
        return int(at)
    raise HeadwaterError(
        f"`atTs` must be a commit timestamp in nanoseconds, got {at!r}.", code="BadArgs"
    )


def _retained(db: Database, ts: int | None) -> int | None:
    """``ts`` if a read there is possible, else which end of the history it is past."""
    if ts is None:
        return None
    newest, oldest = db.latest_ts(), db.first_ts()
    if ts > newest:
        raise HeadwaterError(f"ts {ts} is newer than the newest commit {newest}.", code="BadArgs")
    if oldest is not None and ts < oldest:
        raise HeadwaterError(
            f"ts {ts} is older than the oldest retained commit {oldest} (the retention window).",
            code="BadArgs",
        )
    return ts


def run_dashboard_function(context: DashboardContext, call: FunctionCall) -> FunctionOutcome:
    """Answer one ``_system/dashboard/`` call; unknown names and non-admins get Convex's
    "function not found" text, as other system functions do."""
    path = call.path.removesuffix(".js").replace(".js:", ":")
    kind = call.kind
    query, mutation = QUERIES.get(path), MUTATIONS.get(path)
    if not call.identity.admin or (query is None and mutation is None):
        text = not_found_public(path) if kind else not_found_any(path)
        return FunctionOutcome(error=FunctionError(text))
    if query is not None and kind in (None, "query"):
        return _run_query(context, query, call)
    if mutation is not None and kind in (None, "mutation"):
        return _run_mutation(context, mutation, call)
    text = not_found_public(path) if kind else not_found_any(path)
    return FunctionOutcome(error=FunctionError(text))


def _run_query(context: DashboardContext, handler: Handler, call: FunctionCall) -> FunctionOutcome:
    try:
        tx = context.db.begin(writable=False, ts=_retained(context.db, _read_ts(call)))
    except (SnapshotOutOfRangeError, HeadwaterError) as exc:
        return FunctionOutcome(error=FunctionError(exc.message), udf_type="query")
    try:
        value = handler(context, tx, call.args)
        return FunctionOutcome(value, None, (), tx.snapshot_ts, tx.read_set, None, "query")
    except HeadwaterError as exc:
        error = FunctionError(exc.message)
        return FunctionOutcome(None, error, (), tx.snapshot_ts, tx.read_set, None, "query")
    finally:
        tx.close()


def _run_mutation(
    context: DashboardContext, handler: Handler, call: FunctionCall
) -> FunctionOutcome:
    wrote: list[bool] = []

    def body(tx: Transaction) -> Any:
        value = handler(context, tx, call.args)
        wrote[:] = [tx.has_writes()]
        return value

    try:
        result = context.db.mutate(body)
    except HeadwaterError as exc:
        return FunctionOutcome(error=FunctionError(exc.message), udf_type="mutation")
    origins = getattr(context.executor, "commit_origins", None)
    if wrote and wrote[0] and origins is not None:  # labelled in the dashboard's log view
        origins.record(result.ts, dashboard_origin(call.path.rpartition(":")[2]))
    return FunctionOutcome(result.value, None, (), result.ts, None, None, "mutation")
