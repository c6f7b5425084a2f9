"""The scheduled-job state machine and cron slots, as properties."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine import cron_jobs as crons
from engine import scheduled_jobs as jobs

NOW_MS = 1_800_000_000_000.0
OPERATIONS = st.lists(
    st.sampled_from(["start", "success", "failed", "canceled", "cancel"]), max_size=8
)


def pending_job() -> dict:
    job_id, fields = jobs.new_job("messages:send", {"a": 1.0}, NOW_MS - 5, now_ms=NOW_MS)
    return {"_id": job_id, "_creationTime": NOW_MS, **fields}


def apply(job: dict, operation: str, at_ms: float) -> dict:
    if operation == "start":
        return jobs.started(job, "request", "execution")
    if operation == "cancel":
        return jobs.canceled(job, at_ms) or job
    return jobs.completed(job, operation, at_ms, "boom") or job


@given(OPERATIONS)
@example(["start", "cancel", "success"])
@example(["cancel", "start"])
@example(["success", "failed"])
def test_states_only_move_forward(operations):
    job = pending_job()
    for step, operation in enumerate(operations):
        before = jobs.kind_of(job)
        try:
            job = apply(job, operation, NOW_MS + step)
        except jobs.ScheduledJobError:
            # Refused: starting anything but a pending job, completing a finished one.
            assert (operation == "start" and before != jobs.PENDING) or (
                before in (jobs.SUCCESS, jobs.FAILED) and operation != "cancel"
            )
            continue
        after = jobs.kind_of(job)
        if before in jobs.FINISHED:
            assert after == before  # finished is final (a cancel after it changes nothing)
        if after == jobs.IN_PROGRESS:
            assert before in (jobs.PENDING, jobs.IN_PROGRESS)
        assert ("completedTime" in job) == (after in jobs.FINISHED)
        assert ("error" in job["state"]) == (after == jobs.FAILED)
        assert job["scheduledTime"] == NOW_MS - 5 and job["args"] == [{"a": 1.0}]


def test_a_job_is_due_when_asked_or_when_scheduled_if_later():
    job = pending_job()
    assert jobs.due_ms(job) == NOW_MS  # asked for the past: now
    assert jobs.due_ms({**job, "scheduledTime": NOW_MS + 10}) == NOW_MS + 10
    assert jobs.canonical_udf_path("a/b:c") == "a/b.js:c"
    assert jobs.canonical_udf_path("a.js") == "a.js:default"


@pytest.mark.parametrize(
    ("delta_s", "refused"),
    [(0, False), (jobs.SCHEDULE_DELAY_S_MAX, False), (jobs.SCHEDULE_DELAY_S_MAX + 1, True)],
)
def test_five_years_either_way_is_the_bound(delta_s, refused):
    now_s = NOW_MS / 1000
    assert (jobs.schedule_delay_problem(now_s + delta_s, now_s) is not None) == refused
    assert (jobs.schedule_delay_problem(now_s - delta_s, now_s) is not None) == refused


@given(
    step_s=st.integers(1, 7200),
    taken_offset_ms=st.floats(-1e9, 1e6, allow_nan=False),
)
@example(step_s=1, taken_offset_ms=-3200.0)  # three slots missed: one run, then on time
@example(step_s=60, taken_offset_ms=0.0)
def test_interval_slots_skip_the_missed_ones_and_keep_their_phase(step_s, taken_offset_ms):
    schedule = {"type": "interval", "seconds": float(step_s)}
    taken = NOW_MS + taken_offset_ms
    slot = crons.next_slot_ms(schedule, taken, NOW_MS)
    step_ms = step_s * 1000
    assert slot > taken and slot >= NOW_MS
    assert slot - max(taken, NOW_MS) <= step_ms  # never a whole slot skipped that lies ahead
    phase = (slot - taken) / step_ms
    assert math.isclose(phase, round(phase), abs_tol=1e-6)


CALENDAR = st.one_of(
    st.builds(lambda m: {"type": "hourly", "minuteUTC": float(m)}, st.integers(0, 59)),
    st.builds(
        lambda h, m: {"type": "daily", "hourUTC": float(h), "minuteUTC": float(m)},
        st.integers(0, 23),
        st.integers(0, 59),
    ),
    st.builds(lambda k: {"type": "cron", "cronExpr": f"*/{k} * * * *"}, st.integers(1, 59)),
)


@given(schedule=CALENDAR, taken_offset_ms=st.floats(-1e10, 1e8, allow_nan=False))
def test_calendar_slots_are_the_next_matching_minute(schedule, taken_offset_ms):
    taken = NOW_MS + taken_offset_ms
    slot = crons.next_slot_ms(schedule, taken, NOW_MS)
    start = math.floor(max(taken, NOW_MS) / 1000) * 1000
    assert slot > start and slot % 60_000 == 0
    fields = time.gmtime(slot / 1000)
    kind = schedule["type"]
    if kind in ("hourly", "daily"):
        assert fields.tm_min == schedule["minuteUTC"]
        assert slot - start <= (3600 if kind == "hourly" else 86400) * 1000
    if kind == "daily":
        assert fields.tm_hour == schedule["hourUTC"]
    if kind == "cron":
        step = int(schedule["cronExpr"].split()[0][2:])
        assert fields.tm_min % step == 0


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ({"type": "interval", "seconds": 1, "minutes": 1}, "Exactly one of"),
        ({"type": "interval", "hours": -1}, "Interval must be an integer greater than 0"),
        ({"type": "interval", "seconds": 1.5}, "Interval must be an integer greater than 0"),
        ({"type": "hourly", "minuteUTC": 60}, "minuteUTC must be 0-59"),
        ({"type": "daily", "hourUTC": 24}, "hourUTC must be 0-23"),
        ({"type": "monthly", "day": 32, "hourUTC": 1}, "day of month must be 1-31"),
        ({"type": "cron", "cron": "* * *"}, "Invalid cron expression"),
        ({"type": "weekly", "dayOfWeek": "someday", "hourUTC": 1}, "Invalid JSON"),
    ],
)
def test_bad_schedules_are_refused_in_convex_words(schedule, words):
    spec = {"name": "jobs:tick", "args": [{}], "schedule": schedule}
    with pytest.raises(crons.CronSpecError, match=words):
        crons.parse_spec(spec)


def test_a_redeploy_keeps_the_slots_of_an_unchanged_job_and_resets_a_changed_one():
    spec = crons.parse_spec(
        {"name": "jobs:tick", "args": [{}], "schedule": {"type": "interval", "seconds": 5}}
    )
    job = {"_id": "x", "_creationTime": 1.0, **crons.new_cron_job("a", spec, NOW_MS)}
    assert job["nextTs"] == NOW_MS
    assert crons.changed_cron_job(job, spec, NOW_MS + 1) is None
    other = {**spec, "udfArgs": '[{"b":1}]'}
    changed = crons.changed_cron_job(job, other, NOW_MS + 1)
    assert changed is not None and changed["cronSpec"] == other and changed["_id"] == "x"
