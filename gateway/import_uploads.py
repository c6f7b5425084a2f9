"""Import files uploaded in parts (``/api/import/start_upload``, ``upload_part``,
``finish_upload``), kept in the data folder's ``snapshot_imports/`` until their
import ends.

Bounds (``engine.limits``): a part at most ``import_part_bytes_max``, at most
``import_parts_max`` parts, ``import_upload_bytes_max`` in all; parts must come in
order (the CLI sends them one after another). An upload not finished, or an
import not performed, within ``import_upload_age_max_s`` is deleted by the next
``start``. Tokens are random: they name the file and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from pathlib import Path

from engine.limits import LIMITS, Limits
from gateway.http_errors import HttpError, bad_request

_PARTIAL = ".part"


class UploadStore:
    def __init__(self, folder: Path, limits: Limits = LIMITS) -> None:
        self.folder = folder
        self.limits = limits
        self._lock = threading.Lock()
        self._parts: dict[str, int] = {}  # token -> parts received, while uploading

    def start(self, in_use: set[str]) -> str:
        """A new upload's token; first deletes abandoned files not in ``in_use``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.delete_abandoned(in_use)
        token = secrets.token_hex(16)
        (self.folder / (token + _PARTIAL)).touch()
        with self._lock:
            self._parts[token] = 0
        return token

    def append(self, token: str, part_number: int, data: bytes) -> None:
        limits = self.limits
        path = self._partial(token)
        with self._lock:
            received = self._parts.get(token)
            if received is None or not path.exists():
                raise bad_request("ImportFailed", "Unknown or expired upload token.")
            if part_number != received + 1:
                raise bad_request(
                    "ImportFailed", f"Part {part_number} arrived, part {received + 1} was expected."
                )
            if part_number > limits.import_parts_max:
                raise bad_request(
                    "ImportFailed", f"An upload has at most {limits.import_parts_max} parts."
                )
            if len(data) > limits.import_part_bytes_max:
                raise HttpError(
                    413,
                    "PayloadTooLarge",
                    f"An upload part is at most {limits.import_part_bytes_max} bytes.",
                )
            if path.stat().st_size + len(data) > limits.import_upload_bytes_max:
                self._discard(token)
                raise HttpError(
                    413,
                    "PayloadTooLarge",
                    f"An import file is at most {limits.import_upload_bytes_max} bytes.",
                )
            with open(path, "ab") as f:
                f.write(data)
            self._parts[token] = part_number

    def finish(self, token: str, extension: str) -> str:
        """The finished file's name (the import's object key)."""
        with self._lock:
            if token not in self._parts or not self._partial(token).exists():
                raise bad_request("ImportFailed", "Unknown or expired upload token.")
            del self._parts[token]
        name = token + extension
        os.replace(self._partial(token), self.folder / name)
        return name

    def path(self, object_key: str) -> Path:
        return self.folder / Path(object_key).name

    def delete(self, object_key: str) -> None:
        with contextlib.suppress(OSError):
            self.path(object_key).unlink()

    def delete_abandoned(self, in_use: set[str]) -> None:
        """Delete files older than the upload age limit that no live import names."""
        if not self.folder.is_dir():
            return
        oldest_s = time.time() - self.limits.import_upload_age_max_s
        for path in self.folder.iterdir():
            with contextlib.suppress(OSError):
                if path.name not in in_use and path.stat().st_mtime < oldest_s:
                    path.unlink()
                    with self._lock:
                        self._parts.pop(path.name.removesuffix(_PARTIAL), None)

    def _partial(self, token: str) -> Path:
        if not token.isalnum():
            raise bad_request("ImportFailed", "Unknown or expired upload token.")
        return self.folder / (token + _PARTIAL)

    def _discard(self, token: str) -> None:
        self._parts.pop(token, None)
        with contextlib.suppress(OSError):
            self._partial(token).unlink()
