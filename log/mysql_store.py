"""The shared store on MySQL 8 or MariaDB 10.11+: PyMySQL and a small pool of its own.

Caveats. PyMySQL has no pool, so ``_ConnectionQueue`` keeps up to
``POOL_CONNECTIONS_MAX`` connections in a ``queue.Queue``; one idle for a while
is pinged before use, and one that failed is closed, never reused. Sessions run
in autocommit mode at READ COMMITTED, in UTC (so ``UNIX_TIMESTAMP`` never
meets a daylight-saving hour), and give up a row lock wait after
``LOCK_WAIT_S``. Tables are InnoDB; ids and keys are ``VARBINARY`` so they
compare exactly (no collation folding case or trailing spaces), entries and
files are ``LONGBLOB``. There are no notifications: ``wait_for_entries`` polls.

The largest entry or file: PyMySQL sends bytes as a hex literal, so one row
needs twice its size in one packet, and the server's ``max_allowed_packet``
caps a packet. An entry is accepted up to (max_allowed_packet - 1 KiB) / 2
bytes: about 8 MiB with MariaDB's default of 16 MiB, 32 MiB with MySQL 8's
64 MiB. A transaction can write 16 MiB (``written_bytes_max``), so give the
server ``max_allowed_packet = 64M`` or more; a larger entry is refused with
``LimitExceededError`` before anything is sent.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
from pymysql.constants import CLIENT

from engine.errors import HeadwaterError, LimitExceededError
from log.sql_store import (
    CONNECT_TIMEOUT_S,
    LOCK_WAIT_S,
    POOL_CONNECTIONS_MAX,
    SqlStore,
)
from log.store_address import BadStoreUrlError, mask_url, require_database_name

IDLE_PING_S = 5.0  # an idle connection is pinged before use: the server may have dropped it
READ_TIMEOUT_S = 60  # a server silent this long mid-answer is gone (lock waits end sooner)
PACKET_SLACK_BYTES = 1024  # the statement around a row's hex literal
_HEX_LITERAL_EXTRA = len("_binary X''")

_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"


class MysqlStore(SqlStore):
    """``SharedLogStore`` on a MySQL or MariaDB database (``LONGBLOB`` entries, server clock)."""

    unavailable_errors = (pymysql.err.OperationalError, pymysql.err.InterfaceError)
    integrity_errors = (pymysql.err.IntegrityError,)
    now_ms_sql = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000 AS SIGNED)"
    begin_write_sql = "START TRANSACTION"
    schema_sql = (
        f"CREATE TABLE IF NOT EXISTS headwater_log (ts BIGINT PRIMARY KEY, "
        f"entry LONGBLOB NOT NULL, receipt VARBINARY(64) UNIQUE) {_TABLE}",
        "CREATE TABLE IF NOT EXISTS headwater_lease (id SMALLINT PRIMARY KEY CHECK (id = 1), "
        "node_id VARBINARY(255) NOT NULL, address TEXT NOT NULL, token BIGINT NOT NULL, "
        f"expires_at_ms BIGINT NOT NULL) {_TABLE}",
        "CREATE TABLE IF NOT EXISTS headwater_nodes (node_id VARBINARY(255) PRIMARY KEY, "
        "address TEXT NOT NULL, applied_ts BIGINT NOT NULL, role TEXT NOT NULL, "
        f"code_hash TEXT NOT NULL, seen_at_ms BIGINT NOT NULL) {_TABLE}",
        "CREATE TABLE IF NOT EXISTS headwater_meta (name VARBINARY(255) PRIMARY KEY, "
        f"value LONGTEXT NOT NULL) {_TABLE}",
        "CREATE TABLE IF NOT EXISTS headwater_blobs (sha256 VARBINARY(255) PRIMARY KEY, "
        f"data LONGBLOB NOT NULL) {_TABLE}",
    )

    def __init__(self, url: str) -> None:
        self._connections: _ConnectionQueue | None = None
        self._packet_bytes_max = 0
        super().__init__(url)

    def _open(self) -> None:
        options = connect_options(self._url)
        connections = _ConnectionQueue(lambda: _connect(options), POOL_CONNECTIONS_MAX)
        try:
            with connections.connection() as connection, connection.cursor() as cursor:
                cursor.execute("SELECT @@max_allowed_packet")
                self._packet_bytes_max = int(cursor.fetchone()[0])
        except self.unavailable_errors as error:
            connections.close()
            raise self._unavailable(error) from error
        self._connections = connections

    def _connection(self) -> AbstractContextManager[Any]:
        assert self._connections is not None  # _open succeeded, or the store was never made
        return self._connections.connection()

    def _insert_sql(
        self,
        table: str,
        columns: Sequence[str],
        values: Sequence[str],
        key: str,
        updates: Sequence[str] = (),
    ) -> str:
        # Not INSERT IGNORE: it would also turn other errors (a value too long) into warnings.
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})"
        assignments = ", ".join(f"{column} = VALUES({column})" for column in updates)
        return f"{sql} ON DUPLICATE KEY UPDATE {assignments or f'{key} = {key}'}"

    def _check_value_bytes(self, size: int, what: str) -> None:
        needed = 2 * size + _HEX_LITERAL_EXTRA + PACKET_SLACK_BYTES
        if needed > self._packet_bytes_max:
            largest = (self._packet_bytes_max - PACKET_SLACK_BYTES - _HEX_LITERAL_EXTRA) // 2
            raise LimitExceededError(
                f"A {what} of {size} bytes is too large for {self.describe()}: its "
                f"max_allowed_packet of {self._packet_bytes_max} bytes takes at most "
                f"{largest} bytes; raise the server's max_allowed_packet (64M or more)"
            )

    def _close_connections(self) -> None:
        if self._connections is not None:
            self._connections.close()


def connect_options(url: str) -> dict[str, Any]:
    """PyMySQL's ``connect`` arguments for a ``mysql://`` (or ``mariadb://``) URL."""
    parts = urlsplit(url)
    database = require_database_name(url)
    if parts.query:
        raise BadStoreUrlError(
            f"The MySQL store URL {mask_url(url)!r} has parameters ({parts.query!r}); "
            "none are supported: mysql://user:password@host:3306/database"
        )
    try:
        port = parts.port or 3306
    except ValueError as error:
        raise BadStoreUrlError(f"Bad port in the store URL {mask_url(url)!r}: {error}") from error
    return {
        "host": parts.hostname or "localhost",
        "port": port,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else "",
        "database": database,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "write_timeout": READ_TIMEOUT_S,
        # rowcount counts the rows an UPDATE matched, not only those it changed.
        "client_flag": CLIENT.FOUND_ROWS,
    }


