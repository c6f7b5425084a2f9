"""What a streaming export reads: components, their tables, and columns.

Convex's streaming export takes one of: nothing (everything), ``tableName``
(+ ``component``, default the app ``""``), ``component`` alone (all its tables),
or ``selection``, a tree (backend ``crates/common/src/types/streaming_export/selection.rs``)::

    {"_other": "included"|"excluded",
     "<component path>": "excluded" | {"_other": ...,
         "<table>": "excluded" | {"_other": ..., "<column>": "included"|"excluded"}}}

``incl``/``excl`` are accepted for ``included``/``excluded``; a column selection
must keep ``_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidQueryError
from engine.system_tables import is_system_table
from engine.values import is_identifier

_INCLUSION = {"included": True, "incl": True, "excluded": False, "excl": False}


@dataclass(frozen=True)
class ColumnSelection:
    columns: Mapping[str, bool] = field(default_factory=dict)
    other: bool = True

    def includes(self, column: str) -> bool:
        return self.columns.get(column, self.other)

    def filter(self, doc: dict[str, Any]) -> dict[str, Any]:
        if not self.columns and self.other:
            return doc
        return {k: v for k, v in doc.items() if self.includes(k)}


ALL_COLUMNS = ColumnSelection()


@dataclass(frozen=True)
class ComponentSelection:
    tables: Mapping[str, ColumnSelection | None] = field(default_factory=dict)
    other: bool = True


@dataclass(frozen=True)
class ExportSelection:
    components: Mapping[str, ComponentSelection | None] = field(default_factory=dict)
    other: bool = True

    def columns(self, component: str, table: str) -> ColumnSelection | None:
        """The columns exported of ``table`` in ``component``; None: the table is not."""
        if is_system_table(table):
            return None
        if component not in self.components:
            return ALL_COLUMNS if self.other else None
        chosen = self.components[component]
        if chosen is None:
            return None
        if table not in chosen.tables:
            return ALL_COLUMNS if chosen.other else None
        return chosen.tables[table]


EVERYTHING = ExportSelection()


def export_selection(
    table: object = None, component: object = None, selection: object = None
) -> ExportSelection:
    """The selection the request's ``tableName``/``component``/``selection`` name."""
    if component is not None and not isinstance(component, str):
        raise _invalid(f"component must be a component path string, got {component!r:.80}.")
    if selection is not None:
        if table is not None or component is not None:
            raise _invalid("Pass either selection or tableName/component, not both.")
        return _parse_selection(selection)
    if table is not None:
        _check_table_name(table)
        assert isinstance(table, str)
        only = ComponentSelection({table: ALL_COLUMNS}, other=False)
        return ExportSelection({component or "": only}, other=False)
    if component is not None:
        return ExportSelection({component: ComponentSelection()}, other=False)
    return EVERYTHING


def _check_table_name(table: object) -> None:
    if not isinstance(table, str) or not is_identifier(table):
        raise InvalidQueryError(f"Invalid table name {table!r:.80}.", code="InvalidTableName")
    if is_system_table(table):
        raise InvalidQueryError(
            f"System table {table} is not exported; name a user table.",
            code="InvalidTableName",
        )


def _parse_selection(raw: object) -> ExportSelection:
    other, entries = _tree(raw, "selection")
    components: dict[str, ComponentSelection | None] = {}
    for path, sub in entries.items():
        if _excluded(sub):
            components[path] = None
            continue
        tables_other, tables = _tree(sub, f"selection[{path!r}]")
        chosen: dict[str, ColumnSelection | None] = {}
        for table, columns in tables.items():
            _check_table_name(table)
            where = f"selection[{path!r}][{table!r}]"
            if _excluded(columns):
                chosen[table] = None
                continue
            columns_other, named = _tree(columns, where)
            inclusion = {c: _inclusion(v, f"{where}[{c!r}]") for c, v in named.items()}
            column_selection = ColumnSelection(inclusion, columns_other)
            if not column_selection.includes("_id"):
                raise _invalid(f"Invalid selection: `_id` must be included in {where}.")
            chosen[table] = column_selection
        components[path] = ComponentSelection(chosen, tables_other)
    return ExportSelection(components, other)


def _tree(raw: object, where: str) -> tuple[bool, dict[str, Any]]:
    if not isinstance(raw, dict) or "_other" not in raw:
        raise _invalid(f'Invalid selection: {where} must be "excluded" or an object with "_other".')
    entries = {k: v for k, v in raw.items() if k != "_other"}
    return _inclusion(raw["_other"], f"{where}._other"), entries


def _excluded(raw: object) -> bool:
    return isinstance(raw, str) and _INCLUSION.get(raw) is False


def _inclusion(raw: object, where: str) -> bool:
    found = _INCLUSION.get(raw) if isinstance(raw, str) else None
    if found is None:
        raise _invalid(f'Invalid selection: {where} must be "included" or "excluded".')
    return found


def _invalid(message: str) -> InvalidQueryError:
    return InvalidQueryError(message, code="InvalidSelection")
