"""Scheduled functions and crons in real V8 against the real engine: order, exactly once
(mutations) and at most once (actions), restarts, cancel, rollback, every bad input."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from engine import Database, HeadwaterError
from engine import scheduled_jobs as jobs
from engine.limits import LIMITS, Limits
from engine.scheduled_jobs import SCHEDULED_FUNCTIONS_TABLE
from tests.waiting import wait_for
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor
from udf.function_log import FunctionLog
from udf.scheduler import Scheduler

FIXTURES = Path(__file__).parent / "fixtures"
SCHEDULING_APP = FIXTURES / "scheduling" / "convex"
CRONS_APP = FIXTURES / "crons" / "convex"


class Deployment:
    """A data folder with the app deployed, the runner started; ``restart`` reopens both."""

    def __init__(self, data: Path, app: Path, limits: Limits = LIMITS) -> None:
        self.data, self.app, self.limits = data, app, limits
        self._open(deploy=True)

    def _open(self, *, deploy: bool, start: bool = True) -> None:
        self.db = Database.open(self.data)
        self.ex = Executor(self.db, limits=self.limits)
        if deploy:
            self.ex.deploy(self.app)
        self.scheduler = Scheduler(self.ex)
        if start:
            self.scheduler.start()

    def restart(self, *, start: bool = True) -> None:
        self.close()
        self._open(deploy=False, start=start)

    def close(self) -> None:
        self.scheduler.close()
        self.ex.close()
        self.db.close()

    def run(self, path: str, args: dict | None = None, kind: str | None = None):
        return self.ex.run(FunctionCall(path, args or {}, kind))  # type: ignore[arg-type]

    def ok(self, path: str, args: dict | None = None):
        outcome = self.run(path, args)
        assert outcome.error is None, outcome.error
        return outcome.value

    def error(self, path: str, args: dict | None = None) -> str:
        outcome = self.run(path, args)
        assert outcome.error is not None, outcome.value
        return outcome.error.message

    def settle(self, timeout_s: float = 10) -> None:
        assert self.scheduler.wait_idle(timeout_s)

    def job(self, job_id: str) -> dict:
        return self.ok("jobs:job", {"id": job_id})


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "convex"
    shutil.copytree(SCHEDULING_APP, folder)
    deployment = Deployment(tmp_path / "data", folder)
    yield deployment
    deployment.close()


def test_a_mutation_schedules_a_mutation_and_an_action_that_run_once_in_order(app):
    first, second = app.ok("jobs:scheduleBoth", {"delayMs": 200.0})
    assert app.job(first)["state"] == {"kind": "pending"}
    wait_for(lambda: app.ok("jobs:list") == ["mutation", "action"])
    app.settle()
    time.sleep(0.3)
    assert app.ok("jobs:list") == ["mutation", "action"]
    done = app.job(first)
    assert done["state"] == {"kind": "success"}
    assert done["name"] == "jobs.js:record" and done["args"] == [{"label": "mutation"}]
    assert done["completedTime"] >= done["scheduledTime"]
    assert app.job(second)["state"] == {"kind": "success"}


def test_a_scheduled_mutation_sees_itself_in_progress(app):
    app.ok("jobs:scheduleSeesItself")
    wait_for(lambda: app.ok("jobs:list") == ["self:inProgress"])


def test_a_rolled_back_mutation_schedules_nothing(app):
    assert "after scheduling" in app.error("jobs:scheduleThenThrow")
    app.settle()
    assert app.ok("jobs:jobs") == [] and app.ok("jobs:list") == []


def test_cancel_stops_a_pending_job_and_is_a_no_op_after(app):
    job_id = app.ok("jobs:scheduleAt", {"ms": time.time() * 1000 + 300, "label": "never"})
    app.ok("jobs:cancel", {"id": job_id})
    canceled = app.job(job_id)
    assert canceled["state"] == {"kind": "canceled"} and "completedTime" in canceled
    time.sleep(0.5)
    app.settle()
    assert app.ok("jobs:list") == []
    app.ok("jobs:cancel", {"id": job_id})  # finished: nothing happens, no error
    assert app.job(job_id) == canceled


def test_cancel_of_a_finished_job_leaves_it_as_it_is(app):
    past_ms = float(int(time.time() * 1000) - 60_000)
    job_id = app.ok("jobs:scheduleAt", {"ms": past_ms, "label": "past"})  # past: runs now
    wait_for(lambda: app.job(job_id)["state"]["kind"] == "success")
    done = app.job(job_id)
    assert done["scheduledTime"] == past_ms  # the time asked for is kept
    app.ok("jobs:cancel", {"id": job_id})
    assert app.job(job_id) == done


def test_actions_schedule_and_cancel_in_their_own_transactions(app):
    job_id = app.ok("jobs:scheduleFromAction", {"delayMs": 60_000.0})
    assert app.job(job_id)["state"] == {"kind": "pending"}
    app.ok("jobs:cancelFromAction", {"id": job_id})
    assert app.job(job_id)["state"] == {"kind": "canceled"}
    app.ok("jobs:scheduleFromAction", {"delayMs": 0.0})
    wait_for(lambda: app.ok("jobs:list") == ["from action"])


def test_a_failing_job_is_failed_with_its_error_and_not_retried(app):
    job_id = app.ok("jobs:scheduleFail")
    wait_for(lambda: app.job(job_id)["state"]["kind"] == "failed")
    assert "scheduled failure" in app.job(job_id)["state"]["error"]
    query_job = app.ok("jobs:scheduleQuery")
    wait_for(lambda: app.job(query_job)["state"]["kind"] == "failed")
    assert "is defined as a query" in app.job(query_job)["state"]["error"]


@pytest.mark.parametrize(
    ("path", "args", "words"),
    [
        (
            "jobs:scheduleByName",
            {"name": "nowhere:fn"},
            "Attempted to schedule function at nonexistent path: nowhere.js",
        ),
        (
            "jobs:scheduleByName",
            {"name": "jobs:missing"},
            "no exported function missing found in the file: jobs.js. Did you forget to export it?",
        ),
        (
            "jobs:scheduleAt",
            {"ms": 1e15, "label": "x"},
            "UnixTimestamp(1000000000000s) is more than 5 years in the future",
        ),
        (
            "jobs:scheduleAt",
            {"ms": 0.0, "label": "x"},
            "UnixTimestamp(0s) is more than 5 years in the past",
        ),
        ("jobs:scheduleMany", {"count": 1001.0}, "Too many functions scheduled by this mutation"),
        (
            "jobs:scheduleBig",
            {"bytes": 900_000.0, "count": 19.0},
            "Too large total size of the arguments of scheduled functions",
        ),
        (
            "jobs:cancel",
            {"id": "not-an-id"},
            "Invalid argument `id` for `db.cancel_job`",
        ),
    ],
)
def test_bad_schedules_get_convex_errors_and_write_nothing(app, path, args, words):
    assert words in app.error(path, args)
    assert app.ok("jobs:jobs") == []


def test_cancel_of_an_unknown_job_is_a_no_op_as_in_convex(app):
    unknown, _ = jobs.new_job("jobs:record", {}, 0.0, now_ms=time.time() * 1000)
    app.ok("jobs:cancel", {"id": unknown})
    assert app.ok("jobs:jobs") == []


def test_cancel_with_an_id_of_another_table_is_refused(app):
    job_id = app.ok("jobs:scheduleAt", {"ms": time.time() * 1000 + 60_000, "label": "x"})
    app.ok("jobs:scheduleMany", {"count": 0.0})
    other = app.db.mutate(lambda tx: tx.insert("events", {"label": "x", "at": 0.0})).value
    assert "The ID must be an ID on the '_scheduled_functions' table" in app.error(
        "jobs:cancel", {"id": other}
    )
    assert app.job(job_id)["state"] == {"kind": "pending"}


def test_a_thousand_jobs_in_one_mutation_run_each_once(app):
    app.ok("jobs:scheduleMany", {"count": 1000.0})
    wait_for(lambda: len(app.ok("jobs:list")) == 1000, timeout_s=60)
    app.settle()
    labels = app.ok("jobs:list")
    assert sorted(labels) == sorted(f"many-{i}" for i in range(1000))
    assert {j["state"]["kind"] for j in app.ok("jobs:jobs")} == {"success"}


def test_jobs_due_while_stopped_run_once_after_a_restart(app):
    app.restart(start=False)  # the runner is down: nothing runs
    app.ok("jobs:scheduleBoth", {"delayMs": 0.0})
    time.sleep(0.2)
    assert app.ok("jobs:list") == []
    app.restart()
    # Both are overdue at once, so they may finish in either order: each runs once.
    wait_for(lambda: sorted(app.ok("jobs:list")) == ["action", "mutation"])
    app.restart()
    time.sleep(0.3)
    app.settle()
    assert sorted(app.ok("jobs:list")) == ["action", "mutation"]


def test_an_action_interrupted_by_a_crash_is_failed_never_rerun(app):
    app.restart(start=False)
    job_id = app.ok("jobs:scheduleFromAction", {"delayMs": 0.0})

    def mark_started(tx):  # what the runner commits before it starts an action
        job = tx.get(job_id)
        tx.write_system(SCHEDULED_FUNCTIONS_TABLE, job_id, jobs.started(job, "r", "e"))

    app.db.mutate(mark_started)
    app.restart()
    wait_for(lambda: app.job(job_id)["state"]["kind"] == "failed")
    assert app.job(job_id)["state"]["error"] == "Transient error while executing action"
    app.settle()
    assert app.ok("jobs:list") == []


def test_finished_jobs_are_deleted_after_the_retention_window(tmp_path):
    folder = tmp_path / "convex"
    shutil.copytree(SCHEDULING_APP, folder)
    limits = dataclasses.replace(
        LIMITS, scheduled_job_retention_s=0, scheduled_job_cleanup_interval_s=1
    )
    app = Deployment(tmp_path / "data", folder, limits)
    try:
        done = app.ok("jobs:scheduleAt", {"ms": time.time() * 1000, "label": "x"})
        later = app.ok("jobs:scheduleAt", {"ms": time.time() * 1000 + 60_000, "label": "y"})
        wait_for(lambda: app.job(done) is None, timeout_s=5)
        assert app.job(later)["state"] == {"kind": "pending"}  # only finished ones go
        assert app.ok("jobs:list") == ["x"]
    finally:
        app.close()


# -- crons ---------------------------------------------------------------------------------


@pytest.fixture
def cron_app(tmp_path):
    folder = tmp_path / "convex"
    shutil.copytree(CRONS_APP, folder)
    deployment = Deployment(tmp_path / "data", folder)
    yield deployment
    deployment.close()


def ticks(app) -> list[tuple[str, float]]:
    return [tuple(t) for t in app.ok("tick:ticks")]  # type: ignore[misc]


def write_crons(app, body: str) -> None:
    (app.app / "crons.ts").write_text(
        'import { cronJobs } from "convex/server";\n'
        'import { internal } from "./_generated/api";\n'
        f"const crons = cronJobs();\n{body}\nexport default crons;\n"
    )


def test_an_interval_cron_fires_every_second_and_a_redeploy_changes_it(cron_app):
    wait_for(lambda: len(ticks(cron_app)) >= 3, timeout_s=6)
    times = [at for _, at in ticks(cron_app)]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Runs keep the 1 s grid: a late run (a loaded machine) shortens only the gap after it,
    # so each gap stays well clear of a double run (< 0.5 s) and of a skipped slot (> 1.5 s),
    # and the span from the first run to the last covers one slot per gap.
    assert all(500 <= gap <= 1500 for gap in gaps), gaps
    assert round((times[-1] - times[0]) / 1000) == len(gaps), gaps
    write_crons(
        cron_app,
        'crons.interval("every second", { seconds: 1 }, internal.tick.tick, { label: "two" });',
    )
    cron_app.ex.deploy(cron_app.app)
    wait_for(lambda: [label for label, _ in ticks(cron_app)][-2:] == ["two", "two"], timeout_s=6)
    write_crons(cron_app, "")
    cron_app.ex.deploy(cron_app.app)
    count = len(ticks(cron_app))
    time.sleep(1.5)
    assert len(ticks(cron_app)) <= count + 1  # removed: at most the run in flight


def test_a_cron_never_runs_twice_for_a_slot_across_restarts(cron_app):
    wait_for(lambda: len(ticks(cron_app)) >= 2, timeout_s=6)
    cron_app.restart(start=False)
    stopped_ms = time.time() * 1000
    time.sleep(3.2)  # three slots pass while nothing runs
    cron_app.restart()
    time.sleep(2.5)
    times = [at for _, at in ticks(cron_app)]
    assert len(set(times)) == len(times)
    # One catch-up run for the missed slots, then back on the job's phase.
    after = [at for at in times if at > stopped_ms]
    # A late run (a loaded machine) shortens the gap after it but moves no slot.
    drift = [at - after[1] - 1000 * i for i, at in enumerate(after[1:])]
    assert 2 <= len(after) <= 4 and all(-250 <= d <= 250 for d in drift), (after, drift)


def test_cron_actions_and_calendar_schedules(cron_app):
    write_crons(
        cron_app,
        'crons.interval("act", { seconds: 1 }, internal.tick.tickAction, { label: "act" });\n'
        'crons.cron("minutely", "* * * * *", internal.tick.tick, { label: "cal" });\n'
        'crons.daily("daily", { hourUTC: 3, minuteUTC: 7 }, internal.tick.tick, { label: "d" });',
    )
    cron_app.ex.deploy(cron_app.app)
    wait_for(lambda: "act" in [label for label, _ in ticks(cron_app)], timeout_s=5)
    docs = {d["name"]: d for d in cron_app.ok("tick:cronJobs")}  # the dashboard's table
    assert set(docs) == {"act", "minutely", "daily"}
    daily_next = docs["daily"]["nextTs"] / 1000
    assert time.gmtime(daily_next)[3:6] == (3, 7, 0)
    assert docs["minutely"]["nextTs"] % 60_000 == 0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            'crons.interval("bad", { seconds: 0 }, internal.tick.tick, { label: "x" });',
            "Interval must be an integer greater than 0",
        ),
        (
            'crons.cron("bad", "61 * * * *", internal.tick.tick, { label: "x" });',
            "Invalid cron expression",
        ),
        (
            'crons.interval("dup", { seconds: 1 }, internal.tick.tick, { label: "x" });\n'
            'crons.interval("dup", { seconds: 1 }, internal.tick.tick, { label: "x" });',
            "Cron identifier registered twice: dup",
        ),
        (
            'crons.interval("q", { seconds: 1 }, "tick:ticks" as any, {});',
            "The cron job 'q' schedules a query function, only actions and mutations can be "
            "scheduled: tick.js:ticks",
        ),
        (
            'crons.interval("gone", { seconds: 1 }, "tick:nothing" as any, {});',
            "The cron job 'gone' schedules a function that does not exist: tick.js:nothing",
        ),
        (
            'crons.interval("bad!", { seconds: 1 }, internal.tick.tick, { label: "x" });',
            "CronIdentifier bad! has invalid character '!'",
        ),
    ],
)
def test_a_malformed_crons_ts_is_refused_at_deploy(cron_app, body, words):
    before = cron_app.ex.deployment.ts
    write_crons(cron_app, body)
    with pytest.raises(HeadwaterError) as caught:
        cron_app.ex.deploy(cron_app.app)
    assert words in caught.value.message
    assert cron_app.ex.deployment.ts == before  # nothing changed


def test_a_job_and_its_nested_calls_see_its_id_as_the_scheduled_function_id(app):
    app.ex.function_log = log = FunctionLog()
    mutation_job, action_job = app.ok("jobs:scheduleRequestRecorders")
    wait_for(lambda: len(app.ok("jobs:list")) == 2)
    assert sorted(app.ok("jobs:list")) == sorted([f"job:{mutation_job}", f"job:{action_job}"])
    direct = app.ex.run(FunctionCall("jobs:recordRequest", {}, "mutation", ADMIN))
    assert direct.error is None  # called directly: not a scheduled run
    assert app.ok("jobs:list")[-1] == "job:null"
    # The log labels the runs as Convex's does: the scheduler's, an action's nested call.
    entries, _ = log.entries_after(0)
    sources = sorted((e.identifier, e.source) for e in entries if "Request" in e.identifier)
    assert sources == [
        ("jobs:recordRequest", "Scheduler"),
        ("jobs:recordRequest", "action"),
        ("jobs:recordRequest", "client"),
        ("jobs:recordRequestFromAction", "Scheduler"),
        ("jobs:scheduleRequestRecorders", "client"),
    ]
    assert {e.to_json()["caller"] for e in entries if e.source == "Scheduler"} == {"Scheduler"}


def test_cron_runs_are_labelled_cron_in_the_function_log_with_no_job_id(cron_app):
    cron_app.ex.function_log = log = FunctionLog()
    wait_for(lambda: any(e.source == "Cron" for e in log.entries_after(0)[0]), timeout_s=6)
    entry = next(e for e in log.entries_after(0)[0] if e.source == "Cron")
    assert (entry.udf_type, entry.identifier, entry.error) == ("Mutation", "tick:tick", None)
