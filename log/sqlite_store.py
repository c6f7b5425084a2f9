"""The shared store in one SQLite file: the standard library's ``sqlite3``, WAL mode.

Caveats. One machine only: several processes may share the file (SQLite's
file locks order them), never over a network filesystem. Each store object has
one connection, used by its threads in turn under a lock. The journal is WAL
with ``synchronous=FULL``, so a commit is durable when it returns (one fsync).
Appends and lease changes start with ``BEGIN IMMEDIATE``: the write lock is
taken first, so concurrent writers queue (up to the busy timeout,
``CONNECT_TIMEOUT_S``, then the store is unavailable) instead of failing to
upgrade a read lock. The clock is ``julianday('now')`` in milliseconds, the
machine's own, which every process on it shares. There are no notifications:
``wait_for_entries`` polls.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import IntegrityError
from log.sql_store import CONNECT_TIMEOUT_S, SqlStore


class SqliteStore(SqlStore):
    """``SharedLogStore`` in a SQLite file (``BLOB`` entries, the machine's clock)."""

    unavailable_errors = (sqlite3.OperationalError,)
    integrity_errors = (sqlite3.IntegrityError,)
    now_ms_sql = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    begin_write_sql = "BEGIN IMMEDIATE"
    for_update_sql = ""  # BEGIN IMMEDIATE already holds the database's one write lock
    schema_sql = (
        "CREATE TABLE IF NOT EXISTS headwater_log (ts INTEGER PRIMARY KEY, entry BLOB NOT NULL, "
        "receipt BLOB UNIQUE)",
        "CREATE TABLE IF NOT EXISTS headwater_lease (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "node_id TEXT NOT NULL, address TEXT NOT NULL, token INTEGER NOT NULL, "
        "expires_at_ms INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS headwater_nodes (node_id TEXT PRIMARY KEY, "
        "address TEXT NOT NULL, applied_ts INTEGER NOT NULL, role TEXT NOT NULL, "
        "code_hash TEXT NOT NULL, seen_at_ms INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS headwater_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS headwater_blobs (sha256 BLOB PRIMARY KEY, data BLOB NOT NULL)",
    )

    def __init__(self, path: str) -> None:
        self._path = os.path.abspath(path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        super().__init__(f"sqlite://{self._path}")

    def _open(self) -> None:
        try:
            db = sqlite3.connect(
                self._path,
                timeout=CONNECT_TIMEOUT_S,
                isolation_level=None,  # autocommit; writes say BEGIN IMMEDIATE themselves
                check_same_thread=False,  # shared by the store's threads, under its lock
            )
        except sqlite3.Error as error:
            raise self._unavailable(error) from error
        try:
            _use_wal(db)
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as error:
            db.close()
            raise self._unavailable(error) from error
        self._db = db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise IntegrityError("The log is closed")
            yield self._db

    def _sql(self, text: str) -> str:
        return text.replace("%s", "?")

    def _close_connections(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL, waiting out a peer opening it at the same moment."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"the file stays in journal mode {mode!r}, not WAL")
        return
