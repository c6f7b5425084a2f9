"""Writing a checked import (``engine.import_plan``) through the committer.

The writes are ordinary commits, so the import is in the log and everything
downstream (replay, document deltas, the Kafka exporter) sees it: first the
deletes ``replace``/``replaceAll`` make, in batches; then one commit creating
the new tables (and, for tables of a component the deployment does not know,
its ``_components`` document, "unmounted" as Convex makes it) and setting the
snapshot's schema (reading all of ``_tables``, so a table created meanwhile is
a conflict, not a clash); then each table's
documents in batches within the per-transaction limits (ids and
``_creationTime`` kept; a row without them gets fresh ones); then, for a
snapshot, its stored files (``engine.storage_snapshot``: bytes durable first, then
the documents), then one commit setting its environment variables
(``replaceAll``: removing the others).

Caveats: an import is many transactions, not one. Readers can see it half
done, and a failure part-way leaves the batches already written (import again
with replace). Run it while nothing else writes to the tables it touches.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from engine.blob_store import BlobStore
from engine.component_tables import (
    ACTIVE,
    UNMOUNTED,
    component_document,
    component_documents_at,
    component_id,
)
from engine.components import ROOT, parent_path, split_table
from engine.database import Database
from engine.environment_variables import import_variables
from engine.errors import ConflictError, InvalidValueError
from engine.file_storage import FILES_FOLDER
from engine.ids import encode_id, new_internal_id
from engine.import_plan import ImportPlan, TablePlan, plan_import, to_document
from engine.import_sources import ImportSource, open_source
from engine.key_encoding import encode_key
from engine.pending_commit import PendingCommit
from engine.read_set import ReadSet, ReadSetBuilder
from engine.schema import Schema
from engine.schema_apply import schema_text
from engine.snapshot_export import open_database
from engine.storage_snapshot import store_files
from engine.streaming_export import iter_table_at, user_tables_at
from engine.system_tables import (
    COMPONENTS_TABLE,
    SCHEMA_DOC_ID,
    SCHEMAS_TABLE,
    SYSTEM_TABLE_NUMBERS,
    TABLES_TABLE,
)
from engine.values import value_size
from log.entry import Write

_BATCHES_PER_GROUP = 4
"""Import batches handed to the committer at once: they share a durable write."""

Progress = Callable[[str, int], None]
"""Called with (table, documents written) after each table."""


@dataclass(frozen=True)
class ImportReport:
    tables: tuple[tuple[str, int], ...]  # (table, documents imported), by table name
    documents: int
    deleted: int
    commits: int
    last_ts: int | None


def import_snapshot(
    zip_file: str | os.PathLike[str] | IO[bytes],
    data: Database | str | os.PathLike[str],
    replace: bool = False,
) -> ImportReport:
    """``headwater import``: a snapshot ZIP into the deployment at ``data`` (a folder or
    an open Database). The deployment must be empty (no documents in user tables, and
    no other schema) unless ``replace``, which empties it first and sets the snapshot's
    schema. Ids and ``_creationTime`` are kept."""
    source = open_source(zip_file, "zip")
    with open_database(data, create=True) as db:
        if not replace:
            _check_empty(db, source)
        mode = "replaceAll" if replace else "requireEmpty"
        plan = plan_import(db, source, mode, adopt_schema=replace)
        return perform_import(db, source, plan)


def _check_empty(db: Database, source: ImportSource) -> None:
    tx = db.begin(writable=False)
    try:
        snapshot = tx.snapshot
        for name, _ in user_tables_at(snapshot):
            if next(iter_table_at(snapshot, name), None) is not None:
                raise InvalidValueError(
                    f"Cannot import into a deployment that holds documents (table {name!r} "
                    "has some). Import into an empty deployment, or pass replace to delete "
                    "them first.",
                    code="ImportTargetNotEmpty",
                )
        current = schema_text(snapshot.schema())
        if source.schema_text is not None and current not in (
            schema_text(Schema.empty()),
            source.schema_text,
        ):
            raise InvalidValueError(
                "Cannot import: the deployment has a different schema than the snapshot. "
                "Import into an empty deployment, or pass replace to replace its schema.",
                code="ImportTargetNotEmpty",
            )
    finally:
        tx.close()


def perform_import(
    db: Database, source: ImportSource, plan: ImportPlan, progress: Progress | None = None
) -> ImportReport:
    """Write ``plan`` (checked against the deployment at ``plan.snapshot_ts``)."""
    deletes = [
        (Write(doc["_id"], t.name, version_ts, None), 0)
        for t in plan.tables
        if t.deleted
        for version_ts, doc in iter_table_at_latest(db, t.name)
    ]
    deletes += [(write, 0) for write in plan.storage_deletes]
    commits = _commit_batches(db, iter(deletes))
    setup = _setup_writes(db, plan)
    if setup:
        commits.append(_commit_setup(db, setup, db.latest_ts()))
    clock = _CreationClock()
    written = []
    for table in plan.tables:
        if table.source is None:
            continue
        docs = _documents(plan, table)
        inserts = (_insert(doc, size, table, clock) for doc, size in docs)
        commits += _commit_batches(db, inserts)
        written.append((table.name, table.added))
        if progress is not None:
            progress(table.name, table.added)
    if plan.storage:
        blobs = BlobStore(Path(db.path) / FILES_FOLDER)
        stored = store_files(source.zip_data, list(plan.storage), blobs, db.limits)
        commits += _commit_batches(db, stored)
    if source.is_zip and (source.variables or plan.mode == "replaceAll"):
        ts = import_variables(db, source.variables, replace=plan.mode == "replaceAll")
        if ts is not None:
            commits.append(ts)
    return ImportReport(
        tuple(written),
        plan.documents,
        len(deletes),
        len(commits),
        commits[-1] if commits else None,
    )


def iter_table_at_latest(db: Database, table: str) -> Iterator[tuple[int, dict[str, Any]]]:
    tx = db.begin(writable=False)
    try:
        yield from iter_table_at(tx.snapshot, table)
    finally:
        tx.close()


def _documents(plan: ImportPlan, table: TablePlan) -> Iterator[tuple[dict[str, Any], int]]:
    if plan.parsed is not None:
        yield from plan.parsed[table.name]
        return
    assert table.source is not None
    for row_number, row in table.source.rows():
        yield to_document(row, row_number, table.source.export_json)


class _CreationClock:
    """Fresh ``_creationTime`` values: now, strictly increasing."""

    def __init__(self) -> None:
        self._last_ms = 0.0

    def next_ms(self) -> float:
        self._last_ms = max(time.time_ns() / 1e6, math.nextafter(self._last_ms, math.inf))
        return self._last_ms


def _insert(
    doc: dict[str, Any], size: int, table: TablePlan, clock: _CreationClock
) -> tuple[Write, int]:
    if "_id" not in doc or "_creationTime" not in doc:
        now_ms = clock.next_ms()
        doc_id = doc.get("_id") or encode_id(table.number, new_internal_id(os.urandom, now_ms))
        doc = {**doc, "_id": doc_id, "_creationTime": doc.get("_creationTime", now_ms)}
        size = value_size(doc)
    return Write(doc["_id"], table.name, None, doc), size


def _setup_writes(db: Database, plan: ImportPlan) -> list[Write]:
    tx = db.begin(writable=False)
    try:
        schema_ts = tx.snapshot.schema_version_ts()
        current_schema = schema_text(tx.snapshot.schema())
        known_components = set(component_documents_at(tx.snapshot))
    finally:
        tx.close()
    now_ms = time.time_ns() / 1e6
    writes = _new_component_writes(plan, known_components, now_ms)
    tables_number = SYSTEM_TABLE_NUMBERS[TABLES_TABLE]
    for table in plan.tables:
        if not table.new:
            continue
        now_ms = math.nextafter(now_ms, math.inf)
        doc_id = encode_id(tables_number, new_internal_id(os.urandom, now_ms))
        doc = {"_id": doc_id, "_creationTime": now_ms, "name": table.name, "number": table.number}
        writes.append(Write(doc_id, TABLES_TABLE, None, doc))
    if plan.schema_text is not None and plan.schema_text != current_schema:
        doc = {"_id": SCHEMA_DOC_ID, "_creationTime": now_ms, "json": plan.schema_text}
        writes.append(Write(SCHEMA_DOC_ID, SCHEMAS_TABLE, schema_ts, doc))
    return writes


def _new_component_writes(plan: ImportPlan, known: set[str], now_ms: float) -> list[Write]:
    """``_components`` documents for the components the file has tables of and the
    deployment does not know: created "unmounted" (and their parents), as Convex's
    import does (``snapshot_import/prepare_component.rs``); a later push mounts them."""
    wanted: set[str] = set()
    for table in plan.tables:
        path: str | None = split_table(table.name)[0]
        if table.source is None or path == ROOT:
            continue
        while path is not None and path not in known:
            wanted.add(path)
            path = parent_path(path)
    writes = []
    for path in sorted(wanted):
        state = ACTIVE if path == ROOT else UNMOUNTED
        doc_id = component_id(path)
        doc = {
            "_id": doc_id,
            "_creationTime": now_ms,
            **component_document(path, path, state=state),
        }
        writes.append(Write(doc_id, COMPONENTS_TABLE, None, doc))
    return writes


def _commit_setup(db: Database, writes: list[Write], snapshot_ts: int) -> int:
    # Reading all of _tables makes a table created concurrently a conflict, not a clash.
    reads = ReadSetBuilder()
    reads.add(f"{TABLES_TABLE}.by_id", b"", None)
    reads.add(f"{COMPONENTS_TABLE}.by_id", b"", None)
    reads.add_point(f"{SCHEMAS_TABLE}.by_id", encode_key([SCHEMA_DOC_ID]))
    try:
        return db.committer.commit(PendingCommit(snapshot_ts, reads.build(), tuple(writes)))
    except ConflictError:
        raise ConflictError(
            "Cannot import: tables or the schema changed while the import was being "
            "prepared. Nothing was imported after the deletes; run it again."
        ) from None


def _commit_batches(db: Database, writes: Iterator[tuple[Write, int]]) -> list[int]:
    """Commit (write, size) pairs in order, in batches within the per-transaction limits."""
    limits = db.limits
    committed: list[int] = []
    group: list[tuple[Write, ...]] = []
    batch: list[Write] = []
    total = 0
    for write, size in writes:
        full = len(batch) >= limits.documents_written_max
        if batch and (full or total + size > limits.written_bytes_max):
            group.append(tuple(batch))
            batch, total = [], 0
            if len(group) == _BATCHES_PER_GROUP:
                committed += _commit_group(db, group)
                group = []
        batch.append(write)
        total += size
    if batch:
        group.append(tuple(batch))
    if group:
        committed += _commit_group(db, group)
    return committed


def _commit_group(db: Database, group: list[tuple[Write, ...]]) -> list[int]:
    # An empty read set never conflicts; a fresh snapshot ts keeps OCC from refusing it as old.
    snapshot_ts = db.latest_ts()
    return db.committer.commit_entries(
        [PendingCommit(snapshot_ts, ReadSet.empty(), batch) for batch in group]
    )
