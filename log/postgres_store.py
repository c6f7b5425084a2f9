"""The shared store on PostgreSQL: psycopg 3, a connection pool, LISTEN/NOTIFY.

Caveats. Connections come from a ``psycopg_pool.ConnectionPool`` (one to
``POOL_CONNECTIONS_MAX``), each in autocommit mode, so a write is an explicit
``BEGIN ... COMMIT``; a pooled connection is checked before use, so a server
restart costs a reconnection rather than an error. A lock held past
``LOCK_WAIT_S`` ends the wait (``lock_timeout``): the store is then
unavailable. Every append notifies channel ``headwater_log`` with its newest
ts inside its transaction, so the notice leaves at commit; the first
``wait_for_entries`` starts one listening connection per store (a thread), and
while that connection is down waiters poll instead.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from log.shared_store import StoreUnavailableError
from log.sql_store import (
    CONNECT_TIMEOUT_S,
    LOCK_WAIT_S,
    POLL_INTERVAL_S,
    POOL_CONNECTIONS_MAX,
    SqlStore,
)
from log.store_address import BadStoreUrlError

CHANNEL = "headwater_log"
LISTEN_WAKE_S = 0.2  # how often the listener looks up from its socket (close takes this long)
RELISTEN_PAUSE_S = 0.5  # between attempts to listen again after the connection failed

_SCHEMA_LOCK_KEY = 0x48_57_5F_53_43_48_45_4D  # "HW_SCHEM": the advisory lock around the DDL


class PostgresStore(SqlStore):
    """``SharedLogStore`` on a PostgreSQL database (``BYTEA`` entries, server clock)."""

    unavailable_errors = (psycopg.OperationalError, psycopg.InterfaceError)
    integrity_errors = (psycopg.IntegrityError,)
    now_ms_sql = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    schema_sql = (
        "CREATE TABLE IF NOT EXISTS headwater_log (ts BIGINT PRIMARY KEY, entry BYTEA NOT NULL, "
        "receipt BYTEA UNIQUE)",
        "CREATE TABLE IF NOT EXISTS headwater_lease (id SMALLINT PRIMARY KEY CHECK (id = 1), "
        "node_id TEXT NOT NULL, address TEXT NOT NULL, token BIGINT NOT NULL, "
        "expires_at_ms BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS headwater_nodes (node_id TEXT PRIMARY KEY, "
        "address TEXT NOT NULL, applied_ts BIGINT NOT NULL, role TEXT NOT NULL, "
        "code_hash TEXT NOT NULL, seen_at_ms BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS headwater_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS headwater_blobs (sha256 BYTEA PRIMARY KEY, "
        "data BYTEA NOT NULL)",
    )

    def __init__(self, url: str) -> None:
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()
        super().__init__(url)

    def _open(self) -> None:
        # One plain connection first: the pool would retry quietly and hide the reason.
        try:
            probe = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.ProgrammingError as error:  # libpq could not read the URL
            raise BadStoreUrlError(f"Bad PostgreSQL URL {self.describe()!r}: {error}") from error
        except psycopg.Error as error:
            raise self._unavailable(error) from error
        probe.close()
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._url,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            min_size=1,
            max_size=POOL_CONNECTIONS_MAX,
            open=False,
            configure=_configure,
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_S,
            name="headwater-shared-store",
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            pool.close()
            raise self._unavailable(error) from error
        self._pool = pool

    def _unavailable(self, error: BaseException, doing: str = "") -> StoreUnavailableError:
        if isinstance(error, PoolTimeout):
            # The pool only says it waited; a direct connection says why (or that it was busy).
            try:
                psycopg.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ).close()
            except psycopg.Error as reason:
                error = reason
        return super()._unavailable(error, doing)

    def _connection(self) -> AbstractContextManager[Any]:
        assert self._pool is not None  # _open succeeded, or the store was never made
        return self._pool.connection()

    def _lock_schema(self, cursor: Any) -> None:
        # Two nodes' concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))

    def _after_append(self, cursor: Any, last_ts: int) -> None:
        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(last_ts)))

    def wait_for_entries(self, after_ts: int, timeout_s: float) -> bool:
        """Sleep until a notification names a newer ts; the log is read after each LISTEN."""
        deadline = time.monotonic() + timeout_s
        listener = self._started_listener()
        checked = 0  # the listener generation after whose LISTEN the log was read
        while listener is not None and not self._closed:
            generation, heard = listener.state()
            if heard is not None and heard > after_ts:
                return True
            if generation == 0 or generation != checked:
                # Not listening, or listening anew: appends in between are only in the log.
                latest = self._latest_unless_closed()
                if latest is not None and latest > after_ts:
                    return True
                checked = generation
            with listener.changed:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                if listener.state() == (generation, heard):
                    listener.changed.wait(left if generation else min(left, POLL_INTERVAL_S))
        return False

    def _started_listener(self) -> _Listener | None:
        with self._listener_lock:
            if self._listener is None and not self._closed:
                self._listener = _Listener(self._url)
            return self._listener

    def _close_connections(self) -> None:
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if self._pool is not None:
            self._pool.close()


class _Listener:
    """A thread holding one connection that LISTENs on ``CHANNEL``.

    ``state()`` is (generation, newest ts heard): the generation grows each time
    LISTEN is established and is 0 while not listening.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.changed = threading.Condition()
        self._generation = 0
        self._listening = False
        self._newest_ts: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headwater-listen", daemon=True)
        self._thread.start()

    def state(self) -> tuple[int, int | None]:
        with self.changed:
            return (self._generation if self._listening else 0), self._newest_ts

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=LISTEN_WAKE_S + CONNECT_TIMEOUT_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error:
                pass  # waiters poll meanwhile; listening again is the fix
            finally:
                with self.changed:
                    self._listening = False
                    self.changed.notify_all()
            self._stop.wait(RELISTEN_PAUSE_S)

    def _listen(self) -> None:
        with psycopg.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        ) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            with self.changed:
                self._generation += 1
                self._listening = True
                self.changed.notify_all()
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=LISTEN_WAKE_S):
                    self._heard(notice.payload)

    def _heard(self, payload: str) -> None:
        try:
            ts = int(payload)
        except ValueError:
            return  # not one of ours
        with self.changed:
            if self._newest_ts is None or ts > self._newest_ts:
                self._newest_ts = ts
            self.changed.notify_all()


def _configure(connection: psycopg.Connection[Any]) -> None:
    connection.execute(f"SET lock_timeout = '{LOCK_WAIT_S}s'")
