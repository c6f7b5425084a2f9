"""The system tables: Headwater's own metadata, stored as documents in the log.

Metadata changes are ordinary committed writes, so they are in the log,
replay rebuilds them, and point-in-time reads see the schema of their time.

    _tables   (513)  one document per user table: {"name": str, "number": int}
    _schemas  (514)  one document, SCHEMA_DOC_ID: {"json": <exported schema JSON text>}
    _modules  (515)  deployed function code (the functions issue)

The schema is kept as JSON text because validator literals are Convex JSON,
whose ``$integer``-style keys are not valid field names inside a document.
"""

from __future__ import annotations

from engine.ids import encode_id

TABLES_TABLE = "_tables"
SCHEMAS_TABLE = "_schemas"
MODULES_TABLE = "_modules"

SYSTEM_TABLE_NUMBERS: dict[str, int] = {
    TABLES_TABLE: 513,
    SCHEMAS_TABLE: 514,
    MODULES_TABLE: 515,
}

# User tables get the smallest free number above this, as in Convex.
FIRST_USER_TABLE_NUMBER = 10001

SCHEMA_DOC_ID = encode_id(SYSTEM_TABLE_NUMBERS[SCHEMAS_TABLE], bytes(16))


def is_system_table(name: str) -> bool:
    return name.startswith("_")
