"""What a projection is: a pure consumer of log entries with a durable checkpoint.

Two kinds exist, because of where their output lives (STYLE 11):

- ``StoredProjection``: output in the same LMDB environment as the log. Its
  checkpoint is written in the same LMDB transaction as its output, and the
  committer applies new entries inside the very transaction that appends them
  to the log, through the same ``apply_in`` that replay uses.
- ``LiveProjection``: output elsewhere (memory, tantivy, Kafka). It is fed
  entries after they are durable and must make ``apply`` idempotent, moving its
  checkpoint only after its own external commit.

Dropping a projection and replaying the log rebuilds it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Protocol

from log.entry import LogEntry

_TS = struct.Struct(">q")
CHECKPOINT_PREFIX = b"checkpoint:"


class StoredProjection(Protocol):
    name: str

    def checkpoint(self, txn: Any) -> int | None:
        """The ts of the last entry applied, read inside ``txn``."""
        ...

    def apply_in(self, txn: Any, entry: LogEntry) -> None:
        """Apply one entry inside an open LMDB write transaction (and move the checkpoint)."""
        ...

    def reset_in(self, txn: Any) -> None:
        """Drop all output and the checkpoint, inside an open LMDB write transaction."""
        ...


class LiveProjection(Protocol):
    name: str

    def apply(self, entries: Sequence[LogEntry]) -> None:
        """Apply durable entries in ts order; idempotent for entries already applied."""
        ...


def read_checkpoint(txn: Any, meta_db: Any, name: str) -> int | None:
    raw = txn.get(CHECKPOINT_PREFIX + name.encode(), db=meta_db)
    return None if raw is None else _TS.unpack(raw)[0]


def write_checkpoint(txn: Any, meta_db: Any, name: str, ts: int | None) -> None:
    key = CHECKPOINT_PREFIX + name.encode()
    if ts is None:
        txn.delete(key, db=meta_db)
    else:
        txn.put(key, _TS.pack(ts), db=meta_db)
