"""``ops:scheduled``, ``ops:crons`` and ``ops:cancelJob``: the dashboard's schedules screen.

Jobs and crons are read from ``_scheduled_functions`` and ``_cron_jobs`` through the
query's transaction (live; readable at a past commit). Cancelling is the state change
``ctx.scheduler.cancel`` makes (``engine.scheduled_jobs.canceled``) in the dashboard
mutation's own commit; the runner follows commits, so a canceled job never starts.
Unlike ``ctx.scheduler.cancel``, which silently ignores an unknown or finished job, the
dashboard says why nothing happened: its user clicked a button and expects an effect.

A job's ``state`` is its kind (``pending``, ``inProgress``, ``success``, ``failed``,
``canceled``); a failed job carries its ``error``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from engine import scheduled_jobs as jobs
from engine.convex_json import from_convex_json
from engine.cron_jobs import CRON_JOBS_TABLE
from engine.errors import HeadwaterError, InvalidIdError
from engine.ids import decode_id
from engine.scheduled_jobs import SCHEDULED_FUNCTIONS_TABLE
from engine.transaction import Transaction
from udf.dashboard_ops_args import bad_args, check_keys, string_arg

# The newest jobs the screen lists (finished jobs stay until their retention ends).
JOBS_LISTED_MAX = 1000


def list_scheduled(_context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    check_keys(args, (), "ops:scheduled")
    docs = tx.query(SCHEDULED_FUNCTIONS_TABLE).order("desc").take(JOBS_LISTED_MAX)
    listed = [_job(doc) for doc in docs]
    listed.sort(key=lambda job: (job["scheduledTime"], job["id"]))
    return listed


def _job(doc: dict[str, Any]) -> dict[str, Any]:
    job = {
        "id": doc["_id"],
        "name": jobs.canonical_udf_path(doc["name"]),
        "args": doc["args"][0] if doc.get("args") else {},
        "scheduledTime": float(doc["scheduledTime"]),
        "creationTime": float(doc["_creationTime"]),
        "state": jobs.kind_of(doc),
        "component": doc.get("component", ""),
    }
    if "completedTime" in doc:
        job["completedTime"] = float(doc["completedTime"])
    if jobs.kind_of(doc) == jobs.FAILED:
        job["error"] = doc["state"].get("error", "")
    return job


def list_crons(_context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    check_keys(args, (), "ops:crons")
    found = []
    for doc in tx.query(CRON_JOBS_TABLE).collect():
        spec = doc["cronSpec"]
        found.append(
            {
                "name": doc["name"],
                "schedule": spec["cronSchedule"],
                "nextRun": _ms_or_none(doc.get("nextTs")),
                "lastRun": _ms_or_none(doc.get("prevTs")),
                "functionName": jobs.canonical_udf_path(spec["udfPath"]),
                "args": _cron_args(spec.get("udfArgs")),
                "component": spec.get("componentPath", ""),
            }
        )
    found.sort(key=lambda cron: (cron["component"], cron["name"]))
    return found


def _ms_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _cron_args(text: Any) -> Any:
    if not isinstance(text, str):
        return {}
    parsed = from_convex_json(json.loads(text))
    return parsed[0] if isinstance(parsed, list) and parsed else parsed


def cancel_job(_context: Any, tx: Transaction, args: dict[str, Any]) -> None:
    check_keys(args, ("id",), "ops:cancelJob")
    job_id = string_arg(args, "id", "ops:cancelJob")
    try:
        table = tx.table_name(decode_id(job_id).table_number)
    except InvalidIdError as exc:
        raise bad_args(f"ops:cancelJob: {exc.message}") from exc
    if table != SCHEDULED_FUNCTIONS_TABLE:
        raise bad_args(
            f'"{job_id}" is not a scheduled function ID: it must be an ID on the '
            "'_scheduled_functions' table."
        )
    job = tx.get(job_id)
    if job is None:
        raise HeadwaterError(
            f'Scheduled function "{job_id}" does not exist (it may have finished and been '
            "cleaned up).",
            code="NotFound",
        )
    updated = jobs.canceled(job, time.time() * 1000)
    if updated is None:
        raise HeadwaterError(
            f'Scheduled function "{job_id}" ({jobs.canonical_udf_path(job["name"])}) has '
            f"already finished ({jobs.kind_of(job)}): only a pending or running job can be "
            "canceled.",
            code="AlreadyFinished",
        )
    tx.write_system(SCHEDULED_FUNCTIONS_TABLE, job_id, updated)
    return None
