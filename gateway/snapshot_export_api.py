"""Snapshot export over HTTP, as Convex serves it (admin key only).

``POST /api/export/request/zip?includeStorage=true|false`` records a
``requested`` export in ``_exports`` and answers 200; the snapshot worker then
moves it to ``in_progress`` (with ``start_ts``, the snapshot's ts), writes the ZIP
(``engine.snapshot_export``) into the data folder's ``snapshot_exports/`` and
marks it ``completed`` (or ``failed``). ``npx convex export`` watches
``_system/cli/exports:getLatest`` meanwhile, then downloads
``GET /api/export/zip/<start_ts>`` (or ``/<export id>``). A second request while
one is requested or in progress is refused with ``ExportInProgress``. Only the
newest exports' files are kept (``engine.snapshot_jobs.EXPORTS_KEPT``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from engine import Database
from engine.errors import HeadwaterError
from engine.snapshot_export import export_snapshot
from engine.snapshot_jobs import EXPORTS_TABLE, completed_export, request_export, update_export
from engine.transaction import Transaction
from gateway.admin_auth import require_admin
from gateway.context import GatewayContext
from gateway.http_errors import HttpError, bad_request, error_response
from gateway.snapshot_worker import SnapshotWorker

EXPORTS_FOLDER = "snapshot_exports"
_CHUNK_BYTES = 1 << 20
_log = logging.getLogger("headwater.snapshots")


class _Exports:
    """Requests and runs exports; at most one requested or running at a time."""

    def __init__(self, db: Database, folder: Path, worker: SnapshotWorker) -> None:
        self.db = db
        self.folder = folder
        self.worker = worker
        self._lock = threading.Lock()
        self._running = False

    def request(self, include_storage: bool) -> None:
        with self._lock:
            export_id = request_export(self.db, include_storage, running=self._running)
            self._running = True
        self.worker.submit(lambda: self._make(export_id, include_storage))

    def _make(self, export_id: str, include_storage: bool) -> None:
        ts = self.db.latest_ts()
        try:
            update_export(
                self.db, export_id, "in_progress", start_ts=ts, progress_message="Beginning backup"
            )
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{ts}.zip"
            export_snapshot(self.db, path, ts=ts, include_storage=include_storage)
            update_export(
                self.db,
                export_id,
                "completed",
                complete_ts=time.time_ns(),
                zip_object_key=path.name,
                size=path.stat().st_size,
                progress_message=None,
            )
        except Exception:
            _log.exception("snapshot export at ts %s failed", ts)
            with contextlib.suppress(HeadwaterError):
                update_export(self.db, export_id, "failed", failed_ts=time.time_ns())
        finally:
            with self._lock:
                self._running = False
            self._prune()

    def _prune(self) -> None:
        """Delete export files no kept ``_exports`` document names."""
        kept = self.db.query(
            lambda tx: {d.get("zip_object_key") for d in tx.query(EXPORTS_TABLE).collect()}
        ).value
        for path in self.folder.glob("*.zip"):
            if path.name not in kept:
                with contextlib.suppress(OSError):
                    path.unlink()

    def file_of(self, snapshot_id: str) -> tuple[Path, int]:
        """The ZIP of a completed export, by start ts or export id."""

        def find(tx: Transaction) -> dict | None:
            if snapshot_id.isdigit():
                return completed_export(tx, int(snapshot_id))
            doc = tx.get(snapshot_id, table=EXPORTS_TABLE)
            return doc if doc is not None and doc["state"] == "completed" else None

        if not snapshot_id.isdigit() and not snapshot_id.isalnum():
            raise bad_request("BadSnapshotId", "Snapshot Id did not parse to an ID.")
        try:
            doc = self.db.query(find).value
        except HeadwaterError:
            raise bad_request("BadSnapshotId", "Snapshot Id did not parse to an ID.") from None
        path = None if doc is None else self.folder / doc["zip_object_key"]
        if doc is None or path is None or not path.exists():
            raise HttpError(404, "NotFound", f"Snapshot export {snapshot_id} not found.")
        return path, int(doc["start_ts"])


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """The file in chunks, each read off the event loop."""
    with open(path, "rb") as f:
        while chunk := await anyio.to_thread.run_sync(f.read, _CHUNK_BYTES):
            yield chunk


def snapshot_export_routes(
    context: GatewayContext, db: Database, worker: SnapshotWorker, data_folder: Path
) -> list[BaseRoute]:
    exports = _Exports(db, data_folder / EXPORTS_FOLDER, worker)

    async def request_zip(request: Request) -> Response:
        try:
            require_admin(context, request, "Snapshot exports")
            include_storage = request.query_params.get("includeStorage", "false") == "true"
            await anyio.to_thread.run_sync(exports.request, include_storage)
        except Exception as exc:  # noqa: BLE001 - every refusal leaves as code + message
            return error_response(exc)
        return Response(status_code=200)

    async def download(request: Request) -> Response:
        try:
            require_admin(context, request, "Snapshot exports")
            path, ts = await anyio.to_thread.run_sync(
                exports.file_of, request.path_params["snapshot_id"]
            )
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        headers = {
            "Content-Disposition": f"attachment; filename=snapshot_{ts}.zip",
            "Content-Length": str(path.stat().st_size),
        }
        return StreamingResponse(_chunks(path), media_type="application/zip", headers=headers)

    return [
        Route("/api/export/request/zip", request_zip, methods=["POST"]),
        Route("/api/export/zip/{snapshot_id}", download, methods=["GET"]),
    ]
