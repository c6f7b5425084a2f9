"""Checking an import whole before anything is written: the plan.

``plan_import`` reads every row of every table of an ``ImportSource`` once and
refuses the import (``ImportFileError``, Convex's kind and text) on the first
problem: a row that is not a document, a bad or foreign ``_id``, an id twice, a
document the schema refuses, or a table that holds documents when the mode is
``requireEmpty``. What it returns says, per table, how many documents the
import adds and deletes: the confirmation the CLI shows, and what
``engine.snapshot_import`` writes.

Modes (Convex's): ``requireEmpty`` (each imported table must be empty),
``append`` (add to it), ``replace`` (delete its documents first), ``replaceAll``
(also empty every table the import does not name).

The schema documents must match: the deployment's, or when it has none (or
``adopt_schema``), the snapshot's own ``_schema/schema.json``, which the import
then sets. A snapshot table keeps its number; a single table new to the
deployment takes the number of its first document's ``_id`` when free.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.convex_json import from_convex_json, from_export_json
from engine.database import Database
from engine.errors import HeadwaterError
from engine.ids import decode_id
from engine.import_sources import ImportFileError, ImportSource, SourceTable
from engine.schema import Schema, parse_schema, validate_document
from engine.schema_apply import schema_text
from engine.snapshot import Snapshot
from engine.storage_snapshot import read_storage_lines, storage_target_deletes
from engine.streaming_export import iter_table_at, user_tables_at
from engine.system_tables import FIRST_USER_TABLE_NUMBER, SYSTEM_TABLE_NUMBERS
from engine.values import check_document
from log.entry import Write

MODES = ("requireEmpty", "append", "replace", "replaceAll")
KEEP_PARSED_BYTES_MAX = 64 << 20
"""Up to this much document data, the plan keeps what it checked instead of reading twice."""


@dataclass(frozen=True)
class TablePlan:
    name: str
    number: int
    new: bool  # the import creates the table
    existing: int  # documents in the table now
    deleted: int  # documents the import deletes
    added: int  # documents the file adds
    source: SourceTable | None  # None: a table replaceAll empties


@dataclass(frozen=True)
class ImportPlan:
    mode: str
    tables: tuple[TablePlan, ...]  # by name
    schema_text: str | None  # the snapshot's schema, to set (None: keep the deployment's)
    snapshot_ts: int
    parsed: dict[str, list[tuple[dict[str, Any], int]]] | None  # (document, size), if kept
    storage: tuple[dict[str, Any], ...] = ()  # the ZIP's stored files (storage_snapshot)
    storage_deletes: tuple[Write, ...] = ()  # the deployment's files the mode deletes

    @property
    def documents(self) -> int:
        return sum(t.added for t in self.tables)

    @property
    def require_manual_confirmation(self) -> bool:
        """Deleting documents needs a yes (Convex asks then)."""
        return any(t.deleted for t in self.tables)

    def confirmation_message(self) -> str:
        """Convex's change summary: a table of create / delete counts, then the note."""
        lines = []
        if self.tables:
            lines.append("Import change summary:")
            rows = [("table", "create", "delete")]
            rows += [
                (t.name, f"{t.added:,}", f"{t.deleted:,} of {t.existing:,}") for t in self.tables
            ]
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            for i, row in enumerate(rows):
                lines.append(
                    " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
                )
                if i == 0:
                    lines.append("-" * (sum(widths) + 3 + 3 + 2))
        lines.append(
            "Once the import has started, it will run in the background.\n"
            "Interrupting `npx convex import` will not cancel it."
        )
        return "\n".join(lines)


def plan_import(
    db: Database, source: ImportSource, mode: str, *, adopt_schema: bool = False
) -> ImportPlan:
    """Check the whole import against the deployment as it is now (module doc)."""
    if mode not in MODES:
        raise ImportFileError(f"unknown import mode {mode!r}", code="InvalidImportMode")
    tx = db.begin(writable=False)
    try:
        return _plan(tx.snapshot, source, mode, adopt_schema)
    finally:
        tx.close()


