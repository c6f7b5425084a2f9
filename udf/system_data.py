"""The system queries behind ``npx convex data`` and ``npx convex function-spec`` (admin only).

- ``_system/cli/tables``: every user table, ``{page: [{name}], isDone, continueCursor}``
  (one page; Convex keeps the pagination shape for old CLIs).
- ``_system/cli/tableData``: one page of a table's documents by creation order
  (``order`` asc or desc), ``{page, isDone, continueCursor}``.

Both read the tables of the component the call names (``npx convex data
--component limiter`` sends its path as the query's componentPath), by the names
that component knows them by; the app's by default.
- ``_system/cli/modules:apiSpec``: each deployed function's identifier, kind,
  visibility and args/returns validators (``{"type": "any"}`` when undeclared),
  then each HTTP route, as Convex's system function lists them.
- ``_system/cli/convexUrl:cloudUrl``: the URL the deployment serves at.

All read through the query's transaction, so their read sets make them live.
"""

from __future__ import annotations

import json
from typing import Any

from engine.components import ROOT, SEPARATOR, qualified_table, split_table
from engine.convex_json import from_convex_json
from engine.errors import HeadwaterError
from engine.system_tables import DEPLOYMENT_DOC_ID, TABLES_TABLE, is_system_table
from engine.transaction import Transaction
from udf.deployment import analysis_from_json

_ANY_VALIDATOR = {"type": "any"}
_KINDS = {"query": "Query", "mutation": "Mutation", "action": "Action", "httpAction": "HttpAction"}


def bad_args(message: str) -> HeadwaterError:
    return HeadwaterError(f"ArgumentValidationError: {message}", code="BadArgs")


def _pagination(args: dict[str, Any]) -> tuple[str | None, int]:
    opts = args.get("paginationOpts")
    if not isinstance(opts, dict):
        raise bad_args("Object is missing the required field `paginationOpts`.")
    cursor, num_items = opts.get("cursor"), opts.get("numItems")
    if cursor is not None and not isinstance(cursor, str):
        raise bad_args("`paginationOpts.cursor` must be a string or null.")
    if not isinstance(num_items, float | int) or num_items != num_items:
        raise bad_args("`paginationOpts.numItems` must be a number.")
    return cursor, int(num_items)


def list_tables(tx: Transaction, args: dict[str, Any], component_path: str = ROOT) -> Any:
    _pagination(args)
    tables = (split_table(doc["name"]) for doc in tx.query(TABLES_TABLE).collect())
    names = sorted(
        table
        for component, table in tables
        if component == component_path and not is_system_table(table)
    )
    return {"page": [{"name": name} for name in names], "isDone": True, "continueCursor": "end"}


def table_data(tx: Transaction, args: dict[str, Any], component_path: str = ROOT) -> Any:
    table, order = args.get("table"), args.get("order")
    if not isinstance(table, str):
        raise bad_args("`table` must be a string.")
    if order not in ("asc", "desc"):
        raise bad_args('`order` must be "asc" or "desc".')
    cursor, num_items = _pagination(args)
    if is_system_table(table) or SEPARATOR in table:
        return {"page": [], "isDone": True, "continueCursor": "end"}
    table = qualified_table(component_path, table)
    if tx.table_number(table) is None:
        return {"page": [], "isDone": True, "continueCursor": "end"}
    limits = tx.limits
    result = (
        tx.query(table)
        .order(order)
        .paginate(
            cursor,
            num_items,
            maximum_rows_read=limits.documents_read_max // 2,
            maximum_bytes_read=limits.read_bytes_max // 2,
        )
    )
    return {
        "page": result.page,
        "isDone": result.is_done,
        "continueCursor": result.continue_cursor,
    }


def api_spec(tx: Transaction, _args: dict[str, Any]) -> Any:
    record = tx.get(DEPLOYMENT_DOC_ID)
    if record is None:
        return []
    analysis = analysis_from_json(record["analysis"])
    specs: list[Any] = []
    for fn in sorted(analysis.functions, key=lambda f: (f.module, f.name)):
        specs.append(
            {
                "identifier": f"{fn.module}:{fn.name}",
                "functionType": _KINDS[fn.kind],
                "visibility": {"kind": fn.visibility or "public"},
                "args": _validator(fn.args_json),
                "returns": _validator(fn.returns_json),
            }
        )
    for route in analysis.http_routes:
        specs.append({"functionType": "HttpAction", "method": route.method, "path": route.path})
    return specs


def _validator(text: str | None) -> Any:
    if text is None or text == "null":
        return dict(_ANY_VALIDATOR)
    return from_convex_json(json.loads(text))


def cloud_url(url: str | None) -> Any:
    return url
