"""The system tables: Headwater's own metadata, stored as documents in the log.

Metadata changes are ordinary committed writes, so they are in the log,
replay rebuilds them, and point-in-time reads see the schema of their time.

    _tables   (513)  one document per user table: {"name": str, "number": int}
    _schemas  (514)  one document, SCHEMA_DOC_ID: {"json": <exported schema JSON text>}
    _modules  (515)  one document per deployed module: {"path", "source", "sourceMap",
                     "environment", "sha256", "runnable", "runnableMap"}
    _deployment (516) one document, DEPLOYMENT_DOC_ID: what the modules define (analysis JSON)
    _session_requests (517) one document per (session, request) of a mutation sent over the
              sync protocol, written in the mutation's own transaction: its result, so a
              replayed mutation is answered without running twice
    _environment_variables (518) one document per deployment environment variable
              (fixed id per name): {"name": str, "value": str}
    _exports (519) one document per snapshot export request: its state, as Convex's
              `_exports` documents ({"state": "requested"|"in_progress"|"completed"|"failed", ...})
    _snapshot_imports (520) one document per import upload: its state, as Convex's
              `_snapshot_imports` documents ({"state": {"state": "uploaded"|...}, ...})
    _cron_jobs (521) one document per cron of the deployed crons.ts (engine.cron_jobs)
    _function_handles (522) no documents: a function handle's id is the fixed id of
              (component path, function path) in this table (``udf.function_handles``)
    _components (523) one document per component instance, Convex's shape
              (``engine.component_tables``): {"definitionId", "parent", "name", "args",
              "env", "state": "active"|"unmounted", "httpPrefix"}; fixed id per path
    _component_definitions (524) no documents: a definition's id (``definitionId``
              above) is the fixed id of its definition path in this table
    _scheduled_functions (539) one document per scheduled function, in the shape of
              Convex's virtual table (engine.scheduled_jobs); 539 is Convex's number

    _storage (540) one document per stored file, Convex's public shape: {"sha256": base64,
              "size": float, "contentType": str | null}; the bytes are in the blob store.
              (Convex keeps `_file_storage` = 540 behind the virtual `_storage`; ids
              are the same either way.)

The schema is kept as JSON text because validator literals are Convex JSON,
whose ``$integer``-style keys are not valid field names inside a document.
"""

from __future__ import annotations

import hashlib

from engine.ids import encode_id

TABLES_TABLE = "_tables"
SCHEMAS_TABLE = "_schemas"
MODULES_TABLE = "_modules"
DEPLOYMENT_TABLE = "_deployment"
SESSION_REQUESTS_TABLE = "_session_requests"
ENVIRONMENT_VARIABLES_TABLE = "_environment_variables"
EXPORTS_TABLE = "_exports"
SNAPSHOT_IMPORTS_TABLE = "_snapshot_imports"
CRON_JOBS_TABLE = "_cron_jobs"
SCHEDULED_FUNCTIONS_TABLE = "_scheduled_functions"
STORAGE_TABLE = "_storage"
FUNCTION_HANDLES_TABLE = "_function_handles"
COMPONENTS_TABLE = "_components"
COMPONENT_DEFINITIONS_TABLE = "_component_definitions"

SYSTEM_TABLE_NUMBERS: dict[str, int] = {
    TABLES_TABLE: 513,
    SCHEMAS_TABLE: 514,
    MODULES_TABLE: 515,
    DEPLOYMENT_TABLE: 516,
    SESSION_REQUESTS_TABLE: 517,
    ENVIRONMENT_VARIABLES_TABLE: 518,
    EXPORTS_TABLE: 519,
    SNAPSHOT_IMPORTS_TABLE: 520,
    CRON_JOBS_TABLE: 521,
    FUNCTION_HANDLES_TABLE: 522,
    COMPONENTS_TABLE: 523,
    COMPONENT_DEFINITIONS_TABLE: 524,
    SCHEDULED_FUNCTIONS_TABLE: 539,
    STORAGE_TABLE: 540,
}

# User tables get the smallest free number above this, as in Convex.
FIRST_USER_TABLE_NUMBER = 10001

SCHEMA_DOC_ID = encode_id(SYSTEM_TABLE_NUMBERS[SCHEMAS_TABLE], bytes(16))
DEPLOYMENT_DOC_ID = encode_id(SYSTEM_TABLE_NUMBERS[DEPLOYMENT_TABLE], bytes(16))


def keyed_system_id(table: str, key: str) -> str:
    """A fixed id in a system table for a natural key (a module path, a session request)."""
    digest = hashlib.sha256(key.encode()).digest()[:16]
    return encode_id(SYSTEM_TABLE_NUMBERS[table], digest)


def is_system_table(name: str) -> bool:
    return name.startswith("_")