def _plan(snapshot: Snapshot, source: ImportSource, mode: str, adopt_schema: bool) -> ImportPlan:
    storage = read_storage_lines(source.zip_data, source.storage_files) if source.is_zip else []
    storage_deletes: tuple[Write, ...] = ()
    if storage or mode == "replaceAll":
        storage_deletes = tuple(storage_target_deletes(snapshot, storage, mode))
    current = dict(user_tables_at(snapshot))
    owners = {number: name for name, number in current.items()}
    schema, new_schema_text = _schema_for(snapshot.schema(), source.schema_text, adopt_schema)
    numbers = _numbers(source, current, owners)
    # Ids of system tables (a v.id("_storage") or v.id("_scheduled_functions") field)
    # name them by their fixed numbers, whether or not the import brings them.
    by_number = (
        {number: name for name, number in SYSTEM_TABLE_NUMBERS.items()}
        | {number: name for name, number in numbers.items()}
        | owners
    )
    sizes_total = 0
    parsed: dict[str, list[tuple[dict[str, Any], int]]] | None = {}
    plans = []
    for table in source.tables:
        existing = _count(snapshot, table.name) if table.name in current else 0
        if mode == "requireEmpty" and existing:
            raise ImportFileError(
                f"Table {table.name} already exists. Please choose a new table name or use "
                "replace/append modes.",
                code="TableExists",
            )
        number = numbers[table.name]
        kept: list[tuple[dict[str, Any], int]] = []
        count = 0
        for doc, size in _checked_documents(snapshot, table, number, mode, schema, by_number):
            sizes_total += size
            count += 1
            if parsed is None:
                continue
            kept.append((doc, size))
            if sizes_total > KEEP_PARSED_BYTES_MAX:
                parsed, kept = None, []  # too much to keep: the writes read the file again
        if parsed is not None:
            parsed[table.name] = kept
        deleted = existing if mode in ("replace", "replaceAll") else 0
        new = table.name not in current
        plans.append(TablePlan(table.name, number, new, existing, deleted, count, table))
    if mode == "replaceAll":  # every other table is emptied
        named = {t.name for t in source.tables}
        for name, number in current.items():
            if name not in named:
                existing = _count(snapshot, name)
                plans.append(TablePlan(name, number, False, existing, existing, 0, None))
    plans.sort(key=lambda t: t.name)
    return ImportPlan(
        mode, tuple(plans), new_schema_text, snapshot.ts, parsed, tuple(storage), storage_deletes
    )


def _schema_for(
    current: Schema, snapshot_text: str | None, adopt: bool
) -> tuple[Schema, str | None]:
    """The schema documents must match, and the snapshot's schema text if the import sets it."""
    if snapshot_text is None:
        return current, None
    current_text = schema_text(current)
    if not adopt and current_text != schema_text(Schema.empty()):
        return current, None  # the deployment's own schema rules
    return parse_schema(snapshot_text), None if snapshot_text == current_text else snapshot_text


def _numbers(
    source: ImportSource, current: dict[str, int], owners: dict[int, str]
) -> dict[str, int]:
    """Each imported table's number: kept from the snapshot, the table's own, the first
    ``_id``'s, or the smallest free one."""
    numbers: dict[str, int] = {}
    taken = set(owners) | set(SYSTEM_TABLE_NUMBERS.values())
    for table in source.tables:
        number = table.number
        if number is None:
            continue
        found, owner = current.get(table.name), owners.get(number)
        if (found is not None and found != number) or (owner is not None and owner != table.name):
            raise ImportFileError(
                f"Cannot import table {table.name!r} with number {number}: this deployment "
                + (
                    f"numbers {table.name!r} {found}"
                    if found is not None and found != number
                    else f"already uses number {number} for table {owner!r}"
                )
                + ", so the snapshot's ids would change meaning. Import into a new deployment.",
                code="ImportTableConflict",
            )
        if number in SYSTEM_TABLE_NUMBERS.values() or number in numbers.values():
            raise ImportFileError(
                f"table {table.name} wants table number {number}, which another table has",
                code="TableNumberConflict",
            )
        numbers[table.name] = number
        taken.add(number)
    for table in source.tables:
        if table.name in numbers:
            continue
        number = current.get(table.name)
        if number is None:
            wanted = _first_id_number(table)
            number = wanted if wanted is not None and wanted not in taken else _free(taken)
        numbers[table.name] = number
        taken.add(number)
    return numbers


