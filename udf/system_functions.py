"""The system queries the official CLI calls, answered by the host (admin key only).

``npx convex env list`` subscribes to ``_system/cli/queryEnvironmentVariables``
(every ``_environment_variables`` document, by name) and ``env get`` to its
``get`` export (``{name, value}`` or null); ``deploy`` asks
``_system/cli/tableSize`` how many documents a table whose index it drops holds.
``npx convex data`` and ``function-spec`` read through ``udf.system_data``;
``export`` and ``import`` watch their progress through ``udf.system_snapshot_state``.
They run like any query: at a snapshot, with a read set, so a subscription to
them is live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine import Database
from engine.environment_variables import read_all
from engine.errors import HeadwaterError, SnapshotOutOfRangeError
from engine.system_tables import ENVIRONMENT_VARIABLES_TABLE
from engine.transaction import Transaction
from udf import system_data, system_snapshot_state
from udf.call_errors import not_found_any, not_found_public
from udf.calls import FunctionCall, FunctionError, FunctionOutcome

SYSTEM_PREFIX = "_system/"
_ENV_MODULE = "_system/cli/queryEnvironmentVariables"
_IMPORT_MODULE = "_system/cli/queryImport"


def _list(tx: Transaction, _args: dict[str, Any]) -> Any:
    docs = tx.query(ENVIRONMENT_VARIABLES_TABLE).collect()
    return sorted(docs, key=lambda doc: doc["name"])


def _get(tx: Transaction, args: dict[str, Any]) -> Any:
    name = args.get("name")
    if not isinstance(name, str):
        raise system_data.bad_args("`name` must be a string.")
    value = read_all(tx).get(name)
    return None if value is None else {"name": name, "value": value}


def _table_size(tx: Transaction, args: dict[str, Any]) -> Any:
    """How many documents a table holds (the CLI asks before it drops an index)."""
    name = args.get("tableName")
    if not isinstance(name, str):
        raise HeadwaterError(
            "ArgumentValidationError: `tableName` must be a string.", code="BadArgs"
        )
    number = tx.table_number(name)
    return 0 if number is None else sum(1 for _ in tx.snapshot.iter_table(number))


_QUERIES: dict[str, Callable[[Transaction, dict[str, Any]], Any]] = {
    _ENV_MODULE: _list,
    f"{_ENV_MODULE}:default": _list,
    f"{_ENV_MODULE}:get": _get,
    "_system/cli/tables": system_data.list_tables,
    "_system/cli/tables:default": system_data.list_tables,
    "_system/cli/tableData": system_data.table_data,
    "_system/cli/tableData:default": system_data.table_data,
    "_system/cli/modules:apiSpec": system_data.api_spec,
    "_system/cli/exports:getLatest": system_snapshot_state.latest_export,
    _IMPORT_MODULE: system_snapshot_state.get_import,
    f"{_IMPORT_MODULE}:default": system_snapshot_state.get_import,
    f"{_IMPORT_MODULE}:list": system_snapshot_state.list_imports,
    "_system/cli/tableSize:default": _table_size,
    "_system/cli/tableSize": _table_size,
}
_CLOUD_URL = "_system/cli/convexUrl:cloudUrl"
# The queries that read the tables of the component the call names (componentPath).
_IN_COMPONENT: dict[str, Callable[[Transaction, dict[str, Any], str], Any]] = {
    "_system/cli/tables": system_data.list_tables,
    "_system/cli/tables:default": system_data.list_tables,
    "_system/cli/tableData": system_data.table_data,
    "_system/cli/tableData:default": system_data.table_data,
}


def is_system_path(path: str) -> bool:
    return path.startswith(SYSTEM_PREFIX)


def run_system_query(
    db: Database, call: FunctionCall, cloud_url: str | None = None
) -> FunctionOutcome:
    """Answer a ``_system/`` function call the way Convex's system functions do.

    ``cloud_url`` is the URL the deployment serves at (``convexUrl:cloudUrl``)."""
    path = call.path.removesuffix(".js").replace(".js:", ":")
    handler = _QUERIES.get(path)
    if path == _CLOUD_URL:
        handler = lambda _tx, _args: system_data.cloud_url(cloud_url)  # noqa: E731
    if handler is None or not call.identity.admin or call.kind not in (None, "query"):
        shown = path.removesuffix(":default")
        text = not_found_public(shown) if call.kind else not_found_any(shown)
        return FunctionOutcome(error=FunctionError(text))
    try:
        tx = db.begin(writable=False, ts=call.ts)
    except SnapshotOutOfRangeError as exc:
        return FunctionOutcome(error=FunctionError(exc.message))
    try:
        if path in _IN_COMPONENT:
            value = _IN_COMPONENT[path](tx, call.args, call.component_path)
        else:
            value = handler(tx, call.args)
        return FunctionOutcome(value, None, (), tx.snapshot_ts, tx.read_set, None, "query")
    except HeadwaterError as exc:
        error = FunctionError(exc.message)
        return FunctionOutcome(None, error, (), tx.snapshot_ts, tx.read_set, None, "query")
    finally:
        tx.close()
