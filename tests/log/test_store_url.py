"""Opening a shared store by URL: the schemes, the refusals, and passwords kept out of sight."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from shared_databases import mysql_server_url, postgres_server_url, with_database

from log import LogEntry, Write
from log.shared_store import MemorySharedStore, StoreUnavailableError
from log.store_url import BadStoreUrlError, mask_url, open_shared_store


def test_an_unknown_scheme_lists_the_known_ones() -> None:
    for url in ("redis://127.0.0.1/0", "headwater.db"):
        with pytest.raises(BadStoreUrlError) as info:
            open_shared_store(url)
        assert info.value.code == "BadStoreUrl"
        for scheme in ("postgresql://", "mysql://", "sqlite://", "memory://"):
            assert scheme in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432",
        "postgres://postgres:pw@127.0.0.1:5432/",
        "mysql://root@127.0.0.1:3306",
        "mariadb://root@127.0.0.1:3306/",
        "mysql://root@127.0.0.1:3306/db?ssl=1",
        "sqlite:",
        "sqlite://",
        "sqlite://relative/path.db",
    ],
)
def test_a_url_naming_no_database_is_refused(url: str) -> None:
    with pytest.raises(BadStoreUrlError) as info:
        open_shared_store(url)
    assert info.value.code == "BadStoreUrl" and "pw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://hw:s3cret@127.0.0.1:1/headwater", "refused"),
        ("mysql://hw:s3cret@127.0.0.1:1/headwater", "connect"),
    ],
)
def test_an_unreachable_server_is_unavailable_at_once(url: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=reason) as info:
        open_shared_store(url)
    assert time.monotonic() - started < 6.0
    assert info.value.code == "StoreUnavailable"
    assert "hw:***@127.0.0.1:1/headwater" in str(info.value) and "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("server", "reason"),
    [(postgres_server_url, "does not exist"), (mysql_server_url, "Unknown database")],
)
def test_a_database_that_does_not_exist_is_unavailable(
    server: Callable[[], str], reason: str
) -> None:
    with pytest.raises(StoreUnavailableError, match=reason):
        open_shared_store(with_database(server(), "headwater_no_such_database"))


def test_sqlite_urls_absolute_and_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    relative = open_shared_store("sqlite:data/shared.db")
    absolute = open_shared_store(f"sqlite://{tmp_path}/data/shared.db")
    try:
        assert relative.describe() == absolute.describe() == f"sqlite://{tmp_path}/data/shared.db"
        relative.append([LogEntry(1, (Write("d", "t", None, {}),))])
        assert absolute.latest_ts() == 1 and absolute.deployment_id() == relative.deployment_id()
    finally:
        relative.close()
        absolute.close()
    with pytest.raises(StoreUnavailableError, match="unable to open"):
        open_shared_store(f"sqlite://{tmp_path}/missing-folder/shared.db")


def test_memory_urls_open_fresh_stores() -> None:
    first, second = open_shared_store("memory://"), open_shared_store("memory://")
    assert isinstance(first, MemorySharedStore) and first is not second


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:p%40ss:w@h/db", "postgresql://u:***@h/db"),
        ("mysql://u@h/db", "mysql://u@h/db"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        ("memory://", "memory://"),
    ],
)
def test_mask_url_hides_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_store_describes_itself_with_the_password_masked(postgres_url: str) -> None:
    store = open_shared_store(postgres_url.replace("postgres@", "postgres:s3cret@"))
    try:
        assert store.describe() == postgres_url.replace("postgres@", "postgres:***@")
    finally:
        store.close()
