"""The two engines a store may run on, and reading a ``store.url``.

URLs: ``sqlite:///relative/path.sqlite3``, ``sqlite:////absolute/path.sqlite3``,
``sqlite:///:memory:``, ``postgresql://user:password@host:5432/dbname`` (``postgres://``
too; query parameters other than libpq's connection options become session settings,
e.g. ``?search_path=tenant``). A bare path is a SQLite file.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """A store URL this product cannot open (the config reports it under ``store.url``)."""


def dialect_of(url: str) -> Dialect:
    """Which engine a store URL names; a bare path is a SQLite file."""
    if url.startswith(POSTGRES_PREFIXES):
        return "postgresql"
    if url.startswith(SQLITE_PREFIX) or "://" not in url:
        return "sqlite"
    scheme = url.split("://", 1)[0]
    raise StoreUrlError(
        f"unknown scheme {scheme!r}: use sqlite:///path/to/file.sqlite3 or "
        "postgresql://user@host:5432/dbname"
    )


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL (three slashes: relative, four: absolute)."""
    path = url[len(SQLITE_PREFIX) :] if url.startswith(SQLITE_PREFIX) else url
    if not path:
        raise StoreUrlError("sqlite:/// needs a file path, e.g. sqlite:///var/csms.sqlite3")
    return path


def redacted(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in userinfo else ''}@{host}"
