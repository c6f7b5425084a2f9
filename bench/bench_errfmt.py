"""Benchmark: the cost of a failing call in Convex's error format.

A query that throws from three frames deep (its call sites collected in V8, mapped
through the source map and printed as Convex prints them) against the same query
returning instead (baseline, same run); and a mutation whose nested ``ctx.runQuery``
fails (the callee's text wrapped into the caller's) against one whose nested call
succeeds. p50/p99 per call and the ratio. Run: ``python -m bench.bench_errfmt``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import percentiles_ms, print_table
from engine import Database
from udf.calls import FunctionCall
from udf.executor import Executor

CALLS = 400
APP = """
import { api } from "./_generated/api";
import { mutation, query } from "./_generated/server";

function inner(fail: boolean): string {
  if (fail) throw new Error("refused");
  return "fine";
}
function middle(fail: boolean): string {
  return inner(fail);
}
export const run = query({
  handler: async (_ctx, { fail }: { fail: boolean }) => middle(fail),
});
export const nested = mutation({
  handler: async (ctx, { fail }: { fail: boolean }) => {
    try {
      return await ctx.runQuery(api.calls.run, { fail });
    } catch (e: any) {
      return e.message.length;
    }
  },
});
"""


def _timings(executor: Executor, path: str, kind: str, fail: bool) -> list[float]:
    samples: list[float] = []
    for _ in range(CALLS):
        call = FunctionCall(path, {"fail": fail}, kind)  # type: ignore[arg-type]
        started = time.perf_counter()
        outcome = executor.run(call)
        samples.append(time.perf_counter() - started)
        assert (outcome.error is not None) == (fail and kind == "query"), outcome.error
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app" / "convex"
        app.mkdir(parents=True)
        (app / "calls.ts").write_text(APP)
        db = Database.open(Path(tmp) / "data")
        executor = Executor(db)
        try:
            executor.deploy(app)
            rows = []
            for label, path, kind in (
                ("query throws (3 frames)", "calls:run", "query"),
                ("nested runQuery fails", "calls:nested", "mutation"),
            ):
                _timings(executor, path, kind, True)  # warm the isolates
                failing = percentiles_ms(_timings(executor, path, kind, True))
                passing = percentiles_ms(_timings(executor, path, kind, False))
                rows.append((label, *failing, *passing, failing[0] / passing[0]))
        finally:
            executor.close()
            db.close()
    print_table(
        f"Failing calls vs the same calls succeeding ({CALLS} calls each, ms)",
        ("case", "error p50", "error p99", "baseline p50", "baseline p99", "ratio p50"),
        rows,
    )


if __name__ == "__main__":
    main()
