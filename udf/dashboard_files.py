"""``ops:files`` and ``ops:deleteFile``: the dashboard's file storage screen.

Files are the ``_storage`` documents, read through the query's transaction (live,
readable at a past commit), newest first, each with the URL ``ctx.storage.getUrl``
gives. Deleting one is what ``ctx.storage.delete`` does (``engine.file_storage``),
in the dashboard mutation's commit; an unknown id is refused with its error.
"""

from __future__ import annotations

from typing import Any

from engine.file_storage import delete_file, uuid_of
from engine.system_tables import STORAGE_TABLE
from engine.transaction import Transaction
from udf.dashboard_ops_args import check_keys, string_arg

FILES_LISTED_MAX = 1000
_DEFAULT_ORIGIN = "http://127.0.0.1:3210"  # as ctx.storage.getUrl outside `headwater serve`


def list_files(context: Any, tx: Transaction, args: dict[str, Any]) -> list[dict[str, Any]]:
    check_keys(args, (), "ops:files")
    origin = getattr(context.executor, "cloud_url", None) or _DEFAULT_ORIGIN
    return [
        {
            "storageId": doc["_id"],
            "size": float(doc["size"]),
            "contentType": doc.get("contentType"),
            "sha256": doc["sha256"],
            "creationTime": float(doc["_creationTime"]),
            "url": f"{origin}/api/storage/{uuid_of(doc['_id'])}",
        }
        for doc in tx.query(STORAGE_TABLE).order("desc").take(FILES_LISTED_MAX)
    ]


def delete_stored_file(_context: Any, tx: Transaction, args: dict[str, Any]) -> None:
    check_keys(args, ("storageId",), "ops:deleteFile")
    delete_file(tx, string_arg(args, "storageId", "ops:deleteFile"))
    return None
