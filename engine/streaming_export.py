"""Streaming export (http-api §7): a paged snapshot, then the changes after it.

A sync tool first pages through ``list_snapshot`` at one fixed ts, then follows
``document_deltas`` from that ts for ever. Neither skips nor repeats a version while
commits continue: every page of a snapshot reads at the same ts (older versions come
from the MVCC history), and deltas follow the log, whose entries never change once
written and become visible in ts order.

Rows are flattened documents: the document's fields plus ``_component`` (the component's
path, ``""`` for the app), ``_table`` (the table's name in that component) and ``_ts``
(the commit ts of the version, int64 ns); delta rows also carry ``_deleted``, and a
deleted row holds only ``_id``. With ``format=None`` rows hold Convex values (the
engine's Python form); with a format name (http-api §3.4) they are JSON-able, the
document encoded in that format and ``_ts`` kept a plain JSON integer, as the reference
server writes it. System tables are never exported. What is read (one table, one
component, a selection tree with columns) is ``engine.export_selection``.

Cursors. The snapshot cursor is JSON text ``{"table": name, "id": last id}``, opaque to
callers; it is valid only with the snapshot ts it came with. The deltas cursor is a ts:
the next page holds versions with ts strictly greater.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from engine.component_tables import component_tables_at, iter_table_at
from engine.components import split_table
from engine.convex_json import to_clean_json, to_convex_json, to_export_json
from engine.database import Database, storage_handles
from engine.errors import InvalidQueryError
from engine.export_selection import ExportSelection, export_selection
from engine.limits import LIMITS
from engine.snapshot import Snapshot
from engine.system_tables import TABLES_TABLE, is_system_table
from log.entry import LogEntry

SNAPSHOT_PAGE_SIZE = 1024
"""Documents per ``list_snapshot`` page by default (the reference's page size)."""
DELTAS_ROWS_MAX = 128
"""Rows per ``document_deltas`` page by default; a page ends on a transaction boundary."""
DELTAS_ENTRIES_SCANNED_MAX = 4096
"""Log entries one deltas page reads at most, so a table filter cannot make a page slow."""

_FORMATTERS: dict[str, Callable[[Any], Any]] = {
    "convex_encoded_json": to_convex_json,
    "convex_json": to_convex_json,
    "json": to_clean_json,
    "convex_clean_json": to_clean_json,
    "export_json": to_export_json,
}


class SnapshotPage(NamedTuple):
    values: list[dict[str, Any]]
    snapshot: int
    cursor: str | None
    has_more: bool


class DeltasPage(NamedTuple):
    values: list[dict[str, Any]]
    cursor: int
    has_more: bool


# -- list_snapshot -------------------------------------------------------------


def list_snapshot(
    db: Database,
    snapshot_ts: int | None = None,
    cursor: str | None = None,
    table: str | None = None,
    page_size: int = SNAPSHOT_PAGE_SIZE,
    format: str | None = None,
    *,
    component: str | None = None,
    selection: Any = None,
) -> SnapshotPage:
    """One page of every user document at ``snapshot_ts``, by table name, then ``_id``.

    The first call passes neither ``snapshot_ts`` nor ``cursor`` and gets the
    newest ts; later calls pass back the returned snapshot and cursor until
    ``has_more`` is false. ``table`` (of ``component``, default the app's),
    ``component`` alone or ``selection`` restrict what is read.
    """
    _check_page_size(page_size, "page_size")
    formatter = _formatter(format)
    chosen = export_selection(table, component, selection)
    if snapshot_ts is None and cursor is not None:
        raise InvalidQueryError(
            "list_snapshot: a cursor is only valid with the snapshot it was returned with; "
            "pass that snapshot too.",
            code="InvalidCursor",
        )
    if snapshot_ts is not None:
        _check_ts(snapshot_ts, "snapshot")
    start = None if cursor is None else _decode_snapshot_cursor(cursor)
    tx = db.begin(writable=False, ts=snapshot_ts)
    try:
        snapshot = tx.snapshot
        rows = _rows_from(snapshot, user_tables_at(snapshot), chosen, start)
        values: list[dict[str, Any]] = []
        last: tuple[str, str] | None = None
        has_more = False
        for name, version_ts, doc in rows:
            if len(values) == page_size:
                has_more = True
                break
            values.append(_snapshot_row(name, version_ts, chosen, doc, formatter))
            last = (name, doc["_id"])
        ts = snapshot.ts
    finally:
        tx.close()
    if last is not None:
        cursor = json.dumps({"table": last[0], "id": last[1]}, separators=(",", ":"))
    return SnapshotPage(values, ts, cursor, has_more)


def user_tables_at(snapshot: Snapshot) -> list[tuple[str, int]]:
    """(name, number) of every user table that exists at the snapshot, by name."""
    tables = []
    for _, doc in iter_table_at(snapshot, TABLES_TABLE):
        if not is_system_table(split_table(doc["name"])[1]):
            tables.append((doc["name"], doc["number"]))
    return sorted(tables)


def _rows_from(
    snapshot: Snapshot,
    tables: list[tuple[str, int]],
    chosen: ExportSelection,
    start: tuple[str, str] | None,
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    names = [name for name, _ in tables if _selected(chosen, name)]
    if start is not None:
        start_table, _ = start
        if start_table not in names and _selected(chosen, start_table) is None:
            raise InvalidQueryError(
                f"list_snapshot: the cursor is in table {start_table!r}, which this "
                "selection does not export.",
                code="InvalidCursor",
            )
        if start_table not in names:
            raise InvalidQueryError(
                f"list_snapshot: the cursor names table {start_table!r}, which does not exist "
                "at this snapshot.",
                code="InvalidCursor",
            )
        names = names[names.index(start_table) :]
    for name in names:
        after = start[1] if start is not None and name == start[0] else None
        for version_ts, doc in iter_table_at(snapshot, name, after):
            yield name, version_ts, doc


def _decode_snapshot_cursor(cursor: object) -> tuple[str, str]:
    bad = InvalidQueryError(
        f"list_snapshot: invalid cursor {cursor!r:.80}; pass back a cursor it returned.",
        code="InvalidCursor",
    )
    if not isinstance(cursor, str):
        raise bad
    try:
        parsed = json.loads(cursor)
    except ValueError:
        raise bad from None
    if (
        not isinstance(parsed, dict)
        or set(parsed) != {"table", "id"}
        or not isinstance(parsed["table"], str)
        or not isinstance(parsed["id"], str)
    ):
        raise bad
    return parsed["table"], parsed["id"]


def _selected(chosen: ExportSelection, qualified: str) -> Any:
    """The column selection of a catalog table, or None when it is not exported."""
    component, table = split_table(qualified)
    return chosen.columns(component, table)


def _snapshot_row(
    qualified: str,
    version_ts: int,
    chosen: ExportSelection,
    doc: dict[str, Any],
    formatter: Callable[[Any], Any] | None,
) -> dict[str, Any]:
    component, table = split_table(qualified)
    columns = chosen.columns(component, table)
    assert columns is not None
    doc = columns.filter(doc)
    fields = doc if formatter is None else formatter(doc)
    return {"_component": component, "_table": table, "_ts": version_ts, **fields}


# -- document_deltas -----------------------------------------------------------


def document_deltas(
    db: Database,
    cursor_ts: int | None,
    table: str | None = None,
    rows_max: int = DELTAS_ROWS_MAX,
    format: str | None = None,
    *,
    component: str | None = None,
    selection: Any = None,
) -> DeltasPage:
    """The document versions committed after ``cursor_ts``, ordered by (ts, ``_id``).

    A page holds whole transactions: it ends after the first transaction that
    brings it to ``rows_max`` rows. The returned cursor is the ts of the last
    transaction read or, when the log was read to its end, the newest ts.
    """
    if cursor_ts is None:
        raise InvalidQueryError(
            "document_deltas needs a cursor: the snapshot ts from list_snapshot, or the "
            "cursor of the previous page.",
            code="DocumentDeltasCursorRequired",
        )
    _check_ts(cursor_ts, "cursor")
    _check_page_size(rows_max, "rows_max")
    formatter = _formatter(format)
    chosen = export_selection(table, component, selection)
    env, log = storage_handles(db)
    latest = log.latest_ts()
    first = log.first_ts()
    if latest is None or first is None:
        return DeltasPage([], cursor_ts, False)
    if cursor_ts < first - 1:
        raise InvalidQueryError(
            f"document_deltas: cursor {cursor_ts} is older than the retained history, which "
            f"starts at ts {first}; start again from list_snapshot.",
            code="InvalidWindowToReadDocuments",
        )
    if cursor_ts > latest:
        raise InvalidQueryError(
            f"document_deltas: cursor {cursor_ts} is after the newest commit ({latest}); "
            "pass a cursor this server returned.",
            code="InvalidCursor",
        )
    values: list[dict[str, Any]] = []
    cursor = latest
    has_more = False
    if cursor_ts == latest:
        return DeltasPage(values, cursor, has_more)
    with env.begin() as txn:  # ending the read transaction ends the log cursor too
        entries = log.read_range(cursor_ts + 1, latest, txn)
        for scanned, entry in enumerate(entries, start=1):
            values.extend(_delta_rows(entry, chosen, formatter))
            if len(values) >= rows_max or scanned >= DELTAS_ENTRIES_SCANNED_MAX:
                cursor = entry.ts
                has_more = entry.ts < latest
                break
    return DeltasPage(values, cursor, has_more)


def _delta_rows(
    entry: LogEntry, chosen: ExportSelection, formatter: Callable[[Any], Any] | None
) -> list[dict[str, Any]]:
    rows = []
    for write in sorted(entry.writes, key=lambda w: w.id):
        if is_system_table(write.table):
            continue
        component, table = split_table(write.table)
        columns = chosen.columns(component, table)
        if columns is None:
            continue
        head = {"_component": component, "_table": table, "_ts": entry.ts}
        if write.value is None:
            rows.append({**head, "_deleted": True, "_id": write.id})
        else:
            doc = columns.filter(write.value)
            fields = doc if formatter is None else formatter(doc)
            rows.append({**head, "_deleted": False, **fields})
    return rows


# -- argument checks -----------------------------------------------------------


def _formatter(format: str | None) -> Callable[[Any], Any] | None:
    if format is None:
        return None
    found = _FORMATTERS.get(format) if isinstance(format, str) else None
    if found is None:
        raise InvalidQueryError(
            f"Unknown format {format!r}; use one of {', '.join(sorted(_FORMATTERS))}.",
            code="BadFormat",
        )
    return found


def _check_ts(ts: object, name: str) -> None:
    if type(ts) is not int or ts < 0:
        raise InvalidQueryError(
            f"{name} must be a non-negative integer timestamp (ns), got {ts!r:.60}.",
            code="InvalidCursor" if name == "cursor" else "InvalidSnapshot",
        )


def _check_page_size(size: object, name: str) -> None:
    if type(size) is not int or not 1 <= size <= LIMITS.page_size_max:
        raise InvalidQueryError(
            f"{name} must be an integer from 1 to {LIMITS.page_size_max}, got {size!r:.60}."
        )


# -- get_table_column_names ----------------------------------------------------

COLUMNS_SCANNED_MAX = 10_000
"""Documents per table whose fields make its column list (Convex allows a partial list)."""
_NO_SHAPE_COLUMNS = ["_creationTime", "_id"]


def table_column_names(
    db: Database, scanned_max: int = COLUMNS_SCANNED_MAX
) -> dict[str, list[dict[str, Any]]]:
    """``{component path: [{"name": table, "columns": [field, ...]}]}`` of every user
    table now (Fivetran's ``/api/get_table_column_names``): the top-level fields of
    its documents, sorted, or ``_creationTime`` and ``_id`` for an empty table, as
    Convex derives them from the table's shape."""
    tx = db.begin(writable=False)
    try:
        snapshot = tx.snapshot
        out: dict[str, list[dict[str, Any]]] = {}
        for t in component_tables_at(snapshot):
            fields: set[str] = set()
            for count, (_, doc) in enumerate(iter_table_at(snapshot, t.qualified)):
                if count >= scanned_max:
                    break
                fields.update(doc)
            columns = sorted(fields) if fields else list(_NO_SHAPE_COLUMNS)
            out.setdefault(t.component, []).append({"name": t.table, "columns": columns})
        return out
    finally:
        tx.close()
