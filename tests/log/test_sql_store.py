"""What only the SQL stores can show: lost commits, lost connections, their own limits.

Every failure here is real: a connection closed under a commit, server
processes killed, a database dropped. Only the instant of a lost commit's
answer is planted, by a store whose next ``_commit`` goes through a fault.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from shared_databases import fresh_store_url, mysql_admin, postgres_admin

from engine.errors import LimitExceededError
from log import LogEntry, Write, encode_entry
from log.mysql_store import MysqlStore
from log.postgres_store import PostgresStore
from log.shared_store import SharedLogStore, StoreUnavailableError
from log.sql_store import SqlStore
from log.sqlite_store import SqliteStore
from log.store_url import open_shared_store


def entry(ts: int) -> LogEntry:
    return LogEntry(ts, (Write(f"doc{ts}", "messages", None, {"ts": ts}),))


def leader(store: SharedLogStore) -> int:
    lease = store.try_acquire_lease("a", "http://a", 60_000)
    assert lease is not None
    return lease.token


_DRIVER_ERRORS: dict[str, type[BaseException]] = {
    "postgresql": psycopg.OperationalError,
    "mysql": pymysql.err.OperationalError,
    "sqlite": sqlite3.OperationalError,
}
_SQL_CLASSES: dict[str, type[SqlStore]] = {
    "postgresql": PostgresStore,
    "mysql": MysqlStore,
    "sqlite": SqliteStore,
}


def faulty_store(kind: str, url: str, fault: Callable[[SqlStore, Any], None]) -> Any:
    """A store whose next commit goes through ``fault(store, cursor)`` (then never again)."""
    base = _SQL_CLASSES[kind]

    class Faulty(base):  # type: ignore[valid-type, misc]
        armed = False

        def _commit(self, cursor: Any) -> None:
            if self.armed:
                self.armed = False
                fault(self, cursor)
            else:
                super()._commit(cursor)

    return Faulty(url[len("sqlite://") :] if kind == "sqlite" else url)


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return request.param, fresh_store_url(request, request.param, tmp_path)


def test_a_commit_whose_answer_is_lost_is_found_in_the_log(sql_url: tuple[str, str]) -> None:
    kind, url = sql_url

    def commit_then_lose_the_answer(store: SqlStore, cursor: Any) -> None:
        cursor.execute("COMMIT")
        raise _DRIVER_ERRORS[kind]("the answer to COMMIT was lost (planted by the test)")

    store = faulty_store(kind, url, commit_then_lose_the_answer)
    try:
        token = leader(store)
        store.armed = True
        store.append_fenced([entry(1), entry(2)], token)  # returns: the batch landed
        assert [e.ts for e in store.read_from(0)] == [1, 2]
        store.append_fenced([entry(3)], token)
        assert store.count() == 3
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_commit_lost_with_its_connection_is_reported_not_appended(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = fresh_store_url(request, kind, tmp_path)

    def drop_the_connection(store: SqlStore, cursor: Any) -> None:
        cursor.connection.close()
        cursor.execute("COMMIT")

    store = faulty_store(kind, url, drop_the_connection)
    try:
        token = leader(store)
        store.armed = True
        with pytest.raises(StoreUnavailableError, match="batch from ts 1 was not appended") as info:
            store.append_fenced([entry(1)], token)
        assert info.value.code == "StoreUnavailable" and store.describe() in str(info.value)
        assert store.count() == 0
        store.append_fenced([entry(1)], token)  # the store recovers its connections
        assert [e.ts for e in store.read_from(0)] == [1]
    finally:
        store.close()


def test_a_postgres_store_whose_database_vanished_is_unavailable(fresh_postgres_url: str) -> None:
    url = fresh_postgres_url.replace("postgres@", "postgres:s3cret@")  # trust auth ignores it
    store = open_shared_store(url)
    try:
        store.append([entry(1)])
        name = url.rsplit("/", 1)[1]
        with postgres_admin() as admin:  # a restart drops every connection: the pool recovers
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
        assert store.latest_ts() == 1
        with postgres_admin() as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        with pytest.raises(StoreUnavailableError, match="does not exist") as info:
            store.latest_ts()
        assert "postgres:***@" in str(info.value) and "s3cret" not in str(info.value)
    finally:
        store.close()


def test_a_mysql_store_recovers_from_killed_connections(fresh_mysql_url: str) -> None:
    store = open_shared_store(fresh_mysql_url)
    name = fresh_mysql_url.rsplit("/", 1)[1]
    try:
        store.append([entry(1)])
        with mysql_admin() as admin, admin.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (name,))
            for (connection_id,) in cursor.fetchall():
                cursor.execute(f"KILL {int(connection_id)}")
        try:
            store.latest_ts()  # may meet a killed connection
        except StoreUnavailableError as error:
            assert store.describe() in str(error)
        assert store.latest_ts() == 1
    finally:
        store.close()


def test_postgres_waiters_survive_a_lost_listening_connection(fresh_postgres_url: str) -> None:
    a, b = open_shared_store(fresh_postgres_url), open_shared_store(fresh_postgres_url)
    name = fresh_postgres_url.rsplit("/", 1)[1]
    try:
        assert not b.wait_for_entries(0, 0.05)  # starts the listener
        with postgres_admin() as admin:
            deadline = time.monotonic() + 5
            query = (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND query LIKE 'LISTEN%%'"
            )
            while not admin.execute(query, (name,)).fetchall():
                assert time.monotonic() < deadline, "no listening connection appeared"
                time.sleep(0.02)
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(b.wait_for_entries(0, 3.0)))
        waiter.start()
        time.sleep(0.2)
        a.append([entry(1)])
        waiter.join(5.0)
        assert woke == [True], "the waiter missed ts 1"
    finally:
        a.close()
        b.close()


def test_mysql_refuses_an_entry_larger_than_its_packet_allows(fresh_mysql_url: str) -> None:
    store = open_shared_store(fresh_mysql_url)
    try:
        packet = store._packet_bytes_max  # type: ignore[attr-defined]
        largest = (packet - 1024 - len("_binary X''")) // 2

        def sized(ts: int, size: int) -> LogEntry:
            overhead = len(encode_entry(LogEntry(ts, (Write("a", "t", None, {"b": b""}),))))
            blob = b"\x00" * (size - overhead - 3)  # the bytes length grows to a 4-byte varint
            made = LogEntry(ts, (Write("a", "t", None, {"b": blob}),))
            assert len(encode_entry(made)) == size
            return made

        with pytest.raises(LimitExceededError, match="max_allowed_packet") as info:
            store.append([sized(1, largest + 1)])
        assert info.value.code == "LimitExceeded" and store.count() == 0
        store.append([sized(1, largest)])
        assert len(encode_entry(next(store.read_from(0)))) == largest
    finally:
        store.close()
