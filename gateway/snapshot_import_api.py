"""Snapshot import over HTTP, as Convex serves it (admin key only).

    POST /api/import/start_upload                     -> {"uploadToken"}
    POST /api/import/upload_part?uploadToken=&partNumber=N   (body: the part) -> "<part token>"
    POST /api/import/finish_upload  {"import": {"tableName", "componentPath", "format",
                                     "mode"}, "uploadToken", "partTokens"} -> {"importId"}
    POST /api/perform_import        {"importId"}

``finish_upload`` records the import in ``_snapshot_imports`` (``uploaded``);
the snapshot worker then checks the whole file (``engine.import_plan``) and
moves it to ``waiting_for_confirmation`` with Convex's change summary, or to
``failed`` with "Hit an error while importing:" and the reason. The CLI watches
``_system/cli/queryImport`` and confirms with ``perform_import``: the worker
checks the file again against the deployment as it is then (nothing is written
if that fails), writes it (``engine.snapshot_import``), adding a checkpoint
message per table, and marks it ``completed`` with ``num_rows_written``. The
uploaded file is deleted when its import ends.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine import Database
from engine.errors import HeadwaterError
from engine.import_plan import MODES, plan_import
from engine.import_sources import open_source, table_name_problem
from engine.snapshot_import import perform_import
from engine.snapshot_jobs import (
    create_import,
    get_import,
    import_object_keys,
    set_import_state,
)
from gateway.admin_auth import require_admin
from gateway.context import GatewayContext
from gateway.http_api import parse_component_path, parse_json_body
from gateway.http_errors import bad_request, error_response, json_response
from gateway.import_uploads import UploadStore
from gateway.snapshot_worker import SnapshotWorker

IMPORTS_FOLDER = "snapshot_imports"
_FORMATS = {"csv": "csv", "jsonLines": "jsonl", "jsonArray": "json_array", "zip": "zip"}
_EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl", "json_array": ".json", "zip": ".zip"}
_FAILED_PREFIX = "Hit an error while importing:\n"
_log = logging.getLogger("headwater.snapshots")


class _Imports:
    def __init__(self, db: Database, uploads: UploadStore, worker: SnapshotWorker) -> None:
        self.db = db
        self.uploads = uploads
        self.worker = worker

    def start_upload(self) -> str:
        in_use = self.db.query(import_object_keys).value
        return self.uploads.start(in_use)

    def finish(self, body: dict[str, Any]) -> str:
        args = body.get("import")
        token = body.get("uploadToken")
        if not isinstance(args, dict) or not isinstance(token, str):
            raise bad_request("BadJsonBody", 'The body must be {"import": {...}, "uploadToken"}.')
        fmt = _format(args)
        mode = args.get("mode", "requireEmpty")
        if mode not in MODES:
            raise bad_request("InvalidImportMode", f"unknown import mode {mode!r}")
        component = parse_component_path(args.get("componentPath"))
        object_key = self.uploads.finish(token, _EXTENSIONS[fmt["format"]])
        import_id = create_import(self.db, fmt, mode, object_key, component)
        self.worker.submit(lambda: self._check(import_id))
        return import_id

    def _check(self, import_id: str) -> None:
        doc = self.db.query(get_import, import_id).value
        if doc is None:
            return  # deleted meanwhile (only the newest imports are kept)
        try:
            _, plan = self._plan(doc)
        except Exception as exc:  # noqa: BLE001 - recorded as the import's failure
            self._fail(doc, exc)
            return
        set_import_state(
            self.db,
            import_id,
            {
                "state": "waiting_for_confirmation",
                "message_to_confirm": plan.confirmation_message(),
                "require_manual_confirmation": plan.require_manual_confirmation,
            },
        )

    def _plan(self, doc: dict[str, Any]) -> Any:
        fmt = doc["format"]
        path = self.uploads.path(doc["object_key"])
        if not path.exists():
            raise HeadwaterError("Import took too long. Try again or contact Convex.")
        component = doc.get("component_path") or ""
        source = open_source(path, fmt["format"], fmt.get("table"), component_path=component)
        return source, plan_import(self.db, source, doc["mode"])

    def perform(self, body: dict[str, Any]) -> None:
        import_id = body.get("importId")
        doc = None if not isinstance(import_id, str) else self.db.query(get_import, import_id).value
        if doc is None:
            raise bad_request("InvalidImport", f"invalid import id {import_id}")
        if doc["state"]["state"] != "waiting_for_confirmation":
            raise bad_request(
                "ImportFailed", f"should be WaitingForConfirmation, is {doc['state']['state']}"
            )
        progress = {
            "state": "in_progress",
            "progress_message": "Importing",
            "checkpoint_messages": [],
        }
        set_import_state(self.db, doc["_id"], progress)
        self.worker.submit(lambda: self._write(doc["_id"]))

    def _write(self, import_id: str) -> None:
        doc = self.db.query(get_import, import_id).value
        if doc is None:
            return
        messages: list[str] = []

        def checkpoint(table: str, written: int) -> None:
            messages.append(f'Imported "{table}" ({written:,} documents)')
            state = {
                "state": "in_progress",
                "progress_message": "Importing",
                "checkpoint_messages": list(messages),
            }
            set_import_state(self.db, import_id, state)

        try:
            source, plan = self._plan(doc)
            report = perform_import(self.db, source, plan, checkpoint)
        except Exception as exc:  # noqa: BLE001 - recorded as the import's failure
            self._fail(doc, exc)
            return
        ts = report.last_ts if report.last_ts is not None else self.db.latest_ts()
        completed = {"state": "completed", "timestamp": ts, "num_rows_written": report.documents}
        set_import_state(self.db, import_id, completed)
        self.uploads.delete(doc["object_key"])

    def _fail(self, doc: dict[str, Any], exc: Exception) -> None:
        if isinstance(exc, HeadwaterError):
            message = exc.message
        else:
            _log.exception("import %s failed", doc["_id"])
            message = "Your request couldn't be completed. Try again later."
        failed = {"state": "failed", "error_message": _FAILED_PREFIX + message}
        set_import_state(self.db, doc["_id"], failed, failed_at_ns=time.time_ns())
        self.uploads.delete(doc["object_key"])


def _format(args: dict[str, Any]) -> dict[str, Any]:
    """Convex's ``parse_format_arg``: the stored format, with its table if it needs one."""
    fmt = _FORMATS.get(args.get("format"))  # type: ignore[arg-type]
    if fmt is None:
        raise bad_request("InvalidFormat", f"unknown import format {args.get('format')!r}")
    table = args.get("tableName")
    if table is not None:
        problem = table_name_problem(table) if isinstance(table, str) else "not a string"
        if problem:
            raise bad_request("ImportInvalidName", f"invalid table name {table}: {problem}")
    if fmt == "zip":
        if table is not None:
            raise bad_request("InvalidName", "ZIP import cannot have table name")
        return {"format": "zip"}
    if table is None:
        needs = {"csv": "CSV", "jsonl": "JSONL", "json_array": "JSON"}[fmt]
        raise bad_request("InvalidName", f"{needs} import requires table name")
    return {"format": fmt, "table": table}


