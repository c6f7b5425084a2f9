"""Store URLs read without opening anything: the scheme's parts, masked passwords.

Apart from ``log.store_url`` (which opens a store) so the stores themselves can
name their URL in messages without importing the module that imports them.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from engine.errors import HeadwaterError

KNOWN_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite", "memory")

_MASK = "***"


class BadStoreUrlError(HeadwaterError):
    """A store URL that names no store we can open (unknown scheme, no database)."""

    code = "BadStoreUrl"


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
