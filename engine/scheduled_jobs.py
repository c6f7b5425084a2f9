"""Scheduled functions: the ``_scheduled_functions`` documents and their state machine.

A job is one document in ``_scheduled_functions`` (table 539, the number of
Convex's backing ``_scheduled_jobs``), in the shape user code reads from
Convex's virtual table::

    {_id, _creationTime, name: "messages.js:send", args: [<args object>],
     scheduledTime: <ms float>, completedTime?: <ms float>,
     state: {kind: "pending"} | {kind: "inProgress", requestId, executionId}
          | {kind: "success"} | {kind: "failed", error} | {kind: "canceled"}}

States move only forward: pending → success | failed | canceled (mutations;
their ``inProgress`` is staged inside their own transaction, never committed),
pending → inProgress → success | failed | canceled (actions, at most once).
A job is due at ``max(scheduledTime, _creationTime)``: a time in the past means
now, as in Convex, while ``scheduledTime`` keeps the time asked for.

Everything here is a pure function over documents; the transactions that
write them are the callers' (``udf.scheduling_syscalls``, ``udf.scheduler``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from engine.errors import HeadwaterError
from engine.ids import encode_id, new_internal_id
from engine.system_tables import SCHEDULED_FUNCTIONS_TABLE, SYSTEM_TABLE_NUMBERS

SCHEDULED_FUNCTIONS_TABLE_NUMBER = SYSTEM_TABLE_NUMBERS[SCHEDULED_FUNCTIONS_TABLE]

PENDING = "pending"
IN_PROGRESS = "inProgress"
SUCCESS = "success"
FAILED = "failed"
CANCELED = "canceled"
FINISHED = frozenset({SUCCESS, FAILED, CANCELED})

# Convex's bound on how far from now a job may be scheduled (5 years of 366 days).
SCHEDULE_DELAY_S_MAX = 5 * 366 * 24 * 3600
# What a job left in progress by a crash becomes (never run again: at most once).
ACTION_INTERRUPTED = "Transient error while executing action"


class ScheduledJobError(HeadwaterError):
    code = "InvalidScheduledFunction"


def canonical_udf_path(path: str) -> str:
    """``"messages:send"`` / ``"messages.js:send"`` / ``"messages"`` → ``"messages.js:send"``."""
    module, _, export = path.partition(":")
    module = module.removesuffix(".js")
    return f"{module}.js:{export or 'default'}"


def new_job(
    name: str,
    args: dict[str, Any],
    scheduled_ms: float,
    *,
    now_ms: float,
    random_bytes: Callable[[int], bytes] = os.urandom,
    component: str = "",
    namespace: str = "",
) -> tuple[str, dict[str, Any]]:
    """A fresh pending job: its id and its fields (``_creationTime`` is the writer's);
    a function of a component instance has its path in ``component``; a job a component
    scheduled belongs to it (``namespace``: only its functions see the job)."""
    doc_id = encode_id(SCHEDULED_FUNCTIONS_TABLE_NUMBER, new_internal_id(random_bytes, now_ms))
    fields = {
        "name": canonical_udf_path(name),
        "args": [args],
        "scheduledTime": float(scheduled_ms),
        "state": {"kind": PENDING},
    }
    if component:
        fields["component"] = component
    if namespace:
        fields["namespace"] = namespace
    return doc_id, fields


def kind_of(job: dict[str, Any]) -> str:
    return job["state"]["kind"]


def due_ms(job: dict[str, Any]) -> float:
    """When the runner starts the job: the time asked for, or its scheduling if that was later."""
    return max(job["scheduledTime"], job["_creationTime"])


def is_waiting(job: dict[str, Any]) -> bool:
    """Pending or in progress: the runner has something left to do with it."""
    return kind_of(job) in (PENDING, IN_PROGRESS)


def started(job: dict[str, Any], request_id: str, execution_id: str) -> dict[str, Any]:
    """pending → inProgress (refused from any other state)."""
    if kind_of(job) != PENDING:
        raise ScheduledJobError(f"A job in state {kind_of(job)} cannot start.")
    state = {"kind": IN_PROGRESS, "requestId": request_id, "executionId": execution_id}
    return {**job, "state": state}


def completed(
    job: dict[str, Any], kind: str, completed_ms: float, error: str | None = None
) -> dict[str, Any] | None:
    """A waiting job finished (success, failed or canceled); None when nothing changes.

    As in Convex: completing a canceled job leaves it canceled (a cancel won the
    race), and completing a job that already succeeded or failed is our bug.
    """
    if kind not in FINISHED:
        raise ScheduledJobError(f"{kind} is not a final state.")
    current = kind_of(job)
    if current == CANCELED:
        return None
    if current in FINISHED:
        raise ScheduledJobError(f"A job in state {current} cannot be completed again.")
    state: dict[str, Any] = {"kind": kind}
    if kind == FAILED:
        state["error"] = error or ""
    return {**job, "state": state, "completedTime": float(completed_ms)}


def canceled(job: dict[str, Any], now_ms: float) -> dict[str, Any] | None:
    """``ctx.scheduler.cancel``: a waiting job becomes canceled; a finished one is left
    as it is (None), as Convex does."""
    if not is_waiting(job):
        return None
    return completed(job, CANCELED, now_ms)


def is_expired(job: dict[str, Any], now_ms: float, retention_s: float) -> bool:
    """A finished job older than the retention window (deleted, as Convex does)."""
    completed_ms = job.get("completedTime")
    return (
        kind_of(job) in FINISHED
        and completed_ms is not None
        and completed_ms <= now_ms - retention_s * 1000
    )


def schedule_delay_problem(scheduled_s: float, now_s: float) -> str | None:
    """Convex's refusal of a time more than five years away (either way), or None."""
    delta = scheduled_s - now_s
    if delta > SCHEDULE_DELAY_S_MAX:
        return f"{_unix_timestamp(scheduled_s)} is more than 5 years in the future"
    if delta < -SCHEDULE_DELAY_S_MAX:
        return f"{_unix_timestamp(scheduled_s)} is more than 5 years in the past"
    return None


def _unix_timestamp(seconds: float) -> str:
    """How the reference prints a ``UnixTimestamp`` (its Debug form: a Duration since epoch)."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos == 0:
        return f"UnixTimestamp({whole}s)"
    return f"UnixTimestamp({whole}.{nanos:09d}".rstrip("0") + "s)"
