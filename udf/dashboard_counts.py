"""Document counts per table for the dashboard's table list, without a scan per call.

A table's count is computed once by counting its ``by_id`` index at the snapshot
of the call that first asks (a key-only LMDB cursor walk at the newest ts, about
0.3 s per million documents), then kept as ``(ts, count)`` and carried to any
other snapshot by the log entries in between: an insert adds one, a delete takes
one away. The newest count is kept, so a table list at the newest ts costs the
entries committed since the previous call. Carrying a count back to an older
snapshot walks the log backwards from the kept ts; past ``_BACK_WRITES_MAX``
writes it counts the index at that snapshot instead.

Caveats: kept in memory per open ``Database`` (weakly), so a restart counts
each table once again.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from engine.database import Database, storage_handles
from engine.transaction import Transaction
from log.entry import Write

_BACK_WRITES_MAX = 200_000


def _delta(write: Write) -> int:
    if write.prev_ts is None and write.value is not None:
        return 1
    if write.prev_ts is not None and write.value is None:
        return -1
    return 0


def count_index(tx: Transaction, table: str) -> int:
    """The table's documents at the transaction's snapshot, counted in its id index."""
    return tx.snapshot.count_index(f"{table}.by_id")


class TableCounts:
    def __init__(self, db: Database) -> None:
        self._log = storage_handles(db)[1]
        self._known: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def counts(self, tx: Transaction, tables: list[str]) -> dict[str, int]:
        at = tx.snapshot_ts
        with self._lock:
            known = {t: self._known[t] for t in tables if t in self._known}
        for table in tables:
            if table not in known:
                known[table] = (at, count_index(tx, table))
        result = {t: count for t, (_, count) in known.items()}
        ahead = {t: ts for t, (ts, _) in known.items() if ts < at}
        if ahead:
            for entry in self._log.read_range(min(ahead.values()) + 1, at):
                for write in entry.writes:
                    since = ahead.get(write.table)
                    if since is not None and entry.ts > since:
                        result[write.table] += _delta(write)
        behind = {t: ts for t, (ts, _) in known.items() if ts > at}
        if behind:
            self._carry_back(tx, behind, result)
        with self._lock:
            for table in tables:
                kept = self._known.get(table)
                if kept is None or kept[0] <= at:
                    self._known[table] = (at, result[table])
        return result

    def _carry_back(self, tx: Transaction, behind: dict[str, int], result: dict[str, int]) -> None:
        at, writes = tx.snapshot_ts, 0
        entries = self._log.read_range(at + 1, max(behind.values()))
        try:
            for entry in entries:
                writes += len(entry.writes)
                if writes > _BACK_WRITES_MAX:
                    for table in behind:
                        result[table] = count_index(tx, table)
                    return
                for write in entry.writes:
                    until = behind.get(write.table)
                    if until is not None and entry.ts <= until:
                        result[write.table] -= _delta(write)
        finally:
            close = getattr(entries, "close", None)
            if close is not None:
                close()


_BY_DATABASE: weakref.WeakKeyDictionary[Any, TableCounts] = weakref.WeakKeyDictionary()
_BY_DATABASE_LOCK = threading.Lock()


def table_counts(db: Database) -> TableCounts:
    with _BY_DATABASE_LOCK:
        counts = _BY_DATABASE.get(db)
        if counts is None:
            counts = _BY_DATABASE[db] = TableCounts(db)
        return counts
