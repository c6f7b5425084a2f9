"""Real database servers for the shared-store tests: a fresh database per test or per run.

The PostgreSQL and MySQL/MariaDB servers are part of the test set-up, like Node:
the machine's own at the standard ports, else servers the run starts itself
(``database_servers``); a test that still cannot reach one fails with the
reason, never skips. Each database is named ``headwater_test_<random>`` and
dropped afterwards. The servers' addresses can be set with
``HEADWATER_TEST_POSTGRES`` and ``HEADWATER_TEST_MYSQL``;
``HEADWATER_TEST_OWN_DATABASES=1`` makes the run start its own all the same.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
import pymysql
import pytest
from database_servers import OwnServers, start_mariadb, start_postgres

POSTGRES_ENV, POSTGRES_PORT = "HEADWATER_TEST_POSTGRES", 5432
MYSQL_ENV, MYSQL_PORT = "HEADWATER_TEST_MYSQL", 3306
# Set to 1: the run starts its own servers even where the machine's answer.
OWN_SERVERS_ENV = "HEADWATER_TEST_OWN_DATABASES"

STORE_KINDS = ["memory", "postgresql", "mysql", "sqlite"]

_own_servers = OwnServers()


def pytest_configure(config: pytest.Config) -> None:
    """Before any test (and before xdist's workers, which inherit the environment):
    our own servers where the machine's do not answer."""
    if hasattr(config, "workerinput"):
        return
    force = os.environ.get(OWN_SERVERS_ENV) == "1"
    _own_servers.ensure(POSTGRES_ENV, POSTGRES_PORT, start_postgres, force=force)
    _own_servers.ensure(MYSQL_ENV, MYSQL_PORT, start_mariadb, force=force)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        _own_servers.stop()


def postgres_server_url() -> str:
    default = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/postgres"
    return os.environ.get(POSTGRES_ENV) or default


def mysql_server_url() -> str:
    return os.environ.get(MYSQL_ENV) or f"mysql://root@127.0.0.1:{MYSQL_PORT}"


def with_database(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name``."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def new_database_name() -> str:
    return f"headwater_test_{secrets.token_hex(6)}"


@contextmanager
def postgres_admin() -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the PostgreSQL server's maintenance database."""
    try:
        connection = psycopg.connect(postgres_server_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL at {postgres_server_url()} does not answer ({error}); the shared-store "
            "tests need it (start the server, or set HEADWATER_TEST_POSTGRES)",
            pytrace=False,
        )
    with connection:
        yield connection


@contextmanager
def mysql_admin() -> Iterator[Any]:
    """An autocommit connection to the MySQL/MariaDB server (no database selected)."""
    parts = urlsplit(mysql_server_url())
    try:
        connection = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            autocommit=True,
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as error:
        pytest.fail(
            f"MySQL at {mysql_server_url()} does not answer ({error}); the shared-store "
            "tests need it (start the server, or set HEADWATER_TEST_MYSQL)",
            pytrace=False,
        )
    try:
        yield connection
    finally:
        connection.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    name = new_database_name()
    with postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_server_url(), name)
    finally:
        with postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def mysql_database() -> Iterator[str]:
    name = new_database_name()
    with mysql_admin() as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield with_database(mysql_server_url(), name)
    finally:
        with mysql_admin() as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One database for the whole run, for tests that do not need an empty store."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    with mysql_database() as url:
        yield url


@pytest.fixture
def fresh_mysql_url() -> Iterator[str]:
    with mysql_database() as url:
        yield url


def fresh_store_url(request: pytest.FixtureRequest, kind: str, folder: Path) -> str:
    """The URL of a new, empty store of ``kind`` (one of ``STORE_KINDS``)."""
    if kind == "postgresql":
        return str(request.getfixturevalue("fresh_postgres_url"))
    if kind == "mysql":
        return str(request.getfixturevalue("fresh_mysql_url"))
    if kind == "sqlite":
        return f"sqlite://{folder.resolve()}/shared-{secrets.token_hex(4)}.db"
    if kind == "memory":
        return "memory://"
    raise ValueError(f"no store kind {kind!r}; known: {STORE_KINDS}")