def _connect(options: dict[str, Any]) -> Any:
    connection = pymysql.connect(**options)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET time_zone = '+00:00'")
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_S}")
    except BaseException:
        connection.close()
        raise
    return connection


class _ConnectionQueue:
    """A thread-safe pool: idle connections in a queue, at most ``size_max`` open."""

    def __init__(self, connect: Any, size_max: int) -> None:
        self._connect = connect
        self._size_max = size_max
        self._idle: queue.Queue[tuple[Any, float]] = queue.Queue()
        self._lock = threading.Lock()
        self._open_count = 0
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        connection = self._take()
        try:
            yield connection
        except HeadwaterError:
            # Our own checks fail between statements; the caller rolled back.
            self._give_back(connection)
            raise
        except BaseException:
            # Anything else may leave the connection mid-answer: never reuse it.
            self._discard(connection)
            raise
        self._give_back(connection)

    def _take(self) -> Any:
        while True:
            try:
                connection, idle_since = self._idle.get_nowait()
            except queue.Empty:
                if self._reserve():
                    return self._open_reserved()
                try:
                    connection, idle_since = self._idle.get(timeout=CONNECT_TIMEOUT_S)
                except queue.Empty:
                    raise pymysql.err.OperationalError(
                        2013,
                        f"all {self._size_max} connections stayed busy for {CONNECT_TIMEOUT_S} s",
                    ) from None
            if time.monotonic() - idle_since < IDLE_PING_S:
                return connection
            try:
                connection.ping(reconnect=False)
                return connection
            except pymysql.err.Error:
                self._discard(connection)

    def _reserve(self) -> bool:
        """Count one more open connection, if fewer than ``size_max`` are."""
        with self._lock:
            if self._open_count >= self._size_max:
                return False
            self._open_count += 1
            return True

    def _open_reserved(self) -> Any:
        try:
            return self._connect()
        except BaseException:
            with self._lock:
                self._open_count -= 1
            raise

    def _give_back(self, connection: Any) -> None:
        if self._closed or not connection.open:
            self._discard(connection)
        else:
            self._idle.put((connection, time.monotonic()))

    def _discard(self, connection: Any) -> None:
        with self._lock:
            self._open_count -= 1
        try:
            connection.close()
        except pymysql.err.Error:
            pass  # closing sends QUIT; a dead socket cannot, and is closed anyway

    def close(self) -> None:
        """Close the idle connections now, the busy ones when they are given back."""
        self._closed = True
        while True:
            try:
                connection, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(connection)
