"""Benchmark: many awaited inserts inside one mutation (Convex's limit is 16,000).

A deployed mutation inserts N small documents, one awaited ``ctx.db.insert``
after another in a plain ``for`` loop, as apps write them; the baseline is the
same N inserts through the embedded engine's ``db.mutate`` in the same run.
Inserts/s of each (wall time of the whole call, commit included) and the ratio.
Run: ``python -m bench.bench_bulk_writes``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import print_table, write_app
from engine import Database
from udf.calls import FunctionCall
from udf.executor import Executor

INSERTS = 16_000
RUNS = 3
APP = {
    "schema.ts": """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ rows: defineTable({ n: v.number(), tag: v.string() }) });
""",
    "bulk.ts": """
import { v } from "convex/values";
import { mutation } from "./_generated/server";
export const insertMany = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) await ctx.db.insert("rows", { n: i, tag: "bulk" });
    return n;
  },
});
""",
}


def _best_s(fn) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = write_app(Path(tmp), APP)
        with Database.open(Path(tmp) / "data") as db:
            ex = Executor(db)
            ex.deploy(app)

            def function() -> None:
                out = ex.run(FunctionCall("bulk:insertMany", {"n": float(INSERTS)}, "mutation"))
                assert out.error is None, out.error

            def embedded() -> None:
                def insert_many(tx) -> None:
                    for i in range(INSERTS):
                        tx.insert("rows", {"n": float(i), "tag": "bulk"})

                db.mutate(insert_many)

            function()  # warm up (the table exists, the isolate is built)
            ours_s = _best_s(function)
            base_s = _best_s(embedded)
            print_table(
                f"{INSERTS:,} awaited inserts inside one mutation (best of {RUNS})",
                ("path", "seconds", "inserts/s", "ratio to embedded"),
                [
                    ("Convex mutation", ours_s, INSERTS / ours_s, ours_s / base_s),
                    ("embedded db.mutate", base_s, INSERTS / base_s, 1.0),
                ],
            )
            ex.close()


if __name__ == "__main__":
    main()
