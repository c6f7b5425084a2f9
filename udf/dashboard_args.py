"""The dashboard functions' arguments checked, each refusal a clear sentence.

Shared by the `data:*` modules: tables named by component and local name,
commit timestamps as decimal strings, bounded counts. Every refusal is a
``HeadwaterError`` with code ``BadArgs`` raised before anything is read or written.
"""

from __future__ import annotations

from typing import Any

from engine.components import ROOT, SEPARATOR, qualified_table
from engine.errors import HeadwaterError
from engine.system_tables import TABLES_TABLE, is_system_table
from engine.transaction import Transaction

# System tables whose documents a user may browse (stored files, scheduled functions).
BROWSABLE_SYSTEM_TABLES = ("_storage", "_scheduled_functions")


def bad_args(message: str) -> HeadwaterError:
    return HeadwaterError(message, code="BadArgs")


def string_arg(args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise bad_args(f"`{name}` must be a string, got {_kind(value)}.")
    return value


def optional_string(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_args(f"`{name}` must be a string or null, got {_kind(value)}.")
    return value


def count_arg(args: dict[str, Any], name: str, maximum: int, *, default: int | None = None) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise bad_args(f"`{name}` must be a number, got {_kind(value)}.")
    if value != int(value) or not 1 <= value <= maximum:
        raise bad_args(f"`{name}` must be a whole number from 1 to {maximum}, got {value}.")
    return int(value)


def ts_arg(args: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    """A commit timestamp sent as a decimal string of nanoseconds (or an Int64)."""
    value = args.get(name)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 19:
        return int(value)
    raise bad_args(
        f"`{name}` must be a commit timestamp: a decimal string of nanoseconds, got {value!r}."
    )


def table_arg(tx: Transaction, args: dict[str, Any]) -> str:
    """The catalog name of the table the call names (``table`` in ``component``), which
    must exist at the snapshot: else 'Table "x" does not exist.'"""
    table = string_arg(args, "table")
    component = ROOT if args.get("component") is None else string_arg(args, "component")
    name = qualified_table(component, table)
    malformed = not table or SEPARATOR in table
    hidden = is_system_table(table) and table not in BROWSABLE_SYSTEM_TABLES
    if malformed or hidden:
        raise HeadwaterError(f'Table "{name}" does not exist.', code="TableNotFound")
    if tx.table_number(name) is None:
        # Read the table list, so a subscription re-runs when the table appears; a
        # table the schema declares exists (empty) before its first document.
        tx.query(TABLES_TABLE).collect()
        if name not in tx.snapshot_schema().tables:
            raise HeadwaterError(f'Table "{name}" does not exist.', code="TableNotFound")
    return name


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
