"""Benchmark: the cost of running a Convex function over the embedded engine call.

The same query (one indexed read) and mutation (one read, one insert) run as a
deployed Convex function through the executor, and as the embedded Python
``db.query`` / ``db.mutate``, in the same run; p50/p99 per call and the
overhead (the query result cache off, so every call runs V8). Also the cost of
one syscall round trip into V8 and back, and a repeated query with the cache
against the same query without it. Run: ``python -m bench.bench_functions``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from bench.common import percentiles_ms, print_table, write_app
from engine import Database
from engine.limits import LIMITS
from udf.calls import FunctionCall
from udf.executor import Executor

CALLS = 400
APP = {
    "schema.ts": """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  rooms: defineTable({ key: v.string(), n: v.number() }).index("by_key", ["key"]),
  events: defineTable({ room: v.string() }),
});
""",
    "rooms.ts": """
import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
export const get = query({
  args: { key: v.string() },
  handler: async (ctx, { key }) =>
    await ctx.db.query("rooms").withIndex("by_key", (q) => q.eq("key", key)).unique(),
});
export const touch = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => {
    const room = await ctx.db.query("rooms").withIndex("by_key", (q) => q.eq("key", key)).unique();
    return await ctx.db.insert("events", { room: room!.key });
  },
});
export const seed = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    for (let i = 0; i < n; i++) await ctx.db.insert("rooms", { key: `room${i}`, n: i });
  },
});
export const reads = query({
  args: { key: v.string(), n: v.number() },
  handler: async (ctx, { key, n }) => {
    for (let i = 0; i < n; i++) {
      await ctx.db.query("rooms").withIndex("by_key", (q) => q.eq("key", key)).unique();
    }
    return n;
  },
});
""",
}


def _timed(fn, calls: int) -> list[float]:
    for _ in range(20):
        fn(0)
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = write_app(Path(tmp), APP)
        with Database.open(Path(tmp) / "data") as db:
            ex = Executor(db, limits=dataclasses.replace(LIMITS, query_cache_bytes_max=0))
            ex.deploy(app)
            ex.run(FunctionCall("rooms:seed", {"n": 200.0}, "mutation"))

            def fn_query(i: int) -> None:
                out = ex.run(FunctionCall("rooms:get", {"key": f"room{i % 200}"}, "query"))
                assert out.error is None, out.error

            def py_query(i: int) -> None:
                key = f"room{i % 200}"
                db.query(
                    lambda tx: (
                        tx.query("rooms").with_index("by_key", lambda q: q.eq("key", key)).unique()
                    )
                )

            def fn_mutation(i: int) -> None:
                out = ex.run(FunctionCall("rooms:touch", {"key": f"room{i % 200}"}, "mutation"))
                assert out.error is None, out.error

            def py_mutation(i: int) -> None:
                key = f"room{i % 200}"

                def touch(tx):
                    room = (
                        tx.query("rooms").with_index("by_key", lambda q: q.eq("key", key)).unique()
                    )
                    return tx.insert("events", {"room": room["key"]})

                db.mutate(touch)

            rows = []
            overhead = {}
            for label, ours, base in (
                ("query: one indexed read", fn_query, py_query),
                ("mutation: one read + one insert", fn_mutation, py_mutation),
            ):
                o50, o99 = percentiles_ms(_timed(ours, CALLS))
                b50, b99 = percentiles_ms(_timed(base, CALLS))
                overhead[label] = o50 - b50
                rows.append((label, o50, o99, b50, b99, o50 - b50, o50 / b50))
            print_table(
                "Convex function vs embedded Python call (ms per call)",
                (
                    "call",
                    "function p50",
                    "function p99",
                    "embedded p50",
                    "embedded p99",
                    "overhead p50",
                    "ratio",
                ),
                rows,
            )

            def reads(n: int):
                def go(_i: int) -> None:
                    out = ex.run(
                        FunctionCall("rooms:reads", {"key": "room1", "n": float(n)}, "query")
                    )
                    assert out.error is None, out.error

                return go

            one, _ = percentiles_ms(_timed(reads(1), 200))
            many, _ = percentiles_ms(_timed(reads(51), 200))
            per_round_trip = (many - one) / 50
            print(
                f"\nsyscall round trip (sequential awaited index reads): {per_round_trip:.3f} ms "
                f"each ({one:.2f} ms for 1 read, {many:.2f} ms for 51)"
            )
            _cache_table(db, ex)
            ex.close()


def _cache_table(db: Database, uncached: Executor) -> None:
    """The same query with the same arguments, again and again, while unrelated
    inserts commit: with the result cache, and without it (the baseline)."""
    cached = Executor(db)  # the deployment is in the database already
    rows = []
    for label, args in (
        ("rooms:get, one indexed read", {"key": "room7"}),
        ("rooms:reads, 51 indexed reads", {"key": "room7", "n": 51.0}),
    ):
        path = label.split(",")[0]

        def call(ex: Executor, i: int, path: str = path, args: dict = args) -> None:
            if i % 10 == 0:  # a commit elsewhere: the cached result stays true
                ex.run(FunctionCall("rooms:touch", {"key": "room1"}, "mutation"))
            out = ex.run(FunctionCall(path, args, "query"))
            assert out.error is None, out.error

        on50, on99 = percentiles_ms(_timed(lambda i: call(cached, i), CALLS))
        off50, off99 = percentiles_ms(_timed(lambda i: call(uncached, i), CALLS))
        rows.append((label, on50, on99, off50, off99, off50 / on50))
    stats = cached.query_cache.statistics() if cached.query_cache else {}
    print_table(
        "A repeated query: result cache on vs off (ms per call, every 10th call also "
        f"commits an unrelated insert; hits {stats.get('hits')}, misses {stats.get('misses')})",
        ("query", "cached p50", "cached p99", "uncached p50", "uncached p99", "x faster"),
        rows,
    )
    cached.close()


if __name__ == "__main__":
    main()
