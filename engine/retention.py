"""Retention: how far back point-in-time reads go, and compaction of older versions.

By default history is kept for ever. With a retention window, ``compact``
moves the *history floor* to ``newest commit ts - window`` and removes the
MVCC versions that no read at or after the floor can see: for every document
and every index key, all versions older than the newest one at or before the
floor (and that one too when it is a delete, since nothing is there then).
The latest version of a live document is never removed. A read below the
floor is refused with ``SnapshotOutOfRangeError``.

Caveats: the log itself is not truncated — it is the truth that ``headwater
replay`` and the Kafka exporter read, so every entry stays; a replay rebuilds
the full history, and the next compaction trims it again. The floor is written
before any version is removed, so no new read can observe a half-compacted
history; reads already open keep their LMDB snapshot.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from projections.btree import ABSENT
from projections.documents import STORAGE_KEY_BYTES, ts_from_inverted
from projections.runner import HISTORY_FLOOR_KEY as FLOOR_KEY

_TS = struct.Struct(">q")
_DELETES_PER_TXN = 20_000


@dataclass(frozen=True)
class CompactionReport:
    floor_ts: int
    document_versions_removed: int
    index_versions_removed: int


def read_floor(txn: Any, meta_db: Any) -> int | None:
    raw = txn.get(FLOOR_KEY, db=meta_db)
    return None if raw is None else _TS.unpack(raw)[0]


def compact(
    env: Any, meta_db: Any, docs_history: Any, index_history: Any, floor_ts: int
) -> CompactionReport:
    """Move the floor to ``floor_ts`` (never backwards) and drop what is below it."""
    with env.begin(write=True) as txn:
        current = read_floor(txn, meta_db)
        if current is not None and current >= floor_ts:
            return CompactionReport(current, 0, 0)
        txn.put(FLOOR_KEY, _TS.pack(floor_ts), db=meta_db)
    docs = _compact_db(
        env,
        docs_history,
        lambda key: key[:STORAGE_KEY_BYTES],
        lambda value: value == b"N",
        floor_ts,
    )
    index = _compact_db(
        env, index_history, lambda key: key[:-8], lambda value: value[:1] == ABSENT, floor_ts
    )
    return CompactionReport(floor_ts, docs, index)


def _compact_db(env: Any, db: Any, group_of: Any, is_tombstone: Any, floor_ts: int) -> int:
    """Keys are ``group ‖ inverted ts`` (newest version of a group first)."""
    doomed: list[bytes] = []
    with env.begin(db=db) as txn:
        group: bytes | None = None
        kept_floor_version = False
        for key, value in txn.cursor(db=db):
            this = group_of(key)
            if this != group:
                group, kept_floor_version = this, False
            if ts_from_inverted(key[-8:]) > floor_ts:
                continue  # newer than the floor: every retained read may see it
            if not kept_floor_version:
                kept_floor_version = True  # the version visible at the floor
                if not is_tombstone(bytes(value)):
                    continue
            doomed.append(bytes(key))
    for start in range(0, len(doomed), _DELETES_PER_TXN):
        with env.begin(write=True, db=db) as txn:
            for key in doomed[start : start + _DELETES_PER_TXN]:
                txn.delete(key, db=db)
    return len(doomed)
