"""Benchmark: the dashboard's first page of a 1M-document table, now and in the past.

A table of ``HEADWATER_BENCH_DASHBOARD_DOCS`` documents (default 1,000,000) is
built through engine transactions, ``_COMMITS`` big commits. Then
``_system/dashboard/data:page`` (25 documents, newest first, through
``Executor.run`` as the dashboard's calls arrive) is timed at the newest ts (the
baseline) and at the ts in the middle of the table's history, p50 of repeated
runs; also a filtered page (the scan budget bounds it) and `data:tables` (counts
kept between calls). Targets: both pages < 200 ms, the past one <= 1.5x the newest.
Run: ``python -m bench.bench_dashboard``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from bench.common import percentiles_ms, print_table
from engine import Database
from engine.limits import LIMITS
from udf.calls import ADMIN, FunctionCall
from udf.executor import Executor

DOCS = int(os.environ.get("HEADWATER_BENCH_DASHBOARD_DOCS", "1000000"))
_COMMITS = 10
RUNS = 30


def _build(db: Database) -> int:
    """The table, in ``_COMMITS`` commits; returns the ts after half of them."""
    per_commit = max(1, DOCS // _COMMITS)
    middle = 0
    started = time.perf_counter()
    for commit in range(_COMMITS):
        base = commit * per_commit

        def insert(tx, base=base):
            for i in range(base, base + per_commit):
                tx.insert("events", {"n": float(i), "kind": f"k{i % 7}", "body": "x" * 32})

        db.mutate(insert)
        if commit == _COMMITS // 2 - 1:
            middle = db.latest_ts()
    print(f"built {per_commit * _COMMITS:,} documents in {time.perf_counter() - started:.1f} s")
    return middle


def _time(ex: Executor, args: dict, runs: int = RUNS) -> tuple[float, float]:
    for _ in range(3):  # warm: the first reads of a range fault its pages in
        ex.run(FunctionCall("_system/dashboard/data:page", args, "query", ADMIN))
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        outcome = ex.run(FunctionCall("_system/dashboard/data:page", args, "query", ADMIN))
        samples.append(time.perf_counter() - started)
        assert outcome.error is None, outcome.error
        assert len(outcome.value["page"]) > 0 or "filters" in args
    return percentiles_ms(samples)


def main() -> None:
    limits = dataclasses.replace(LIMITS, documents_written_max=DOCS + 10, written_bytes_max=1 << 40)
    with tempfile.TemporaryDirectory() as tmp, Database.open(Path(tmp), limits=limits) as db:
        middle = _build(db)
        ex = Executor(db)
        try:
            page = {"table": "events", "numItems": 25.0}
            newest = _time(ex, page)
            past = _time(ex, {**page, "atTs": str(middle)})
            past_asc = _time(ex, {**page, "atTs": str(middle), "order": "asc"})
            filtered = _time(
                ex, {**page, "filters": [{"field": "kind", "op": "eq", "value": "none"}]}, 5
            )
            started = time.perf_counter()
            ex.run(FunctionCall("_system/dashboard/data:tables", {}, "query", ADMIN))
            first_tables = (time.perf_counter() - started) * 1e3
            started = time.perf_counter()
            ex.run(FunctionCall("_system/dashboard/data:tables", {}, "query", ADMIN))
            tables = (time.perf_counter() - started) * 1e3
        finally:
            ex.close()
    print_table(
        f"data:page, first 25 documents of {DOCS:,} (ms, server time)",
        ("call", "p50", "p99"),
        [
            ("newest ts, newest first (baseline)", *newest),
            ("mid-history ts, newest first", *past),
            ("mid-history ts, oldest first", *past_asc),
            ("newest ts, filter matching nothing (scan budget)", *filtered),
            ("data:tables, first call (counts the table)", first_tables, ""),
            ("data:tables, next call (kept counts)", tables, ""),
        ],
    )
    print(f"\npast / newest (p50): {past[0] / newest[0]:.2f}x  (target <= 1.5x, both < 200 ms)")


if __name__ == "__main__":
    main()
