"""MVCC B-tree indexes: for every index, document keys in Convex value order.

Layout (two LMDB databases in the shared environment):

    index_latest   prefix(index) ‖ key                  -> storage_key(id)
    index_history  prefix(index) ‖ key ‖ inverted ts    -> PRESENT ‖ storage_key(id) | ABSENT

``prefix(index)`` is one length byte and the UTF-8 index id (``"messages.by_channel"``),
so one index's keys are contiguous. ``key`` is the order-preserving encoding of
the index's field values ending with ``_id`` (``engine.key_encoding``), so a key
range is a byte range and no key is a prefix of another of the same index.

Reads at the latest ts use ``index_latest``; reads at an older ts walk
``index_history``, where for each key the newest version at or before the
snapshot decides whether the document was in the index then.

Which indexes exist is itself derived from the log: every table has ``by_id``
and ``by_creation_time``; user indexes come from the schema document, and an
entry that changes the schema backfills added indexes from the current
documents and closes removed ones with ABSENT markers, all at that entry's ts.

Caveats: a backfill runs inside the committing LMDB transaction, so adding an
index to a very large table delays the commits behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.index_range import index_key
from engine.key_encoding import prefix_successor
from engine.schema import IndexDef, Schema, parse_schema
from engine.system_tables import SCHEMA_DOC_ID, SCHEMAS_TABLE
from log.entry import LogEntry, Write
from projections.documents import (
    STORAGE_KEY_BYTES,
    DocumentStore,
    inverted_ts,
    storage_key_of,
    ts_from_inverted,
)
from projections.index_keys import IndexPlan, RecentVersionKeys
from projections.protocol import read_checkpoint, write_checkpoint

PRESENT = b"\x01"
ABSENT = b"\x00"
_AFTER_ALL_VERSIONS = b"\xff" * 8

WrittenKey = tuple[str, bytes]


def index_prefix(index_id: str) -> bytes:
    raw = index_id.encode()
    return bytes([len(raw)]) + raw


def index_id_of(table: str, index_name: str) -> str:
    return f"{table}.{index_name}"


class BtreeIndexes:
    """Stored projection: all database indexes, latest and versioned."""

    name = "btree"

    def __init__(self, env: Any, meta_db: Any, documents: DocumentStore) -> None:
        self._env = env
        self._meta = meta_db
        self._documents = documents
        self._latest = env.open_db(b"index_latest")
        self._history = env.open_db(b"index_history")
        self._schema = Schema.empty()
        self._plans: dict[str, IndexPlan] = {}
        self.recent_keys = RecentVersionKeys()
        with env.begin() as txn:
            self._set_schema(self._stored_schema(txn))

    @property
    def schema(self) -> Schema:
        """The schema as of this projection's checkpoint."""
        return self._schema

    def _set_schema(self, schema: Schema) -> None:
        """Every derived plan and remembered key belongs to one schema."""
        self._schema = schema
        self._plans.clear()
        self.recent_keys.clear()

    def _plan(self, table: str) -> IndexPlan:
        plan = self._plans.get(table)
        if plan is None:
            indexes = self._schema.built_index_defs(table)
            plan = self._plans[table] = IndexPlan(indexes, index_id_of, index_prefix)
        return plan

    def _stored_schema(self, txn: Any) -> Schema:
        found = self._documents.get_latest(txn, storage_key_of(SCHEMA_DOC_ID))
        return Schema.empty() if found is None else parse_schema(found[1]["json"])

    @property
    def history_db(self) -> Any:
        """The versioned database (retention compacts it)."""
        return self._history

    # -- projection protocol -------------------------------------------------

    def checkpoint(self, txn: Any) -> int | None:
        return read_checkpoint(txn, self._meta, self.name)

    def apply_in(self, txn: Any, entry: LogEntry, *, checkpoint: bool = True) -> list[WrittenKey]:
        """Apply one entry; returns the (index id, key) pairs it wrote, old and new."""
        written: list[WrittenKey] = []
        suffix = inverted_ts(entry.ts)
        for write in entry.writes:
            self._apply_write(txn, write, entry.ts, suffix, written)
            if write.table == SCHEMAS_TABLE and write.id == SCHEMA_DOC_ID:
                self._change_schema(txn, write, suffix)
        if checkpoint:
            write_checkpoint(txn, self._meta, self.name, entry.ts)
        return written

    def reset_in(self, txn: Any) -> None:
        txn.drop(self._latest, delete=False)
        txn.drop(self._history, delete=False)
        write_checkpoint(txn, self._meta, self.name, None)
        self._set_schema(Schema.empty())

    def reload(self) -> None:
        """Re-read the schema after an aborted write transaction (and forget its keys)."""
        with self._env.begin() as txn:
            self._set_schema(self._stored_schema(txn))

    def written_keys(self, txn: Any, entry: LogEntry) -> list[WrittenKey]:
        """The keys ``apply_in`` wrote for an entry that is already applied (by another
        process), computed without writing; the in-memory schema moves along the same way."""
        written: list[WrittenKey] = []
        for write in entry.writes:
            skey = storage_key_of(write.id)
            plan, old_keys, new_keys = self._key_changes(txn, write, entry.ts, skey)
            for n, iid in enumerate(plan.ids):
                old_key = None if old_keys is None else old_keys[n]
                new_key = None if new_keys is None else new_keys[n]
                if old_key is not None:
                    written.append((iid, old_key))
                if new_key is not None and new_key != old_key:
                    written.append((iid, new_key))
            if write.table == SCHEMAS_TABLE and write.id == SCHEMA_DOC_ID:
                self._set_schema(
                    Schema.empty() if write.value is None else parse_schema(write.value["json"])
                )
        return written

    def _key_changes(
        self, txn: Any, write: Write, ts: int, skey: bytes
    ) -> tuple[IndexPlan, tuple[bytes, ...] | None, tuple[bytes, ...] | None]:
        """The table's index plan, and the keys of the old and the new version (None: absent)."""
        plan = self._plan(write.table)
        old_keys = None
        if write.prev_ts is not None:
            old_keys = self.recent_keys.take(skey, write.prev_ts)
            if old_keys is None:
                old = self._documents.version(txn, skey, write.prev_ts)
                old_keys = None if old is None else plan.keys_of(old)
        new_keys = None
        if write.value is not None:
            new_keys = plan.keys_of(write.value)
            self.recent_keys.remember(skey, ts, new_keys)
        return plan, old_keys, new_keys

    def _apply_write(
        self, txn: Any, write: Write, ts: int, suffix: bytes, written: list[WrittenKey]
    ) -> None:
        skey = storage_key_of(write.id)
        plan, old_keys, new_keys = self._key_changes(txn, write, ts, skey)
        latest, history = self._latest, self._history
        for n, iid in enumerate(plan.ids):
            old_key = None if old_keys is None else old_keys[n]
            new_key = None if new_keys is None else new_keys[n]
            if old_key == new_key:
                if old_key is not None:
                    written.append((iid, old_key))
                continue
            prefix = plan.prefixes[n]
            if old_key is not None:
                txn.delete(prefix + old_key, db=latest)
                txn.put(prefix + old_key + suffix, ABSENT, db=history)
                written.append((iid, old_key))
            if new_key is not None:
                txn.put(prefix + new_key, skey, db=latest)
                txn.put(prefix + new_key + suffix, PRESENT + skey, db=history)
                written.append((iid, new_key))

    def _change_schema(self, txn: Any, write: Write, suffix: bytes) -> None:
        new = Schema.empty() if write.value is None else parse_schema(write.value["json"])
        old_defs = {(i.table, i.name): i for i in _user_index_defs(self._schema)}
        new_defs = {(i.table, i.name): i for i in _user_index_defs(new)}
        for key, index in old_defs.items():
            if new_defs.get(key) != index:
                self._close_index(txn, index, suffix)
        for key, index in new_defs.items():
            if old_defs.get(key) != index:
                self._backfill_index(txn, index, suffix)
        self._set_schema(new)

    def _close_index(self, txn: Any, index: IndexDef, suffix: bytes) -> None:
        prefix = index_prefix(index_id_of(index.table, index.name))
        keys = [k for k, _ in self._iter_latest_prefix(txn, prefix)]
        for full_key in keys:
            txn.delete(full_key, db=self._latest)
            txn.put(full_key + suffix, ABSENT, db=self._history)

    def _backfill_index(self, txn: Any, index: IndexDef, suffix: bytes) -> None:
        prefix = index_prefix(index_id_of(index.table, index.name))
        by_creation = index_prefix(index_id_of(index.table, "by_creation_time"))
        rows = list(self._iter_latest_prefix(txn, by_creation))
        for _, skey in rows:
            found = self._documents.get_latest(txn, skey)
            if found is None:
                continue
            key = prefix + index_key(index.fields, found[1])
            txn.put(key, skey, db=self._latest)
            txn.put(key + suffix, PRESENT + skey, db=self._history)

    def _iter_latest_prefix(self, txn: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cursor = txn.cursor(db=self._latest)
        if not cursor.set_range(prefix):
            return
        for key, value in cursor:
            if not key.startswith(prefix):
                return
            yield key, value

    # -- reads -----------------------------------------------------------------

    def scan_latest(
        self, txn: Any, index_id: str, lo: bytes, hi: bytes | None, descending: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, storage key) of the live entries in [lo, hi), in order."""
        prefix = index_prefix(index_id)
        start, stop = prefix + lo, _upper(prefix, hi)
        cursor = txn.cursor(db=self._latest)
        n = len(prefix)
        if not descending:
            if not cursor.set_range(start):
                return
            for key, value in cursor:
                if key >= stop:
                    return
                yield key[n:], value
            return
        if cursor.set_range(stop):
            positioned = cursor.prev()
        else:
            positioned = cursor.last()
        while positioned:
            key = cursor.key()
            if key < start:
                return
            yield key[n:], cursor.value()
            positioned = cursor.prev()

    def scan_at(
        self, txn: Any, index_id: str, lo: bytes, hi: bytes | None, descending: bool, ts: int
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, storage key) of the entries present at ``ts`` in [lo, hi), in order."""
        prefix = index_prefix(index_id)
        start, stop = prefix + lo, _upper(prefix, hi)
        if descending:
            yield from self._scan_at_descending(txn, prefix, start, stop, ts)
            return
        n = len(prefix)
        cursor = txn.cursor(db=self._history)
        positioned = cursor.set_range(start)
        while positioned:
            raw = cursor.key()
            full_key = raw[:-8]
            if full_key >= stop:
                return
            if full_key < start:
                # ``start`` may fall between a key and its versions (a cursor's
                # successor key + b"\x00" sorts before key + inverted ts).
                positioned = cursor.set_range(full_key + _AFTER_ALL_VERSIONS)
                continue
            if ts_from_inverted(raw[-8:]) > ts:
                positioned = cursor.next()
                continue
            value = cursor.value()
            if value[:1] == PRESENT:
                yield full_key[n:], value[1 : 1 + STORAGE_KEY_BYTES]
            positioned = cursor.set_range(full_key + _AFTER_ALL_VERSIONS)

    def _scan_at_descending(
        self, txn: Any, prefix: bytes, start: bytes, stop: bytes, ts: int
    ) -> Iterator[tuple[bytes, bytes]]:
        n = len(prefix)
        cursor = txn.cursor(db=self._history)
        positioned = cursor.prev() if cursor.set_range(stop) else cursor.last()
        current: bytes | None = None
        visible: bytes | None = None
        while positioned:
            raw = cursor.key()
            full_key = raw[:-8]
            if full_key < start:
                break
            if full_key != current:
                if current is not None and visible is not None and visible[:1] == PRESENT:
                    yield current[n:], visible[1 : 1 + STORAGE_KEY_BYTES]
                current, visible = full_key, None
            # Walking backwards, versions of one key come oldest first.
            if ts_from_inverted(raw[-8:]) <= ts:
                visible = cursor.value()
            positioned = cursor.prev()
        if current is not None and visible is not None and visible[:1] == PRESENT:
            yield current[n:], visible[1 : 1 + STORAGE_KEY_BYTES]

    def count_index_latest(self, txn: Any, index_id: str) -> int:
        """How many live entries one index has (a key-only cursor walk)."""
        prefix = index_prefix(index_id)
        stop = _upper(prefix, None)
        cursor = txn.cursor(db=self._latest)
        if not cursor.set_range(prefix):
            return 0
        count = 0
        for key in cursor.iternext(keys=True, values=False):
            if key >= stop:
                break
            count += 1
        return count

    def count_latest(self, txn: Any) -> int:
        return int(txn.stat(self._latest)["entries"])


def _upper(prefix: bytes, hi: bytes | None) -> bytes:
    if hi is not None:
        return prefix + hi
    # The first byte string after every key of this index (the prefix is never all 0xFF).
    after = prefix_successor(prefix)
    assert after is not None
    return after


def _user_index_defs(schema: Schema) -> list[IndexDef]:
    """Every user index kept up to date, staged ones too (a staged index is backfilled
    before a later schema enables it, which then changes nothing here)."""
    defs: list[IndexDef] = []
    for table in schema.tables.values():
        defs.extend(table.indexes + table.staged_indexes)
    return defs
