"""Schemas: the tables, indexes and document validators an app declares.

A schema arrives as the JSON that the official ``defineSchema(...).export()``
writes (function-runtime §2.7). ``parse_schema`` checks it with the rules of
the reference server and ``Schema.to_json`` writes it back in one canonical
shape: every table with all eight keys, index fields as the user listed them
(without the implicit ``_creationTime`` and ``_id``), ``stagedDocumentType``
included. An npm export of that shape round-trips exactly.

The parsed form (tables, index definitions, their key layout and staged
indexes, ``Schema.to_json``) is ``engine.schema_model``; its names are
importable from here as well.

Caveats: tables that are not in the schema stay writable and unvalidated even
with ``schemaValidation`` on, as in the reference server and its docs ("your
schema will only validate documents in the tables listed in the schema").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import SchemaError, SchemaValidationError
from engine.limits import LIMITS
from engine.schema_model import (
    BY_CREATION_TIME,
    BY_ID,
    CREATION_TIME_FIELD,
    ID_FIELD,
    INDEX_TAIL,
    RESERVED_INDEX_NAMES,
    IndexDef,
    Schema,
    SearchIndexDef,
    TableSchema,
    VectorIndexDef,
    builtin_index_defs,
)
from engine.validation import validate
from engine.validators import (
    FieldValidator,
    Validator,
    VAny,
    VArray,
    VFloat64,
    VObject,
    VUnion,
    describe,
    parse_validator,
)
from engine.value_text import json_preview
from engine.values import is_identifier

__all__ = [
    "BY_CREATION_TIME",
    "BY_ID",
    "CREATION_TIME_FIELD",
    "ID_FIELD",
    "RESERVED_INDEX_NAMES",
    "IndexDef",
    "Schema",
    "SchemaChange",
    "SearchIndexDef",
    "TableSchema",
    "VectorIndexDef",
    "builtin_index_defs",
    "diff_schemas",
    "parse_schema",
    "validate_document",
]


# --- parsing ----------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    """``obj[key]`` checked to be a ``kind``; absent or null gives ``default``."""
    value = obj.get(key)
    if value is None:
        return default
    if type(value) is not kind:
        names = {list: "an array", str: "a string", dict: "an object", bool: "a boolean"}
        raise SchemaError(f'{where}: "{key}" must be {names[kind]}, got {type(value).__name__}')
    return value


def parse_schema(source: str | bytes | Mapping[str, Any]) -> Schema:
    """The schema that exported schema JSON (text or parsed) describes; SchemaError if invalid."""
    if isinstance(source, (str, bytes)):
        try:
            source = json.loads(source)
        except (ValueError, RecursionError) as exc:
            raise SchemaError(f"Invalid schema: not valid JSON ({exc})") from None
    if not isinstance(source, Mapping):
        raise SchemaError(f"Invalid schema: expected an object, got {type(source).__name__}")
    raw_tables = _get(source, "tables", list, "Invalid schema", [])
    # Schemas written before validation existed lack the flag; the reference reads them as off.
    validation = _get(source, "schemaValidation", bool, "Invalid schema", False)
    if len(raw_tables) > LIMITS.user_tables_max:
        raise SchemaError(
            f"Invalid schema: {len(raw_tables)} tables, more than user_tables_max = "
            f"{LIMITS.user_tables_max}"
        )
    tables: dict[str, TableSchema] = {}
    for position, raw in enumerate(raw_tables):
        if not isinstance(raw, Mapping):
            raise SchemaError(f"Invalid schema: tables[{position}] must be an object")
        table = _parse_table(raw)
        if table.name in tables:
            raise SchemaError(f'Invalid schema: table "{table.name}" is defined more than once')
        tables[table.name] = table
    schema = Schema(tables, validation)
    if validation:
        _check_index_references(schema)
    return schema


def _parse_table(raw: Mapping[str, Any]) -> TableSchema:
    name = raw.get("tableName")
    # A component's table is stored under "<component path>/<table>" (engine.components).
    if not isinstance(name, str) or not all(is_identifier(p) for p in name.split("/")):
        raise SchemaError(
            f"Invalid table name: {json_preview(name)}. "
            f"Table names are identifiers of 1 to {LIMITS.identifier_chars_max} ASCII letters, "
            "digits and underscores that do not start with a digit."
        )
    if name.startswith("_"):
        raise SchemaError(f'Invalid table name "{name}": names starting with "_" are reserved.')
    where = f'In table "{name}"'

    def items(key: str) -> list[Mapping[str, Any]]:
        found = _get(raw, key, list, where, [])
        for i, item in enumerate(found):
            if not isinstance(item, Mapping):
                raise SchemaError(f"{where}: {key}[{i}] must be an object")
        return found

    indexes = tuple(_parse_index(name, i) for i in items("indexes"))
    staged = tuple(_parse_index(name, i) for i in items("stagedDbIndexes"))
    search = tuple(_parse_search(name, i) for i in items("searchIndexes"))
    staged_search = tuple(_parse_search(name, i) for i in items("stagedSearchIndexes"))
    vector = tuple(_parse_vector(name, i) for i in items("vectorIndexes"))
    staged_vector = tuple(_parse_vector(name, i) for i in items("stagedVectorIndexes"))
    table = TableSchema(
        name,
        indexes,
        search,
        vector,
        _parse_document_type(raw.get("documentType"), f"{where}: documentType"),
        staged,
        staged_search,
        staged_vector,
        _parse_document_type(raw.get("stagedDocumentType"), f"{where}: stagedDocumentType"),
    )
    _check_table_indexes(table)
    return table


def _parse_document_type(raw: object, where: str) -> Validator | None:
    """A document validator: an object, a union of objects, or any; system fields dropped."""
    if raw is None:
        return None
    try:
        validator = parse_validator(raw)
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    if isinstance(validator, VObject):
        return _without_system_fields(validator)
    if isinstance(validator, VUnion) and all(isinstance(m, VObject) for m in validator.members):
        return VUnion(tuple(_without_system_fields(m) for m in validator.members))  # type: ignore[arg-type]
    if isinstance(validator, VAny):
        return validator
    raise SchemaError(
        f"{where}: the document validator in a schema must be an object, a union of "
        f"objects, or `v.any()`. Found {describe(validator)}."
    )


def _without_system_fields(v: VObject) -> VObject:
    # The reference drops top-level `_` fields: documents can hold only _id and
    # _creationTime there, and the server sets those itself.
    return VObject(tuple((n, f) for n, f in v.fields if not n.startswith("_")))


def _index_name(table: str, raw: Mapping[str, Any]) -> str:
    name = raw.get("indexDescriptor")
    if isinstance(name, str) and (name.startswith("_") or name in RESERVED_INDEX_NAMES):
        raise SchemaError(
            f'In table "{table}" cannot name an index "{name}" because the name is reserved. '
            'Indexes may not start with an underscore or be named "by_id" or "by_creation_time".'
        )
    if not is_identifier(name):
        raise SchemaError(
            f'In table "{table}": invalid index name: {json_preview(name)}. Index names are '
            f"identifiers of 1 to {LIMITS.identifier_chars_max} ASCII letters, digits and "
            "underscores that start with a letter."
        )
    return name  # type: ignore[return-value]


def _field_path(raw: object, table: str, index: str) -> str:
    if not (isinstance(raw, str) and raw and all(is_identifier(p) for p in raw.split("."))):
        raise SchemaError(
            f'In table "{table}" index "{index}": invalid field path {json_preview(raw)}; '
            'a field path is one or more identifiers joined by "." (like "author.name")'
        )
    return raw


def _field_paths(raw: object, table: str, index: str, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise SchemaError(f'In table "{table}" index "{index}": "{key}" must be an array')
    return tuple(_field_path(f, table, index) for f in raw)


def _parse_index(table: str, raw: Mapping[str, Any]) -> IndexDef:
    name = _index_name(table, raw)
    where = f'In table "{table}" index "{name}"'
    fields = list(_field_paths(raw.get("fields"), table, name, "fields"))
    if fields and fields[-1] == CREATION_TIME_FIELD:
        fields.pop()  # the stored form lists the implicit _creationTime
    if not fields:
        raise SchemaError(f"{where} must have at least one field.")
    if len(fields) + 1 > LIMITS.fields_per_index_max:
        raise SchemaError(
            f"{where} has {len(fields)} fields; indexes may have up to "
            f"{LIMITS.fields_per_index_max} fields, counting the _creationTime that ends every "
            "index (fields_per_index_max)."
        )
    for f in fields:
        if f == ID_FIELD:
            raise SchemaError(
                f"{where}: `_id` is not a valid index field: every index ends with `_id` "
                "already. To load documents by ID, use `db.get(id)`."
            )
        if f == CREATION_TIME_FIELD:
            raise SchemaError(
                f"{where}: `_creationTime` may only come last: it is automatically added to "
                "the end of each index."
            )
        if any(part.startswith("_") for part in f.split(".")):
            raise SchemaError(
                f'{where}: field "{f}": reserved fields (starting with `_`) are not allowed '
                "in indexes."
            )
    if len(set(fields)) != len(fields):
        duplicate = next(f for f in fields if fields.count(f) > 1)
        raise SchemaError(
            f'{where}: duplicate field "{duplicate}". Index fields must be unique within an index.'
        )
    return IndexDef(table, name, tuple(fields) + INDEX_TAIL)


def _filter_fields(raw: Mapping[str, Any], table: str, name: str) -> tuple[str, ...]:
    found = raw.get("filterFields")
    fields = () if found is None else _field_paths(found, table, name, "filterFields")
    if len(fields) > LIMITS.filter_fields_max:
        raise SchemaError(
            f'In table "{table}" index "{name}": {len(fields)} filter fields, more than '
            f"filter_fields_max = {LIMITS.filter_fields_max}."
        )
    return fields


def _parse_search(table: str, raw: Mapping[str, Any]) -> SearchIndexDef:
    name = _index_name(table, raw)
    search_field = _field_path(raw.get("searchField"), table, name)
    return SearchIndexDef(table, name, search_field, _filter_fields(raw, table, name))


def _parse_vector(table: str, raw: Mapping[str, Any]) -> VectorIndexDef:
    name = _index_name(table, raw)
    vector_field = _field_path(raw.get("vectorField"), table, name)
    dims = raw.get("dimensions", raw.get("dimension"))  # "dimension": early alpha spelling
    if type(dims) is float and dims.is_integer():
        dims = int(dims)
    low, high = LIMITS.vector_dimensions_min, LIMITS.vector_dimensions_max
    if type(dims) is not int or not low <= dims <= high:
        raise SchemaError(
            f'In table "{table}" vector index "{name}": dimensions {json_preview(dims)} must be an '
            f"integer between {low} and {high}."
        )
    return VectorIndexDef(table, name, vector_field, dims, _filter_fields(raw, table, name))


def _check_table_indexes(t: TableSchema) -> None:
    """Counts per kind, names unique across kinds, and no two indexes that are the same."""
    db, search, vector = (
        t.indexes + t.staged_indexes,
        t.search_indexes + t.staged_search_indexes,
        t.vector_indexes + t.staged_vector_indexes,
    )
    groups: tuple[tuple[str, tuple[Any, ...], int, str], ...] = (
        ("indexes", db, LIMITS.indexes_per_table_max, "indexes_per_table_max"),
        (
            "search indexes",
            search,
            LIMITS.search_indexes_per_table_max,
            "search_indexes_per_table_max",
        ),
        (
            "vector indexes",
            vector,
            LIMITS.vector_indexes_per_table_max,
            "vector_indexes_per_table_max",
        ),
    )
    names: set[str] = set()
    for label, defs, limit, limit_name in groups:
        if len(defs) > limit:
            raise SchemaError(
                f'Table "{t.name}" cannot have more than {limit} {label} ({limit_name}).'
            )
        for index in defs:
            if index.name in names:
                raise SchemaError(
                    f'Table "{t.name}" has two or more definitions of index "{index.name}".'
                )
            names.add(index.name)
    _unique_by(t.name, "index", db, lambda i: i.fields, "the same fields")
    _unique_by(t.name, "search index", search, lambda i: i.search_field, "the same searchField")
    _unique_by(
        t.name,
        "vector index",
        vector,
        lambda i: (i.vector_field, i.dimensions),
        "the same vectorField and dimensions",
    )


def _unique_by(
    table: str, label: str, defs: tuple[Any, ...], key: Callable[[Any], object], what: str
) -> None:
    seen: dict[object, str] = {}
    for index in defs:
        other = seen.setdefault(key(index), index.name)
        if other != index.name:
            raise SchemaError(
                f'In table "{table}" {label} "{other}" and {label} "{index.name}" have {what}. '
                f"Each {label} must be unique within a table: keep one of them."
            )


def _check_index_references(schema: Schema) -> None:
    """With validation on, every indexed field must be possible under the document validator."""
    for t in schema.tables.values():
        doc_type = t.document_validator
        if doc_type is None:
            continue
        vectors = t.vector_indexes + t.staged_vector_indexes
        paths = [(i.name, f) for i in t.indexes + t.staged_indexes for f in i.user_fields]
        for s in t.search_indexes + t.staged_search_indexes:
            paths += [(s.name, f) for f in (s.search_field, *s.filter_fields)]
        for v in vectors:
            paths += [(v.name, f) for f in (v.vector_field, *v.filter_fields)]
        for index_name, path in paths:
            if path in (ID_FIELD, CREATION_TIME_FIELD) or _may_contain(doc_type, path.split(".")):
                continue
            raise SchemaError(
                f'In table "{t.name}" the index "{index_name}" is invalid because it '
                f'references the field "{path}" that does not exist.'
            )
        for v in vectors:
            if not _may_be_vector(doc_type, v.vector_field.split(".")):
                raise SchemaError(
                    f'In table "{t.name}" the vector index "{v.name}" is invalid because it '
                    f'references the field "{v.vector_field}" that is neither an array of '
                    "float64 nor an optional array of float64."
                )


def _may_contain(v: Validator, parts: list[str]) -> bool:
    if not parts or isinstance(v, VAny):
        return True
    if isinstance(v, VUnion):
        return any(_may_contain(m, parts) for m in v.members)
    if isinstance(v, VObject):
        spec = v.field_map.get(parts[0])
        return spec is not None and _may_contain(spec.validator, parts[1:])
    return False


def _may_be_vector(v: Validator, parts: list[str]) -> bool:
    if isinstance(v, VAny):
        return True
    if isinstance(v, VUnion):
        return any(_may_be_vector(m, parts) for m in v.members)
    if not parts:
        return isinstance(v, VArray) and isinstance(v.element, (VFloat64, VAny))
    if isinstance(v, VObject):
        spec: FieldValidator | None = v.field_map.get(parts[0])
        return spec is None or _may_be_vector(spec.validator, parts[1:])
    return False


# --- documents and changes --------------------------------------------------


def validate_document(
    schema: Schema, table: str, doc: Mapping[str, Any], *, table_of_id: Callable[[str], str | None]
) -> None:
    """Raise SchemaValidationError if the schema enforces a validator that ``doc`` breaks.

    System fields are not part of the validator; a table the schema does not
    list is not validated (module Caveats).
    """
    if not schema.schema_validation:
        return
    t = schema.tables.get(table)
    if t is None or t.document_validator is None:
        return
    user = {k: v for k, v in doc.items() if k != ID_FIELD and k != CREATION_TIME_FIELD}
    try:
        validate(t.document_validator, user, table_of_id=table_of_id)
    except SchemaValidationError as exc:
        raise SchemaValidationError(
            f'Failed to insert or update a document in table "{table}" because it does not '
            f"match the schema: {exc.message}"
        ) from None


@dataclass(frozen=True)
class SchemaChange:
    """Index definitions that appear or disappear between two schemas (a changed one: both)."""

    added_indexes: tuple[IndexDef, ...] = ()
    removed_indexes: tuple[IndexDef, ...] = ()
    added_search_indexes: tuple[SearchIndexDef, ...] = ()
    removed_search_indexes: tuple[SearchIndexDef, ...] = ()
    added_vector_indexes: tuple[VectorIndexDef, ...] = ()
    removed_vector_indexes: tuple[VectorIndexDef, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def tables(self) -> tuple[str, ...]:
        """The tables whose indexes change, sorted."""
        found = {d.table for name in self.__dataclass_fields__ for d in getattr(self, name)}
        return tuple(sorted(found))


def diff_schemas(old: Schema, new: Schema) -> SchemaChange:
    """What to build and what to drop to go from ``old``'s indexes to ``new``'s."""

    def changes(attr: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        before = [d for t in old.tables.values() for d in getattr(t, attr)]
        after = [d for t in new.tables.values() for d in getattr(t, attr)]
        before_set, after_set = set(before), set(after)
        return (
            tuple(d for d in after if d not in before_set),
            tuple(d for d in before if d not in after_set),
        )

    added, removed = changes("indexes")
    added_search, removed_search = changes("search_indexes")
    added_vector, removed_vector = changes("vector_indexes")
    return SchemaChange(added, removed, added_search, removed_search, added_vector, removed_vector)
