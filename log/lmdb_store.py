"""The embedded log store: ``LogStore`` over one LMDB named database.

Caveats. The environment is opened with ``sync=True``: a write transaction is
durable when its commit returns, and each commit costs one fsync (~0.4 ms), so
throughput comes from putting many entries in one transaction (group commit),
never from one transaction per entry. The engine shares this one environment
with its LMDB projections, so a commit writes the log entry and the projections
in one write transaction via ``append_in``; LMDB allows one writer at a time.
Open a data folder's environment once per process (LMDB's locks are per
process; a second ``open_environment`` on the same folder breaks them). An
iterator from ``read_from`` or ``read_range`` without a caller's transaction
holds a read transaction, a reader slot and a snapshot until it is exhausted or
closed: LMDB cannot reuse pages freed after that snapshot, so the file grows
while one stays open. ``map_size`` is address space, not disk; passing it
raises ``lmdb.MapFullError``.

Layout: named database ``b"log"``, key = ts as 8 bytes big-endian (so byte
order is ts order), value = ``codec.encode_entry(entry)``. Entries are only
ever appended (``MDB_APPEND``), never overwritten.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any, cast

import lmdb

from engine.errors import IntegrityError
from engine.limits import LIMITS
from log.codec import decode_entry, encode_entry
from log.entry import TS_MAX, TS_MIN, LogEntry
from log.store import check_batch, check_read_ts

LOG_DB_NAME = b"log"

_KEY = struct.Struct(">Q")


def open_environment(
    path: str,
    *,
    map_size: int = LIMITS.lmdb_map_bytes,
    max_readers: int = LIMITS.lmdb_readers_max,
    max_dbs: int = 32,
) -> lmdb.Environment:
    """Open (creating the folder if needed) the one LMDB environment of a data folder."""
    os.makedirs(path, exist_ok=True)
    return lmdb.open(
        path,
        map_size=map_size,
        max_readers=max_readers,
        max_dbs=max_dbs,
        subdir=True,
        sync=True,
        metasync=True,
        writemap=False,
        lock=True,
    )


class LmdbLog:
    """``LogStore`` in the named database ``b"log"`` of a shared LMDB environment.

    Methods taking ``txn`` run inside the caller's transaction when one is
    given (and see its uncommitted writes); otherwise they open their own.
    """

    def __init__(self, env: lmdb.Environment, *, owns_env: bool = False) -> None:
        self._env = env
        self._db = env.open_db(LOG_DB_NAME)
        self._owns_env = owns_env
        self._closed = False

    @classmethod
    def open(cls, path: str, **options: Any) -> LmdbLog:
        """A log with its own environment in ``path``, closed together with the log."""
        return cls(open_environment(path, **options), owns_env=True)

    # -- writing ---------------------------------------------------------------

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append the batch in one durable write transaction."""
        self._require_open()
        if not entries:
            return
        with self._env.begin(write=True) as txn:
            self.append_in(txn, entries)

    def append_in(self, txn: lmdb.Transaction, entries: Sequence[LogEntry]) -> None:
        """Append the batch inside the caller's write transaction (the caller commits).

        Every check and encoding runs before the first put, so a refused batch
        leaves the transaction untouched.
        """
        self._require_open()
        if not isinstance(entries, list | tuple):
            entries = tuple(entries)
        check_batch(entries, self.latest_ts(txn))
        # Encoding first: it refuses a bad ts before the key packing could trip on it.
        encoded = [encode_entry(entry) for entry in entries]
        items = [
            (_KEY.pack(entry.ts), value) for entry, value in zip(entries, encoded, strict=True)
        ]
        with txn.cursor(db=self._db) as cursor:
            _, added = cursor.putmulti(items, overwrite=False, append=True)
        if added != len(items):
            raise IntegrityError(
                f"Log append: LMDB stored {added} of {len(items)} entries; "
                "the key order check and the database disagree"
            )

    # -- reading ---------------------------------------------------------------

    def read_from(self, ts: int, txn: lmdb.Transaction | None = None) -> Iterator[LogEntry]:
        """The entries with ``entry.ts >= ts`` in ts order, streamed from a cursor."""
        self._require_open()
        check_read_ts(ts)
        return self._iterate(ts, None, txn)

    def read_range(
        self, start_ts: int, end_ts: int, txn: lmdb.Transaction | None = None
    ) -> Iterator[LogEntry]:
        """The entries with ``start_ts <= entry.ts <= end_ts`` in ts order."""
        self._require_open()
        check_read_ts(start_ts, end_ts)
        if end_ts < TS_MIN or end_ts < start_ts:
            return iter(())
        return self._iterate(start_ts, min(end_ts, TS_MAX), txn)

    def read_backward(
        self, before_ts: int, limit: int, txn: lmdb.Transaction | None = None
    ) -> list[LogEntry]:
        """At most ``limit`` entries with ``entry.ts < before_ts``, newest first."""
        self._require_open()
        check_read_ts(before_ts, limit)
        if txn is None:
            with self._env.begin() as own:
                return self._backward(own, before_ts, limit)
        return self._backward(txn, before_ts, limit)

    def _backward(self, txn: lmdb.Transaction, before_ts: int, limit: int) -> list[LogEntry]:
        found: list[LogEntry] = []
        if limit <= 0 or before_ts <= TS_MIN:
            return found
        with txn.cursor(db=self._db) as cursor:
            stop = _KEY.pack(min(before_ts, TS_MAX))
            positioned = cursor.prev() if cursor.set_range(stop) else cursor.last()
            while positioned and len(found) < limit:
                key, value = cast("tuple[bytes, bytes]", cursor.item())
                if key >= stop:  # before_ts beyond TS_MAX: the last key is TS_MAX itself
                    positioned = cursor.prev()
                    continue
                entry = decode_entry(value)
                if _KEY.pack(entry.ts) != key:
                    raise IntegrityError(
                        f"Log damaged: the entry stored under ts {_key_ts(key)} says ts {entry.ts}"
                    )
                found.append(entry)
                positioned = cursor.prev()
        return found

    def latest_ts(self, txn: lmdb.Transaction | None = None) -> int | None:
        self._require_open()
        if txn is None:
            with self._env.begin() as own:
                return self._edge_ts(own, last=True)
        return self._edge_ts(txn, last=True)

    def first_ts(self, txn: lmdb.Transaction | None = None) -> int | None:
        self._require_open()
        if txn is None:
            with self._env.begin() as own:
                return self._edge_ts(own, last=False)
        return self._edge_ts(txn, last=False)

    def count(self, txn: lmdb.Transaction | None = None) -> int:
        self._require_open()
        if txn is None:
            with self._env.begin() as own:
                return int(own.stat(self._db)["entries"])
        return int(txn.stat(self._db)["entries"])

    def count_range(self, start_ts: int, end_ts: int, limit: int | None = None) -> int:
        """How many entries have ``start_ts <= ts <= end_ts`` (at most ``limit``), counted
        from the keys alone: nothing is decoded, so a minute of commits counts quickly."""
        self._require_open()
        if end_ts < max(start_ts, TS_MIN) or start_ts > TS_MAX:
            return 0
        stop_key = _KEY.pack(min(end_ts, TS_MAX))
        found = 0
        with self._env.begin() as txn, txn.cursor(db=self._db) as cursor:
            if not cursor.set_range(_KEY.pack(max(start_ts, 0))):
                return 0
            for key in cursor.iternext(keys=True, values=False):
                if key > stop_key or (limit is not None and found >= limit):
                    break
                found += 1
        return found

    def statistics(self) -> dict[str, int | None]:
        """Entries, bytes of LMDB pages used by the log, and the latest ts."""
        self._require_open()
        with self._env.begin() as txn:
            stat = txn.stat(self._db)
            pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
            return {
                "entries": int(stat["entries"]),
                "bytes": int(pages * stat["psize"]),
                "latest_ts": self._edge_ts(txn, last=True),
            }

    def close(self) -> None:
        """Stop using the log; closes the environment only if the log opened it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_env:
            self._env.close()

    # -- internals -------------------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise IntegrityError("The log is closed")

    def _edge_ts(self, txn: lmdb.Transaction, *, last: bool) -> int | None:
        with txn.cursor(db=self._db) as cursor:
            found = cursor.last() if last else cursor.first()
            return _key_ts(cast(bytes, cursor.key())) if found else None

    def _iterate(
        self, start_ts: int, end_ts: int | None, txn: lmdb.Transaction | None
    ) -> Iterator[LogEntry]:
        if start_ts > TS_MAX:
            return iter(())
        owned = txn is None
        if txn is None:
            txn = self._env.begin()
        start_key = _KEY.pack(max(start_ts, 0))
        stop_key = None if end_ts is None else _KEY.pack(end_ts)
        return _EntryIterator(txn, owned, txn.cursor(db=self._db), start_key, stop_key)


class _EntryIterator:
    """Decodes entries from a cursor one at a time, checking each against its key.

    When it opened its read transaction (``owned``) it ends it as soon as it is
    exhausted or closed, so a forgotten reader slot is the exception.
    """

    __slots__ = ("_txn", "_owned", "_cursor", "_stop_key", "_more")

    def __init__(
        self,
        txn: lmdb.Transaction,
        owned: bool,
        cursor: lmdb.Cursor,
        start_key: bytes,
        stop_key: bytes | None,
    ) -> None:
        self._txn: lmdb.Transaction | None = txn
        self._owned = owned
        self._cursor = cursor
        self._stop_key = stop_key
        self._more = cursor.set_range(start_key)
        if not self._more:
            self.close()

    def __iter__(self) -> _EntryIterator:
        return self

    def __next__(self) -> LogEntry:
        if not self._more:
            raise StopIteration
        key, value = cast("tuple[bytes, bytes]", self._cursor.item())
        if self._stop_key is not None and key > self._stop_key:
            self.close()
            raise StopIteration
        try:
            entry = decode_entry(value)
            if _KEY.pack(entry.ts) != key:
                raise IntegrityError(
                    f"Log damaged: the entry stored under ts {_key_ts(key)} says ts {entry.ts}"
                )
        except IntegrityError:
            self.close()
            raise
        self._more = self._cursor.next()
        if not self._more:
            self.close()
        return entry

    def __enter__(self) -> _EntryIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the read early; the read transaction is released if this iterator owns it."""
        self._more = False
        txn, self._txn = self._txn, None
        if txn is None:
            return
        self._cursor.close()
        if self._owned:
            txn.abort()


def _key_ts(key: bytes) -> int:
    if len(key) != _KEY.size:
        raise IntegrityError(f"Log damaged: a key of {len(key)} bytes, expected {_KEY.size}")
    ts: int = _KEY.unpack(key)[0]
    return ts
