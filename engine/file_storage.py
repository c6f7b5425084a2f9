"""File storage: ``_storage`` documents over the blob store, upload tokens, the sweep.

A stored file is one ``_storage`` document ``{sha256 (base64), size, contentType}``
whose blob (``engine.blob_store``) is durable before the commit that inserts the
document. Its URL names a UUID made of the id's 16 internal bytes, so the URL
is stable, needs no index, and survives export and import with the id.

Storage ids are accepted as Convex accepts them: a ``_storage`` id, or the UUID.
Upload tokens are ``<issued_s>.<HMAC-SHA256>`` under a key kept in the files
folder: opaque to clients, checked without a database read, valid for
``storage_upload_token_validity_s``.

Caveats: deleting a document does not remove its blob: a point-in-time read
inside the retention window may still fetch it. ``sweep`` keeps every digest the
retained history can see (the snapshot at the history floor plus every
``_storage`` write logged since), so without a retention window nothing a
document ever referenced is removed; it removes unreferenced blobs past a grace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.blob_store import BlobStore, StoredBlob
from engine.database import Database, storage_handles
from engine.errors import HeadwaterError
from engine.ids import decode_id, encode_id, new_internal_id
from engine.limits import LIMITS, Limits
from engine.system_tables import STORAGE_TABLE, SYSTEM_TABLE_NUMBERS
from engine.transaction import Transaction

FILES_FOLDER = "files"
TOKEN_KEY_FILE = "upload_token.key"
STORAGE_TABLE_NUMBER = SYSTEM_TABLE_NUMBERS[STORAGE_TABLE]


class StorageError(HeadwaterError):
    code = "StorageError"


def storage_doc(blob: StoredBlob, content_type: str | None) -> dict[str, Any]:
    return {
        "sha256": blob.sha256_base64,
        "size": float(blob.size),
        "contentType": content_type or None,
    }


def uuid_of(storage_id: str) -> str:
    """The URL name of a ``_storage`` id: its internal id as a UUID."""
    return str(uuid.UUID(bytes=decode_id(storage_id).internal))


def id_of_uuid(text: str) -> str:
    return encode_id(STORAGE_TABLE_NUMBER, uuid.UUID(text).bytes)


def resolve_storage_id(tx: Transaction, storage_id: Any) -> str:
    """The ``_storage`` id for a storage id argument (an id or a UUID), Convex's errors."""
    if not isinstance(storage_id, str):
        raise StorageError("storageId must be a string.", code="InvalidArgument")
    try:
        parsed = decode_id(storage_id)
    except HeadwaterError:
        try:
            return id_of_uuid(storage_id)
        except ValueError:
            raise StorageError(
                f'Invalid storage ID: "{storage_id}". Storage ID should be an Id of '
                "'_storage' table, or a UUID string.",
                code="InvalidStorageId",
            ) from None
    if parsed.table_number != STORAGE_TABLE_NUMBER:
        raise StorageError(
            "Invalid storage ID. Storage ID cannot be an ID on any table other than '_storage'.",
            code="InvalidArgument",
        )
    return parsed.encode()


def get_file(tx: Transaction, storage_id: Any) -> dict[str, Any] | None:
    return tx.get(resolve_storage_id(tx, storage_id))


def insert_file(tx: Transaction, blob: StoredBlob, content_type: str | None) -> str:
    doc_id = encode_id(STORAGE_TABLE_NUMBER, new_internal_id(os.urandom, time.time() * 1000))
    tx.write_system(STORAGE_TABLE, doc_id, storage_doc(blob, content_type))
    return doc_id


def delete_file(tx: Transaction, storage_id: Any) -> None:
    doc_id = resolve_storage_id(tx, storage_id)
    if tx.get(doc_id) is None:
        raise StorageError(f"storage id {storage_id} not found", code="StorageIdNotFound")
    tx.write_system(STORAGE_TABLE, doc_id, None)


def public_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """``getMetadata``'s answer (the deprecated API): the digest in hex, as Convex."""
    return {
        "storageId": doc["_id"],
        "sha256": base64.b64decode(doc["sha256"]).hex(),
        "size": doc["size"],
        "contentType": doc.get("contentType"),
    }


class FileStorage:
    """The blob store of one data folder, and what spans it and the database."""

    def __init__(self, db: Database, *, limits: Limits = LIMITS) -> None:
        self.db = db
        self.limits = limits
        shared = None if db.cluster is None else db.cluster.store
        self.blobs = BlobStore(Path(db.path) / FILES_FOLDER, shared)
        if shared is None:
            self._token_key = _load_or_create_key(self.blobs.root / TOKEN_KEY_FILE)
        else:  # every node checks the tokens every other node issues
            key_hex = shared.set_meta_if_absent("upload_token_key", os.urandom(32).hex())
            self._token_key = bytes.fromhex(key_hex)

    # -- upload tokens ----------------------------------------------------------------

    def issue_upload_token(self) -> str:
        issued_s = str(int(time.time()))
        return f"{issued_s}.{self._mac(issued_s)}"

    def check_upload_token(self, token: str) -> None:
        issued_s, _, mac = token.partition(".")
        if not issued_s.isdigit() or not hmac.compare_digest(mac, self._mac(issued_s)):
            raise StorageError(
                "Couldn't decode the StoreFileAuthorization token", code="StorageTokenInvalid"
            )
        if int(issued_s) + self.limits.storage_upload_token_validity_s <= time.time():
            raise StorageError("Store File Authorization expired", code="StorageTokenExpired")

    def _mac(self, issued_s: str) -> str:
        digest = hmac.new(self._token_key, issued_s.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # -- files ------------------------------------------------------------------------

    def store_bytes(self, data: bytes) -> StoredBlob:
        return self.blobs.put(data, self.limits.storage_file_bytes_max)

    def commit_file(self, blob: StoredBlob, content_type: str | None) -> str:
        """The document for a durable blob, in its own transaction; its id."""
        return str(self.db.mutate(insert_file, blob, content_type).value)

    def lookup(self, storage_id: Any, ts: int | None = None) -> dict[str, Any] | None:
        return self.db.query(get_file, storage_id, ts=ts).value

    def path_of(self, doc: dict[str, Any]) -> Path:
        return self.blobs.path_of_base64(doc["sha256"])

    # -- cleaning ---------------------------------------------------------------------

    def referenced_digests(self) -> set[str]:
        """Every digest a retained read can see: the history floor's documents and
        every ``_storage`` version written since."""
        floor = self.db.first_ts()
        digests: set[str] = set()
        if floor is None:
            return digests

        def at_floor(tx: Transaction) -> list[dict[str, Any]]:
            return tx.query(STORAGE_TABLE).collect()

        digests.update(doc["sha256"] for doc in self.db.query(at_floor, ts=floor).value)
        for doc in _logged_versions(self.db, floor):
            digests.add(doc["sha256"])
        return digests

    def sweep(self) -> int:
        return self.blobs.sweep(self.referenced_digests(), self.limits.storage_orphan_grace_s)


def _logged_versions(db: Database, since_ts: int) -> Iterator[dict[str, Any]]:
    _, log = storage_handles(db)
    for entry in log.read_from(since_ts):
        for write in entry.writes:
            if write.table == STORAGE_TABLE and write.value is not None:
                yield write.value


def _load_or_create_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
