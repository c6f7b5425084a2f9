"""The runner of scheduled functions and crons: a live projection of the log.

What is due lives in the log (``_scheduled_functions`` jobs that are pending,
``_cron_jobs`` slots); the runner keeps it in memory as a heap of due times,
rebuilt from the tables at start and then fed by every durable commit, so a
restart catches up on everything that came due while the server was down. One
thread sleeps until the next due time or until a commit schedules something
(no polling), and starts due work in due order on a bounded pool.

Guarantees (Convex's): a scheduled mutation runs exactly once — its state change
is staged in its own transaction (``MutationHook``), so it commits with the
mutation's writes or not at all, OCC retries included; a scheduled action runs
at most once — ``inProgress`` is committed before it starts, and a job found in
progress at start (the server died under it) is marked failed, never re-run.
A cron slot is taken in the same way: by moving the job's ``nextTs`` in the
run's transaction (mutations) or before the run (actions).
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine import cron_jobs as crons
from engine import scheduled_jobs as jobs
from engine.convex_json import from_convex_json
from engine.cron_jobs import CRON_JOBS_TABLE
from engine.scheduled_jobs import SCHEDULED_FUNCTIONS_TABLE
from engine.system_tables import SYSTEM_TABLE_NUMBERS
from udf.calls import ADMIN, FunctionCall, FunctionOutcome
from udf.executor import TOO_MANY_CONFLICTS
from udf.function_log import SOURCE_CRON, SOURCE_SCHEDULER

logger = logging.getLogger("headwater.scheduler")

JOB, CRON, CLEANUP = "job", "cron", "cleanup"
Key = tuple[str, str]  # (JOB | CRON, document id)
# A run that failed for a reason of ours (not the function's) is tried again after this.
_SYSTEM_RETRY_S = 0.5


class _Contended(Exception):
    """A scheduled mutation that lost every OCC retry: run again later, not failed."""


def _now_ms() -> float:
    return time.time() * 1000


class Scheduler:
    def __init__(
        self,
        executor: Any,
        *,
        concurrency: int | None = None,
        clock_ms: Callable[[], float] = _now_ms,
    ) -> None:
        self._executor = executor
        self._db = executor.db
        self._clock_ms = clock_ms
        self._concurrency = concurrency or executor.limits.scheduler_concurrency_max
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Key]] = []
        self._waiting: dict[Key, float] = {}  # what is due and when (the heap may hold stale)
        self._running: set[Key] = set()
        self._inbox: list[Any] = []
        self._seq = 0
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.lags_ms: list[float] = []  # due → start, for the benchmark (bounded)
        self._counts = {"started": 0, "failed_to_run": 0}

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Load what is due from the tables, then follow commits on a thread of its own."""
        self._db.add_commit_listener(self._on_commit)  # first: no commit slips between
        self._load()
        self._push((CLEANUP, ""), self._clock_ms())  # finished jobs past retention
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="headwater-job")
        self._thread = threading.Thread(target=self._loop, name="headwater-scheduler", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop starting work and wait (at most ``timeout_s``) for runs in flight; an
        action still running then is left in progress, and failed at the next start."""
        self._db.remove_commit_listener(self._on_commit)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # queued runs see _stopped and return
        with self._cond:
            while self._running and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())

    def statistics(self) -> dict[str, Any]:
        with self._cond:
            return {
                "waiting": len(self._waiting),
                "running": len(self._running),
                **self._counts,
            }

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Until nothing is due now or running (tests and the benchmark)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                self._drain()
                now = self._clock_ms()
                due = any(at <= now for at in self._waiting.values())
                if not due and not self._running and not self._inbox:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))

    # -- the projection --------------------------------------------------------------

    def _load(self) -> None:
        tx = self._db.begin(writable=False)
        try:
            found = [
                (table, doc)
                for table in (SCHEDULED_FUNCTIONS_TABLE, CRON_JOBS_TABLE)
                for _, doc in tx.snapshot.iter_table(SYSTEM_TABLE_NUMBERS[table])
            ]
        finally:
            tx.close()
        interrupted = []
        with self._cond:
            for table, doc in found:
                if table == SCHEDULED_FUNCTIONS_TABLE and jobs.kind_of(doc) == jobs.IN_PROGRESS:
                    interrupted.append(doc["_id"])
                else:
                    self._observe(table, doc["_id"], doc)
        for doc_id in interrupted:
            self._fail_interrupted(doc_id)

    def _on_commit(self, entries: list[Any]) -> None:
        """On the committer's thread: queue what concerns us and wake the loop."""
        writes = [
            w
            for entry in entries
            for w in entry.writes
            if w.table in (SCHEDULED_FUNCTIONS_TABLE, CRON_JOBS_TABLE)
        ]
        if writes:
            with self._cond:
                self._inbox.extend(writes)
                self._cond.notify_all()

    def _drain(self) -> None:
        writes, self._inbox = self._inbox, []
        for w in writes:
            self._observe(w.table, w.id, w.value)

    def _observe(self, table: str, doc_id: str, doc: dict[str, Any] | None) -> None:
        if table == SCHEDULED_FUNCTIONS_TABLE:
            key: Key = (JOB, doc_id)
            due = None if doc is None or jobs.kind_of(doc) != jobs.PENDING else jobs.due_ms(doc)
        else:
            key = (CRON, doc_id)
            due = None if doc is None else doc["nextTs"]
        if due is None:
            self._waiting.pop(key, None)
        else:
            self._push(key, due)

    def _push(self, key: Key, due: float) -> None:
        self._waiting[key] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))

    # -- the loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                self._drain()
                timeout_s = self._start_due()
                if not self._inbox and not self._stopped:
                    self._cond.wait(timeout_s)

    def _start_due(self) -> float | None:
        """Start what is due (in due order, up to the bound); seconds to the next due time."""
        assert self._pool is not None
        while self._heap:
            due, _, key = self._heap[0]
            if self._waiting.get(key) != due:
                heapq.heappop(self._heap)  # superseded
                continue
            now = self._clock_ms()
            if due > now:
                return (due - now) / 1000
            if len(self._running) >= self._concurrency:
                return None  # a finishing run wakes us
            heapq.heappop(self._heap)
            if key in self._running:
                continue  # re-pushed when the running one ends
            del self._waiting[key]
            self._running.add(key)
            self._counts["started"] += 1
            if len(self.lags_ms) < 100_000:
                self.lags_ms.append(now - due)
            self._pool.submit(self._run, key, due)
        return None

    def _run(self, key: Key, due: float) -> None:
        try:
            if self._stopped:
                return  # closing: it is still in the log, for the next start
            if key[0] == JOB:
                self._run_job(key[1])
            elif key[0] == CRON:
                self._run_cron(key[1], due)
            else:
                self._clean_up()
        except Exception as exc:  # ours, not the function's: try again a little later
            if not isinstance(exc, _Contended):
                logger.exception("scheduled run of %s failed; retrying", key[1])
            with self._cond:
                self._counts["failed_to_run"] += 1
                if key not in self._waiting:
                    self._push(key, self._clock_ms() + _SYSTEM_RETRY_S * 1000)
        finally:
            with self._cond:
                self._running.discard(key)
                if key in self._waiting:
                    self._push(key, self._waiting[key])
                self._cond.notify_all()

    # -- scheduled functions ---------------------------------------------------------------

    def _run_job(self, job_id: str) -> None:
        job = self._read(job_id)
        if job is None or jobs.kind_of(job) != jobs.PENDING:
            return
        path = job["name"]
        component = job.get("component", "")
        target = self._target(path, component)
        if target not in ("mutation", "action"):
            self._complete(job_id, jobs.FAILED, target)
            return
        kind: Any = target
        call = FunctionCall(
            _display(path),
            job["args"][0],
            kind,
            ADMIN,
            request_id=_request_id(),
            scheduled_job_id=job_id,
            started_by=SOURCE_SCHEDULER,
            component_path=component,
        )
        if target == "mutation":
            hook = _JobHook(job_id, call.request_id, self._clock_ms)
            outcome = self._executor.run_job(call, hook)
            if hook.started and outcome.error is None:
                return  # committed with the mutation's writes
            if outcome.error is not None and outcome.error.message == TOO_MANY_CONFLICTS:
                raise _Contended(job_id)  # still pending: tried again after a pause
            if outcome.error is not None:
                self._complete(job_id, jobs.FAILED, outcome.error.message)
            return
        if not self._start_action(job_id, call.request_id):
            return
        outcome = self._executor.run_job(call, None)
        self._finish_action(job_id, outcome)

    def _target(self, path: str, component: str = "") -> str:
        """The target's kind ("mutation" | "action"), or why the job cannot run; the
        function is one of the component instance at ``component``."""
        module, _, export = path.partition(":")
        deployment = self._executor.deployment
        if deployment is not None:
            deployment = deployment.for_component(component)
        info = None if deployment is None else deployment.function(module, export)
        if info is None:
            return (
                f"Could not find function for '{_display(path)}'. Did you forget to run "
                "`npx convex dev` or `npx convex deploy`?"
            )
        if info.kind not in ("mutation", "action"):
            return (
                f'Unsupported function type. "{export}" in module "{module}" is defined as a '
                f"{info.kind}. Only mutation and action can be scheduled."
            )
        return info.kind

    def _read(self, doc_id: str) -> dict[str, Any] | None:
        return self._db.query(lambda tx: tx.get(doc_id)).value

    def _start_action(self, job_id: str, request_id: str) -> bool:
        def start(tx: Any) -> bool:
            job = tx.get(job_id)
            if job is None or jobs.kind_of(job) != jobs.PENDING:
                return False
            started = jobs.started(job, request_id, request_id)
            tx.write_system(SCHEDULED_FUNCTIONS_TABLE, job_id, started)
            return True

        return bool(self._db.mutate(start).value)

    def _finish_action(self, job_id: str, outcome: FunctionOutcome) -> None:
        if outcome.error is None:
            self._complete(job_id, jobs.SUCCESS)
        else:
            self._complete(job_id, jobs.FAILED, outcome.error.message)

    def _complete(self, job_id: str, kind: str, error: str | None = None) -> None:
        def complete(tx: Any) -> None:
            job = tx.get(job_id)
            if job is None or not jobs.is_waiting(job):
                return
            updated = jobs.completed(job, kind, self._clock_ms(), error)
            if updated is not None:
                tx.write_system(SCHEDULED_FUNCTIONS_TABLE, job_id, updated)

        self._db.mutate(complete)

    def _fail_interrupted(self, job_id: str) -> None:
        """An action the server died under: failed, never run again (at most once)."""

        def fail(tx: Any) -> None:
            job = tx.get(job_id)
            if job is not None and jobs.kind_of(job) == jobs.IN_PROGRESS:
                now_ms = self._clock_ms()
                updated = jobs.completed(job, jobs.FAILED, now_ms, jobs.ACTION_INTERRUPTED)
                tx.write_system(SCHEDULED_FUNCTIONS_TABLE, job_id, updated)

        self._db.mutate(fail)

    def _clean_up(self) -> None:
        """Delete finished jobs past the retention window, a batch per transaction."""
        limits = self._executor.limits
        now_ms = self._clock_ms()
        tx = self._db.begin(writable=False)
        try:
            number = SYSTEM_TABLE_NUMBERS[SCHEDULED_FUNCTIONS_TABLE]
            expired = [
                doc["_id"]
                for _, doc in tx.snapshot.iter_table(number)
                if jobs.is_expired(doc, now_ms, limits.scheduled_job_retention_s)
            ]
        finally:
            tx.close()
        batch = limits.scheduled_job_cleanup_batch_max
        for start in range(0, len(expired), batch):
            self._db.mutate(_delete_finished, expired[start : start + batch], now_ms, limits)
        with self._cond:
            interval_ms = limits.scheduled_job_cleanup_interval_s * 1000
            self._push((CLEANUP, ""), self._clock_ms() + interval_ms)

    # -- crons ---------------------------------------------------------------------------

    def _run_cron(self, cron_id: str, slot: float) -> None:
        job = self._read(cron_id)
        if job is None or job["nextTs"] != slot:
            return
        spec = job["cronSpec"]
        target = self._target(spec["udfPath"], spec.get("componentPath", ""))
        if target == "action":
            if self._take_slot(cron_id, slot):  # before the run: at most once
                self._executor.run_job(self._cron_call(spec, "action"), None)
            return
        if target == "mutation":
            hook = _CronHook(cron_id, slot, self._clock_ms)
            outcome = self._executor.run_job(self._cron_call(spec, "mutation"), hook)
            if hook.started and outcome.error is None:
                return  # the slot was taken with the mutation's writes
        # A failed mutation, or a target gone since the deploy: the slot still passes.
        self._take_slot(cron_id, slot)

    def _cron_call(self, spec: dict[str, Any], kind: Any) -> FunctionCall:
        args = from_convex_json(json.loads(spec["udfArgs"])[0])
        path = _display(spec["udfPath"])
        return FunctionCall(
            path,
            args,
            kind,
            ADMIN,
            request_id=_request_id(),
            started_by=SOURCE_CRON,
            component_path=spec.get("componentPath", ""),
        )

    def _take_slot(self, cron_id: str, slot: float) -> bool:
        def take(tx: Any) -> bool:
            job = tx.get(cron_id)
            if job is None or job["nextTs"] != slot:
                return False
            tx.write_system(CRON_JOBS_TABLE, cron_id, crons.taken(job, self._clock_ms()))
            return True

        return bool(self._db.mutate(take).value)


