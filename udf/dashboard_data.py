"""The dashboard's `_system/dashboard/data:*` functions (see `udf.dashboard_functions`).

Each handler is `(context, tx, args) -> value`, registered by its path: tables and
pages (`udf.dashboard_tables`), schema and shape (`udf.dashboard_schema`), time
travel and the commit log (`udf.dashboard_history`), edits (`udf.dashboard_edits`)."""

from __future__ import annotations

from typing import Any

from udf import dashboard_edits, dashboard_history, dashboard_schema, dashboard_tables

_DATA = "_system/dashboard/data:"

QUERIES: dict[str, Any] = {
    _DATA + "range": dashboard_history.time_range,
    _DATA + "neighbourTs": dashboard_history.neighbour_ts,
    _DATA + "tables": dashboard_tables.list_tables,
    _DATA + "page": dashboard_tables.page,
    _DATA + "schema": dashboard_schema.table_schema,
    _DATA + "history": dashboard_history.history,
    _DATA + "log": dashboard_history.commit_log,
    _DATA + "commit": dashboard_history.commit,
}
MUTATIONS: dict[str, Any] = {
    _DATA + "insert": dashboard_edits.insert,
    _DATA + "patch": dashboard_edits.patch,
    _DATA + "replace": dashboard_edits.replace,
    _DATA + "delete": dashboard_edits.delete,
}
