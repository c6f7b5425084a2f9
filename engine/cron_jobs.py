"""Cron jobs: ``crons.ts`` specs checked as Convex checks them, their slots, ``_cron_jobs``.

A deploy's ``crons.js`` exports ``{identifier: {name, args: [obj], schedule}}``;
each becomes one ``_cron_jobs`` document (table 521, a fixed id per identifier)::

    {name: <identifier>, cronSpec: {udfPath: "jobs.js:tick", udfArgs: <Convex JSON text>,
     cronSchedule: {type: "interval", seconds} | {type: "cron", cronExpr} | ...},
     nextTs: <ms float>, prevTs?: <ms float>}

A slot is a ``nextTs``: the runner takes it by advancing ``nextTs`` in the same
transaction as the run's writes (mutations) or before the run (actions), so a
slot runs at most once. The next slot is computed from the one just taken and
the clock: slots that passed while nothing ran collapse into the one that runs
(Convex's rule), so a server down for an hour runs an every-minute job once.

Calendar schedules go through ``cronsim`` (five-field cron expressions, UTC):
a maintained, dependency-free evaluator with the standard semantics, rather than
date arithmetic of our own. Convex's random "splay" of calendar jobs within their
minute is not applied: jobs fire at the minute they name.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

from engine.errors import HeadwaterError
from engine.scheduled_jobs import canonical_udf_path
from engine.system_tables import CRON_JOBS_TABLE, SYSTEM_TABLE_NUMBERS, keyed_system_id

_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_INTERVAL_FIELDS = {"seconds": 1, "minutes": 60, "hours": 3600}


class CronSpecError(HeadwaterError):
    code = "InvalidCron"  # Convex's code for a crons.ts it refuses


def cron_job_id(identifier: str) -> str:
    """The fixed ``_cron_jobs`` id of a cron identifier (a redeploy finds its job again)."""
    return keyed_system_id(CRON_JOBS_TABLE, f"cron:{identifier}")


def parse_crons(crons_json: str | None, component_path: str = "") -> dict[str, dict[str, Any]]:
    """``crons.js``'s export as ``{key: cronSpec}`` (``_cron_jobs``'s ``cronSpec``);
    raises CronSpecError with Convex's words for a spec it refuses.

    The crons of a component instance (``component_path``) run its functions: their
    spec says so in ``componentPath`` and their key is ``"<path>/<identifier>"``
    (identifiers have no ``/``), so every instance's crons share one ``_cron_jobs``."""
    if crons_json is None:
        return {}
    found = json.loads(crons_json)
    if not isinstance(found, dict):
        raise CronSpecError("Invalid JSON")
    for identifier in found:
        _check_identifier(identifier)
    specs = {}
    for identifier, raw in found.items():
        spec = parse_spec(raw)
        if component_path:
            spec["componentPath"] = component_path
        specs[cron_key(component_path, identifier)] = spec
    return specs


def cron_key(component_path: str, identifier: str) -> str:
    """A cron's key among every instance's crons (the app's: its identifier)."""
    return f"{component_path}/{identifier}" if component_path else identifier


def _job_key(job: dict[str, Any]) -> str:
    return cron_key(job["cronSpec"].get("componentPath", ""), job["name"])


def _check_identifier(identifier: str) -> None:
    for char in identifier:
        if not (char.isascii() and (char.isalnum() or char in " _-'")):
            raise CronSpecError(
                f"CronIdentifier {identifier} has invalid character '{char}': CronIdentifiers "
                "can only contain ASCII letters, numbers, spaces, underscores, dashes and "
                "apostrophes"
            )


def check_targets(specs: dict[str, dict[str, Any]], kind_of: Any) -> None:
    """Every cron must name a mutation or an action of the same deploy (Convex's words);
    ``kind_of(module, export)`` is the function's kind or None."""
    for key, spec in specs.items():
        identifier = key.rpartition("/")[2]
        path = spec["udfPath"]
        module, _, export = path.partition(":")
        kind = kind_of(module, export)
        if kind is None:
            raise CronSpecError(
                f"The cron job '{identifier}' schedules a function that does not exist: {path}"
            )
        if kind == "query":
            raise CronSpecError(
                f"The cron job '{identifier}' schedules a query function, only actions and "
                f"mutations can be scheduled: {path}"
            )
        if kind == "httpAction":
            raise CronSpecError(
                f"The cron job '{identifier}' schedules an HTTP action, only actions and "
                f"mutations can be scheduled: {path}"
            )


def sync_cron_jobs(tx: Any, specs: dict[str, dict[str, Any]], now_ms: float) -> None:
    """Make ``_cron_jobs`` hold exactly ``specs`` inside a deploy's transaction: new jobs
    get their first slot, changed ones a fresh one, unchanged ones keep theirs."""
    number = SYSTEM_TABLE_NUMBERS[CRON_JOBS_TABLE]
    existing = {_job_key(doc): doc for _, doc in tx.snapshot.iter_table(number)}
    for key, job in existing.items():
        if key not in specs:
            tx.write_system(CRON_JOBS_TABLE, job["_id"], None)
    for key, spec in specs.items():
        job = existing.get(key)
        if job is None:
            identifier = key.rpartition("/")[2]
            tx.write_system(
                CRON_JOBS_TABLE, cron_job_id(key), new_cron_job(identifier, spec, now_ms)
            )
            continue
        changed = changed_cron_job(job, spec, now_ms)
        if changed is not None:
            tx.write_system(CRON_JOBS_TABLE, job["_id"], changed)


