"""The SQLite adapter (aiosqlite): one connection, WAL; the embedded default store.

Why one connection: SQLite has a single writer anyway; one connection (aiosqlite's own
worker thread) serialises writes without lock retries, and WAL lets readers in other
processes (the CLI, backups) read while we write. Repositories in this package take a
:class:`Database` and hold the SQL for their own tables; the CSMS's schema lives in
:mod:`csms.store.schema` only (roaming's ``ocpi_*`` tables in ``roaming.store.schema``,
applied by the composition root over the same connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from time import monotonic
from typing import Any

import aiosqlite

from csms.store import schema
from csms.store.dialects import Dialect, sqlite_path

# None binds as NULL either way. Why register it: Python 3.11's sqlite3 sends every
# parameter that is not an exact int, float, str or bytearray (None included) through
# its adapter lookup, which fails twice with an AttributeError built and discarded
# (about 1,200 CPU instructions per NULL; a decision row has four or five). Found in the
# writer thread's profile under load. ``dict.get`` of an empty dict is a C callable
# that returns None.
_null: dict[None, None] = {}
sqlite3.register_adapter(type(None), _null.get)


class SqliteExecutor:
    """Statement helpers over the shared connection, with no locking of their own.

    Each helper is one hop to aiosqlite's worker thread: results are fetched in the same
    hop as the statement, and write cursors are not closed explicitly (sqlite3 finalises
    a fully stepped statement; closing would cost a second hop per write).
    """

    dialect: Dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        cur = await self.conn.execute(sql, params)
        return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT; returns the new rowid."""
        cur = await self.conn.execute(sql, params)
        rowid = cur.lastrowid
        assert rowid is not None
        return rowid

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """The first row, for queries that select one row (by key or ``LIMIT 1``)."""
        rows = await self.conn.execute_fetchall(sql, params)
        for row in rows:
            return row
        return None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self.conn.execute_fetchall(sql, params))


class SqliteDatabase(SqliteExecutor):
    """Writes outside :meth:`transaction` take the same lock, so a lone statement from one
    coroutine never lands inside (and is never rolled back with) another's transaction.
    """

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        super().__init__(conn)
        self.path = path
        self._lock = asyncio.Lock()
        # Told the seconds each write took (a transaction from BEGIN to COMMIT, or a lone
        # statement), lock wait excluded; set by the composition root for metrics.
        self.write_observer: Callable[[float], None] | None = None

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, migrate: bool = True) -> SqliteDatabase:
        """The file of ``url`` (``sqlite:///…`` or a bare path), migrated unless told not
        to; ``pool_size`` is PostgreSQL's (one connection here)."""
        db = await cls.connect(sqlite_path(url))
        if migrate:
            await _migrated(db)
        return db

    @classmethod
    async def connect(cls, path: str) -> SqliteDatabase:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
            "PRAGMA temp_store=MEMORY",
        ):
            await conn.execute(pragma)
        return cls(conn, path)

    async def close(self) -> None:
        await self.conn.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            started = monotonic()
            n = await super().execute(sql, params)
            self._wrote(started)
            return n

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self._lock:
            started = monotonic()
            await super().executemany(sql, rows)
            self._wrote(started)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            started = monotonic()
            rowid = await super().insert(sql, params)
            self._wrote(started)
            return rowid

    def _wrote(self, started: float) -> None:
        if self.write_observer is not None:
            self.write_observer(monotonic() - started)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteExecutor]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on an unlocked executor; rolled back on error.

        Cancellation-safe: a statement handed to aiosqlite's thread runs to the end even
        if the awaiting coroutine is cancelled (a charger's socket closing mid-write), so
        the control statements are awaited through a shield and a BEGIN that completed
        for a cancelled caller is rolled back. Otherwise the shared connection would stay
        inside that transaction and every later BEGIN would fail.
        """
        async with self._lock:
            started = monotonic()
            try:
                await self._control("BEGIN IMMEDIATE")
            except BaseException:
                if self.conn.in_transaction:
                    await self._control("ROLLBACK")
                raise
            tx = SqliteExecutor(self.conn)
            try:
                yield tx
            except BaseException:
                await self._control("ROLLBACK")
                raise
            else:
                await self._control("COMMIT")
                self._wrote(started)

    async def _control(self, sql: str) -> None:
        """Run BEGIN/COMMIT/ROLLBACK to completion; a cancellation is re-raised after it."""
        done = asyncio.ensure_future(self.conn.execute(sql))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait([done])
            raise


async def _migrated(db: SqliteDatabase) -> None:
    try:
        await schema.migrate_database(db)
    except BaseException:
        await db.close()
        raise
