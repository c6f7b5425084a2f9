"""Making a schema active inside a transaction (``set_schema`` and deploys).

Existing documents are checked against the new validators first, read-tracked,
so a concurrent write to a checked table conflicts with the change instead of
slipping past it. The schema document is then written like any other; the
index projection backfills added indexes when it applies that entry.
"""

from __future__ import annotations

import json

from engine.schema import Schema, parse_schema, validate_document
from engine.system_tables import SCHEMA_DOC_ID, SCHEMAS_TABLE
from engine.transaction import Transaction, by_id_index


def schema_text(schema: Schema) -> str:
    return json.dumps(schema.to_json(), separators=(",", ":"))


def apply_schema(
    tx: Transaction, schema_json: str | dict | Schema, *, check_data: bool = True
) -> Schema:
    """Check existing data against ``schema`` and write it; raises SchemaValidationError.

    ``check_data=False`` is for a schema equal to the active one (the data already
    passed it on every write)."""
    schema = schema_json if isinstance(schema_json, Schema) else parse_schema(schema_json)
    if schema.schema_validation and check_data:
        for table, table_schema in schema.tables.items():
            number = tx.table_number(table)
            if number is None or table_schema.document_validator is None:
                continue
            tx.reads.add(by_id_index(table), b"", None)
            for _, doc in tx.snapshot.iter_table(number):
                validate_document(schema, table, doc, table_of_id=tx.table_of_id)
    tx.write_system(SCHEMAS_TABLE, SCHEMA_DOC_ID, {"json": schema_text(schema)})
    return schema
