"""Scheduling and crons through `headwater serve` and the official PyPI client: jobs survive
a SIGKILL between scheduling and due time and still run once, ``_scheduled_functions``
states reach a live subscription, a 1 s cron keeps time across a redeploy and a restart."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from cli_process import Serve
from convex import ConvexClient
from convex_cli import make_project, npx_convex

from tests.waiting import wait_for as wait_briefly


def wait_for(predicate, timeout_s: float = 30.0):
    return wait_briefly(predicate, timeout_s)


FIXTURES = Path(__file__).resolve().parents[1] / "udf" / "fixtures"
pytestmark = pytest.mark.slow


def app_copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name / "convex"
    shutil.copytree(FIXTURES / name / "convex", folder)
    return folder


def kill(server: Serve) -> None:
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    server.stop()


def test_jobs_scheduled_before_a_sigkill_run_exactly_once_after_it(tmp_path):
    folder = app_copy(tmp_path, "scheduling")
    server = Serve(tmp_path / "data", "--functions", str(folder))
    try:
        client = ConvexClient(server.url)
        first, second = client.mutation("jobs:scheduleBoth", {"delayMs": 1500})
    finally:
        kill(server)  # between scheduling and due time
    with Serve(tmp_path / "data", "--functions", str(folder)) as again:
        client = ConvexClient(again.url)
        wait_for(lambda: client.query("jobs:list") == ["mutation", "action"])
        time.sleep(1.0)
        assert client.query("jobs:list") == ["mutation", "action"]
        states = [client.query("jobs:job", {"id": i})["state"]["kind"] for i in (first, second)]
        assert states == ["success", "success"]
        again.stop()
        assert again.process.returncode == 0  # SIGTERM stops the runner cleanly


def test_a_live_subscription_sees_the_job_states(tmp_path):
    folder = app_copy(tmp_path, "scheduling")
    with Serve(tmp_path / "data", "--functions", str(folder)) as server:
        client = ConvexClient(server.url)
        job_id = client.mutation("jobs:scheduleSlowAction", {"steps": 40, "delayMs": 500})
        seen: list[str] = []
        for job in client.subscribe("jobs:job", {"id": job_id}):
            kind = job["state"]["kind"]
            if not seen or seen[-1] != kind:
                seen.append(kind)
            if kind in ("success", "failed"):
                break
        assert seen == ["pending", "inProgress", "success"]
        canceled = client.mutation(
            "jobs:scheduleAt", {"ms": time.time() * 1000 + 60e3, "label": "x"}
        )
        updates = iter(client.subscribe("jobs:job", {"id": canceled}))
        assert next(updates)["state"] == {"kind": "pending"}
        client.mutation("jobs:cancel", {"id": canceled})
        assert next(updates)["state"] == {"kind": "canceled"}


def write_crons(folder: Path, label: str) -> None:
    (folder / "crons.ts").write_text(
        'import { cronJobs } from "convex/server";\n'
        'import { internal } from "./_generated/api";\n'
        "const crons = cronJobs();\n"
        'crons.interval("every second", { seconds: 1 }, internal.tick.tick, '
        f'{{ label: "{label}" }});\n'
        "export default crons;\n"
    )


def test_a_one_second_cron_keeps_time_across_a_redeploy_and_a_restart(tmp_path):
    folder = app_copy(tmp_path, "crons")
    with Serve(tmp_path / "data", "--functions", str(folder)) as server:
        client = ConvexClient(server.url)
        wait_for(lambda: len(client.query("tick:ticks")) >= 3)
        write_crons(folder, "two")  # serve's watcher redeploys
        wait_for(lambda: [t[0] for t in client.query("tick:ticks")][-3:] == ["two"] * 3)
        two = [at for label, at in client.query("tick:ticks") if label == "two"]
        # Each run lands on its one-second slot (a run may start late on a busy machine,
        # which shortens the next gap; it never moves the slots that follow).
        drift = [at - two[0] - 1000 * i for i, at in enumerate(two)]
        assert all(-250 <= d <= 250 for d in drift), (two, drift)
    stopped_ms = time.time() * 1000
    time.sleep(2.5)  # slots pass while the server is down
    with Serve(tmp_path / "data", "--functions", str(folder)) as server:
        client = ConvexClient(server.url)
        wait_for(lambda: len([t for t in client.query("tick:ticks") if t[1] > stopped_ms]) >= 4)
        times = [at for _, at in client.query("tick:ticks")]
        assert len(set(times)) == len(times)  # no slot ran twice
        # The missed slots ran once (at start), then the job is back on its phase: the
        # catch-up run may sit anywhere, every later run on a one-second slot.
        after_stop = [at for at in times if at > stopped_ms]
        drift = [at - after_stop[1] - 1000 * i for i, at in enumerate(after_stop[1:])]
        assert all(-250 <= d <= 250 for d in drift), (after_stop, drift)


def test_npx_convex_deploy_of_a_malformed_crons_ts_is_refused_and_a_good_one_runs(tmp_path):
    project = make_project(tmp_path, FIXTURES / "crons" / "convex", "crons-test")
    crons_ts = project / "convex" / "crons.ts"
    good = crons_ts.read_text()
    crons_ts.write_text(good.replace("internal.tick.tick", '"tick:ticks" as any'))
    with Serve(tmp_path / "data") as server:
        server.project = project  # type: ignore[attr-defined]
        done = npx_convex(server, "deploy", "--yes")
        assert done.returncode != 0
        assert (
            "The cron job 'every second' schedules a query function, only actions and "
            "mutations can be scheduled: tick.js:ticks"
        ) in done.stderr
        crons_ts.write_text(good)
        done = npx_convex(server, "deploy", "--yes")
        assert done.returncode == 0, done.stderr
        client = ConvexClient(server.url)
        wait_for(lambda: len(client.query("tick:ticks")) >= 2)
