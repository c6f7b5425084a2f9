"""What a query needs from the transaction it runs in, as a protocol.

The query executor, the search reads and the table-query builder run inside a
``Transaction`` but depend only on this surface: the snapshot, the read-set
builder, the pending writes of a table and the read counters. Keeping that
surface here (a leaf) lets ``engine.transaction`` offer ``tx.query(...)``
without the executor importing the transaction back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.limits import Limits
from engine.read_set import ReadSetBuilder
from engine.schema import Schema
from engine.snapshot import Snapshot


@dataclass
class PendingWrite:
    """The final version a transaction will write for one document."""

    doc_id: str
    table: str
    storage_key: bytes
    prev_ts: int | None  # the version replaced; None for an insert
    value: dict | None  # None deletes


class ReadContext(Protocol):
    """The part of a transaction that query execution reads through."""

    limits: Limits
    documents_read: int

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def snapshot_ts(self) -> int: ...

    @property
    def reads(self) -> ReadSetBuilder: ...

    def snapshot_schema(self) -> Schema: ...

    def table_number(self, table: str) -> int | None: ...

    def pending_writes_of(self, table: str) -> Iterable[PendingWrite]: ...

    def read_document(self, skey: bytes) -> dict | None: ...

    def count_read(self, doc: dict) -> None: ...

    def count_index_range(self) -> None: ...

    def register_stream(self, stream: Any) -> None: ...
