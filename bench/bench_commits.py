"""Benchmark: durable single-document inserts with 1, 8 and 64 concurrent writers.

Every insert is its own mutation and returns only once it is fsynced. Group
commit lets concurrent writers share one fsync. Baseline in the same run:
SQLite in WAL mode with synchronous=FULL, one connection per writer thread,
one transaction per insert. Run: ``python -m bench.bench_commits``.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from pathlib import Path

from bench.common import print_table, rate_with_threads
from engine import Database

WRITERS = (1, 8, 64)
DURATION_S = 3.0


def _rate(writers: int, body) -> float:
    return rate_with_threads(writers, body, DURATION_S)


def ours(path: Path, writers: int) -> tuple[float, float]:
    with Database.open(path) as db:
        db.mutate(lambda tx: tx.insert("events", {"warm": True}))
        before = db.statistics()["committer"]
        rate = _rate(
            writers, lambda k: db.mutate(lambda tx: tx.insert("events", {"writer": k, "v": 1.0}))
        )
        after = db.statistics()["committer"]
        commits = after["commits"] - before["commits"]
        batches = after["batches"] - before["batches"]
    return rate, commits / max(batches, 1)


def sqlite_full(path: Path, writers: int) -> float:
    setup = sqlite3.connect(path)
    setup.execute("pragma journal_mode=wal")
    setup.execute("create table events (writer int, v real)")
    setup.commit()
    setup.close()
    local = threading.local()

    def insert(k: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
            conn.execute("pragma synchronous=full")
        conn.execute("insert into events values (?, ?)", (k, 1.0))
        conn.commit()

    return _rate(writers, insert)


def main() -> None:
    rows = []
    ours_rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for writers in WRITERS:
            rate, per_batch = ours(Path(tmp) / f"hw{writers}", writers)
            base = sqlite_full(Path(tmp) / f"sq{writers}.db", writers)
            ours_rates[writers] = rate
            rows.append((writers, rate, per_batch, base, rate / base))
    print_table(
        "Durable single-document inserts (each acknowledged after fsync)",
        (
            "writers",
            "headwater inserts/s",
            "commits per fsync",
            "SQLite WAL FULL inserts/s",
            "ratio",
        ),
        rows,
    )
    print(f"\n64 writers / 1 writer (group commit): {ours_rates[64] / ours_rates[1]:.1f}x")


if __name__ == "__main__":
    main()
