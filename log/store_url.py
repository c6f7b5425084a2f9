"""A shared store named by a URL: ``open_shared_store``.

Schemes::

    postgresql://user:password@host:5432/database   (also postgres://)
    mysql://user:password@host:3306/database        (also mariadb://)
    sqlite:///absolute/path/headwater.db           (or sqlite:relative/path.db)
    memory://                                       a fresh in-process store, for tests

The drivers are imported only when their scheme is opened, so importing this
module costs nothing a node without that database would pay for. Reading a URL
without opening it (``mask_url``...) lives in ``log.store_address``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from log.shared_store import MemorySharedStore, SharedLogStore
from log.store_address import (
    KNOWN_SCHEMES,
    BadStoreUrlError,
    mask_url,
    require_database_name,
    sqlite_path,
)

__all__ = [
    "KNOWN_SCHEMES",
    "BadStoreUrlError",
    "mask_url",
    "open_shared_store",
    "require_database_name",
    "sqlite_path",
]


def open_shared_store(url: str) -> SharedLogStore:
    """Open (creating its tables on first use) the shared store ``url`` names.

    Raises ``BadStoreUrlError`` for a URL we cannot read and
    ``StoreUnavailableError`` when the server does not answer or the
    database does not exist.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        require_database_name(url)
        from log.postgres_store import PostgresStore

        return PostgresStore(url)
    if scheme in ("mysql", "mariadb"):
        from log.mysql_store import MysqlStore

        return MysqlStore(url)
    if scheme == "sqlite":
        from log.sqlite_store import SqliteStore

        return SqliteStore(sqlite_path(url))
    if scheme == "memory":
        return MemorySharedStore()
    raise BadStoreUrlError(
        f"Unknown store URL scheme {scheme + ':' if scheme else '(none)'} in {mask_url(url)!r}; "
        f"known schemes: {', '.join(s + '://' for s in KNOWN_SCHEMES)}"
    )
