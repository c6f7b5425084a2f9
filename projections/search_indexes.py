"""The live search projections of one data folder: text (tantivy) and vector (annoy).

One indexer thread feeds every search and vector index the durable log entries
in ts order, in batches: a text index's tantivy commit (~17 ms) happens at most
every ``commit_interval_s``, never per transaction. Each index has its own
checkpoint, moved only after its external commit (STYLE 11); an index that a
batch did not touch just moves its in-memory checkpoint along.

Which indexes exist follows the schema in the log. An index added by a schema
entry is backfilled from the current documents in a read transaction at the
newest ts L (so commits go on meanwhile) and then applies only entries after
L; until then ``slot(...).ready`` is False and searches fail with
``IndexBackfilling``. A removed index's folder is deleted.

Recovery: ``open`` replays the log after each index's checkpoint and commits,
before any search is served; an index whose folder is missing or does not
match its definition is backfilled. The indexer also remembers which
documents each recent entry wrote (``changed_keys``), so a read at ts S can
find the documents changed between an index's checkpoint and S without
reading the log.

Read-only (a process beside the folder's writer): ``open`` only opens the
indexes that have a checkpoint, without a tantivy writer, replays nothing,
deletes nothing and starts no thread; ``submit`` is ignored, so reads find
every change after an index's checkpoint in the log (``changed_keys``). An
index the writer has not checkpointed yet is reported as backfilling.

Caveats: backfills run on the indexer thread, so a large backfill delays the
other search indexes (never commits). The indexer's memory of recent entries
is bounded; older ranges are read back from the log.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.ids import decode_id
from engine.schema import Schema, SearchIndexDef, VectorIndexDef, parse_schema
from engine.system_tables import SCHEMA_DOC_ID, SCHEMAS_TABLE, SYSTEM_TABLE_NUMBERS, TABLES_TABLE
from log.entry import LogEntry
from log.lmdb_store import LmdbLog
from projections.documents import DocumentStore, storage_key_of
from projections.text_search import TextIndex
from projections.vector_search import VectorIndex

logger = logging.getLogger("headwater.search")

COMMIT_INTERVAL_S = 0.05
RECENT_ENTRIES_MAX = 100_000
_STOP = object()

IndexDef = SearchIndexDef | VectorIndexDef


@dataclass
class Slot:
    """One index: its definition, its projection, whether its backfill is done."""

    index_id: str
    definition: IndexDef
    index: TextIndex | VectorIndex
    ready: bool


def _index_defs(schema: Schema) -> dict[str, IndexDef]:
    found: dict[str, IndexDef] = {}
    for table in schema.tables.values():
        for d in (*table.search_indexes, *table.vector_indexes):
            found[f"{d.table}.{d.name}"] = d
    return found


class SearchIndexes:
    """Owns ``<data>/search/``; thread-safe reads, one writer thread."""

    def __init__(
        self,
        folder: str,
        env: Any,
        log: LmdbLog,
        documents: DocumentStore,
        *,
        commit_interval_s: float = COMMIT_INTERVAL_S,
        read_only: bool = False,
    ) -> None:
        self.folder = folder
        self.read_only = read_only
        self._env = env
        self._log = log
        self._documents = documents
        self._commit_interval_s = commit_interval_s
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._slots: dict[str, Slot] = {}
        self._schema = Schema.empty()
        self._applied_ts = 0  # every entry up to here reached every index
        self._recent_ts: list[int] = []
        self._recent_keys: list[frozenset[bytes]] = []
        self._floor_ts = 0  # the memory covers entries with ts > floor
        self._backfills: list[str] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._commits = 0

    # -- lifecycle -------------------------------------------------------------

    def open(self) -> None:
        """Open every index of the current schema, replay what they miss, start the thread."""
        with self._env.begin() as txn:
            latest = self._log.latest_ts(txn) or 0
            self._schema = self._schema_in(txn)
        self._applied_ts = self._floor_ts = latest
        wanted = _index_defs(self._schema)
        if self.read_only:
            self._open_read_only(wanted)
            return
        os.makedirs(self.folder, exist_ok=True)
        for name in os.listdir(self.folder):
            if name not in wanted:
                shutil.rmtree(os.path.join(self.folder, name), ignore_errors=True)
        for index_id, definition in wanted.items():
            slot = self._open_slot(index_id, definition)
            if slot.index.checkpoint_ts is None:
                slot.ready = False
                self._backfills.append(index_id)
        self._replay_to(latest)
        self._thread = threading.Thread(target=self._run, name="headwater-search", daemon=True)
        self._thread.start()

    def _open_read_only(self, wanted: dict[str, IndexDef]) -> None:
        for index_id, definition in wanted.items():
            folder = os.path.join(self.folder, index_id)
            if not os.path.isdir(folder):
                continue
            index: TextIndex | VectorIndex
            try:
                if isinstance(definition, SearchIndexDef):
                    index = TextIndex(folder, definition, writable=False)
                else:
                    index = VectorIndex(folder, definition, background=False, writable=False)
            except Exception:  # the writer is rebuilding it: searches report backfilling
                logger.info("search index %s is not readable yet", index_id)
                continue
            if index.checkpoint_ts is None:
                continue
            with self._lock:
                self._slots[index_id] = Slot(index_id, definition, index, True)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        for slot in self._slots.values():
            slot.index.close()

    def submit(self, entries: Sequence[LogEntry]) -> None:
        """Durable entries, in ts order (the committer's after-durable hook)."""
        if entries and not self.read_only:
            self._queue.put(list(entries))

    # -- reads (any thread) --------------------------------------------------------

    def slot(self, index_id: str) -> Slot | None:
        with self._lock:
            return self._slots.get(index_id)

    def changed_keys(self, table_number: int, after_ts: int, upto_ts: int, txn: Any) -> set[bytes]:
        """Storage keys of the table's documents written by entries in (after_ts, upto_ts]."""
        if upto_ts <= after_ts:
            return set()
        prefix = table_number.to_bytes(4, "big")
        found: set[bytes] = set()
        with self._lock:
            floor = self._floor_ts
            received = self._recent_ts[-1] if self._recent_ts else floor
            lo = bisect.bisect_right(self._recent_ts, max(after_ts, floor))
            hi = bisect.bisect_right(self._recent_ts, upto_ts)
            for keys in self._recent_keys[lo:hi]:
                found.update(k for k in keys if k[:4] == prefix)
        if after_ts < floor:
            found |= self._keys_from_log(prefix, after_ts, min(upto_ts, floor), txn)
        if upto_ts > received:
            found |= self._keys_from_log(prefix, max(after_ts, received), upto_ts, txn)
        return found

    def wait_caught_up(self, ts: int, timeout_s: float = 10.0) -> bool:
        """Block until every index is backfilled and has committed every entry up to ``ts``."""

        def done() -> bool:
            return self._applied_ts >= ts and all(
                s.ready and (s.index.checkpoint_ts or 0) >= ts for s in self._slots.values()
            )

        with self._progress:
            return self._progress.wait_for(done, timeout_s)

    def statistics(self) -> dict[str, Any]:
        with self._lock:
            slots = list(self._slots.values())
            applied = self._applied_ts
        return {
            "applied_ts": applied,
            "commits": self._commits,
            "indexes": {s.index_id: {"ready": s.ready, **s.index.statistics()} for s in slots},
        }

    # -- the indexer thread --------------------------------------------------------------

    def _run(self) -> None:
        last_commit = time.monotonic()
        while True:
            if self._backfills:
                self._backfill(self._backfills.pop(0))
                continue
            try:
                item = self._queue.get(timeout=self._commit_interval_s)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._commit_all()
                return
            try:
                if item is not None:
                    self._apply_batch(item)
                now = time.monotonic()
                if item is None or now - last_commit >= self._commit_interval_s:
                    self._commit_all()
                    last_commit = now
            except Exception:  # keep indexing the rest; the failing index stays behind
                logger.exception("search indexer failed on a batch")

    def _apply_batch(self, entries: list[LogEntry]) -> None:
        with self._env.begin() as txn:
            for entry in entries:
                if entry.ts <= self._applied_ts:
                    continue
                self._apply_entry(txn, entry)
                self._remember(entry)
                if any(w.table == SCHEMAS_TABLE and w.id == SCHEMA_DOC_ID for w in entry.writes):
                    self._change_schema(entry)
                with self._lock:
                    self._applied_ts = entry.ts

    def _apply_entry(self, txn: Any, entry: LogEntry) -> None:
        slots_by_table: dict[str, list[Slot]] = {}
        for slot in self._slots.values():
            slots_by_table.setdefault(slot.definition.table, []).append(slot)
        for write in entry.writes:
            slots = slots_by_table.get(write.table)
            if not slots:
                continue
            skey = storage_key_of(write.id)
            old = None
            if write.prev_ts is not None:
                old = self._documents.version(txn, skey, write.prev_ts)
            for slot in slots:
                checkpoint = slot.index.checkpoint_ts
                if slot.ready and checkpoint is not None and entry.ts > checkpoint:
                    slot.index.stage(skey, old, write.value)

    def _remember(self, entry: LogEntry) -> None:
        keys = frozenset(storage_key_of(w.id) for w in entry.writes)
        with self._lock:
            self._recent_ts.append(entry.ts)
            self._recent_keys.append(keys)
            if len(self._recent_ts) > 2 * RECENT_ENTRIES_MAX:
                drop = len(self._recent_ts) - RECENT_ENTRIES_MAX
                self._floor_ts = self._recent_ts[drop - 1]
                del self._recent_ts[:drop]
                del self._recent_keys[:drop]

    def _commit_all(self) -> None:
        ts = self._applied_ts
        for slot in list(self._slots.values()):
            checkpoint = slot.index.checkpoint_ts
            if not slot.ready or checkpoint is None or checkpoint >= ts:
                continue
            if slot.index.staged:
                self._commits += 1
            slot.index.commit(ts)
        with self._progress:
            self._progress.notify_all()

    def _change_schema(self, entry: LogEntry) -> None:
        with self._env.begin() as txn:
            new = self._schema_in(txn, entry.ts)
        old_defs, new_defs = _index_defs(self._schema), _index_defs(new)
        self._schema = new
        for index_id, definition in old_defs.items():
            if new_defs.get(index_id) != definition:
                self._drop_slot(index_id)
        for index_id, definition in new_defs.items():
            if old_defs.get(index_id) != definition:
                self._drop_slot(index_id)
                slot = self._open_slot(index_id, definition)
                slot.ready = False
                self._backfills.append(index_id)

    def _backfill(self, index_id: str) -> None:
        slot = self.slot(index_id)
        if slot is None:
            return
        with self._env.begin() as txn:
            latest = self._log.latest_ts(txn) or 0
            slot.index.reset()
            number = self._table_number(txn, slot.definition.table)
            if number is not None:
                for _, doc in self._documents.iter_table_latest(txn, number):
                    slot.index.stage(storage_key_of(doc["_id"]), None, doc)
        slot.index.commit(latest)
        with self._progress:
            slot.ready = True
            self._progress.notify_all()

    def _replay_to(self, latest: int) -> None:
        """Open-time recovery: apply the entries each index missed, then commit."""
        starts = [s.index.checkpoint_ts for s in self._slots.values() if s.ready]
        starts = [c for c in starts if c is not None and c < latest]
        if starts:
            with self._env.begin() as txn:
                for entry in self._log.read_range(min(starts) + 1, latest, txn):
                    self._apply_entry(txn, entry)
        for slot in self._slots.values():
            if slot.ready and (slot.index.checkpoint_ts or 0) < latest:
                slot.index.commit(latest)

    # -- internals ------------------------------------------------------------------------

    def _open_slot(self, index_id: str, definition: IndexDef) -> Slot:
        folder = os.path.join(self.folder, index_id)
        kind = TextIndex if isinstance(definition, SearchIndexDef) else VectorIndex
        index: TextIndex | VectorIndex
        try:
            index = kind(folder, definition)  # type: ignore[arg-type]
        except Exception:  # a damaged folder: start over, the backfill rebuilds it
            logger.exception("search index %s could not be opened; rebuilding it", index_id)
            shutil.rmtree(folder, ignore_errors=True)
            index = kind(folder, definition)  # type: ignore[arg-type]
        slot = Slot(index_id, definition, index, True)
        with self._lock:
            self._slots[index_id] = slot
        return slot

    def _drop_slot(self, index_id: str) -> None:
        with self._lock:
            slot = self._slots.pop(index_id, None)
        if slot is not None:
            slot.index.close()
            shutil.rmtree(os.path.join(self.folder, index_id), ignore_errors=True)
        if index_id in self._backfills:
            self._backfills.remove(index_id)

    def _schema_in(self, txn: Any, ts: int | None = None) -> Schema:
        key = storage_key_of(SCHEMA_DOC_ID)
        if ts is None:
            found = self._documents.get_latest(txn, key)
        else:
            found = self._documents.get_at(txn, key, ts)
        return Schema.empty() if found is None else parse_schema(found[1]["json"])

    def _table_number(self, txn: Any, table: str) -> int | None:
        number = SYSTEM_TABLE_NUMBERS[TABLES_TABLE]
        for _, doc in self._documents.iter_table_latest(txn, number):
            if doc["name"] == table:
                return int(doc["number"])
        return None

    def _keys_from_log(self, prefix: bytes, after_ts: int, upto_ts: int, txn: Any) -> set[bytes]:
        found: set[bytes] = set()
        if upto_ts <= after_ts:
            return found
        for entry in self._log.read_range(after_ts + 1, upto_ts, txn):
            for write in entry.writes:
                key = decode_id(write.id).storage_key()
                if key[:4] == prefix:
                    found.add(key)
        return found
