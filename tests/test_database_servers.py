"""The servers a test run starts where the machine runs none: they serve a shared store.

On the project's machines the run uses the machine's own servers, so this test is
what keeps that fallback working: it starts both, opens a shared store on each,
writes and reads a log entry, and stops them.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest
from database_servers import OwnServers, answers, start_mariadb, start_postgres
from shared_databases import new_database_name, with_database

from log import LogEntry, Write
from log.store_url import open_shared_store

NOTHING_LISTENS = 1  # a "default port" that never answers: forces our own server


def _log_round_trip(url: str) -> None:
    store = open_shared_store(url)
    try:
        lease = store.try_acquire_lease("a", "http://a", 10_000)
        assert lease is not None
        entry = LogEntry(1, (Write("doc1", "messages", None, {"n": 1}),))
        store.append_fenced([entry], lease.token)
        assert [e.ts for e in store.read_from(0)] == [1]
    finally:
        store.close()


@pytest.mark.slow
def test_own_postgres_and_mariadb_serve_a_shared_store_and_stop():
    own, environ = OwnServers(), {}  # not this process's environment: the run's servers stay
    before = dict(os.environ)
    try:
        own.ensure("HEADWATER_TEST_POSTGRES", NOTHING_LISTENS, start_postgres, environ=environ)
        own.ensure("HEADWATER_TEST_MYSQL", NOTHING_LISTENS, start_mariadb, environ=environ)
        pg_url = environ["HEADWATER_TEST_POSTGRES"]
        my_url = environ["HEADWATER_TEST_MYSQL"]
        ports = [urlsplit(url).port for url in (pg_url, my_url)]
        assert 5432 not in ports and 3306 not in ports and all(ports)
        name = new_database_name()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        _log_round_trip(with_database(pg_url, name))
        with pymysql.connect(host="127.0.0.1", port=ports[1], user="root") as admin:
            admin.cursor().execute(f"CREATE DATABASE `{name}`")
        _log_round_trip(with_database(my_url, name))
    finally:
        own.stop()
    assert not any(answers("127.0.0.1", port) for port in ports)
    assert dict(os.environ) == before
