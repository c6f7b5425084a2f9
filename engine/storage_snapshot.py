"""Stored files in snapshot ZIPs, as Convex's export writes them and its import reads them.

    _storage/documents.jsonl   one line per file, by _id: {"_id", "_creationTime",
                               "sha256" (base64), "size", "contentType", "internalId"}
    _storage/<id><ext>         the bytes (``ext`` guessed from the content type)

Export copies each blob into the ZIP in chunks. Import streams each entry into
the blob store (durable, digest checked against the line) before one batch of
commits inserts the documents with their ids and ``_creationTime`` kept, so a
URL of the exporting deployment names the same file in the importing one.

Caveats: ``replace`` and ``replaceAll`` delete the deployment's other files
first; ``append`` refuses an id the deployment already has; ``requireEmpty``
refuses a deployment that stores files. A file whose id names another table
number (a deployment numbered differently) keeps its internal id under ours.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import zipfile
from collections.abc import Iterator
from typing import Any

from engine.blob_store import BlobStore, StoredBlob
from engine.errors import HeadwaterError, IntegrityError
from engine.file_storage import STORAGE_TABLE_NUMBER, uuid_of
from engine.ids import decode_id, encode_id
from engine.import_sources import STORAGE_FILE_PATTERN, ImportFileError
from engine.limits import Limits
from engine.snapshot import Snapshot
from engine.snapshot_zip import STORAGE_FOLDER, documents_entry, entry_info, storage_entry
from engine.streaming_export import iter_table_at
from engine.system_tables import STORAGE_TABLE
from log.entry import Write

STORAGE_DOCUMENTS = documents_entry(STORAGE_FOLDER)
_COPY_BYTES = 1 << 20
_MIME = mimetypes.MimeTypes()  # the built-in table only: the same ZIP on every machine


def extension_of(content_type: str | None) -> str:
    if not content_type:
        return ""
    return _MIME.guess_extension(content_type.split(";")[0].strip()) or ""


# -- export ------------------------------------------------------------------------------


def write_storage(zf: zipfile.ZipFile, snapshot: Snapshot, blobs: BlobStore) -> int:
    """The metadata entry, then one entry per file; the number of files. A deployment
    with no files writes neither (Convex writes an empty metadata entry; both import)."""
    docs = [doc for _, doc in iter_table_at(snapshot, STORAGE_TABLE)]
    if not docs:
        return 0
    with zf.open(entry_info(STORAGE_DOCUMENTS), "w", force_zip64=True) as out:
        for doc in docs:
            out.write((json.dumps(_metadata_line(doc), separators=(",", ":")) + "\n").encode())
    for doc in docs:
        path = blobs.path_of_base64(doc["sha256"])
        name = storage_entry(doc["_id"], extension_of(doc.get("contentType")))
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise IntegrityError(f"file missing from storage: {doc['_id']}") from None
        with source, zf.open(entry_info(name), "w", force_zip64=True) as out:
            while chunk := source.read(_COPY_BYTES):
                out.write(chunk)
    return len(docs)


def _metadata_line(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "_id": doc["_id"],
        "_creationTime": doc["_creationTime"],
        "sha256": doc["sha256"],
        "size": int(doc["size"]),
        "contentType": doc.get("contentType"),
        "internalId": uuid_of(doc["_id"]),
    }


# -- import ------------------------------------------------------------------------------


def read_storage_lines(data: Any, entries: tuple[str, ...]) -> list[dict[str, Any]]:
    """The metadata lines of a ZIP's ``_storage`` (checked), ``[]`` if it has none."""
    if STORAGE_DOCUMENTS not in entries:
        if any(STORAGE_FILE_PATTERN.match(e) for e in entries):
            raise ImportFileError(
                f"{STORAGE_DOCUMENTS} is missing: the stored files have no metadata",
                code="InvalidStorageMetadata",
            )
        return []
    with _open_zip(data) as zf:
        text = zf.read(STORAGE_DOCUMENTS).decode()
    files = {m.group(2): e for e in entries if (m := STORAGE_FILE_PATTERN.match(e))}
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        lines.append(_checked_line(line, number, files))
    return lines


def _checked_line(line: str, number: int, files: dict[str, str]) -> dict[str, Any]:
    where = f"{STORAGE_DOCUMENTS}:{number}"
    try:
        meta = json.loads(line)
        doc_id = meta["_id"]
        internal = decode_id(doc_id).internal
        digest = base64.b64decode(meta["sha256"], validate=True)
        size = int(meta["size"])
        content_type = meta.get("contentType")
        created = float(meta["_creationTime"])
    except (ValueError, KeyError, TypeError, HeadwaterError) as exc:
        raise ImportFileError(
            f"{where}: invalid file metadata ({exc})", code="InvalidStorageMetadata"
        ) from None
    if doc_id not in files:
        raise ImportFileError(
            f"{where}: no file _storage/{doc_id} in the ZIP", code="MissingStorageFile"
        )
    if content_type is not None and not isinstance(content_type, str):
        raise ImportFileError(
            f"{where}: contentType must be a string", code="InvalidStorageMetadata"
        )
    return {
        "_id": encode_id(STORAGE_TABLE_NUMBER, internal),
        "_creationTime": created,
        "sha256": base64.b64encode(digest).decode(),
        "size": float(size),
        "contentType": content_type or None,
        "entry": files[doc_id],
    }


def storage_target_deletes(
    snapshot: Snapshot, lines: list[dict[str, Any]], mode: str
) -> list[Write]:
    """The deletes the mode makes first; refuses a clash. Nothing is written here."""
    existing = list(iter_table_at(snapshot, STORAGE_TABLE))
    if mode in ("replace", "replaceAll"):
        return [Write(doc["_id"], STORAGE_TABLE, ts, None) for ts, doc in existing]
    if mode == "requireEmpty" and existing:
        raise ImportFileError(
            "Cannot import into a deployment that stores files. Import into an empty "
            "deployment, or replace its data.",
            code="ImportTargetNotEmpty",
        )
    have = {doc["_id"] for _, doc in existing}
    clash = next((line["_id"] for line in lines if line["_id"] in have), None)
    if clash is not None:
        raise ImportFileError(f"file {clash} already exists in _storage", code="ImportConflict")
    return []


def store_files(
    data: Any, lines: list[dict[str, Any]], blobs: BlobStore, limits: Limits
) -> Iterator[tuple[Write, int]]:
    """Each file's bytes made durable, then its insert (with a size for batching)."""
    with _open_zip(data) as zf:
        for line in lines:
            blob = _copy_in(zf, line, blobs, limits)
            doc = {k: v for k, v in line.items() if k != "entry"}
            if blob.size != int(doc["size"]):
                raise ImportFileError(
                    f"{line['entry']}: {blob.size} bytes, its metadata says {int(doc['size'])}",
                    code="InvalidStorageMetadata",
                )
            yield Write(doc["_id"], STORAGE_TABLE, None, doc), 200


def _copy_in(
    zf: zipfile.ZipFile, line: dict[str, Any], blobs: BlobStore, limits: Limits
) -> StoredBlob:
    incoming = blobs.incoming(limits.storage_file_bytes_max)
    try:
        with zf.open(line["entry"]) as source:
            while chunk := source.read(_COPY_BYTES):
                incoming.write(chunk)
        return incoming.finish(base64.b64decode(line["sha256"]))
    except BaseException:
        incoming.abort()
        raise


def _open_zip(data: Any) -> zipfile.ZipFile:
    if not isinstance(data, str) and hasattr(data, "seek"):
        data.seek(0)
    return zipfile.ZipFile(data)
