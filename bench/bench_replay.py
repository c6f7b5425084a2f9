"""Benchmark: rebuilding every projection from the log (``headwater replay``).

Writes a log of 20,000 transactions (one insert or patch each, a table with a
user index), then times the full rebuild. Baseline in the same run: reading
and decoding the same log entries without applying them, the floor any
replay pays. A second floor shows what the target leaves room for: writing the
rebuilt projections' final keys and values into an empty environment, already
sorted, appended in one transaction with nothing computed — the LMDB writes
alone that any replay of this log must make.
Run: ``python -m bench.bench_replay``.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from bench.common import print_table
from engine import Database
from engine.recovery import rebuild_projections
from log.lmdb_store import LmdbLog, open_environment

TRANSACTIONS = 20_000
SCHEMA = {
    "tables": [
        {
            "tableName": "items",
            "indexes": [{"indexDescriptor": "by_group", "fields": ["group"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": None,
        }
    ],
    "schemaValidation": True,
}


def _fill(path: Path) -> None:
    rng = random.Random(3)
    with Database.open(path) as db:
        db.set_schema(SCHEMA)
        ids: list[str] = []
        # Many transactions, written in large groups so the setup itself stays quick.
        for _ in range(TRANSACTIONS // 500):

            def work(tx):
                made = []
                for _ in range(500):
                    made.append(tx.insert("items", {"group": rng.randrange(100), "v": 0.0}))
                return made

            ids.extend(db.mutate(work).value)
        pending = []
        for i in range(TRANSACTIONS):
            target = rng.choice(ids)
            pending.append((target, float(i)))
        # Patches, one transaction each, concurrently so group commit keeps it quick.
        import threading

        def patcher(chunk):
            for target, v in chunk:
                db.mutate(lambda tx, t=target, v=v: tx.patch(t, {"v": v}))

        threads = [threading.Thread(target=patcher, args=(pending[k::32],)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _decode_only(path: Path) -> tuple[int, float]:
    env = open_environment(str(path))
    try:
        started = time.perf_counter()
        n = sum(1 for _ in LmdbLog(env).read_from(0))
        return n, time.perf_counter() - started
    finally:
        env.close()


PROJECTION_DBS = (b"docs_latest", b"docs_history", b"index_latest", b"index_history")


def _bulk_load_only(path: Path, scratch: Path) -> tuple[int, float]:
    """(records, seconds) to append the rebuilt projections' records to empty
    databases of a fresh environment, in key order, in one transaction."""
    env = open_environment(str(path))
    try:
        with env.begin() as txn:
            records = {
                name: list(txn.cursor(db=env.open_db(name, txn=txn)).iternext())
                for name in PROJECTION_DBS
            }
    finally:
        env.close()
    target = open_environment(str(scratch))
    try:
        dbs = {name: target.open_db(name) for name in PROJECTION_DBS}
        started = time.perf_counter()
        with target.begin(write=True) as txn:
            for name, items in records.items():
                txn.cursor(db=dbs[name]).putmulti(items, append=True)
        return sum(map(len, records.values())), time.perf_counter() - started
    finally:
        target.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hw"
        _fill(path)
        n, decode_s = _decode_only(path)
        report = rebuild_projections(path)
        records, load_s = _bulk_load_only(path, Path(tmp) / "bulk")
    rows = [
        ("headwater replay (documents + indexes)", report.entries, report.entries_per_s),
        ("baseline: read + decode the log only", n, n / decode_s),
        (f"floor: append the {records:,} projection records only", n, n / load_s),
    ]
    print_table("Replay from the log", ("what", "entries", "entries/s"), rows)
    print(f"\nratio replay / decode-only: {report.entries_per_s / (n / decode_s):.2f}")
    print(
        f"ratio (decode + append records, nothing computed) / decode-only: "
        f"{decode_s / (decode_s + load_s):.2f}"
    )


if __name__ == "__main__":
    main()
