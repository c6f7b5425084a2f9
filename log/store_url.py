"""A shared store named by a URL: ``open_shared_store`` and ``mask_url``.

Schemes::

    postgresql://user:password@host:5432/database   (also postgres://)
    mysql://user:password@host:3306/database        (also mariadb://)
    sqlite:///absolute/path/headwater.db           (or sqlite:relative/path.db)
    memory://                                       a fresh in-process store, for tests

The drivers are imported only when their scheme is opened, so importing this
module costs nothing a node without that database would pay for.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from engine.errors import HeadwaterError
from log.shared_store import MemorySharedStore, SharedLogStore

KNOWN_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite", "memory")

_MASK = "***"


class BadStoreUrlError(HeadwaterError):
    """A store URL that names no store we can open (unknown scheme, no database)."""

    code = "BadStoreUrl"


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


def require_database_name(url: str) -> str:
    """The database a server URL names (its path), else ``BadStoreUrlError``."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise BadStoreUrlError(
            f"The store URL {mask_url(url)!r} names no database: "
            "add it as the path, e.g. postgresql://host:5432/headwater"
        )
    return name


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:`` URL names: ``sqlite:///abs/path`` or ``sqlite:relative/path``."""
    parts = urlsplit(url)
    if parts.netloc or parts.query or not parts.path or parts.path == "/":
        raise BadStoreUrlError(
            f"The store URL {url!r} names no SQLite file: write sqlite:///absolute/path.db "
            "(three slashes) or sqlite:relative/path.db"
        )
    return unquote(parts.path)


def mask_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` parameter) hidden."""
    parts = urlsplit(url)
    netloc = parts.netloc
    user_info, at, host = netloc.rpartition("@")
    if at and ":" in user_info:
        netloc = f"{user_info.split(':', 1)[0]}:{_MASK}@{host}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        query = urlencode([(k, _MASK if k == "password" else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
