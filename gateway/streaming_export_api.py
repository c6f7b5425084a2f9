"""Convex streaming export over HTTP (admin key): ``/api/list_snapshot``, ``/api/document_deltas``,
``/api/get_table_column_names`` (``{"byComponent": {path: [{name, columns}]}}``) and
``/api/test_streaming_export_connection``.

Connectors built for Convex's streaming export (Fivetran, Airbyte) page
through a snapshot at a fixed ts, then follow the change log from it. GET
takes query parameters, POST the same fields as a JSON body. What is read: all
tables, ``tableName`` (+ ``component``), ``component`` alone, or ``selection``
(a JSON object; on GET its JSON text), as ``engine.export_selection`` reads them. The engine
functions (``engine.streaming_export``) do the work; this module only speaks HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from engine import Database, HeadwaterError
from engine.streaming_export import document_deltas, list_snapshot, table_column_names
from gateway.context import AuthenticationError, GatewayContext
from gateway.http_api import parse_json_body
from gateway.http_errors import HttpError, error_response, to_http_error


def streaming_export_routes(context: GatewayContext, db: Database) -> list[BaseRoute]:
    async def params(request: Request) -> dict[str, Any]:
        identity = context.authenticator.from_authorization_header(
            request.headers.get("authorization")
        )
        if not identity.admin:
            raise HttpError(403, "Forbidden", "Streaming export needs the admin key.")
        found: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            found.update(parse_json_body(await request.body(), allow_empty=True))
        return found

    def endpoint(run: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
        async def handle(request: Request) -> JSONResponse:
            try:
                args = await params(request)
                return JSONResponse(await anyio.to_thread.run_sync(run, args))
            except (AuthenticationError, HttpError, HeadwaterError) as exc:
                return error_response(to_http_error(exc))

        return handle

    def snapshot(args: dict[str, Any]) -> dict[str, Any]:
        page = list_snapshot(
            db,
            snapshot_ts=_int(args.get("snapshot"), "snapshot"),
            cursor=args.get("cursor"),
            table=args.get("tableName", args.get("table_name")),
            format=args.get("format", "json"),
            component=args.get("component"),
            selection=_selection(args.get("selection")),
        )
        return {
            "values": page.values,
            "snapshot": page.snapshot,
            "cursor": page.cursor,
            "hasMore": page.has_more,
        }

    def deltas(args: dict[str, Any]) -> dict[str, Any]:
        page = document_deltas(
            db,
            _int(args.get("cursor"), "cursor"),
            table=args.get("tableName", args.get("table_name")),
            format=args.get("format", "json"),
            component=args.get("component"),
            selection=_selection(args.get("selection")),
        )
        return {"values": page.values, "cursor": page.cursor, "hasMore": page.has_more}

    def column_names(_args: dict[str, Any]) -> dict[str, Any]:
        return {"byComponent": table_column_names(db)}

    def connection(_args: dict[str, Any]) -> Any:
        return None  # the admin key was accepted: the connector can go on

    methods = ["GET", "POST"]
    return [
        Route("/api/list_snapshot", endpoint(snapshot), methods=methods),
        Route("/api/document_deltas", endpoint(deltas), methods=methods),
        Route("/api/get_table_column_names", endpoint(column_names), methods=["GET"]),
        Route("/api/test_streaming_export_connection", endpoint(connection), methods=["GET"]),
    ]


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HttpError(400, "BadQueryArgs", f"{name} must be an integer, got {value!r}") from None


def _selection(value: Any) -> Any:
    """A selection as POST sends it (an object) or GET (its JSON text)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise HttpError(
            400, "InvalidSelection", "selection must be a JSON object (JSON text on GET)."
        ) from None
