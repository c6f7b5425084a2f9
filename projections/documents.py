"""The MVCC document store: every version of every document, by id and ts.

Layout (two LMDB databases in the shared environment):

    docs_latest   storage_key(id)                -> marshal((ts, doc))    live documents
    docs_history  storage_key(id) ‖ inverted ts -> marshal(doc or None)  all versions (None: delete)

``storage_key`` is the 20-byte id key of ``engine.ids`` (table number, then
internal id), so a table's documents are contiguous. The inverted ts
(``TS_MAX - ts``, 8 bytes big-endian) makes the newest version of an id sort
first, so "the version visible at S" is one ``set_range`` seek.

Caveats: values are stored with ``marshal``, whose format may change between
Python minor versions. That is acceptable because this store is a projection:
the runner records the format and rebuilds from the log when it changes.
"""

from __future__ import annotations

import functools
import marshal
import struct
from collections.abc import Iterator
from typing import Any

from engine.ids import DocumentId, decode_id
from log.entry import LogEntry
from projections.protocol import read_checkpoint, write_checkpoint

TS_MAX = (1 << 63) - 1
_INV_TS = struct.Struct(">Q")
STORAGE_KEY_BYTES = 20


def inverted_ts(ts: int) -> bytes:
    return _INV_TS.pack(TS_MAX - ts)


def ts_from_inverted(raw: bytes) -> int:
    return TS_MAX - _INV_TS.unpack(raw)[0]


@functools.lru_cache(maxsize=1 << 16)
def storage_key_of(doc_id: str) -> bytes:
    """The stored form of an id (remembered: a document is often written again soon)."""
    return decode_id(doc_id).storage_key()


class DocumentStore:
    """Stored projection: documents by id, at the latest ts and at any past ts."""

    name = "documents"

    def __init__(self, env: Any, meta_db: Any) -> None:
        self._env = env
        self._meta = meta_db
        self._latest = env.open_db(b"docs_latest")
        self._history = env.open_db(b"docs_history")

    @property
    def history_db(self) -> Any:
        """The versioned database (retention compacts it)."""
        return self._history

    # -- projection protocol -------------------------------------------------

    def checkpoint(self, txn: Any) -> int | None:
        return read_checkpoint(txn, self._meta, self.name)

    def apply_in(self, txn: Any, entry: LogEntry, *, checkpoint: bool = True) -> None:
        suffix = inverted_ts(entry.ts)
        for write in entry.writes:
            key = storage_key_of(write.id)
            txn.put(key + suffix, marshal.dumps(write.value), db=self._history)
            if write.value is None:
                txn.delete(key, db=self._latest)
            else:
                txn.put(key, marshal.dumps((entry.ts, write.value)), db=self._latest)
        if checkpoint:
            write_checkpoint(txn, self._meta, self.name, entry.ts)

    def reset_in(self, txn: Any) -> None:
        txn.drop(self._latest, delete=False)
        txn.drop(self._history, delete=False)
        write_checkpoint(txn, self._meta, self.name, None)

    # -- reads -----------------------------------------------------------------

    def get_latest(self, txn: Any, key: bytes) -> tuple[int, dict] | None:
        """(version ts, document) of the live document, or None."""
        raw = txn.get(key, db=self._latest)
        return None if raw is None else marshal.loads(raw)

    def get_at(self, txn: Any, key: bytes, ts: int) -> tuple[int, dict] | None:
        """(version ts, document) visible at ``ts``, or None if absent or deleted then."""
        cursor = txn.cursor(db=self._history)
        if not cursor.set_range(key + inverted_ts(ts)):
            return None
        found = cursor.key()
        if found[:STORAGE_KEY_BYTES] != key:
            return None
        value = marshal.loads(cursor.value())
        if value is None:
            return None
        return ts_from_inverted(found[STORAGE_KEY_BYTES:]), value

    def version(self, txn: Any, key: bytes, ts: int) -> dict | None:
        """The document written exactly at ``ts`` (None if that version is a delete)."""
        raw = txn.get(key + inverted_ts(ts), db=self._history)
        return None if raw is None else marshal.loads(raw)

    def versions(self, txn: Any, key: bytes, ts: int) -> Iterator[tuple[int, dict | None]]:
        """Every retained version of a document at or before ``ts``, newest first:
        (version ts, document or None for a delete)."""
        cursor = txn.cursor(db=self._history)
        if not cursor.set_range(key + inverted_ts(ts)):
            return
        for found, raw in cursor:
            if found[:STORAGE_KEY_BYTES] != key:
                return
            yield ts_from_inverted(found[STORAGE_KEY_BYTES:]), marshal.loads(raw)

    def iter_table_latest(self, txn: Any, table_number: int) -> Iterator[tuple[int, dict]]:
        """Every live document of a table, in id order: (version ts, document)."""
        prefix = struct.pack(">I", table_number)
        cursor = txn.cursor(db=self._latest)
        if not cursor.set_range(prefix):
            return
        for key, raw in cursor:
            if key[:4] != prefix:
                return
            yield marshal.loads(raw)

    def count_latest(self, txn: Any) -> int:
        return int(txn.stat(self._latest)["entries"])


def id_of_storage_key(key: bytes) -> str:
    return DocumentId.from_storage_key(key).encode()