def snapshot_import_routes(
    context: GatewayContext, db: Database, worker: SnapshotWorker, data_folder: Path
) -> list[BaseRoute]:
    imports = _Imports(db, UploadStore(data_folder / IMPORTS_FOLDER), worker)

    async def start_upload(request: Request) -> Response:
        try:
            require_admin(context, request, "Imports")
            token = await anyio.to_thread.run_sync(imports.start_upload)
        except Exception as exc:  # noqa: BLE001 - every refusal leaves as code + message
            return error_response(exc)
        return json_response({"uploadToken": token})

    async def upload_part(request: Request) -> Response:
        try:
            require_admin(context, request, "Imports")
            token = request.query_params.get("uploadToken", "")
            number = request.query_params.get("partNumber", "")
            if not number.isdigit() or not 0 < int(number) < 1 << 16:
                raise bad_request("BadQueryArgs", "partNumber must be a number from 1 to 65535.")
            data = await request.body()
            await anyio.to_thread.run_sync(imports.uploads.append, token, int(number), data)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        return json_response(number)

    async def finish_upload(request: Request) -> Response:
        try:
            require_admin(context, request, "Imports")
            body = parse_json_body(await request.body())
            import_id = await anyio.to_thread.run_sync(imports.finish, body)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        return json_response({"importId": import_id})

    async def perform(request: Request) -> Response:
        try:
            require_admin(context, request, "Imports")
            body = parse_json_body(await request.body())
            await anyio.to_thread.run_sync(imports.perform, body)
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        return Response(status_code=200)

    return [
        Route("/api/import/start_upload", start_upload, methods=["POST"]),
        Route("/api/import/upload_part", upload_part, methods=["POST"]),
        Route("/api/import/finish_upload", finish_upload, methods=["POST"]),
        Route("/api/perform_import", perform, methods=["POST"]),
    ]