def _free(taken: set[int]) -> int:
    number = FIRST_USER_TABLE_NUMBER
    while number in taken:
        number += 1
    return number


def _first_id_number(table: SourceTable) -> int | None:
    try:
        for _, row in table.rows():
            if isinstance(row, dict) and isinstance(row.get("_id"), str):
                number = decode_id(row["_id"]).table_number
                return number if number >= FIRST_USER_TABLE_NUMBER else None
            return None
    except HeadwaterError:
        return None  # the check reports the row properly
    return None


def _count(snapshot: Snapshot, table: str) -> int:
    return sum(1 for _ in iter_table_at(snapshot, table))


def _checked_documents(
    snapshot: Snapshot,
    table: SourceTable,
    number: int,
    mode: str,
    schema: Schema,
    by_number: dict[int, str],
) -> Iterator[tuple[dict[str, Any], int]]:
    """Every row of ``table`` as a document, checked (module doc), with its size;
    errors name the row."""
    seen: set[str] = set()

    def table_of_id(text: str) -> str | None:
        try:
            return by_number.get(decode_id(text).table_number)
        except HeadwaterError:
            return None

    for row_number, row in table.rows():
        doc, size = to_document(row, row_number, table.export_json)
        doc_id = doc.get("_id")
        if doc_id is not None:
            _check_id(doc_id, table.name, number)
            if doc_id in seen:
                raise ImportFileError(
                    f'Objects in table "{table.name}" have duplicate _id fields',
                    code="DuplicateId",
                )
            seen.add(doc_id)
            if mode == "append" and snapshot.get(decode_id(doc_id).storage_key()) is not None:
                raise ImportFileError(
                    f"_id {doc_id} cannot be imported into '{table.name}': a document with "
                    "this id already exists there. Use --replace to replace the table.",
                    code="ImportConflict",
                )
        validate_document(schema, table.name, doc, table_of_id=table_of_id)
        yield doc, size


def to_document(row: Any, row_number: int, export_json: bool) -> tuple[dict[str, Any], int]:
    """A row as a document (system fields kept if valid; others are assigned on write),
    with its size (``engine.values.value_size``, measured by the check)."""
    if not isinstance(row, dict):
        raise ImportFileError(f"Row {row_number} wasn't an object", code="NotAnObject")
    try:
        doc = from_export_json(row) if export_json else from_convex_json(row)
        created = doc.get("_creationTime")
        if "_creationTime" in doc and (
            type(created) is not float or not math.isfinite(created) or created <= 0
        ):
            del doc["_creationTime"]  # Convex assigns one when it is not a float
        size = check_document(doc)
    except HeadwaterError as exc:
        raise ImportFileError(
            f"Row {row_number} wasn't a valid Convex value: {exc.message}",
            code="InvalidConvexValue",
        ) from None
    return doc, size


def _check_id(doc_id: Any, table: str, number: int) -> None:
    try:
        if not isinstance(doc_id, str):
            raise ValueError
        found = decode_id(doc_id).table_number
    except (HeadwaterError, ValueError):
        raise ImportFileError(f"invalid _id '{doc_id}'", code="InvalidId") from None
    if found != number:
        raise ImportFileError(
            f"_id {doc_id} cannot be imported into '{table}' because it came from a different "
            "deployment and conflict with preexisting tables in this deployment. Try deleting "
            "preexisting tables or importing into an empty deployment.",
            code="ImportConflict",
        )
