"""`data:schema`: a table's declared schema, its indexes, the shape its documents
have, and a `schema.ts` snippet for it.

The shape is inferred from the newest ``SHAPE_SAMPLE_MAX`` documents (the same
read the table page makes, so the result is live): each field's types are
merged (an object's fields field by field, a field some documents lack becomes
optional, differing types a union; more than ``UNION_MEMBERS_MAX`` kinds is
``any``); a string that is an id of an existing table becomes ``v.id(table)``.
The snippet declares the declared validator when there is one, else the inferred
shape, and chains the table's indexes, so a user can paste it into `schema.ts`.
Index backfills finish inside the commit that adds them, so an index listed is
ready (a staged one is ``staged: true``).
"""

from __future__ import annotations

import json
from typing import Any

from engine.components import split_table
from engine.ids import decode_id
from engine.schema_model import TableSchema
from engine.transaction import Transaction
from engine.validators import (
    FieldValidator,
    Validator,
    VAny,
    VArray,
    VBoolean,
    VBytes,
    VFloat64,
    VId,
    VInt64,
    VNull,
    VObject,
    VString,
    VUnion,
    describe,
    validator_to_json,
)
from engine.value_text import render_key
from udf.dashboard_args import table_arg

SHAPE_SAMPLE_MAX = 1000
UNION_MEMBERS_MAX = 8
_SYSTEM_FIELDS = ("_id", "_creationTime")


def table_schema(_context: Any, tx: Transaction, args: dict[str, Any]) -> dict[str, Any]:
    table = table_arg(tx, args)
    declared = tx.snapshot_schema().tables.get(table)
    sample = tx.query(table).order("desc").take(SHAPE_SAMPLE_MAX)
    inferred = infer_shape(tx, sample)
    document = None
    if declared is not None and declared.document_validator is not None:
        document = validator_to_json(declared.document_validator)
    return {
        "document": document,
        "indexes": _indexes(declared),
        "searchIndexes": _search_indexes(declared),
        "vectorIndexes": _vector_indexes(declared),
        "inferred": None if inferred is None else validator_to_json(inferred),
        "schemaTs": _local_ids(schema_ts(split_table(table)[1], declared, inferred), table),
    }


def _indexes(declared: TableSchema | None) -> list[dict[str, Any]]:
    if declared is None:
        return []
    listed: list[dict[str, Any]] = [
        {"name": i.name, "fields": list(i.user_fields), "state": "ready"} for i in declared.indexes
    ]
    listed += [
        {"name": i.name, "fields": list(i.user_fields), "state": "ready", "staged": True}
        for i in declared.staged_indexes
    ]
    return listed


def _search_indexes(declared: TableSchema | None) -> list[dict[str, Any]]:
    if declared is None:
        return []
    return [
        {"name": i.name, "searchField": i.search_field, "filterFields": list(i.filter_fields)}
        for i in declared.search_indexes
    ]


def _vector_indexes(declared: TableSchema | None) -> list[dict[str, Any]]:
    if declared is None:
        return []
    return [
        {
            "name": i.name,
            "vectorField": i.vector_field,
            "dimensions": float(i.dimensions),
            "filterFields": list(i.filter_fields),
        }
        for i in declared.vector_indexes
    ]


# -- shape inference -------------------------------------------------------------


def infer_shape(tx: Transaction, documents: list[dict]) -> VObject | None:
    """The merged shape of the documents' user fields (None: no documents)."""
    shape: Validator | None = None
    for doc in documents:
        fields = {k: v for k, v in doc.items() if k not in _SYSTEM_FIELDS}
        one = _shape(tx, fields)
        shape = one if shape is None else _merge(shape, one)
    return shape if isinstance(shape, VObject) else None


def _shape(tx: Transaction, value: Any) -> Validator:
    if value is None:
        return VNull()
    if isinstance(value, bool):
        return VBoolean()
    if isinstance(value, int):
        return VInt64()
    if isinstance(value, float):
        return VFloat64()
    if isinstance(value, bytes):
        return VBytes()
    if isinstance(value, str):
        table = _id_table(tx, value)
        return VString() if table is None else VId(split_table(table)[1])
    if isinstance(value, list):
        element: Validator | None = None
        for item in value:
            one = _shape(tx, item)
            element = one if element is None else _merge(element, one)
        return VArray(element if element is not None else VAny())
    if isinstance(value, dict):
        return VObject.of({k: _shape(tx, v) for k, v in value.items()})
    return VAny()


def _id_table(tx: Transaction, text: str) -> str | None:
    if len(text) < 31 or len(text) > 37:  # ids are 31 to 37 characters
        return None
    try:
        return tx.table_name(decode_id(text).table_number)
    except Exception:  # noqa: BLE001 - not an id: a plain string
        return None


def _members(v: Validator) -> tuple[Validator, ...]:
    return v.members if isinstance(v, VUnion) else (v,)


def _merge(a: Validator, b: Validator) -> Validator:
    if isinstance(a, VAny) or isinstance(b, VAny):
        return VAny()
    if isinstance(a, VObject) and isinstance(b, VObject):
        names = sorted(set(a.field_map) | set(b.field_map))
        merged: dict[str, FieldValidator] = {}
        for name in names:
            fa, fb = a.field_map.get(name), b.field_map.get(name)
            if fa is None or fb is None:
                only = fa or fb
                assert only is not None
                merged[name] = FieldValidator(only.validator, True)
            else:
                merged[name] = FieldValidator(
                    _merge(fa.validator, fb.validator), fa.optional or fb.optional
                )
        return VObject.of(merged)
    if isinstance(a, VArray) and isinstance(b, VArray):
        return VArray(_merge(a.element, b.element))
    members = list(_members(a))
    for member in _members(b):
        for i, existing in enumerate(members):
            if type(existing) is type(member) and isinstance(member, VObject | VArray):
                members[i] = _merge(existing, member)
                break
            if existing == member:
                break
        else:
            members.append(member)
    if len(members) > UNION_MEMBERS_MAX:
        return VAny()
    return members[0] if len(members) == 1 else VUnion(tuple(members))


# -- the schema.ts snippet ---------------------------------------------------------


def schema_ts(name: str, declared: TableSchema | None, inferred: VObject | None) -> str:
    shape = inferred
    if declared is not None and isinstance(declared.document_validator, VObject):
        shape = declared.document_validator
    fields = [] if shape is None else list(shape.fields)
    if fields:
        body = "".join(f"  {render_key(k)}: {describe(f)},\n" for k, f in fields)
        text = f"{name}: defineTable({{\n{body}}})"
    else:
        text = f"{name}: defineTable({{}})"
    if declared is not None:
        for index in declared.indexes + declared.staged_indexes:
            text += f"\n  .index({json.dumps(index.name)}, {json.dumps(list(index.user_fields))})"
        for s in declared.search_indexes:
            options = {"searchField": s.search_field, "filterFields": list(s.filter_fields)}
            text += f"\n  .searchIndex({json.dumps(s.name)}, {_object(options)})"
        for vec in declared.vector_indexes:
            options = {
                "vectorField": vec.vector_field,
                "dimensions": vec.dimensions,
                "filterFields": list(vec.filter_fields),
            }
            text += f"\n  .vectorIndex({json.dumps(vec.name)}, {_object(options)})"
    return text + ","


def _local_ids(text: str, table: str) -> str:
    """A component's schema names its own tables plainly (`v.id("tokens")`)."""
    component = split_table(table)[0]
    return text.replace(f'v.id("{component}/', 'v.id("') if component else text


def _object(options: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k}: {json.dumps(v)}" for k, v in options.items()) + " }"
