"""`data:insert`, `data:patch`, `data:replace`, `data:delete`: the dashboard's edits.

Each runs in one transaction through the same ``Transaction`` calls a function's
``ctx.db`` uses, so a document is checked exactly as there: Convex values, the
size limit, the active schema's validator (its text is Convex's), system tables
refused. Any failure writes nothing: a delete of several ids where one does not
exist deletes none. The commit is labelled ``_dashboard/<verb>`` in the log.
"""

from __future__ import annotations

from typing import Any

from engine.components import ROOT, qualified_table
from engine.ids import decode_id
from engine.transaction import Transaction
from udf.dashboard_args import bad_args, string_arg, table_arg

DELETE_IDS_MAX = 4096


def _document(args: dict[str, Any], name: str) -> dict[str, Any]:
    value = args.get(name)
    if not isinstance(value, dict):
        raise bad_args(f"`{name}` must be an object of fields.")
    return value


def _id(args: dict[str, Any], value: Any = None) -> str:
    doc_id = string_arg(args, "id") if value is None else value
    if not isinstance(doc_id, str):
        raise bad_args(f"Each id must be a string, got {doc_id!r}.")
    decode_id(doc_id)  # InvalidIdError: a clear "Unable to decode ID" sentence
    return doc_id


def insert(_context: Any, tx: Transaction, args: dict[str, Any]) -> str:
    document = _document(args, "document")
    component = args.get("component") or ROOT
    if component == ROOT and isinstance(args.get("table"), str):
        table = qualified_table(ROOT, args["table"])  # the app's may be a new table
    else:
        table = table_arg(tx, args)
    return tx.insert(table, document)


def patch(_context: Any, tx: Transaction, args: dict[str, Any]) -> None:
    doc_id = _id(args)
    fields = _document(args, "fields")
    tx.patch(doc_id, fields)
    return None


def replace(_context: Any, tx: Transaction, args: dict[str, Any]) -> None:
    doc_id = _id(args)
    tx.replace(doc_id, _document(args, "document"))
    return None


def delete(_context: Any, tx: Transaction, args: dict[str, Any]) -> float:
    ids = args.get("ids")
    if not isinstance(ids, list) or not ids:
        raise bad_args("`ids` must be a non-empty array of document ids.")
    if len(ids) > DELETE_IDS_MAX:
        # Convex's dashboard text (system-udfs `_system/frontend/deleteDocuments`).
        raise bad_args(
            f"You can't delete more than {DELETE_IDS_MAX}. Try selecting fewer documents instead.."
        )
    unique = list(dict.fromkeys(_id(args, value) for value in ids))
    for doc_id in unique:
        tx.delete(doc_id)
    return float(len(unique))
