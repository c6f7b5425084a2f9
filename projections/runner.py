"""Feeds log entries to the stored projections, in order, and keeps them caught up.

The committer calls ``apply_in`` inside the LMDB transaction that appends the
entries, so stored projections never lag a durable commit. On open,
``catch_up`` replays whatever a projection has not applied (it was dropped,
or its format changed); ``rebuild`` drops them all and replays the whole log.
Both use the same ``apply_in`` as the commit path, so a rebuilt projection is
the same as one built commit by commit.

``apply_in`` also reports what the entry wrote as the search indexes see it
(``SearchKey`` versions, beside the B-tree keys), so OCC and live queries
cover text searches; the search indexes themselves are live projections
(``projections.search_indexes``), fed after durability.
"""

from __future__ import annotations

import marshal
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.read_set import SearchKey
from log.entry import LogEntry
from log.lmdb_store import LmdbLog
from projections.btree import BtreeIndexes, WrittenKey
from projections.documents import DocumentStore, storage_key_of
from projections.text_search import search_keys_of

# Bumped when a stored projection's layout changes; marshal's version and the
# Python minor version are part of it because stored values use marshal.
FORMAT = f"1/marshal{marshal.version}/py{sys.version_info[0]}.{sys.version_info[1]}".encode()
_FORMAT_KEY = b"projections:format"
# Written by engine.retention: reads below this ts are refused (history compacted).
HISTORY_FLOOR_KEY = b"history:floor"
_FLOOR = struct.Struct(">q")
_REPLAY_BATCH_ENTRIES = 2000


@dataclass(frozen=True)
class ReplayReport:
    entries: int
    seconds: float

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else float("inf")


class ProjectionRunner:
    """Owns the stored projections of one data folder."""

    def __init__(self, env: Any, log: LmdbLog) -> None:
        self._env = env
        self._log = log
        self.meta_db = env.open_db(b"meta")
        self.documents = DocumentStore(env, self.meta_db)
        self.btree = BtreeIndexes(env, self.meta_db, self.documents)
        self._first_ts: int | None = None
        # The live search projections (``projections.search_indexes``), set by the owner.
        self.search_indexes: Any = None

    def begin_read(self) -> Any:
        return self._env.begin()

    def latest_ts(self, txn: Any = None) -> int | None:
        return self._log.latest_ts(txn)

    def first_ts(self, txn: Any = None) -> int | None:
        """The oldest ts a read may use: the first log entry, or the retention floor."""
        if self._first_ts is None:
            self._first_ts = next((e.ts for e in self._log.read_from(0, txn=txn)), None)
        if self._first_ts is None:
            return None
        if txn is None:
            with self._env.begin() as own:
                raw = own.get(HISTORY_FLOOR_KEY, db=self.meta_db)
        else:
            raw = txn.get(HISTORY_FLOOR_KEY, db=self.meta_db)
        floor = None if raw is None else _FLOOR.unpack(raw)[0]
        return self._first_ts if floor is None else max(self._first_ts, floor)

    def apply_in(
        self, txn: Any, entry: LogEntry, *, checkpoint: bool = True
    ) -> list[WrittenKey | SearchKey]:
        """Apply one entry to every stored projection: documents first, then indexes.

        ``checkpoint=False`` leaves the projections' checkpoints for a later entry of
        the same LMDB transaction to write (a replay batch writes them once).
        Returns the written B-tree keys and, for tables with search indexes, the old
        and new ``SearchKey`` of each written document.
        """
        self.documents.apply_in(txn, entry, checkpoint=checkpoint)
        written: list[WrittenKey | SearchKey] = list(
            self.btree.apply_in(txn, entry, checkpoint=checkpoint)
        )
        written.extend(self._search_keys(txn, entry))
        return written

    def written_by(self, txn: Any, entry: LogEntry) -> list[WrittenKey | SearchKey]:
        """What ``apply_in`` returned for an entry another process already applied.

        Reads only; call it in ts order for the entries after this process's
        own last commit, so the in-memory schema follows the log."""
        written: list[WrittenKey | SearchKey] = list(self.btree.written_keys(txn, entry))
        written.extend(self._search_keys(txn, entry))
        return written

    def _search_keys(self, txn: Any, entry: LogEntry) -> list[SearchKey]:
        written: list[SearchKey] = []
        tables = self.btree.schema.tables
        for write in entry.writes:
            table = tables.get(write.table)
            if table is None or not table.search_indexes:
                continue
            old = None
            if write.prev_ts is not None:
                old = self.documents.version(txn, storage_key_of(write.id), write.prev_ts)
            for definition in table.search_indexes:
                written.extend(search_keys_of(definition, old, write.value))
        return written

    def abort(self) -> None:
        """Forget in-memory state derived from an LMDB transaction that was aborted."""
        self.btree.reload()

    def catch_up(self) -> ReplayReport:
        """Replay the log entries the stored projections have not applied yet."""
        with self._env.begin(write=True) as txn:
            if txn.get(_FORMAT_KEY, db=self.meta_db) != FORMAT:
                self._reset_in(txn)
                txn.put(_FORMAT_KEY, FORMAT, db=self.meta_db)
            checkpoints = [self.documents.checkpoint(txn), self.btree.checkpoint(txn)]
        if checkpoints[0] != checkpoints[1]:
            # They are written together; differing checkpoints mean a partial reset.
            return self.rebuild()
        start = 0 if checkpoints[0] is None else checkpoints[0] + 1
        return self._replay_from(start)

    def rebuild(self) -> ReplayReport:
        """Drop every stored projection and rebuild it from the log alone."""
        with self._env.begin(write=True) as txn:
            self._reset_in(txn)
            txn.put(_FORMAT_KEY, FORMAT, db=self.meta_db)
        return self._replay_from(0)

    def _reset_in(self, txn: Any) -> None:
        self.documents.reset_in(txn)
        self.btree.reset_in(txn)

    def _replay_from(self, start_ts: int) -> ReplayReport:
        started = time.perf_counter()
        applied = 0
        batch: list[LogEntry] = []
        for entry in self._log.read_from(start_ts):
            batch.append(entry)
            if len(batch) >= _REPLAY_BATCH_ENTRIES:
                applied += self._apply_batch(batch)
                batch = []
        if batch:
            applied += self._apply_batch(batch)
        return ReplayReport(applied, time.perf_counter() - started)

    def _apply_batch(self, entries: Sequence[LogEntry]) -> int:
        try:
            last = len(entries) - 1
            with self._env.begin(write=True) as txn:
                for n, entry in enumerate(entries):
                    self.apply_in(txn, entry, checkpoint=n == last)
        except BaseException:
            self.abort()
            raise
        return len(entries)

    def statistics(self) -> dict[str, int]:
        with self._env.begin() as txn:
            return {
                "documents_live": self.documents.count_latest(txn),
                "index_entries_live": self.btree.count_latest(txn),
            }
