"""What the SQL shared stores (PostgreSQL, MySQL/MariaDB, SQLite) have in common.

``SqlStore`` implements ``SharedLogStore`` once, over a DB-API connection
source; each database supplies its connections and the few pieces of SQL that
differ (the clock, the byte type, upserts, how a writer takes its lock).

Tables (made on first open, idempotently, safe when two nodes open at once)::

    headwater_log    ts BIGINT PRIMARY KEY, entry bytes     entry = codec.encode_entry
                     receipt bytes UNIQUE (NULL but for forwarded commits)
    headwater_lease  one row (id = 1): node_id, address, token, expires_at_ms
                     token 0 means no node ever led
    headwater_nodes  node_id PRIMARY KEY, address, applied_ts, role, code_hash, seen_at_ms
    headwater_meta   name PRIMARY KEY, value TEXT           deployment_id, admin key...
    headwater_blobs  sha256 PRIMARY KEY, data bytes

Caveats. Times (``expires_at_ms``, ``seen_at_ms``) are milliseconds since the
epoch by the database server's clock, written and compared in SQL, so the
nodes' clocks never matter. Every append (fenced or not) first locks the lease
row, which serialises appenders: the newest ts is read and the batch checked
under that lock, so commit order is ts order and a reader that sees ts N has
every entry before N. A read streams ``READ_CHUNK_ROWS`` rows per query,
bounded by the newest ts when it started (its snapshot); its memory is one
chunk, so entries near the size limit make large chunks. A commit whose answer
is lost is settled by reading the batch's first entry back under the lease
lock (the lost commit, if still in flight, finishes first).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from engine.errors import IntegrityError
from log.codec import decode_entry, encode_entry
from log.entry import TS_MAX, TS_MIN, LogEntry
from log.shared_store import (
    FencedError,
    Lease,
    NodeReport,
    StoreUnavailableError,
    require_entry_bytes_equal,
)
from log.store import check_batch, check_read_ts
from log.store_address import mask_url

READ_CHUNK_ROWS = 1000  # rows per query of a streamed read: bounded memory, few round trips
POLL_INTERVAL_S = 0.02  # how often a waiter without notifications looks for new entries
COMMIT_RECHECK_S = 5.0  # how long a lost commit's outcome is sought before giving up
CONNECT_TIMEOUT_S = 5  # a server that does not answer in this long is unavailable
LOCK_WAIT_S = 10  # a row lock held this long means a stuck peer: give up, unavailable
POOL_CONNECTIONS_MAX = 8  # per store object; appends are serialised anyway

DEPLOYMENT_ID_KEY = "deployment_id"

_LOG_COLUMNS = "ts, entry"
_ENTRY_AT_TS = "SELECT entry FROM headwater_log WHERE ts = %s"


class SqlStore:
    """``SharedLogStore`` over SQL; a subclass supplies connections and its dialect."""

    # -- the dialect: what a subclass sets ---------------------------------------------

    # Driver errors meaning the database cannot be reached or did not answer in time.
    unavailable_errors: tuple[type[BaseException], ...] = ()
    # Driver errors for a refused constraint (a duplicate ts would be our bug).
    integrity_errors: tuple[type[BaseException], ...] = ()
    # An integer expression: milliseconds since the epoch by the server's clock.
    now_ms_sql = ""
    begin_write_sql = "BEGIN"
    for_update_sql = " FOR UPDATE"
    # CREATE TABLE IF NOT EXISTS statements for the five tables.
    schema_sql: tuple[str, ...] = ()

    def __init__(self, url: str) -> None:
        self._url = url
        self._closed = False
        self._closing = threading.Event()
        self._open()
        try:
            self._create_schema()
            self._deployment_id = self.set_meta_if_absent(DEPLOYMENT_ID_KEY, uuid.uuid4().hex)
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Connect (at least once, so a bad URL fails here), or ``StoreUnavailableError``."""
        raise NotImplementedError

    def _connection(self) -> AbstractContextManager[Any]:
        """A connection in autocommit mode, held for the ``with`` block."""
        raise NotImplementedError

    def _close_connections(self) -> None:
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        """``text`` with the driver's placeholder for each ``%s``."""
        return text

    def _lock_schema(self, cursor: Any) -> None:
        """Serialise schema creation with other nodes, where DDL alone does not."""

    def _insert_sql(
        self,
        table: str,
        columns: Sequence[str],
        values: Sequence[str],
        key: str,
        updates: Sequence[str] = (),
    ) -> str:
        """One row's INSERT; on a duplicate ``key`` update ``updates``, or keep the row."""
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})"
        if not updates:
            return f"{sql} ON CONFLICT ({key}) DO NOTHING"
        assignments = ", ".join(f"{column} = excluded.{column}" for column in updates)
        return f"{sql} ON CONFLICT ({key}) DO UPDATE SET {assignments}"

    def _after_append(self, cursor: Any, last_ts: int) -> None:
        """Inside the append's transaction, once the rows are in (PostgreSQL notifies)."""

    def _check_value_bytes(self, size: int, what: str) -> None:
        """Refuse a value the database could not take in one statement (MySQL's packet)."""

    def _commit(self, cursor: Any) -> None:
        cursor.execute("COMMIT")

    # -- sessions and errors -----------------------------------------------------------

    def describe(self) -> str:
        return mask_url(self._url)

    def _require_open(self) -> None:
        if self._closed:
            raise IntegrityError("The log is closed")

    def _unavailable(self, error: BaseException, doing: str = "") -> StoreUnavailableError:
        reason = str(error).strip() or type(error).__name__
        return StoreUnavailableError(
            f"The shared store {self.describe()} is unavailable{doing}: {reason}"
        )

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """A cursor; driver failures become ``StoreUnavailableError`` or ``IntegrityError``."""
        self._require_open()
        try:
            with self._connection() as connection:
                yield connection.cursor()
        except self.unavailable_errors as error:
            raise self._unavailable(error) from error
        except self.integrity_errors as error:
            raise IntegrityError(f"The shared store {self.describe()} refused: {error}") from error

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A cursor in one write transaction, committed when the block ends normally."""
        with self._session() as cursor:
            cursor.execute(self.begin_write_sql)
            try:
                yield cursor
            except BaseException:
                _rollback_quietly(cursor)
                raise
            self._commit(cursor)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._session() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return list(cursor.fetchall())

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    def _lock_lease_row(self, cursor: Any, columns: str) -> tuple[Any, ...]:
        cursor.execute(f"SELECT {columns} FROM headwater_lease WHERE id = 1{self.for_update_sql}")
        row = cursor.fetchone()
        if row is None:
            raise IntegrityError(f"The shared store {self.describe()} lost its lease row")
        return tuple(row)

    def _create_schema(self) -> None:
        with self._write() as cursor:
            self._lock_schema(cursor)
            for statement in self.schema_sql:
                cursor.execute(statement)
            lease_row = self._insert_sql(
                "headwater_lease",
                ("id", "node_id", "address", "token", "expires_at_ms"),
                ("1", "''", "''", "0", "0"),
                "id",
            )
            cursor.execute(lease_row)

    # -- appending ---------------------------------------------------------------------

    def deployment_id(self) -> str:
        return self._deployment_id

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append without a lease check (tools, such as an import into an empty store)."""
        self._require_open()
        entries = list(entries)
        if entries:
            self._append(entries, None)

    def append_fenced(
        self, entries: Sequence[LogEntry], token: int, receipts: Sequence[bytes | None] = ()
    ) -> None:
        self._require_open()
        self._append(list(entries), token, receipts)

    def find_receipt(self, receipt: bytes) -> int | None:
        return _int_or_none(
            self._value("SELECT ts FROM headwater_log WHERE receipt = %s", (receipt,))
        )

    def _append(
        self, entries: list[LogEntry], token: int | None, receipts: Sequence[bytes | None] = ()
    ) -> None:
        lost: BaseException | None = None
        first: tuple[int, bytes] | None = None
        with self._session() as cursor:
            cursor.execute(self.begin_write_sql)
            try:
                first = self._insert_batch(cursor, entries, token, receipts)
            except BaseException:
                _rollback_quietly(cursor)
                raise
            try:
                self._commit(cursor)
            except self.unavailable_errors as error:
                lost = error  # the commit may have landed: settled below, on a new connection
        if lost is not None and first is not None:  # (an empty batch has nothing to lose)
            self._settle_lost_commit(first, lost)

    def _insert_batch(
        self,
        cursor: Any,
        entries: list[LogEntry],
        token: int | None,
        receipts: Sequence[bytes | None] = (),
    ) -> tuple[int, bytes] | None:
        """Inside the transaction: fence, check, insert; the first row, for a lost commit."""
        (current,) = self._lock_lease_row(cursor, "token")
        if token is not None and current != token:
            raise FencedError(
                f"Append refused: lease token {token} is not the current one "
                f"({current if current else 'none'}); another node leads"
            )
        cursor.execute("SELECT MAX(ts) FROM headwater_log")
        check_batch(entries, cursor.fetchone()[0])
        stamps = list(receipts) + [None] * (len(entries) - len(receipts))
        rows = [(e.ts, encode_entry(e), r) for e, r in zip(entries, stamps, strict=True)]
        if not rows:
            return None
        for _, data, _ in rows:
            self._check_value_bytes(len(data), "log entry")
        cursor.executemany(
            self._sql("INSERT INTO headwater_log (ts, entry, receipt) VALUES (%s, %s, %s)"), rows
        )
        self._after_append(cursor, rows[-1][0])
        return rows[0][:2]

    def _settle_lost_commit(self, first: tuple[int, bytes], cause: BaseException) -> None:
        """Return if the batch whose commit answer was lost is in the log, else raise."""
        ts, expected = first
        deadline = time.monotonic() + COMMIT_RECHECK_S
        while True:
            try:
                with self._write() as cursor:
                    self._lock_lease_row(cursor, "token")  # waits for the lost commit to end
                    cursor.execute(self._sql(_ENTRY_AT_TS), (ts,))
                    row = cursor.fetchone()
                break
            except StoreUnavailableError as error:
                if time.monotonic() >= deadline or self._closing.wait(0.1):
                    raise self._unavailable(
                        cause,
                        f" while committing; whether the batch from ts {ts} was appended "
                        f"could not be learned within {COMMIT_RECHECK_S:g} s ({error})",
                    ) from cause
        if not require_entry_bytes_equal(None if row is None else bytes(row[0]), expected, ts):
            raise self._unavailable(
                cause, f" while committing; the batch from ts {ts} was not appended"
            ) from cause

    # -- reading -----------------------------------------------------------------------

    def read_from(self, ts: int) -> Iterator[LogEntry]:
        self._require_open()
        check_read_ts(ts)
        return self._stream(ts, TS_MAX)

    def read_range(self, start_ts: int, end_ts: int) -> Iterator[LogEntry]:
        self._require_open()
        check_read_ts(start_ts, end_ts)
        return self._stream(start_ts, end_ts)

    def _stream(self, start_ts: int, end_ts: int) -> Iterator[LogEntry]:
        # The snapshot is the newest ts now: later appends all land past it.
        latest = self.latest_ts()
        stop = min(end_ts, TS_MAX) if latest is None else min(end_ts, latest)
        start = max(start_ts, TS_MIN)
        if latest is None or start > stop:
            return iter(())
        return self._chunks(start, stop)

    def _chunks(self, start: int, stop: int) -> Iterator[LogEntry]:
        query = (
            f"SELECT {_LOG_COLUMNS} FROM headwater_log WHERE ts >= %s AND ts <= %s "
            f"ORDER BY ts LIMIT {READ_CHUNK_ROWS}"
        )
        while start <= stop:
            rows = self._rows(query, (start, stop))
            for ts, data in rows:
                yield _decode(ts, data)
            if len(rows) < READ_CHUNK_ROWS:
                return
            start = rows[-1][0] + 1

    def read_backward(self, before_ts: int, limit: int) -> list[LogEntry]:
        self._require_open()
        check_read_ts(before_ts, limit)
        if limit <= 0 or before_ts <= TS_MIN:
            return []
        rows = self._rows(
            f"SELECT {_LOG_COLUMNS} FROM headwater_log WHERE ts <= %s ORDER BY ts DESC LIMIT %s",
            (min(before_ts - 1, TS_MAX), min(limit, TS_MAX)),
        )
        return [_decode(ts, data) for ts, data in rows]

    def latest_ts(self) -> int | None:
        return _int_or_none(self._value("SELECT MAX(ts) FROM headwater_log"))

    def first_ts(self) -> int | None:
        return _int_or_none(self._value("SELECT MIN(ts) FROM headwater_log"))

    def count(self) -> int:
        return int(self._value("SELECT COUNT(*) FROM headwater_log"))

    def statistics(self) -> dict[str, int | None]:
        return {"entries": self.count(), "latest_ts": self.latest_ts()}

    def wait_for_entries(self, after_ts: int, timeout_s: float) -> bool:
        """Poll the newest ts every ``POLL_INTERVAL_S`` (PostgreSQL listens instead)."""
        deadline = time.monotonic() + timeout_s
        while not self._closed:
            latest = self._latest_unless_closed()
            if latest is not None and latest > after_ts:
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self._closing.wait(min(POLL_INTERVAL_S, left)):
                return False
        return False

    def _latest_unless_closed(self) -> int | None:
        try:
            return self.latest_ts()
        except IntegrityError:
            if self._closed:  # closed while waiting: the wait ends, as MemorySharedStore's
                return None
            raise

    # -- the lease ---------------------------------------------------------------------

    def try_acquire_lease(self, node_id: str, address: str, ttl_ms: int) -> Lease | None:
        with self._write() as cursor:
            holder, token, left_ms = self._lock_lease_row(
                cursor, f"node_id, token, expires_at_ms - {self.now_ms_sql}"
            )
            if token == 0:
                token = 1
            elif _text(holder) != node_id:
                if left_ms > 0:
                    return None
                token += 1
            cursor.execute(
                self._sql(
                    "UPDATE headwater_lease SET node_id = %s, address = %s, token = %s, "
                    f"expires_at_ms = {self.now_ms_sql} + %s WHERE id = 1"
                ),
                (node_id, address, token, ttl_ms),
            )
        return Lease(node_id, address, int(token), int(ttl_ms))

    def renew_lease(self, node_id: str, token: int, ttl_ms: int) -> bool:
        return self._update_own_lease(node_id, token, f"{self.now_ms_sql} + %s", (ttl_ms,))

    def release_lease(self, node_id: str, token: int) -> None:
        self._update_own_lease(node_id, token, self.now_ms_sql, ())

    def _update_own_lease(
        self, node_id: str, token: int, expiry_sql: str, params: tuple[Any, ...]
    ) -> bool:
        with self._write() as cursor:
            cursor.execute(
                self._sql(
                    f"UPDATE headwater_lease SET expires_at_ms = {expiry_sql} "
                    "WHERE id = 1 AND node_id = %s AND token = %s"
                ),
                (*params, node_id, token),
            )
            return bool(cursor.rowcount == 1)

    def current_lease(self) -> Lease | None:
        rows = self._rows(
            "SELECT node_id, address, token, expires_at_ms - "
            f"{self.now_ms_sql} FROM headwater_lease WHERE id = 1"
        )
        if not rows or rows[0][2] == 0:
            return None
        node_id, address, token, left_ms = rows[0]
        return Lease(_text(node_id), _text(address), int(token), int(left_ms))

    # -- nodes, meta, blobs ------------------------------------------------------------

    def report_node(
        self, node_id: str, address: str, applied_ts: int, role: str, code_hash: str
    ) -> None:
        columns = ("node_id", "address", "applied_ts", "role", "code_hash", "seen_at_ms")
        sql = self._insert_sql(
            "headwater_nodes", columns, ("%s",) * 5 + (self.now_ms_sql,), "node_id", columns[1:]
        )
        with self._session() as cursor:
            cursor.execute(self._sql(sql), (node_id, address, applied_ts, role, code_hash))

    def nodes(self) -> list[NodeReport]:
        rows = self._rows(
            "SELECT node_id, address, applied_ts, role, code_hash, "
            f"{self.now_ms_sql} - seen_at_ms FROM headwater_nodes "
            "ORDER BY seen_at_ms DESC, node_id"
        )
        return [
            NodeReport(_text(n), _text(a), int(ts), _text(r), _text(c), int(ago))
            for n, a, ts, r, c, ago in rows
        ]

    def forget_node(self, node_id: str) -> None:
        self._rows_changed("DELETE FROM headwater_nodes WHERE node_id = %s", (node_id,))

    def get_meta(self, key: str) -> str | None:
        value = self._value("SELECT value FROM headwater_meta WHERE name = %s", (key,))
        return None if value is None else _text(value)

    def set_meta_if_absent(self, key: str, value: str) -> str:
        sql = self._insert_sql("headwater_meta", ("name", "value"), ("%s", "%s"), "name")
        self._rows_changed(sql, (key, value))
        stored = self.get_meta(key)
        if stored is None:
            raise IntegrityError(f"The shared store {self.describe()} lost meta key {key!r}")
        return stored

    def put_blob(self, sha256: bytes, data: bytes) -> None:
        data = bytes(data)
        self._check_value_bytes(len(data), "file")
        sql = self._insert_sql("headwater_blobs", ("sha256", "data"), ("%s", "%s"), "sha256")
        self._rows_changed(sql, (bytes(sha256), data))

    def get_blob(self, sha256: bytes) -> bytes | None:
        data = self._value("SELECT data FROM headwater_blobs WHERE sha256 = %s", (bytes(sha256),))
        return None if data is None else bytes(data)

    def delete_blob(self, sha256: bytes) -> None:
        self._rows_changed("DELETE FROM headwater_blobs WHERE sha256 = %s", (bytes(sha256),))

    def blob_digests(self) -> list[bytes]:
        return sorted(bytes(row[0]) for row in self._rows("SELECT sha256 FROM headwater_blobs"))

    def _rows_changed(self, sql: str, params: Sequence[Any]) -> int:
        with self._session() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return int(cursor.rowcount)

    def close(self) -> None:
        """Release every connection; using the store afterwards raises ``IntegrityError``."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._close_connections()


def _decode(ts: int, data: bytes) -> LogEntry:
    entry = decode_entry(bytes(data))
    if entry.ts != ts:
        raise IntegrityError(f"Log damaged: the entry stored under ts {ts} says ts {entry.ts}")
    return entry


def _text(value: str | bytes) -> str:
    # MySQL keeps ids as VARBINARY (exact, case- and space-sensitive comparison).
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _rollback_quietly(cursor: Any) -> None:
    # The connection may be the thing that failed; the server rolls back a lost one.
    with suppress(Exception):
        cursor.execute("ROLLBACK")
