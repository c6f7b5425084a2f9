"""What the ``headwater`` command prints when it cannot do what was asked: one line.

Every failure a user can cause (a mistyped folder, a port in use, a server
that is not running, a read-only disk) ends the command with one line on
stderr that names the problem and what to do next, in Headwater's terms, and
a non-zero exit code. A traceback is kept for our own bugs.

The checks here run before a command touches anything: a mistyped ``--data``
must not become a new empty data folder.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import lmdb

from engine import HeadwaterError
from log.folder_lock import LOCK_FILE

LMDB_DATA_FILE = "data.mdb"
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class CliError(HeadwaterError):
    """A command line that cannot be carried out; the message says what to do instead."""

    code = "CommandFailed"


def existing_data_folder(path: str) -> str:
    """``path`` if it holds a Headwater data folder (for commands that only read one)."""
    folder = Path(path)
    if folder.is_file():
        raise CliError(f"--data {path} is a file: give the data folder `headwater serve` uses.")
    if not (folder / LMDB_DATA_FILE).is_file():
        raise CliError(
            f"No Headwater data folder at {path}: give the --data folder of "
            "`headwater serve` (default headwater_data), or start one with "
            f"`headwater serve --data {path}`."
        )
    return path


def writable_data_folder(path: str) -> str:
    """``path`` if it is, or can become, a data folder this process may write."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"--data {path} is a file: give a folder (it is created if missing).")
    existing = folder if folder.exists() else _nearest_existing_parent(folder)
    if not os.access(existing, os.W_OK):
        raise CliError(
            f"The data folder {path} is read-only: make it writable or choose another --data."
        )
    return path


def _nearest_existing_parent(folder: Path) -> Path:
    for parent in folder.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


def free_port(host: str) -> int:
    """A port free on ``host`` now (taken by the server a moment later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def check_port_free(host: str, port: int, option: str = "--port") -> None:
    """Refuse at once a port another process listens on (before the slow start-up)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(_bind_message(host, port, exc, option)) from exc


def _bind_message(host: str, port: int, exc: OSError, option: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is in use (another server?): stop it, "
            f"or choose another port with {option}."
        )
    if exc.errno == errno.EACCES:
        return f"Port {port} needs privileges: choose a port above 1023 with {option}."
    return f"Cannot listen on {host}:{port}: {exc.strerror or exc}."


def one_line(exc: BaseException) -> str | None:
    """The one-line message for an error a user caused, or None for our own bugs."""
    leaf = _leaf(exc)
    if isinstance(leaf, HeadwaterError):
        return " ".join(leaf.message.split())  # a driver's reason may span lines
    if isinstance(leaf, lmdb.Error):
        return _lmdb_message(leaf)
    if isinstance(leaf, OSError):
        return _os_message(leaf)
    return None


def _leaf(exc: BaseException) -> BaseException:
    """The one real error inside nested exception groups (trio wraps what it runs)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _os_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    read_only = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    if read_only and os.path.basename(str(exc.filename or "")) == LOCK_FILE:
        # The first write of any writing command is its data folder's lock file.
        folder = os.path.dirname(str(exc.filename))
        return f"The data folder {folder} is read-only: make it writable or choose another --data."
    if read_only:
        return f"Cannot write{where}: it is read-only. Make it writable or choose another folder."
    if exc.errno == errno.ENOSPC:
        return f"The disk is full{where}: free some space and run the command again."
    if exc.errno == errno.ENOTDIR:
        return f"{exc.filename or 'A path'} is not a folder: give a folder."
    if exc.errno == errno.ENOENT:
        return f"{exc.filename or 'A file'} does not exist."
    return f"{exc.strerror or exc}{':' + where if where else ''}."


def _lmdb_message(exc: lmdb.Error) -> str:
    # lmdb's text is "PATH: reason".
    path, _, reason = str(exc).splitlines()[0].rpartition(": ")
    folder = f" {path}" if path else ""
    if isinstance(exc, lmdb.ReadonlyError) or "ermission denied" in reason or "ead-only" in reason:
        return (
            f"The data folder{folder} is read-only ({reason}): make it writable "
            "or choose another --data."
        )
    return f"The data folder{folder} cannot be opened: {reason}."
