"""Benchmark: a "use node" action against the same action in V8, in the same run.

A trivial action (``return 1``) is called through the executor as a node action
(on a warm Node.js worker) and as a V8 action; p50/p99 per call and the node
overhead over V8 (target: at most 5 ms p50, warm). Then the throughput of each
with 8 concurrent callers, and one node action making a nested query (the
syscall round trip through the host). Run: ``python -m bench.bench_node_actions``.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import percentiles_ms, print_table, write_app
from engine import Database
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor

CALLS = 400
CONCURRENT_CALLERS = 8
THROUGHPUT_CALLS = 800
APP = {
    "v8.ts": """
import { action, query } from "./_generated/server";
export const trivial = action({ args: {}, handler: async () => 1 });
export const one = query({ args: {}, handler: async () => 1 });
""",
    "nodeside.ts": """"use node";
import { action } from "./_generated/server";
import { api } from "./_generated/api";
export const trivial = action({ args: {}, handler: async () => 1 });
export const nested = action({
  args: {},
  handler: async (ctx): Promise<number> => await ctx.runQuery(api.v8.one, {}),
});
""",
}


def _call(ex: Executor, path: str) -> None:
    outcome = ex.run(FunctionCall(path, {}, "action", ADMIN))
    if outcome.error is not None:
        raise RuntimeError(outcome.error.message)


def _latencies(ex: Executor, path: str) -> list[float]:
    for _ in range(30):
        _call(ex, path)
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        _call(ex, path)
        samples.append(time.perf_counter() - started)
    return samples


def _throughput(ex: Executor, path: str) -> float:
    with ThreadPoolExecutor(CONCURRENT_CALLERS) as pool:
        list(pool.map(lambda _: _call(ex, path), range(CONCURRENT_CALLERS * 4)))  # warm
        started = time.perf_counter()
        list(pool.map(lambda _: _call(ex, path), range(THROUGHPUT_CALLS)))
        return THROUGHPUT_CALLS / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = write_app(Path(tmp), APP)
        db = Database.open(Path(tmp) / "data")
        ex = Executor(db)
        try:
            ex.deploy(app)
            v8 = percentiles_ms(_latencies(ex, "v8:trivial"))
            node = percentiles_ms(_latencies(ex, "nodeside:trivial"))
            nested = percentiles_ms(_latencies(ex, "nodeside:nested"))
            print_table(
                "Trivial action, one caller (ms per call)",
                ("runtime", "p50", "p99"),
                [
                    ("V8 (baseline)", *v8),
                    ("Node.js", *node),
                    ("Node.js overhead", node[0] - v8[0], node[1] - v8[1]),
                    ("Node.js + nested runQuery", *nested),
                ],
            )
            rows = [
                ("V8 (baseline)", _throughput(ex, "v8:trivial")),
                ("Node.js", _throughput(ex, "nodeside:trivial")),
            ]
            print_table(
                f"Throughput, {CONCURRENT_CALLERS} concurrent callers (calls/s)",
                ("runtime", "calls/s"),
                rows,
            )
            print(f"\nNode.js / V8 throughput ratio: {rows[1][1] / rows[0][1]:.2f}")
            print(f"Node.js workers: {ex.node_runtime.statistics()}")
        finally:
            ex.close()
            db.close()


if __name__ == "__main__":
    main()
