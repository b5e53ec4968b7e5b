"""The PostgreSQL adapter (asyncpg): a connection pool shared by every node's store.

Why a thin translation instead of a second set of SQL: the repositories write portable
SQL with ``?`` placeholders; PostgreSQL wants ``$1, $2 …``. :func:`pg_sql` rewrites a
statement once (outside string literals, quoted names and comments) and remembers the
result, so the steady state costs one dictionary lookup per statement; asyncpg then
reuses its prepared statement per connection. The few SQLite functions the repositories
use (``json_extract``, ``julianday``) exist in PostgreSQL as SQL functions created by the
schema (see ``roaming.store.schema``), so the statements stay the same on both engines.

Transactions: one at a time per node, like the SQLite adapter's single writer, so the
repositories keep the read-then-write semantics they were written for; lone statements
(most reads) run concurrently on the pool. Between nodes, the database's own keys and
locks decide (a retried StartTransaction meets the UNIQUE key of its content).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from time import monotonic
from typing import Any

import asyncpg

from csms.store import schema
from csms.store.dialects import Dialect, redacted

# A '…' literal (with '' escapes), a "…" name, a -- comment, or a placeholder.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|\?")


@functools.lru_cache(maxsize=4096)
def pg_sql(sql: str) -> str:
    """``sql`` with ``?`` placeholders numbered ``$1 … $n`` (cached per statement text)."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group() != "?":
            return match.group()
        counter += 1
        return f"${counter}"

    return _TOKENS.sub(number, sql)


@functools.lru_cache(maxsize=1024)
def pg_insert_sql(sql: str) -> str:
    """An INSERT that answers the new row's ``id`` (SQLite's lastrowid)."""
    return pg_sql(sql).rstrip().rstrip(";") + " RETURNING id"


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class StoreUnavailable(ConnectionError):
    """The PostgreSQL server named by ``store.url`` cannot be reached or refused us."""


class PgExecutor:
    """Statements on one connection (a transaction's)."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _changed(await self.conn.execute(pg_sql(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(pg_sql(sql), rows)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        new_id = await self.conn.fetchval(pg_insert_sql(sql), *params)
        assert new_id is not None, "insert() is for statements that always add a row"
        return int(new_id)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.conn.fetchrow(pg_sql(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.conn.fetch(pg_sql(sql), *params))


class PgDatabase:
    """Lone statements borrow a pooled connection each; transactions hold one."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url
        self._lock = asyncio.Lock()
        # As on SQLite: told the seconds each write took; set by the composition root.
        self.write_observer: Callable[[float], None] | None = None

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, migrate: bool = True) -> PgDatabase:
        """A pool of at most ``pool_size`` connections, migrated unless told not to."""
        db = await cls.connect(url, pool_size=pool_size)
        if migrate:
            try:
                await schema.migrate_database(db)
            except BaseException:
                await db.close()
                raise
        return db

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 10) -> PgDatabase:
        # min_size 1: a node keeps one connection warm and opens the rest on demand, so
        # max_connections is sized for the sum of the nodes' pool_size, not reserved.
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # Refused, unknown host, bad password, no such database: one line naming the
            # server (password hidden) instead of a driver traceback.
            raise StoreUnavailable(f"cannot open {redacted(url)}: {exc}") from exc
        return cls(pool, url)

    async def close(self) -> None:
        await self.pool.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        started = monotonic()
        n = _changed(await self.pool.execute(pg_sql(sql), *params))
        self._wrote(started)
        return n

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        started = monotonic()
        await self.pool.executemany(pg_sql(sql), rows)
        self._wrote(started)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        started = monotonic()
        new_id = await self.pool.fetchval(pg_insert_sql(sql), *params)
        assert new_id is not None, "insert() is for statements that always add a row"
        self._wrote(started)
        return int(new_id)

    def _wrote(self, started: float) -> None:
        if self.write_observer is not None:
            self.write_observer(monotonic() - started)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.pool.fetchrow(pg_sql(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.pool.fetch(pg_sql(sql), *params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgExecutor]:
        """BEGIN … COMMIT on one pooled connection; rolled back on error.

        Cancellation-safe like the SQLite adapter: COMMIT/ROLLBACK run to the end even if
        the caller is cancelled (a charger's socket closing mid-write), and a connection
        left in an unknown state is closed rather than returned to the pool.
        """
        async with self._lock:
            started = monotonic()
            conn = await self.pool.acquire()
            try:
                tx = conn.transaction()
                await tx.start()
                try:
                    yield PgExecutor(conn)
                except BaseException:
                    try:
                        await _to_the_end(tx.rollback())
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        conn.terminate()  # mid-statement when cancelled: not reusable
                    raise
                else:
                    await _to_the_end(tx.commit())
                    self._wrote(started)
            finally:
                await _to_the_end(self.pool.release(conn))


async def _to_the_end(step: Awaitable[Any]) -> Any:
    """Await ``step`` to completion; a cancellation meanwhile is re-raised after it."""
    done = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.wait([done])
        raise
