"""A component's schema placed in the one catalog: its tables under qualified names.

A component declares tables by their plain names (``tokens``); its instance at
``limiter`` stores them as ``limiter/tokens`` (``engine.components``). The
deployment's active schema is the app's schema and every instance's schema
renamed this way, merged into one, so index diffs, backfills, the data check
and write validation treat a component's tables like any other. ``v.id("tokens")``
inside a component's validators names the component's own table, so it is
renamed too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.components import ROOT, qualified_table, split_table
from engine.schema_model import Schema, TableSchema
from engine.validators import FieldValidator, Validator, VId


def qualify_schema(schema: Schema, component_path: str) -> Schema:
    """``schema`` as the instance at ``component_path`` stores it (the app's: unchanged)."""
    if component_path == ROOT:
        return schema
    tables = {}
    for name, table in schema.tables.items():
        qualified = qualified_table(component_path, name)
        tables[qualified] = _qualify_table(table, component_path, qualified)
    return Schema(tables, schema.schema_validation)


def merge_schemas(by_component: Mapping[str, Schema]) -> Schema:
    """One schema holding every component's (already qualified) tables.

    The merged flag is on when any component validates; a component that does not
    validate keeps no document validator, so its tables stay unchecked."""
    validation = any(s.schema_validation for s in by_component.values())
    tables: dict[str, TableSchema] = {}
    for _, schema in sorted(by_component.items()):
        for name, table in schema.tables.items():
            if validation and not schema.schema_validation:
                table = dataclasses.replace(
                    table, document_validator=None, staged_document_validator=None
                )
            tables[name] = table
    return Schema(tables, validation)


def component_tables(schema: Schema, component_path: str) -> Schema:
    """The part of a merged schema that belongs to one component (names kept qualified)."""
    tables = {n: t for n, t in schema.tables.items() if split_table(n)[0] == component_path}
    return Schema(tables, schema.schema_validation)


def _qualify_table(table: TableSchema, component_path: str, qualified: str) -> TableSchema:
    def indexes(found: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(dataclasses.replace(i, table=qualified) for i in found)

    return dataclasses.replace(
        table,
        name=qualified,
        indexes=indexes(table.indexes),
        search_indexes=indexes(table.search_indexes),
        vector_indexes=indexes(table.vector_indexes),
        staged_indexes=indexes(table.staged_indexes),
        staged_search_indexes=indexes(table.staged_search_indexes),
        staged_vector_indexes=indexes(table.staged_vector_indexes),
        document_validator=_qualify_ids(table.document_validator, component_path),
        staged_document_validator=_qualify_ids(table.staged_document_validator, component_path),
    )


def _qualify_ids(validator: Any, component_path: str) -> Any:
    """The validator with every ``v.id(table)`` naming the component's qualified table.

    System tables (``v.id("_scheduled_functions")``, ``"_storage"``) are the
    deployment's, shared by every component: their names stay as they are."""
    if isinstance(validator, VId):
        if validator.table_name.startswith("_"):
            return validator
        return VId(qualified_table(component_path, validator.table_name))
    if isinstance(validator, FieldValidator):
        return dataclasses.replace(
            validator, validator=_qualify_ids(validator.validator, component_path)
        )
    if isinstance(validator, tuple):
        return tuple(_qualify_ids(v, component_path) for v in validator)
    if not isinstance(validator, Validator) or not dataclasses.is_dataclass(validator):
        return validator
    changes = {
        f.name: _qualify_ids(getattr(validator, f.name), component_path)
        for f in dataclasses.fields(validator)
        if f.init
    }
    return dataclasses.replace(validator, **changes)
