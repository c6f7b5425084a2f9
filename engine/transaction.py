"""A transaction: reads at one snapshot ts, records its read set, buffers its writes.

Reads go through the snapshot (and see the transaction's own earlier writes);
every read adds the index-key interval it covered to the read set, which the
committer later checks against commits that landed after the snapshot (OCC)
and which live subscriptions register with the matcher. Writes are buffered
here, one final version per document, and become one log entry at commit.
Limits on documents and bytes read and written are counted here, so breaking
one fails the function before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from engine.catalog import Catalog
from engine.commit_ts import PendingCommitTs
from engine.components import check_qualified_table_name
from engine.errors import (
    DocumentNotFoundError,
    InvalidIdError,
    InvalidValueError,
    LimitExceededError,
    ReadOnlyError,
)
from engine.ids import RANDOM_BYTES, DocumentId, decode_id, encode_id, new_internal_id
from engine.key_encoding import encode_key
from engine.limits import LIMITS, Limits, format_bytes
from engine.pending_commit import PendingCommit
from engine.read_context import PendingWrite
from engine.read_set import ReadSet, ReadSetBuilder
from engine.schema import Schema, parse_schema, validate_document
from engine.snapshot import Snapshot
from engine.system_tables import SCHEMA_DOC_ID, SCHEMAS_TABLE, TABLES_TABLE, is_system_table
from engine.table_query import TableQuery
from engine.values import (
    UNSET,
    check_document,
    copy_value,
    value_size,
)
from log.entry import Write

SYSTEM_FIELDS = ("_id", "_creationTime")


def by_id_index(table: str) -> str:
    return f"{table}.by_id"


def id_key(doc_id: str) -> bytes:
    return encode_key([doc_id])


class Transaction:
    def __init__(
        self,
        snapshot: Snapshot,
        catalog: Catalog,
        *,
        writable: bool,
        begin_ns: int,
        random_bytes: Callable[[int], bytes],
        limits: Limits = LIMITS,
    ) -> None:
        self._snapshot = snapshot
        self._catalog = catalog
        self.writable = writable
        self.limits = limits
        self._random_bytes = random_bytes
        self._begin_ms = begin_ns / 1e6
        self._last_creation_ms = 0.0
        self._reads = ReadSetBuilder()
        self._writes: dict[bytes, PendingWrite] = {}
        self.commit_ts = PendingCommitTs()
        self._new_tables: dict[str, int] = {}
        self._streams: list[Any] = []
        self._schema: Schema | None = None
        self.documents_read = 0
        self.bytes_read = 0
        self.index_ranges = 0
        # Every user write counts (Convex's rule): a document patched twice is two.
        self.documents_written = 0
        self.bytes_written = 0
        # Ids handed out ahead of their inserts (``reserve_ids``), by id text.
        self._reserved_ids: dict[str, DocumentId] = {}
        # False: hand out no ids ahead (a run that must see every write's error at its call).
        self.reserving_ids = True

    @property
    def snapshot_ts(self) -> int:
        return self._snapshot.ts

    @property
    def begin_ms(self) -> float:
        """Wall-clock time (ms) when the transaction began: "now" for the function in it."""
        return self._begin_ms

    # -- reads -----------------------------------------------------------------

    def get(self, doc_id: str, *, table: str | None = None) -> dict | None:
        """The document with this id, or None; an id of another table is an error."""
        parsed = self._decode(doc_id, table)
        name = self.table_name(parsed.table_number)
        if name is None:
            return None
        self.count_index_range()
        self._reads.add_point(by_id_index(name), id_key(doc_id))
        return self.read_document(parsed.storage_key())

    def normalize_id(self, table: str, id_string: str) -> str | None:
        """The canonical id if ``id_string`` is an id of ``table``, else None."""
        try:
            parsed = decode_id(id_string)
        except InvalidIdError:
            return None
        if self.table_name(parsed.table_number) != table:
            return None
        return parsed.encode()

    def query(self, table: str) -> TableQuery:
        """A query builder over ``table`` (see ``engine.table_query``)."""
        return TableQuery(self, table)

    @property
    def read_set(self) -> ReadSet:
        for stream in self._streams:
            stream.record_read()
        return self._reads.build()

    # -- writes ----------------------------------------------------------------

    def insert(self, table: str, value: dict, *, reserved_id: str | None = None) -> str:
        """Insert a document; its id is fresh, or ``reserved_id``, one that
        ``reserve_ids`` handed out for ``table`` in this transaction and no insert used yet.
        ``table`` may be a component's qualified name (``"limiter/rateLimits"``)."""
        self._require_writable()
        check_qualified_table_name(table)
        fields = self._user_fields(value, "insert")
        number = self._table_number_for_insert(table)
        if reserved_id is None:
            parsed = DocumentId(number, new_internal_id(self._random_bytes, self._begin_ms))
            doc_id = parsed.encode()
        else:
            reserved = self._reserved_ids.get(reserved_id)
            if reserved is None or reserved.table_number != number:
                raise InvalidIdError(f"The id {reserved_id} was not reserved for table {table}.")
            parsed, doc_id = reserved, reserved_id
        doc = {"_id": doc_id, "_creationTime": self._next_creation_ms(), **fields}
        self._stage(doc_id, table, parsed, None, doc)
        self._reserved_ids.pop(doc_id, None)
        return doc_id

    def reserve_ids(self, table: str, count: int) -> list[str]:
        """Up to ``count`` fresh ids of the existing ``table`` for later inserts
        (``insert(reserved_id=...)``), from the same generator as every insert's id,
        so they are as unique and unguessable as those. Never more than the write
        limit leaves room for, counting ids reserved and not used yet: an insert
        with a reserved id is not refused for their number."""
        number = self.table_number(table)
        if not self.reserving_ids or not self.writable or number is None or is_system_table(table):
            return []
        room = self.limits.documents_written_max - self.documents_written - len(self._reserved_ids)
        count = max(0, min(count, room))
        # One call to the generator for the block: the same bytes, fewer system calls.
        block = self._random_bytes(RANDOM_BYTES * count)
        ids = []
        for start in range(0, len(block), RANDOM_BYTES):
            part = block[start : start + RANDOM_BYTES]
            parsed = DocumentId(number, new_internal_id(lambda _n, p=part: p, self._begin_ms))
            doc_id = parsed.encode()
            self._reserved_ids[doc_id] = parsed
            ids.append(doc_id)
        return ids

    def patch(self, doc_id: str, fields: dict, *, table: str | None = None) -> dict:
        """Shallow merge: ``None`` stores null, ``UNSET`` removes the field."""
        self._require_writable()
        name, parsed, current = self._existing(doc_id, table, "patch")
        if not isinstance(fields, dict):
            raise InvalidValueError("patch takes an object of fields.")
        self._check_system_fields(fields, current)
        merged = dict(current)
        for key, val in fields.items():
            if key in SYSTEM_FIELDS:
                continue
            if val is UNSET:
                merged.pop(key, None)
            else:
                merged[key] = val
        kept = [key for key in current if key not in fields]
        return copy_value(self._stage_update(doc_id, name, parsed, merged, kept))

    def replace(self, doc_id: str, value: dict, *, table: str | None = None) -> dict:
        self._require_writable()
        name, parsed, current = self._existing(doc_id, table, "replace")
        if not isinstance(value, dict):
            raise InvalidValueError("replace takes an object.")
        self._check_system_fields(value, current)
        fields = {k: v for k, v in value.items() if k not in SYSTEM_FIELDS and v is not UNSET}
        new = {"_id": current["_id"], "_creationTime": current["_creationTime"], **fields}
        return copy_value(self._stage_update(doc_id, name, parsed, new))

    def delete(self, doc_id: str, *, table: str | None = None) -> dict:
        self._require_writable()
        name, parsed, current = self._existing(doc_id, table, "delete")
        skey = parsed.storage_key()
        pending = self._writes.get(skey)
        if pending is not None and pending.prev_ts is None:
            # Inserted by this transaction: deleting it leaves no trace.
            self._count_write(0)
            del self._writes[skey]
            self.commit_ts.drop(doc_id)
        else:
            self._stage(doc_id, name, parsed, self._version_ts(skey), None)
        return current

    def savepoint(self) -> tuple[Any, ...]:
        """The buffered writes as they are now, for a nested mutation that may fail."""
        return (
            dict(self._writes),
            dict(self._new_tables),
            self.documents_written,
            self.bytes_written,
            self._schema,
            self.commit_ts.copy(),
        )

    def rollback_to(self, savepoint: tuple[Any, ...]) -> None:
        """Undo every write buffered since ``savepoint`` (reads stay in the read set)."""
        writes, new_tables, documents_written, bytes_written, schema, commit_ts = savepoint
        self.commit_ts = commit_ts.copy()
        self._writes, self._new_tables = dict(writes), dict(new_tables)
        self.documents_written, self.bytes_written = documents_written, bytes_written
        self._schema = schema

    # -- for the committer and the query executor ------------------------------

    def pending_commit(self) -> PendingCommit:
        writes = tuple(Write(w.doc_id, w.table, w.prev_ts, w.value) for w in self._writes.values())
        return PendingCommit(self.snapshot_ts, self.read_set, writes, self.commit_ts.frozen())

    def has_writes(self) -> bool:
        return bool(self._writes)

    def close(self) -> None:
        self._snapshot.close()

    def table_name(self, number: int) -> str | None:
        name = self._catalog.name_of(number)
        if name is None:
            for table, n in self._new_tables.items():
                if n == number:
                    return table
            name = self._committed_table(lambda doc: doc["number"] == number, "name")
        return name

    def table_number(self, table: str) -> int | None:
        number = self._catalog.number_of(table)
        if number is None:
            number = self._new_tables.get(table)
        if number is None:
            number = self._committed_table(lambda doc: doc["name"] == table, "number")
        return number

    def _committed_table(self, match: Callable[[dict], bool], field: str) -> Any:
        """A table the snapshot holds that the catalog has not heard of yet.

        The committer tells the catalog about a new table just after the commit
        becomes visible, so a snapshot taken in between must look for itself;
        otherwise one transaction could see a table's documents in one read and
        miss the table in the next (a text search returning nothing, say).
        """
        meta = self._catalog.number_of(TABLES_TABLE)
        assert meta is not None
        for _, doc in self._snapshot.iter_table(meta):
            if match(doc):
                self._catalog.observe([doc])
                return doc[field]
        return None

    def pending_writes_of(self, table: str) -> Iterable[PendingWrite]:
        return [w for w in self._writes.values() if w.table == table]

    def read_document(self, skey: bytes) -> dict | None:
        pending = self._writes.get(skey)
        if pending is not None:
            return None if pending.value is None else copy_value(pending.value)
        found = self._snapshot.get(skey)
        if found is None:
            return None
        self.count_read(found[1])
        return found[1]

    def count_read(self, doc: dict) -> None:
        self.documents_read += 1
        self.bytes_read += value_size(doc)
        if self.documents_read > self.limits.documents_read_max:
            raise LimitExceededError(
                f"Too many documents read in a single function execution "
                f"(limit: {self.limits.documents_read_max}).",
                code="TooManyDocumentsRead",
            )
        if self.bytes_read > self.limits.read_bytes_max:
            raise LimitExceededError(
                f"Too many bytes read in a single function execution "
                f"(limit: {self.limits.read_bytes_max} bytes).",
                code="TooManyBytesRead",
            )

    def count_index_range(self) -> None:
        self.index_ranges += 1
        if self.index_ranges > self.limits.index_ranges_max:
            raise LimitExceededError(
                f"Too many reads in a single function execution "
                f"(limit: {self.limits.index_ranges_max} db.get and db.query calls).",
                code="TooManyReads",
            )

    def schema(self) -> Schema:
        """The schema this transaction writes under (read-tracked: a schema change conflicts)."""
        if self._schema is None:
            pending = self._writes.get(decode_id(SCHEMA_DOC_ID).storage_key())
            if pending is not None and pending.value is not None:
                self._schema = parse_schema(pending.value["json"])
            else:
                self._reads.add_point(by_id_index(SCHEMAS_TABLE), id_key(SCHEMA_DOC_ID))
                self._schema = self._snapshot.schema()
        return self._schema

    def snapshot_schema(self) -> Schema:
        """The schema at the snapshot, for reads (indexes)."""
        return self._snapshot.schema()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def reads(self) -> ReadSetBuilder:
        return self._reads

    def register_stream(self, stream: Any) -> None:
        self._streams.append(stream)

    def write_system(self, table: str, doc_id: str, value: dict | None) -> None:
        """Write a system document with a fixed id (schema, modules): no user rules."""
        self._require_writable()
        parsed = decode_id(doc_id)
        skey = parsed.storage_key()
        self._reads.add_point(by_id_index(table), id_key(doc_id))
        exists = self.read_document(skey) is not None
        if value is not None:
            value = {"_id": doc_id, "_creationTime": self._next_creation_ms(), **value}
        prev = self._version_ts(skey) if exists else None
        if skey in self._writes:
            prev = self._writes[skey].prev_ts
        self._writes[skey] = PendingWrite(doc_id, table, skey, prev, value)
        if table == SCHEMAS_TABLE:
            self._schema = None

    # -- internals -------------------------------------------------------------

    def _require_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyError("Cannot write in a read-only transaction (a query).")

    def _decode(self, doc_id: str, table: str | None) -> DocumentId:
        if not isinstance(doc_id, str):
            raise InvalidIdError(f"Expected an id string, got {type(doc_id).__name__}.")
        parsed = decode_id(doc_id)
        if table is not None:
            actual = self.table_name(parsed.table_number)
            if actual != table:
                raise InvalidIdError(
                    f'Invalid argument `id`, expected to be an Id<"{table}">, '
                    f'got Id<"{actual}"> instead.',
                    code="InvalidTable",
                )
        return parsed

    def _existing(self, doc_id: str, table: str | None, verb: str) -> tuple[str, DocumentId, dict]:
        parsed = self._decode(doc_id, table)
        name = self.table_name(parsed.table_number)
        current = None if name is None else self.get(doc_id)
        if name is None or current is None:
            raise DocumentNotFoundError(
                f"Delete on nonexistent document ID {doc_id}"
                if verb == "delete"
                else f"Update on nonexistent document ID {doc_id}"
            )
        if is_system_table(name):
            raise InvalidValueError(
                f"System table {name} cannot be modified.", code="SystemTableError"
            )
        return name, parsed, current

    def _version_ts(self, skey: bytes) -> int | None:
        pending = self._writes.get(skey)
        if pending is not None:
            return pending.prev_ts
        found = self._snapshot.get(skey)
        return None if found is None else found[0]

    def _stage_update(self, doc_id: str, table: str, parsed: DocumentId, doc: dict, kept=()) -> Any:
        skey = parsed.storage_key()
        return self._stage(doc_id, table, parsed, self._version_ts(skey), doc, kept)

    def _stage(
        self, doc_id: str, table: str, parsed: DocumentId, prev_ts: int | None, doc: Any, kept=()
    ) -> Any:
        """Stage ``doc`` (None: a delete); ``kept``: fields a patch left as they were."""
        skey = parsed.storage_key()
        size, placeholders = 0, frozenset()
        if doc is not None:
            doc, placeholders = self.commit_ts.view(doc_id, doc, kept)
            size = check_document(doc)
            validate_document(self.schema(), table, doc, table_of_id=self.table_of_id)
        self._count_write(size)
        self.commit_ts.record(doc_id, placeholders)
        pending = self._writes.get(skey)
        if pending is not None:
            prev_ts = pending.prev_ts
        self._writes[skey] = PendingWrite(doc_id, table, skey, prev_ts, doc)
        return doc

    def _count_write(self, size: int) -> None:
        """Count a user write of ``size`` bytes (0: a delete) against the limits; one
        past a limit is refused (Convex's words)."""
        self.documents_written += 1
        self.bytes_written += size
        if self.documents_written > self.limits.documents_written_max:
            raise LimitExceededError(
                f"Too many writes in a single function execution "
                f"(limit: {self.limits.documents_written_max})",
                code="TooManyWrites",
            )
        if self.bytes_written > self.limits.written_bytes_max:
            raise LimitExceededError(
                f"Too many bytes written in a single function execution "
                f"(limit: {format_bytes(self.limits.written_bytes_max)})",
                code="TooManyBytesWritten",
            )

    def table_of_id(self, id_string: str) -> str | None:
        try:
            parsed = decode_id(id_string)
        except InvalidIdError:
            return None
        return self.table_name(parsed.table_number)

    def _user_fields(self, value: Any, verb: str) -> dict:
        if not isinstance(value, dict):
            raise InvalidValueError(f"{verb} takes an object, got {type(value).__name__}.")
        for key in SYSTEM_FIELDS:
            if key in value:
                raise InvalidValueError(
                    f"Field {key} is set by the database and cannot be given to {verb}."
                )
        return {k: v for k, v in value.items() if v is not UNSET}

    def _check_system_fields(self, fields: dict, current: dict) -> None:
        for key in SYSTEM_FIELDS:
            if key in fields and fields[key] != current[key]:
                raise InvalidValueError(f"System field {key} cannot be changed.")

    def _table_number_for_insert(self, table: str) -> int:
        number = self.table_number(table)
        if number is not None:
            return number
        # Creating a table: read all of _tables so a concurrent creation conflicts.
        self._reads.add(by_id_index(TABLES_TABLE), b"", None)
        number = self._catalog.next_free_number(self._new_tables.values())
        self._new_tables[table] = number
        meta_number = self._catalog.number_of(TABLES_TABLE)
        assert meta_number is not None
        meta_id = encode_id(meta_number, new_internal_id(self._random_bytes, self._begin_ms))
        doc = {
            "_id": meta_id,
            "_creationTime": self._next_creation_ms(),
            "name": table,
            "number": number,
        }
        parsed = decode_id(meta_id)
        self._writes[parsed.storage_key()] = PendingWrite(
            meta_id, TABLES_TABLE, parsed.storage_key(), None, doc
        )
        return number

    def _next_creation_ms(self) -> float:
        """Creation times are unique and increasing within a transaction."""
        candidate = max(self._begin_ms, math.nextafter(self._last_creation_ms, math.inf))
        self._last_creation_ms = candidate
        return candidate
