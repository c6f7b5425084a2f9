"""Convex's file storage endpoints (http-api §5), on the API port.

    POST /api/storage/upload?token=<token>   the raw file body -> {"storageId": id}
    GET  /api/storage/<uuid>                 the file: Content-Type, Content-Length,
                                             ETag, Accept-Ranges, one Range (206/416)

An upload streams to disk in bounded chunks (``engine.blob_store``): memory does
not grow with the file. A refused token, a body past the limit, a digest
mismatch or a client leaving mid-body drops the partial file and commits
nothing. An optional ``Digest: sha-256=<base64>`` header is checked, as Convex
does. A download streams the blob from an open file, so a sweep running
meanwhile cannot cut it short.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import IO

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from engine.blob_store import IncomingBlob
from engine.errors import HeadwaterError
from engine.file_storage import FileStorage, id_of_uuid
from gateway.byte_ranges import UNSATISFIABLE, content_range, parse_range
from gateway.http_errors import HttpError, error_response, json_response

UPLOAD_PATH = "/api/storage/upload"
CHUNK_BYTES = 1 << 20
# Storage GETs are immutable: browsers may cache them a long time (Convex: 30 days).
CACHE_CONTROL = "private, max-age=2592000"
_UPLOAD_STATUS = {
    "StorageTokenInvalid": 401,  # Convex: unauthenticated
    "StorageTokenExpired": 401,
    "PayloadTooLarge": 413,
}


def storage_routes(storage: FileStorage) -> list[BaseRoute]:
    async def upload(request: Request) -> Response:
        try:
            return json_response({"storageId": await _upload(storage, request)})
        except HeadwaterError as exc:
            status = _UPLOAD_STATUS.get(exc.code, 400)
            return error_response(HttpError(status, exc.code, exc.message))

    async def download(request: Request) -> Response:
        try:
            return await _download(storage, request)
        except HeadwaterError as exc:
            return error_response(exc)

    return [
        Route(UPLOAD_PATH, upload, methods=["POST"]),
        Route("/api/storage/{uuid}", download, methods=["GET"]),
    ]


async def _upload(storage: FileStorage, request: Request) -> str:
    token = request.query_params.get("token")
    if token is None:
        raise HttpError(
            400, "BadQueryArgs", "Failed to deserialize query string: missing field `token`"
        )
    storage.check_upload_token(token)
    expected = _digest_header(request.headers.get("digest"))
    incoming = await anyio.to_thread.run_sync(
        storage.blobs.incoming, storage.limits.storage_file_bytes_max
    )
    try:
        await _receive_into(incoming, request)
        blob = await anyio.to_thread.run_sync(incoming.finish, expected)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(incoming.abort)
        raise
    content_type = request.headers.get("content-type") or None
    return await anyio.to_thread.run_sync(storage.commit_file, blob, content_type)


async def _receive_into(incoming: IncomingBlob, request: Request) -> None:
    """The body into ``incoming``, written off the event loop a chunk at a time."""
    pending: list[bytes] = []
    pending_bytes = 0
    async for chunk in request.stream():
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= CHUNK_BYTES:
            await anyio.to_thread.run_sync(incoming.write, b"".join(pending))
            pending, pending_bytes = [], 0
    if pending:
        await anyio.to_thread.run_sync(incoming.write, b"".join(pending))


def _digest_header(value: str | None) -> bytes | None:
    if value is None:
        return None
    algorithm, _, digest = value.partition("=")
    try:
        if algorithm.strip().lower() != "sha-256":
            raise ValueError
        decoded = base64.b64decode(digest.strip(), validate=True)
        if len(decoded) != 32:
            raise ValueError
        return decoded
    except (ValueError, binascii.Error):
        raise HttpError(400, "BadHeader", "Bad header for digest: invalid header") from None


async def _download(storage: FileStorage, request: Request) -> Response:
    name = request.path_params["uuid"]
    try:
        doc_id = id_of_uuid(name)
    except ValueError:
        raise HttpError(
            400,
            "InvalidStoragePath",
            f'Invalid storage path: "{name}". Please use `storage.getUrl(storageId: '
            'Id<"_storage">)` to generate a valid URL to retrieve files. See '
            "https://docs.convex.dev/file-storage/serve-files for more details",
        ) from None
    doc = await anyio.to_thread.run_sync(storage.lookup, doc_id)
    if doc is None:
        raise HttpError(404, "FileNotFound", f"File {name} not found")
    size = int(doc["size"])
    etag = f'"{doc["sha256"]}"'
    headers = {"Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes", "ETag": etag}
    if doc.get("contentType"):
        headers["Content-Type"] = doc["contentType"]
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), size)
    if wanted == UNSATISFIABLE:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    first, last, status = 0, size - 1, 200
    if isinstance(wanted, tuple):
        first, last, status = wanted[0], wanted[1], 206
        headers["Content-Range"] = content_range(first, last, size)
    else:
        headers["Digest"] = f"sha-256={doc['sha256']}"
    headers["Content-Length"] = str(last - first + 1)
    file = await anyio.to_thread.run_sync(open, storage.path_of(doc), "rb")
    return StreamingResponse(_chunks(file, first, last - first + 1), status, headers)


async def _chunks(file: IO[bytes], offset: int, length: int) -> AsyncIterator[bytes]:
    try:
        await anyio.to_thread.run_sync(file.seek, offset)
        while length > 0:
            chunk = await anyio.to_thread.run_sync(file.read, min(CHUNK_BYTES, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        file.close()
