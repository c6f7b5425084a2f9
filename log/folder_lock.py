"""The writer lock of a data folder: exactly one process commits to it.

Every process that will commit (``headwater serve``, a local ``run`` of a
mutation, ``import``, ``replay``) takes an exclusive ``flock`` on
``<data>/LOCK`` before it opens the folder for writing. The lock belongs to the
open file, so the operating system drops it when the process dies, even by
SIGKILL: a stale lock file is harmless, the next writer simply takes it.

The file holds one JSON record, ``{"pid": ..., "url": ...}``, written by the
holder: ``pid`` so a refused process can name who holds the folder, ``url``
(set by a server once it listens) so a command line can send its writes
through that server instead. The record is written at offset 0 in one write
of a fixed size, so a reader never sees a mix of two records.

Caveats: ``flock`` is advisory and per open file description; two opens in
one process exclude each other too, which is what we want (LMDB forbids two
environments of one folder in a process anyway). It is not reliable on
network file systems; a data folder must live on a local disk.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass

from engine.errors import DataFolderBusyError

LOCK_FILE = "LOCK"
_RECORD_BYTES = 512


@dataclass(frozen=True)
class LockHolder:
    """What the holder of a folder's lock wrote: its pid and, for a server, its URL."""

    pid: int | None
    url: str | None


class FolderLock:
    """An acquired writer lock; ``release`` (or process exit) gives it up."""

    def __init__(self, folder: str, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, folder: str | os.PathLike[str]) -> FolderLock:
        """Take the lock of ``folder`` (created if missing) or raise ``DataFolderBusyError``."""
        path = os.fspath(folder)
        os.makedirs(path, exist_ok=True)
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy_error(path, read_holder(path)) from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, fd)
        lock._write(LockHolder(os.getpid(), None))
        return lock

    def set_url(self, url: str) -> None:
        """Publish the URL this process serves the folder at (for command lines beside it)."""
        self._write(LockHolder(os.getpid(), url))

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _write(self, holder: LockHolder) -> None:
        assert self._fd is not None, "the lock was released"
        record = json.dumps({"pid": holder.pid, "url": holder.url}).encode()
        if len(record) >= _RECORD_BYTES:
            raise ValueError(f"lock record too long: {record!r}")
        os.pwrite(self._fd, record.ljust(_RECORD_BYTES - 1) + b"\n", 0)
        os.ftruncate(self._fd, _RECORD_BYTES)


def read_holder(folder: str | os.PathLike[str]) -> LockHolder:
    """The record in ``folder``'s lock file; fields are None when it cannot be read."""
    try:
        with open(os.path.join(os.fspath(folder), LOCK_FILE), "rb") as f:
            raw = json.loads(f.read(_RECORD_BYTES) or b"{}")
    except (OSError, ValueError):
        return LockHolder(None, None)
    if not isinstance(raw, dict):
        return LockHolder(None, None)
    pid, url = raw.get("pid"), raw.get("url")
    return LockHolder(pid if isinstance(pid, int) else None, url if isinstance(url, str) else None)


def busy_error(folder: str, holder: LockHolder) -> DataFolderBusyError:
    who = "another process" if holder.pid is None else f"process {holder.pid}"
    return DataFolderBusyError(
        f"The data folder {folder} is in use by {who}"
        f"{' (a server at ' + holder.url + ')' if holder.url else ''}; "
        "only one process may write to a data folder at a time."
    )
