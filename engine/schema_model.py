"""The parsed schema: tables, their indexes and validators, and the JSON they write back.

Apart from reading and checking schema JSON (``engine.schema``, which re-exports
these names): the model is what queries, indexes and pushes hold, while the
parsing rules are long and run once per push.

Index key layout: an index over user fields ``f1..fn`` is keyed by
``(f1, .., fn, _creationTime, _id)``; ``IndexDef.fields`` is that full layout.
Every table has ``by_id`` = ``(_id,)`` and ``by_creation_time`` =
``(_creationTime, _id)``. The stored form of a schema may already list
``_creationTime`` last; that is accepted and means the same index.

Staged database indexes (npm 1.47+, ``staged: true``) are built as Convex builds
them, backfilled and kept up to date, but a query may not use one until a later
schema enables it (``IndexStagedError``): ``built_index_defs`` lists them,
``index_defs`` (what queries may read) does not. Staged search and vector indexes
are parsed, checked and kept for ``to_json`` only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine.limits import LIMITS
from engine.validators import Validator, validator_to_json

ID_FIELD = "_id"
CREATION_TIME_FIELD = "_creationTime"
BY_ID = "by_id"
BY_CREATION_TIME = "by_creation_time"
RESERVED_INDEX_NAMES = frozenset({BY_ID, BY_CREATION_TIME})
# What ends every user index key: the order of documents with equal user fields.
INDEX_TAIL = (CREATION_TIME_FIELD, ID_FIELD)


@dataclass(frozen=True)
class IndexDef:
    """A database index; ``fields`` is the full key layout, ending ``_creationTime, _id``."""

    table: str
    name: str
    fields: tuple[str, ...]

    @property
    def user_fields(self) -> tuple[str, ...]:
        """The fields the user listed (the layout without its implicit tail)."""
        if self.fields[-len(INDEX_TAIL) :] == INDEX_TAIL:
            return self.fields[: -len(INDEX_TAIL)]
        return self.fields[:-1]  # by_id


@dataclass(frozen=True)
class SearchIndexDef:
    table: str
    name: str
    search_field: str
    filter_fields: tuple[str, ...]


@dataclass(frozen=True)
class VectorIndexDef:
    table: str
    name: str
    vector_field: str
    dimensions: int
    filter_fields: tuple[str, ...]


@dataclass(frozen=True)
class TableSchema:
    """One table of a schema; ``indexes`` holds only the user's (active) indexes."""

    name: str
    indexes: tuple[IndexDef, ...] = ()
    search_indexes: tuple[SearchIndexDef, ...] = ()
    vector_indexes: tuple[VectorIndexDef, ...] = ()
    document_validator: Validator | None = None
    staged_indexes: tuple[IndexDef, ...] = ()
    staged_search_indexes: tuple[SearchIndexDef, ...] = ()
    staged_vector_indexes: tuple[VectorIndexDef, ...] = ()
    staged_document_validator: Validator | None = None


@functools.lru_cache(maxsize=LIMITS.builtin_index_cache_entries_max)
def builtin_index_defs(table: str) -> tuple[IndexDef, IndexDef]:
    """``by_id`` and ``by_creation_time``, which every table has."""
    return (
        IndexDef(table, BY_ID, (ID_FIELD,)),
        IndexDef(table, BY_CREATION_TIME, INDEX_TAIL),
    )


@dataclass(frozen=True)
class Schema:
    """A parsed schema. ``tables`` keeps the order of the schema document."""

    tables: Mapping[str, TableSchema]
    schema_validation: bool
    _index_defs: Mapping[str, tuple[IndexDef, ...]] = field(init=False, repr=False, compare=False)
    _built_defs: Mapping[str, tuple[IndexDef, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tables = MappingProxyType(dict(self.tables))
        object.__setattr__(self, "tables", tables)
        defs = {name: builtin_index_defs(name) + t.indexes for name, t in tables.items()}
        object.__setattr__(self, "_index_defs", defs)
        built = {name: defs[name] + t.staged_indexes for name, t in tables.items()}
        object.__setattr__(self, "_built_defs", built)

    @classmethod
    def empty(cls) -> Schema:
        """No tables declared, nothing validated: the state before any schema is pushed."""
        return cls({}, False)

    def index_defs(self, table: str) -> tuple[IndexDef, ...]:
        """Every index of ``table``: the built-ins first, then the user's in schema order."""
        found = self._index_defs.get(table)
        return builtin_index_defs(table) if found is None else found

    def built_index_defs(self, table: str) -> tuple[IndexDef, ...]:
        """``index_defs`` and the staged database indexes: every index kept up to date."""
        found = self._built_defs.get(table)
        return builtin_index_defs(table) if found is None else found

    def staged_index(self, table: str, name: str) -> IndexDef | None:
        found = self.tables.get(table)
        if found is None:
            return None
        return next((i for i in found.staged_indexes if i.name == name), None)

    def find_index(self, table: str, name: str) -> IndexDef | None:
        for index in self.index_defs(table):
            if index.name == name:
                return index
        return None

    def to_json(self) -> dict[str, Any]:
        """The canonical schema JSON (module docstring); ``parse_schema`` reads it back."""
        return {
            "tables": [_table_to_json(t) for t in self.tables.values()],
            "schemaValidation": self.schema_validation,
        }


def _table_to_json(t: TableSchema) -> dict[str, Any]:
    def validator(v: Validator | None) -> Any:
        return None if v is None else validator_to_json(v)

    return {
        "tableName": t.name,
        "indexes": [_index_to_json(i) for i in t.indexes],
        "stagedDbIndexes": [_index_to_json(i) for i in t.staged_indexes],
        "searchIndexes": [_search_to_json(i) for i in t.search_indexes],
        "stagedSearchIndexes": [_search_to_json(i) for i in t.staged_search_indexes],
        "vectorIndexes": [_vector_to_json(i) for i in t.vector_indexes],
        "stagedVectorIndexes": [_vector_to_json(i) for i in t.staged_vector_indexes],
        "documentType": validator(t.document_validator),
        "stagedDocumentType": validator(t.staged_document_validator),
    }


def _index_to_json(index: IndexDef) -> dict[str, Any]:
    return {"indexDescriptor": index.name, "fields": list(index.user_fields)}


def _search_to_json(index: SearchIndexDef) -> dict[str, Any]:
    return {
        "indexDescriptor": index.name,
        "searchField": index.search_field,
        "filterFields": list(index.filter_fields),
    }


def _vector_to_json(index: VectorIndexDef) -> dict[str, Any]:
    return {
        "indexDescriptor": index.name,
        "vectorField": index.vector_field,
        "dimensions": index.dimensions,
        "filterFields": list(index.filter_fields),
    }
