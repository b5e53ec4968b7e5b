"""Jobs that must run on one node at a time (a partner's token sync, the retention purge,
the reservation expiry check): :func:`pg_exclusive` and :class:`LocalExclusive`.

Why session advisory locks on a connection held for the job: PostgreSQL releases them
by itself when the holder's connection ends, so a node killed mid-job frees its jobs at
once, with no lease to wait out and no row to clean up. The caller that does not get
the lock skips the run (another node is doing it) rather than waiting: the job's own
schedule brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

import asyncpg

from csms import logs

log = logs.get("csms.cluster")


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name``, the same on every node."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextlib.asynccontextmanager
async def pg_exclusive(pool: asyncpg.Pool, name: str) -> AsyncIterator[bool]:
    """True while this node holds job ``name``; False when another session holds it."""
    key = lock_key(name)
    conn = await pool.acquire()
    try:
        got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            try:
                await asyncio.shield(conn.execute("SELECT pg_advisory_unlock($1)", key))
            except BaseException:
                # Unlock unsure (cancelled, connection broken): end the session, which
                # releases its locks, rather than return a locked connection to the pool.
                conn.terminate()
                raise
    finally:
        await asyncio.shield(pool.release(conn))


class LocalExclusive:
    """The one node of a SQLite store: exclusive within the process, never skipped by
    another node."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    @contextlib.asynccontextmanager
    async def __call__(self, name: str) -> AsyncIterator[bool]:
        if name in self._held:
            yield False
            return
        self._held.add(name)
        try:
            yield True
        finally:
            self._held.discard(name)
