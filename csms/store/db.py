"""The store's database interface, and opening a store by URL.

Why an interface with two adapters: one node runs on an embedded SQLite file (nothing to
install, ``make run`` just works); several nodes share a PostgreSQL database. The
repositories in this package (and roaming's stores, through ``roaming.ports``) speak
only to :class:`Executor`/:class:`Database`, with ``?`` placeholders and SQL both engines
accept; each adapter does the rest (:mod:`csms.store.sqlite`, :mod:`csms.store.pg`).
Rows are read by column name or by index (``aiosqlite.Row`` and ``asyncpg.Record`` both
allow it). Store URLs: :mod:`csms.store.dialects`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from csms.store.dialects import Dialect, dialect_of, redacted
from csms.store.pg import PgDatabase
from csms.store.sqlite import SqliteDatabase

__all__ = ["Database", "Executor", "open_database", "redacted"]


class Executor(Protocol):
    """Statement helpers: one statement each, ``?`` placeholders."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT into a table keyed by an integer ``id``; returns the new id."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row or None, for queries that select one row (by key or ``LIMIT 1``)."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


class Database(Executor, Protocol):
    """A store: lone statements, :meth:`transaction` and :meth:`close`."""

    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """All statements on the yielded executor commit together or not at all."""
        ...

    async def close(self) -> None: ...

    # Told the seconds each write took (for metrics); None when nobody listens.
    write_observer: Callable[[float], None] | None

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, migrate: bool = True) -> Database:
        """:func:`open_database` (a bare path is a SQLite file)."""
        return await open_database(url, pool_size=pool_size, migrate=migrate)


async def open_database(url: str, *, pool_size: int = 10, migrate: bool = True) -> Database:
    """Open the store at ``url`` and, unless ``migrate`` is False, apply the CSMS's
    pending migrations."""
    if dialect_of(url) == "postgresql":
        return await PgDatabase.open(url, pool_size=pool_size, migrate=migrate)
    return await SqliteDatabase.open(url, migrate=migrate)