def parse_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CronSpecError("Invalid JSON")
    args = spec.get("args", [{}])
    if not isinstance(args, list) or not isinstance(spec.get("schedule"), dict):
        raise CronSpecError("Invalid JSON")
    return {
        "udfPath": canonical_udf_path(spec["name"]),
        "udfArgs": json.dumps(args, separators=(",", ":")),
        "cronSchedule": _schedule(spec["schedule"], spec),
    }


def _schedule(schedule: dict[str, Any], spec: Any) -> dict[str, Any]:
    kind = schedule.get("type")
    shown = json.dumps(spec, indent=2)
    if kind == "interval":
        given = [f for f in _INTERVAL_FIELDS if schedule.get(f) is not None]
        if len(given) != 1:
            raise CronSpecError("Exactly one of (seconds, minutes, hours) should be specified")
        amount = schedule[given[0]]
        if not _is_int(amount) or amount <= 0:
            raise CronSpecError("Interval must be an integer greater than 0")
        return {"type": "interval", "seconds": float(amount * _INTERVAL_FIELDS[given[0]])}
    if kind == "cron":
        expression = schedule.get("cron")
        if not isinstance(expression, str):
            raise CronSpecError("Invalid JSON")
        try:
            CronSim(expression, datetime.now(UTC))
        except (CronSimError, ValueError) as exc:
            raise CronSpecError(f"Invalid cron expression {expression!r}: {exc}") from exc
        return {"type": "cron", "cronExpr": expression}
    if kind not in ("hourly", "daily", "weekly", "monthly"):
        raise CronSpecError("Invalid JSON")
    out: dict[str, Any] = {"type": kind}
    if schedule.get("minuteUTC") is not None:
        minute = _whole_in(schedule["minuteUTC"], 0, 59)
        if minute is None:
            raise CronSpecError(f"minuteUTC must be 0-59 in {shown}")
        out["minuteUTC"] = minute
    if kind == "hourly":
        return out
    hour = _whole_in(schedule.get("hourUTC"), 0, 23)
    if hour is None:
        raise CronSpecError(f"hourUTC must be 0-23 in {shown}")
    out["hourUTC"] = hour
    if kind == "weekly":
        day = schedule.get("dayOfWeek")
        if day not in _DAYS:
            raise CronSpecError("Invalid JSON")
        out["dayOfWeek"] = day
    if kind == "monthly":
        day_of_month = _whole_in(schedule.get("day"), 1, 31)
        if day_of_month is None:
            raise CronSpecError(f"day of month must be 1-31 in {shown}")
        out["day"] = day_of_month
    return out


def _whole_in(value: Any, lowest: int, highest: int) -> float | None:
    """``value`` as a float when it is a whole number in [lowest, highest], else None."""
    if not _is_int(value) or not lowest <= value <= highest:
        return None
    return float(value)


def _is_int(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and float(value).is_integer()
    )


def cron_expression(schedule: dict[str, Any]) -> str | None:
    """The five-field expression of a calendar schedule (None for an interval)."""
    kind = schedule["type"]
    if kind == "interval":
        return None
    if kind == "cron":
        return schedule["cronExpr"]
    minute = int(schedule.get("minuteUTC", 0))
    if kind == "hourly":
        return f"{minute} * * * *"
    hour = int(schedule["hourUTC"])
    if kind == "daily":
        return f"{minute} {hour} * * *"
    if kind == "weekly":
        return f"{minute} {hour} * * {_DAYS.index(schedule['dayOfWeek'])}"
    return f"{minute} {hour} {int(schedule['day'])} * *"


def first_slot_ms(schedule: dict[str, Any], now_ms: float) -> float:
    """The first slot of a job a deploy adds: now for an interval (Convex runs it at
    once), else the schedule's first time after now."""
    expression = cron_expression(schedule)
    if expression is None:
        return now_ms
    return _after(expression, now_ms)


def next_slot_ms(schedule: dict[str, Any], taken_ms: float, now_ms: float) -> float:
    """The slot after ``taken_ms`` that is not yet past at ``now_ms`` (missed ones collapse)."""
    expression = cron_expression(schedule)
    if expression is None:
        step_ms = schedule["seconds"] * 1000
        slot = taken_ms + step_ms
        if slot < now_ms:  # skip the missed ones in one step
            slot += math.ceil((now_ms - slot) / step_ms) * step_ms
        return slot
    return _after(expression, max(taken_ms, now_ms))


def _after(expression: str, ms: float) -> float:
    """The first time the expression matches strictly after ``ms`` (whole seconds, UTC)."""
    start = datetime.fromtimestamp(math.floor(ms / 1000), UTC)
    found = next(iter(CronSim(expression, start)))
    return found.timestamp() * 1000


def new_cron_job(identifier: str, spec: dict[str, Any], now_ms: float) -> dict[str, Any]:
    return {
        "name": identifier,
        "cronSpec": spec,
        "nextTs": first_slot_ms(spec["cronSchedule"], now_ms),
    }


def changed_cron_job(
    job: dict[str, Any], spec: dict[str, Any], now_ms: float
) -> dict[str, Any] | None:
    """A redeploy's effect on an existing job: None when its spec is unchanged (its slots
    stand), else the job with the new spec and a fresh first slot."""
    if job["cronSpec"] == spec:
        return None
    fresh = new_cron_job(job["name"], spec, now_ms)
    if "prevTs" in job:
        fresh["prevTs"] = job["prevTs"]
    return {"_id": job["_id"], "_creationTime": job["_creationTime"], **fresh}


def taken(job: dict[str, Any], now_ms: float) -> dict[str, Any]:
    """The job once its slot ``nextTs`` is taken."""
    slot = job["nextTs"]
    schedule = job["cronSpec"]["cronSchedule"]
    return {**job, "prevTs": slot, "nextTs": next_slot_ms(schedule, slot, now_ms)}
