"""Stored files' bytes on disk, content-addressed by SHA-256.

    <root>/blobs/<hex[:2]>/<hex>     one file per distinct content
    <root>/incoming/<random>.part    an upload being written

An upload streams into an ``incoming`` part while its digest and size are
counted; ``finish`` fsyncs it and renames it to its address (fsyncing the
folder), so a blob either exists whole or not at all. Only then may a commit
reference it: the log carries the digest, never the bytes.

Caveats: identical contents share one blob, so a blob is removed only by
``sweep``, which is given every digest still referenced (by a live document or
by a version a retained point-in-time read can see) and spares anything newer
than a grace period (an upload between its ``finish`` and its commit). A part
left by a crash or a cut connection is removed the same way.

With a shared store (a cluster node, ``shared``), the folder is a cache: a
finished upload is also put in the store before ``finish`` returns (so any
node can serve it once a commit references it), and ``path_of`` fetches a blob
the folder lacks from the store. The sweep cleans only the local cache.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import HeadwaterError

BLOBS_FOLDER = "blobs"
INCOMING_FOLDER = "incoming"


class BlobTooLargeError(HeadwaterError):
    code = "PayloadTooLarge"


@dataclass(frozen=True)
class StoredBlob:
    sha256: bytes
    size: int

    @property
    def sha256_base64(self) -> str:
        return base64.b64encode(self.sha256).decode()


class IncomingBlob:
    """One upload being written: ``write`` chunks, then ``finish`` or ``abort``."""

    def __init__(self, store: BlobStore, bytes_max: int) -> None:
        self._store = store
        self._bytes_max = bytes_max
        self.path = store.root / INCOMING_FOLDER / f"{os.urandom(12).hex()}.part"
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by finish/abort
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._bytes_max:
            self.abort()
            raise BlobTooLargeError(
                f"The file is {self.size} bytes or more, larger than the limit of "
                f"{self._bytes_max} bytes (storage_file_bytes_max)."
            )
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self, expected_sha256: bytes | None = None) -> StoredBlob:
        """Durable at its address (or already there): safe to reference from a commit.
        With ``expected_sha256``, a different content is dropped and refused."""
        blob = StoredBlob(self._hash.digest(), self.size)
        if expected_sha256 is not None and expected_sha256 != blob.sha256:
            self.abort()
            expected = base64.b64encode(expected_sha256).decode()
            raise HeadwaterError(
                f"Sha256 mismatch. Expected: {expected} Actual: {blob.sha256_base64}",
                code="Sha256Mismatch",
            )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.local_path_of(blob.sha256)  # never a fetch: ours is here
        if target.exists():
            self.path.unlink()
            os.utime(target)  # a fresh reference: the sweep's grace starts again
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(self.path, target)
            _fsync_folder(target.parent)
        if self._store.shared is not None:
            self._store.shared.put_blob(blob.sha256, target.read_bytes())
        return blob

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: str | os.PathLike[str], shared: Any = None) -> None:
        """``shared``: a ``SharedLogStore`` whose blobs this folder caches, or None."""
        self.root = Path(root)
        self.shared = shared
        (self.root / BLOBS_FOLDER).mkdir(parents=True, exist_ok=True)
        (self.root / INCOMING_FOLDER).mkdir(exist_ok=True)

    def local_path_of(self, sha256: bytes) -> Path:
        """Where this folder keeps the blob (it may not be there yet)."""
        hex_digest = sha256.hex()
        return self.root / BLOBS_FOLDER / hex_digest[:2] / hex_digest

    def path_of(self, sha256: bytes) -> Path:
        """The blob's file, fetched from the shared store first when only it has it."""
        path = self.local_path_of(sha256)
        if self.shared is not None and not path.exists():
            self._fetch_shared(sha256, path)
        return path

    def _fetch_shared(self, sha256: bytes, path: Path) -> None:
        """Copy a blob another node stored into this cache (absent: nothing, as locally)."""
        data = self.shared.get_blob(sha256)
        if data is None:
            return
        part = self.root / INCOMING_FOLDER / f"{os.urandom(12).hex()}.part"
        part.write_bytes(data)
        path.parent.mkdir(exist_ok=True)
        os.replace(part, path)

    def path_of_base64(self, sha256_base64: str) -> Path:
        return self.path_of(base64.b64decode(sha256_base64))

    def incoming(self, bytes_max: int) -> IncomingBlob:
        return IncomingBlob(self, bytes_max)

    def put(self, data: bytes, bytes_max: int) -> StoredBlob:
        incoming = self.incoming(bytes_max)
        try:
            incoming.write(data)
        except BaseException:
            incoming.abort()
            raise
        return incoming.finish()

    def read(self, sha256_base64: str) -> bytes:
        return self.path_of_base64(sha256_base64).read_bytes()

    def sweep(self, referenced: Iterable[str], grace_s: float) -> int:
        """Remove blobs whose digest (base64) is not in ``referenced`` and parts, both
        older than ``grace_s``; the number of files removed."""
        keep = {base64.b64decode(s).hex() for s in referenced}
        cutoff = time.time() - grace_s
        removed = 0
        candidates = [
            *(self.root / BLOBS_FOLDER).glob("*/*"),
            *(self.root / INCOMING_FOLDER).glob("*.part"),
        ]
        for path in candidates:
            if path.suffix != ".part" and path.name in keep:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def statistics(self) -> dict[str, int]:
        blobs = list((self.root / BLOBS_FOLDER).glob("*/*"))
        return {"blobs": len(blobs), "blob_bytes": sum(p.stat().st_size for p in blobs)}


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
