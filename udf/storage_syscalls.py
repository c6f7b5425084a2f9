"""The ``1.0/storage*`` syscalls of one call (function-runtime §3.3, §3.4).

Queries and mutations answer from their own transaction (a mutation's delete or
store commits with its other writes, or not at all); actions have none, so each
op is its own read or commit at the latest ts. ``storageStore`` writes the blob
durably first: a rolled-back mutation leaves only an orphan blob, which the
sweep removes. Bytes cross the V8 boundary as base64, as the npm client sends
them (``storage/storeBlob`` and ``storage/getBlob`` in actions are built on these
two ops inside the runtime). A Node.js action's ``store``/``get`` go over HTTP to
the deployment's own URL instead (``js/node_worker.mjs``, as Convex's Node executor
does), marking their URL ops ``blobTransfer``: without a known server URL (the
executor run in process) those fail at once with a clear error rather than send
the blob to whatever listens on the default port.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from engine.errors import HeadwaterError
from engine.file_storage import (
    FileStorage,
    delete_file,
    get_file,
    insert_file,
    public_metadata,
    uuid_of,
)
from engine.transaction import Transaction
from udf.errors import SyscallError

STORAGE_OPS = frozenset(
    {
        "1.0/storageGenerateUploadUrl",
        "1.0/storageGetUrl",
        "1.0/storageGetMetadata",
        "1.0/storageDelete",
        "1.0/storageStore",
        "1.0/storageGet",
    }
)
_WRITES = {"1.0/storageGenerateUploadUrl", "1.0/storageDelete", "1.0/storageStore"}


class StorageSyscalls:
    def __init__(
        self,
        storage: FileStorage,
        kind: str,
        tx: Transaction | None,
        origin: str | None,
    ) -> None:
        self._storage = storage
        self._kind = kind
        self._tx = tx
        self._server_url_known = origin is not None
        self._origin = origin or "http://127.0.0.1:3210"

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        if op in _WRITES and self._kind == "query":
            name = op.removeprefix("1.0/storage")
            raise SyscallError(f"storage{name} can only be called from a mutation or an action.")
        try:
            return self._answer(op, args)
        except HeadwaterError as exc:
            raise SyscallError(exc.message) from exc

    def _answer(self, op: str, args: dict[str, Any]) -> Any:
        transfer = args.get("blobTransfer")
        if transfer is not None and not self._server_url_known:
            raise SyscallError(
                f"ctx.storage.{transfer}() in a Node.js action moves the file over the "
                "deployment's own URL, which is known only when it runs under "
                "`headwater serve`."
            )
        if op == "1.0/storageGenerateUploadUrl":
            token = self._storage.issue_upload_token()
            return f"{self._origin}/api/storage/upload?token={token}"
        if op == "1.0/storageStore":
            return self._store(args)
        storage_id = args.get("storageId")
        if op == "1.0/storageDelete":
            self._write(delete_file, storage_id)
            return None
        doc = self._read(storage_id)
        if doc is None:
            return None
        if op == "1.0/storageGetUrl":
            return f"{self._origin}/api/storage/{uuid_of(doc['_id'])}"
        if op == "1.0/storageGetMetadata":
            return public_metadata(doc)
        data = self._storage.path_of(doc).read_bytes()  # 1.0/storageGet
        return {"blob": base64.b64encode(data).decode(), "contentType": doc.get("contentType")}

    def _store(self, args: dict[str, Any]) -> str:
        try:
            data = base64.b64decode(args.get("blob", ""), validate=True)
        except (binascii.Error, TypeError) as exc:
            raise SyscallError("storage.store received a blob that is not base64.") from exc
        blob = self._storage.store_bytes(data)
        expected = args.get("sha256")
        if expected is not None and expected != blob.sha256_base64:
            raise SyscallError(
                f"Sha256 mismatch. Expected: {expected} Actual: {blob.sha256_base64}"
            )
        content_type = args.get("contentType")
        content_type = content_type if isinstance(content_type, str) and content_type else None
        if self._tx is not None:
            return insert_file(self._tx, blob, content_type)
        return self._storage.commit_file(blob, content_type)

    def _read(self, storage_id: Any) -> dict[str, Any] | None:
        if self._tx is not None:
            return get_file(self._tx, storage_id)
        return self._storage.lookup(storage_id)

    def _write(self, fn: Any, *args: Any) -> Any:
        if self._tx is not None:
            return fn(self._tx, *args)
        return self._storage.db.mutate(fn, *args).value
