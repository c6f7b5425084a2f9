"""A consistent read view of the stored projections at one timestamp.

A transaction at the newest ts reads the ``*_latest`` databases inside an
LMDB read transaction: LMDB's own snapshot isolation makes that view exactly
the state at the newest ts the log holds in that LMDB snapshot, because the
log entry and the projections are committed in one LMDB transaction. A
point-in-time read at an older ts walks the versioned ``*_history`` databases
(a document read first looks at its live version: when that is no newer than the
ts, it is the version visible then, one lookup instead of a history seek).
Either way every read inside one transaction sees exactly one ts.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.errors import SnapshotOutOfRangeError
from engine.limits import LIMITS
from engine.schema import Schema, parse_schema
from engine.system_tables import SCHEMA_DOC_ID
from projections.documents import storage_key_of
from projections.runner import ProjectionRunner

_SCHEMA_KEY = storage_key_of(SCHEMA_DOC_ID)


class SchemaCache:
    """Parsed schemas by the ts of the schema document's version (parsing is not free)."""

    def __init__(self, entries_max: int = LIMITS.schema_versions_cached_max) -> None:
        self._entries_max = entries_max
        self._by_version: dict[int, Schema] = {}

    def get(self, version_ts: int, json_text: str) -> Schema:
        schema = self._by_version.get(version_ts)
        if schema is None:
            if len(self._by_version) >= self._entries_max:
                self._by_version.clear()
            schema = parse_schema(json_text)
            self._by_version[version_ts] = schema
        return schema

    def statistics(self) -> dict[str, int]:
        return {"cached": len(self._by_version), "cached_max": self._entries_max}


class Snapshot:
    """Reads at ``ts``; ``close`` ends the LMDB read transaction."""

    def __init__(
        self, runner: ProjectionRunner, schemas: SchemaCache, ts: int | None = None
    ) -> None:
        self._runner = runner
        self._schemas = schemas
        self._txn = runner.begin_read()
        latest = runner.latest_ts(self._txn)
        first = runner.first_ts(self._txn)
        if latest is None or first is None:
            self._txn.abort()
            raise SnapshotOutOfRangeError("The database has no committed history yet.")
        if ts is None:
            ts = latest
        elif ts > latest or ts < first:
            self._txn.abort()
            raise SnapshotOutOfRangeError(
                f"Timestamp {ts} is outside the retained history [{first}, {latest}]."
            )
        self.ts = ts
        self.is_latest = ts == latest
        self._schema: Schema | None = None

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None

    def get(self, storage_key: bytes) -> tuple[int, dict] | None:
        """(version ts, document) visible at this snapshot."""
        docs = self._runner.documents
        latest = docs.get_latest(self._txn, storage_key)
        if self.is_latest or (latest is not None and latest[0] <= self.ts):
            return latest  # no version since this ts: the live one is the one visible then
        return docs.get_at(self._txn, storage_key, self.ts)

    def versions(self, storage_key: bytes) -> Iterator[tuple[int, dict | None]]:
        """Every retained version of a document up to this snapshot, newest first
        (version ts, document or None where it was deleted)."""
        return self._runner.documents.versions(self._txn, storage_key, self.ts)

    def version(self, storage_key: bytes, ts: int) -> dict | None:
        """The document as written exactly at ``ts`` (None: deleted then, or not retained)."""
        return self._runner.documents.version(self._txn, storage_key, ts)

    def scan(
        self, index_id: str, lo: bytes, hi: bytes | None, descending: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        btree = self._runner.btree
        if self.is_latest:
            return btree.scan_latest(self._txn, index_id, lo, hi, descending)
        return btree.scan_at(self._txn, index_id, lo, hi, descending, self.ts)

    def count_index(self, index_id: str) -> int:
        """How many entries an index holds at this snapshot (a key-only walk when latest)."""
        btree = self._runner.btree
        if self.is_latest:
            return btree.count_index_latest(self._txn, index_id)
        return sum(1 for _ in btree.scan_at(self._txn, index_id, b"", None, False, self.ts))

    def iter_table(self, table_number: int) -> Iterator[tuple[int, dict]]:
        """Every live document of a table at the newest ts (for schema checks)."""
        return self._runner.documents.iter_table_latest(self._txn, table_number)

    def schema(self) -> Schema:
        """The schema in force at this snapshot."""
        if self._schema is None:
            found = self.get(_SCHEMA_KEY)
            self._schema = (
                Schema.empty() if found is None else self._schemas.get(found[0], found[1]["json"])
            )
        return self._schema

    def schema_version_ts(self) -> int | None:
        found = self.get(_SCHEMA_KEY)
        return None if found is None else found[0]
