"""The state of snapshot exports and imports, as documents in ``_exports`` and
``_snapshot_imports`` (so the CLI's subscriptions to them are live, and the
states are in the log like every other write).

An export document is Convex's ``_exports`` shape:
``{"state": "requested"|"in_progress"|"completed"|"failed", "start_ts", "format":
{"format": "zip", "include_storage"}, "requestor": "snapshotExport", ...}``.
An import document is Convex's ``_snapshot_imports`` shape: ``{"state": {"state":
"uploaded"|"waiting_for_confirmation"|"in_progress"|"completed"|"failed", ...},
"format": {"format": "zip"|"csv"|"jsonl"|"json_array", "table"?}, "mode", ...}``.
Timestamps are int64 nanoseconds, as in Convex.
"""

from __future__ import annotations

import os
import time
from typing import Any

from engine.database import Database
from engine.errors import HeadwaterError
from engine.ids import decode_id, encode_id, new_internal_id
from engine.system_tables import EXPORTS_TABLE, SNAPSHOT_IMPORTS_TABLE, SYSTEM_TABLE_NUMBERS
from engine.transaction import Transaction

EXPORT_EXPIRATION_NS = 14 * 24 * 3600 * 10**9
"""How long Convex keeps a snapshot export downloadable."""
EXPORTS_KEPT = 5
"""Export documents kept; older ones are deleted when a new export is requested."""
IMPORTS_KEPT = 20
"""Import documents kept (the CLI lists the newest 20); older ones are deleted."""


class ExportInProgressError(HeadwaterError):
    def __init__(self) -> None:
        super().__init__(
            "There is already an export requested or in progress.", code="ExportInProgress"
        )


def _new_id(table: str) -> str:
    return encode_id(SYSTEM_TABLE_NUMBERS[table], new_internal_id(os.urandom, time.time() * 1e3))


def _rewrite(tx: Transaction, table: str, doc: dict[str, Any], **fields: Any) -> None:
    """Replace a state document keeping its id and ``_creationTime``."""
    value = {k: v for k, v in doc.items() if k != "_id"} | fields
    tx.write_system(table, doc["_id"], value)


# -- exports ---------------------------------------------------------------------------


def latest_export(tx: Transaction) -> dict[str, Any] | None:
    """The newest export document (read-tracked over the whole table)."""
    docs = tx.query(EXPORTS_TABLE).collect()
    return max(docs, key=lambda d: d["_creationTime"], default=None)


def request_export(db: Database, include_storage: bool, *, running: bool) -> str:
    """A new ``requested`` export; refused while another is requested or in progress
    (``running``: whether this process is making it; one left by a stopped server fails)."""
    export_id = _new_id(EXPORTS_TABLE)

    def write(tx: Transaction) -> str:
        docs = sorted(tx.query(EXPORTS_TABLE).collect(), key=lambda d: d["_creationTime"])
        for doc in docs:
            if doc["state"] in ("requested", "in_progress"):
                if running:
                    raise ExportInProgressError()
                _rewrite(tx, EXPORTS_TABLE, doc, state="failed", failed_ts=time.time_ns())
        for doc in docs[: max(0, len(docs) - EXPORTS_KEPT + 1)]:
            tx.write_system(EXPORTS_TABLE, doc["_id"], None)
        tx.write_system(
            EXPORTS_TABLE,
            export_id,
            {
                "state": "requested",
                "format": {"format": "zip", "include_storage": include_storage},
                "component": None,
                "requestor": "snapshotExport",
                "expiration_ts": time.time_ns() + EXPORT_EXPIRATION_NS,
            },
        )
        return export_id

    return str(db.mutate(write).value)


def update_export(db: Database, export_id: str, state: str, **fields: Any) -> None:
    def write(tx: Transaction) -> None:
        doc = tx.get(export_id)
        if doc is not None:
            _rewrite(tx, EXPORTS_TABLE, doc, state=state, **fields)

    db.mutate(write)


def completed_export(tx: Transaction, start_ts: int) -> dict[str, Any] | None:
    for doc in tx.query(EXPORTS_TABLE).collect():
        if doc["state"] == "completed" and doc.get("start_ts") == start_ts:
            return doc
    return None


# -- imports ---------------------------------------------------------------------------


def get_import(tx: Transaction, import_id: str) -> dict[str, Any] | None:
    try:
        number = decode_id(import_id).table_number
    except HeadwaterError:
        return None
    if number != SYSTEM_TABLE_NUMBERS[SNAPSHOT_IMPORTS_TABLE]:
        return None
    return tx.get(import_id)


def list_imports(tx: Transaction) -> list[dict[str, Any]]:
    """The newest imports first, at most ``IMPORTS_KEPT``."""
    docs = tx.query(SNAPSHOT_IMPORTS_TABLE).collect()
    return sorted(docs, key=lambda d: d["_creationTime"], reverse=True)[:IMPORTS_KEPT]


def create_import(
    db: Database, fmt: dict[str, Any], mode: str, object_key: str, component_path: str = ""
) -> str:
    """A new import in state ``uploaded`` (into the component at ``component_path``, the
    app's by default); the oldest beyond ``IMPORTS_KEPT`` are deleted."""
    import_id = _new_id(SNAPSHOT_IMPORTS_TABLE)

    def write(tx: Transaction) -> str:
        docs = sorted(tx.query(SNAPSHOT_IMPORTS_TABLE).collect(), key=lambda d: d["_creationTime"])
        for doc in docs[: max(0, len(docs) - IMPORTS_KEPT + 1)]:
            tx.write_system(SNAPSHOT_IMPORTS_TABLE, doc["_id"], None)
        tx.write_system(
            SNAPSHOT_IMPORTS_TABLE,
            import_id,
            {
                "state": {"state": "uploaded"},
                "format": fmt,
                "mode": mode,
                "component_path": component_path or None,
                "object_key": object_key,
                "member_id": None,
                "checkpoints": None,
                "requestor": {"type": "snapshotImport"},
            },
        )
        return import_id

    return str(db.mutate(write).value)


def set_import_state(db: Database, import_id: str, state: dict[str, Any], **fields: Any) -> None:
    def write(tx: Transaction) -> None:
        doc = tx.get(import_id)
        if doc is not None:
            _rewrite(tx, SNAPSHOT_IMPORTS_TABLE, doc, state=state, **fields)

    db.mutate(write)


def import_object_keys(tx: Transaction) -> set[str]:
    """The upload files the kept import documents still name."""
    return {doc["object_key"] for doc in tx.query(SNAPSHOT_IMPORTS_TABLE).collect()}
