"""The system queries ``npx convex export`` and ``import`` watch (admin only, live):
``_system/cli/exports:getLatest`` (the newest ``_exports`` document or null),
``_system/cli/queryImport`` (one ``_snapshot_imports`` document by ``importId``)
and ``queryImport:list`` (the newest 20)."""

from __future__ import annotations

from typing import Any

from engine import snapshot_jobs
from engine.transaction import Transaction
from udf.system_data import bad_args


def latest_export(tx: Transaction, _args: dict[str, Any]) -> Any:
    return snapshot_jobs.latest_export(tx)


def get_import(tx: Transaction, args: dict[str, Any]) -> Any:
    import_id = args.get("importId")
    if not isinstance(import_id, str):
        raise bad_args("`importId` must be an id of `_snapshot_imports`.")
    return snapshot_jobs.get_import(tx, import_id)


def list_imports(tx: Transaction, _args: dict[str, Any]) -> Any:
    return snapshot_jobs.list_imports(tx)
