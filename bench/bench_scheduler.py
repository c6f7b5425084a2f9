"""Benchmark: scheduled mutations executed per second, and the due → start lag.

Throughput: one mutation schedules 1,000 mutations due at once (``runAfter(0)``);
the figure is 1,000 over the time from that mutation's commit until the last
job committed (and, beside it, including the scheduling mutation itself). Baseline in the
same run: the same 1,000 mutations called directly through the executor from as
many threads as the runner's concurrency bound. Lag: 200 jobs due 10 ms apart
(the runner at rest), measured from each job's due time to its start. Run:
``python -m bench.bench_scheduler``.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import print_table, write_app
from engine import Database
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor
from udf.scheduler import Scheduler

JOBS = 1000
LAG_JOBS = 200
LAG_SPACING_MS = 10
APP = {
    "jobs.ts": """
import { v } from "convex/values";
import { internalMutation, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";
export const record = internalMutation({
  args: { i: v.number() },
  handler: async (ctx, { i }) => { await ctx.db.insert("events", { i }); },
});
export const scheduleMany = mutation({
  args: { count: v.number(), firstMs: v.number(), spacingMs: v.number() },
  handler: async (ctx, { count, firstMs, spacingMs }) => {
    for (let i = 0; i < count; i++) {
      if (firstMs === 0) await ctx.scheduler.runAfter(0, internal.jobs.record, { i });
      else await ctx.scheduler.runAt(firstMs + i * spacingMs, internal.jobs.record, { i });
    }
  },
});
export const count = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("events").collect()).length,
});
""",
}


def _count(ex: Executor) -> int:
    return int(ex.run(FunctionCall("jobs:count", {}, "query")).value)


def _schedule(ex: Executor, count: int, first_ms: float, spacing_ms: float) -> None:
    args = {"count": float(count), "firstMs": first_ms, "spacingMs": spacing_ms}
    out = ex.run(FunctionCall("jobs:scheduleMany", args, "mutation"))
    assert out.error is None, out.error


def scheduled_rate(ex: Executor, scheduler: Scheduler) -> tuple[float, float]:
    """Jobs/s from the scheduling commit to the last job's, and with the scheduling itself."""
    before = _count(ex)
    started = time.perf_counter()
    _schedule(ex, JOBS, 0.0, 0.0)
    committed = time.perf_counter()
    assert scheduler.wait_idle(120)
    ended = time.perf_counter()
    assert _count(ex) == before + JOBS
    return JOBS / (ended - committed), JOBS / (ended - started)


def direct_rate(ex: Executor, threads: int) -> float:
    def one(i: int) -> None:
        # `record` is internal: called as the runner calls it.
        out = ex.run(FunctionCall("jobs:record", {"i": float(i)}, "mutation", ADMIN))
        assert out.error is None, out.error

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(JOBS)))
    return JOBS / (time.perf_counter() - started)


def lag_ms(ex: Executor, scheduler: Scheduler) -> tuple[float, float]:
    scheduler.wait_idle(60)
    scheduler.lags_ms.clear()
    _schedule(ex, LAG_JOBS, time.time() * 1000 + 500, float(LAG_SPACING_MS))
    time.sleep(0.5 + LAG_JOBS * LAG_SPACING_MS / 1000)
    scheduler.wait_idle(60)
    lags = sorted(scheduler.lags_ms)
    return lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = write_app(Path(tmp), APP)
        with Database.open(Path(tmp) / "data") as db:
            ex = Executor(db)
            ex.deploy(app)
            scheduler = Scheduler(ex)
            scheduler.start()
            try:
                scheduled_rate(ex, scheduler)  # warm-up
                ours, with_scheduling = scheduled_rate(ex, scheduler)
                base = direct_rate(ex, ex.limits.scheduler_concurrency_max)
                p50, p99 = lag_ms(ex, scheduler)
            finally:
                scheduler.close()
                ex.close()
    print_table(
        f"{JOBS:,} mutations: scheduled (runAfter 0) vs called directly",
        ("executed jobs/s", "incl. the scheduling mutation", "direct calls/s", "ratio"),
        [(ours, with_scheduling, base, ours / base)],
    )
    print_table(
        f"Due → start lag at rest ({LAG_JOBS} jobs {LAG_SPACING_MS} ms apart), ms",
        ("p50", "p99"),
        [(p50, p99)],
    )


if __name__ == "__main__":
    main()
