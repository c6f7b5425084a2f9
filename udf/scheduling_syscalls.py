"""``ctx.scheduler`` from functions: the ``1.0/schedule`` and ``1.0/cancel_job`` syscalls.

From a mutation, a schedule or cancel is a write in the mutation's own
transaction: it commits with the mutation's writes, or not at all when the
mutation fails. From an action (``1.0/actions/schedule``, ``.../cancel_job``)
each is a transaction of its own, as in Convex. The checks and their words are
Convex's (crates/udf/src/validation.rs, crates/model/src/scheduled_jobs): the
function must exist when scheduled, the time may be at most five years away,
and one transaction schedules at most 1,000 functions with 16 MiB of arguments.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

from engine import scheduled_jobs as jobs
from engine.convex_json import from_convex_json
from engine.errors import HeadwaterError, InvalidIdError
from engine.ids import decode_id
from engine.limits import Limits
from engine.scheduled_jobs import SCHEDULED_FUNCTIONS_TABLE
from engine.transaction import Transaction
from engine.values import value_size
from udf.errors import SyscallError

SCHEDULE_OPS = frozenset({"1.0/schedule", "1.0/actions/schedule"})
CANCEL_OPS = frozenset({"1.0/cancel_job", "1.0/actions/cancel_job"})
_INVALID_JOB_ID = (
    "Invalid scheduled function ID. The ID must be an ID on the '_scheduled_functions' table."
)


class SchedulingHost(Protocol):
    """What scheduling needs of the executor: the deployment (to check the target
    exists), the database (actions' own transactions) and the limits."""

    db: Any
    limits: Limits

    @property
    def deployment(self) -> Any: ...


@dataclass
class _Scheduled:
    count: int = 0
    args_bytes: int = 0


# Scheduling counts per transaction (a mutation and the runMutation calls inside it).
_COUNTS: weakref.WeakKeyDictionary[Transaction, _Scheduled] = weakref.WeakKeyDictionary()


def answer_scheduling(
    host: SchedulingHost,
    op: str,
    args: dict[str, Any],
    tx: Transaction | None,
) -> Any:
    """The answer to one scheduling syscall; ``tx`` is the mutation's (None in actions)."""
    if op in SCHEDULE_OPS:
        if tx is not None:
            return schedule_in(host, tx, args, tx.begin_ms / 1000)
        now_s = time.time()
        return _in_own_transaction(host, lambda t: schedule_in(host, t, args, now_s))
    if tx is not None:
        return cancel_in(tx, args, tx.begin_ms)
    return _in_own_transaction(host, lambda t: cancel_in(t, args, time.time() * 1000))


def _in_own_transaction(host: SchedulingHost, fn: Any) -> Any:
    try:
        return host.db.mutate(fn).value
    except SyscallError:
        raise
    except HeadwaterError as exc:
        raise SyscallError(exc.message) from exc


def schedule_in(host: SchedulingHost, tx: Transaction, args: dict[str, Any], now_s: float) -> str:
    """Check a ``1.0/schedule`` request and write its pending job into ``tx``; its id."""
    name = _target_name(args)
    scheduled_s = args.get("ts")
    if not isinstance(scheduled_s, (int, float)) or isinstance(scheduled_s, bool):
        raise SyscallError("Invalid argument `ts` for `scheduler`: expected a number.")
    problem = jobs.schedule_delay_problem(float(scheduled_s), now_s)
    if problem is not None:
        raise SyscallError(problem)
    raw_args = args.get("args", {})
    try:
        fn_args = from_convex_json(raw_args if raw_args is not None else {}, path="args")
    except HeadwaterError as exc:
        raise SyscallError(exc.message) from exc
    if not isinstance(fn_args, dict):
        raise SyscallError("Invalid argument `args` for `scheduler`: expected an object.")
    component = args.get("component") or ""
    _check_target(host, name, component)
    _count(host.limits, tx, value_size([fn_args]))
    doc_id, fields = jobs.new_job(
        name,
        fn_args,
        float(scheduled_s) * 1000,
        now_ms=now_s * 1000,
        component=component,
        namespace=args.get("namespace") or "",
    )
    tx.write_system(SCHEDULED_FUNCTIONS_TABLE, doc_id, fields)
    return doc_id


def cancel_in(tx: Transaction, args: dict[str, Any], now_ms: float) -> None:
    """``1.0/cancel_job``: a waiting job becomes canceled; a finished or unknown one is left
    alone (Convex's answer is null either way); an id of another table is refused."""
    doc_id = args.get("id")
    if not isinstance(doc_id, str):
        raise SyscallError("Invalid argument `id` for `db.cancel_job`: expected an id string.")
    try:
        table = tx.table_name(decode_id(doc_id).table_number)
    except InvalidIdError as exc:
        raise SyscallError(f"Invalid argument `id` for `db.cancel_job`: {exc.message}") from exc
    if table != SCHEDULED_FUNCTIONS_TABLE:
        raise SyscallError(_INVALID_JOB_ID)
    job = tx.get(doc_id)
    if job is None or job.get("namespace", "") != (args.get("namespace") or ""):
        return None  # another component's job is no job of the caller's
    updated = jobs.canceled(job, now_ms)
    if updated is not None:
        tx.write_system(SCHEDULED_FUNCTIONS_TABLE, doc_id, updated)
    return None


def _target_name(args: dict[str, Any]) -> str:
    name = args.get("name")
    if isinstance(name, str):
        return name
    raise SyscallError("Invalid argument `name` for `scheduler`: expected a function name.")


def _check_target(host: SchedulingHost, name: str, component: str = "") -> None:
    """The target must exist in its instance now (it may be gone when the job runs)."""
    canonical = jobs.canonical_udf_path(name)
    module, _, export = canonical.partition(":")
    deployment = host.deployment
    if deployment is not None:
        deployment = deployment.for_component(component)
    if deployment is None or deployment.module(module) is None:
        raise SyscallError(f"Attempted to schedule function at nonexistent path: {module}")
    if deployment.function(module, export) is None:
        raise SyscallError(
            f"Attempted to schedule function, but no exported function {export} found in the "
            f"file: {module}. Did you forget to export it?"
        )


def _count(limits: Limits, tx: Transaction, args_bytes: int) -> None:
    counts = _COUNTS.setdefault(tx, _Scheduled())
    if counts.count >= limits.functions_scheduled_max:
        raise SyscallError(
            "Too many functions scheduled by this mutation "
            f"(limit: {limits.functions_scheduled_max})"
        )
    if counts.args_bytes + args_bytes > limits.scheduled_args_bytes_max:
        raise SyscallError(
            "Too large total size of the arguments of scheduled functions from this mutation "
            f"(limit: {limits.scheduled_args_bytes_max} bytes)"
        )
    counts.count += 1
    counts.args_bytes += args_bytes


def scheduled_so_far(tx: Transaction) -> tuple[int, int]:
    """Functions and argument bytes ``tx`` scheduled (``getTransactionMetrics``)."""
    counts = _COUNTS.get(tx)
    return (0, 0) if counts is None else (counts.count, counts.args_bytes)
