"""The writer follows log entries it did not write: live queries and OCC see them.

Another process writes the data folder's log directly here, bypassing the
folder's lock on purpose, as a second node (or anything that bypassed the lock)
would. The open ``Database`` must treat those entries like its own commits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from engine import ConflictError, Database, DataFolderBusyError
from engine.limits import LIMITS

ROOT = Path(__file__).resolve().parents[2]

# A second writer: the same engine, with the folder lock switched off.
FOREIGN_WRITER = """
import os, sys
from log import folder_lock
folder_lock.FolderLock.acquire = classmethod(
    lambda cls, folder: cls(str(folder), os.open(os.devnull, os.O_RDONLY))
)
from engine import Database

path, name, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
with Database.open(path) as db:
    def set_value(tx):
        found = tx.query("counters").with_index("by_name", lambda r: r.eq("name", name)).first()
        tx.patch(found["_id"], {"value": value})
    print(db.mutate(set_value).ts)
"""

SCHEMA = {
    "tables": [
        {
            "tableName": "counters",
            "indexes": [{"indexDescriptor": "by_name", "fields": ["name"]}],
            "searchIndexes": [],
            "vectorIndexes": [],
            "documentType": {"type": "any"},
        }
    ],
    "schemaValidation": True,
}


def write_from_another_process(path: str, name: str, value: float) -> int:
    done = subprocess.run(
        [sys.executable, "-c", FOREIGN_WRITER, path, name, str(value)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def value_of(tx, name: str) -> float:
    found = tx.query("counters").with_index("by_name", lambda r: r.eq("name", name)).first()
    return found["value"]


def open_with_counters(path: Path, **options) -> Database:
    db = Database.open(path, **options)
    db.set_schema(SCHEMA)
    db.mutate(lambda tx: [tx.insert("counters", {"name": n, "value": 0.0}) for n in "ab"])
    return db


def test_a_live_query_sees_a_commit_another_process_wrote(tmp_path):
    with open_with_counters(tmp_path / "data") as db:
        seen: list[float] = []
        changed = threading.Event()

        def on_change(result) -> None:
            seen.append(result.value)
            changed.set()

        sub = db.subscribe(value_of, "a", on_change=on_change)
        assert sub.result.value == 0.0
        foreign_ts = write_from_another_process(str(tmp_path / "data"), "a", 7.0)
        # Nothing of ours commits: the idle committer must notice the entry by itself.
        assert changed.wait(10), "the subscriber never heard of the other process's commit"
        assert seen == [7.0] and sub.result.ts == foreign_ts
        assert db.latest_ts() == foreign_ts
        assert db.statistics()["committer"]["followed"] == 1
        # Our next commit is ordered after it.
        assert db.mutate(lambda tx: tx.insert("counters", {"name": "c", "value": 1.0})).ts > (
            foreign_ts
        )


def test_occ_refuses_a_commit_whose_read_a_foreign_entry_invalidated(tmp_path):
    # Idle following off: the check inside the commit's write transaction must catch it.
    limits = replace(LIMITS, log_follow_interval_ms=3_600_000)
    with open_with_counters(tmp_path / "data", limits=limits) as db:
        stale = db.begin(writable=True)
        unrelated = db.begin(writable=True)
        assert value_of(stale, "a") == 0.0
        assert value_of(unrelated, "b") == 0.0
        found_a = stale.query("counters").with_index("by_name", lambda r: r.eq("name", "a"))
        stale.patch(found_a.first()["_id"], {"value": 1.0})
        found_b = unrelated.query("counters").with_index("by_name", lambda r: r.eq("name", "b"))
        unrelated.patch(found_b.first()["_id"], {"value": 1.0})

        foreign_ts = write_from_another_process(str(tmp_path / "data"), "a", 7.0)

        with pytest.raises(ConflictError):
            db.commit(stale)
        # The other direction: a read the foreign entry did not touch still commits, after it.
        assert db.commit(unrelated) > foreign_ts
        assert db.query(value_of, "a").value == 7.0
        assert db.query(value_of, "b").value == 1.0


READER = """
import sys
from engine import Database, ReadOnlyError
with Database.open(sys.argv[1], read_only=True) as db:
    def value_of(tx, name):
        found = tx.query("counters").with_index("by_name", lambda r: r.eq("name", name)).first()
        return found["value"]
    print(db.query(value_of, "d").value, db.latest_ts())
    try:
        db.mutate(lambda tx: tx.insert("counters", {"name": "x", "value": 1.0}))
    except ReadOnlyError as exc:
        print(exc.code)
"""


def test_one_writer_per_folder_and_read_only_beside_it(tmp_path):
    path = tmp_path / "data"
    with open_with_counters(path) as db:
        with pytest.raises(DataFolderBusyError) as busy:
            Database.open(path)
        assert str(path) in busy.value.message and str(os.getpid()) in busy.value.message
        ts = db.mutate(lambda tx: tx.insert("counters", {"name": "d", "value": 2.0})).ts
        read = subprocess.run(
            [sys.executable, "-c", READER, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        assert read.returncode == 0, read.stderr
        # Reads see the writer's newest commit; writes are refused, not committed.
        assert read.stdout.split() == ["2.0", str(ts), "ReadOnlyTransaction"]
        assert read.stderr == ""
        assert db.query(lambda tx: tx.query("counters").collect()).value[-1]["name"] == "d"
    # Closing releases the lock: the folder opens again for writing.
    with Database.open(path) as again:
        assert again.query(value_of, "d").value == 2.0