def _delete_finished(tx: Any, job_ids: list[str], now_ms: float, limits: Any) -> None:
    for job_id in job_ids:
        job = tx.get(job_id)
        if job is not None and jobs.is_expired(job, now_ms, limits.scheduled_job_retention_s):
            tx.write_system(SCHEDULED_FUNCTIONS_TABLE, job_id, None)


class _JobHook:
    """A scheduled mutation's job: inProgress staged before it runs (the function sees
    itself in progress), success staged after; both commit with its writes."""

    def __init__(self, job_id: str, request_id: str, clock_ms: Callable[[], float]) -> None:
        self._job_id, self._request_id, self._clock_ms = job_id, request_id, clock_ms
        self._job: dict[str, Any] | None = None
        self.started = False

    def start(self, tx: Any) -> bool:
        job = tx.get(self._job_id)
        if job is None or jobs.kind_of(job) != jobs.PENDING:
            self.started = False
            return False
        self._job, self.started = job, True
        started = jobs.started(job, self._request_id, self._request_id)
        tx.write_system(SCHEDULED_FUNCTIONS_TABLE, self._job_id, started)
        return True

    def finish(self, tx: Any) -> None:
        assert self._job is not None
        done = jobs.completed(self._job, jobs.SUCCESS, self._clock_ms())
        tx.write_system(SCHEDULED_FUNCTIONS_TABLE, self._job_id, done)


class _CronHook:
    """A cron mutation's slot, taken in the mutation's own transaction."""

    def __init__(self, cron_id: str, slot: float, clock_ms: Callable[[], float]) -> None:
        self._cron_id, self._slot, self._clock_ms = cron_id, slot, clock_ms
        self.started = False

    def start(self, tx: Any) -> bool:
        job = tx.get(self._cron_id)
        self.started = job is not None and job["nextTs"] == self._slot
        if self.started:
            tx.write_system(CRON_JOBS_TABLE, self._cron_id, crons.taken(job, self._clock_ms()))
        return self.started

    def finish(self, tx: Any) -> None:
        return None


def _display(path: str) -> str:
    """``"messages.js:send"`` → ``"messages:send"`` (how calls name functions)."""
    module, _, export = path.partition(":")
    return f"{module.removesuffix('.js')}:{export}"


def _request_id() -> str:
    return uuid.uuid4().hex[:16]
