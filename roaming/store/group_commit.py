"""Concurrent token pushes written in one transaction (see :class:`GroupCommit`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from roaming.models import Token
from roaming.ports import SqlDatabase, SqlExecutor

Pushed = tuple[int, Token]  # (partner id, token)


class GroupCommit:
    """Concurrent token pushes written in one transaction (group commit).

    Why: a PUT costs one SQLite commit plus several hops to aiosqlite's thread and back,
    and each hop waits for the event loop to get round to it; eMSPs push in bursts from
    many connections, so pushes that arrive while a batch is being written are written
    together by the next batch. The batch is taken *after* ``BEGIN`` has returned, so
    pushes that arrived during that hop ride along instead of waiting a whole round.
    Each caller still gets its own result or error, only after the commit; when a
    batch fails, its pushes are retried one by one so that one push the database
    refuses fails alone.
    """

    def __init__(
        self,
        db: SqlDatabase,
        write: Callable[[SqlExecutor, Sequence[Pushed]], Awaitable[list[bool]]],
        committed: Callable[[Sequence[Pushed]], None],
        max_batch: int = 500,
    ) -> None:
        self._db = db
        self._write = write
        self._committed = committed
        self._max = max_batch
        self._queue: list[tuple[int, Token, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, partner_id: int, token: Token) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._queue.append((partner_id, token, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await fut

    def _take(self) -> list[tuple[int, Token, asyncio.Future[bool]]]:
        batch, self._queue = self._queue[: self._max], self._queue[self._max :]
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch: list[tuple[int, Token, asyncio.Future[bool]]] = []
            try:
                async with self._db.transaction() as tx:
                    batch = self._take()
                    results = await self._write(tx, [(p, t) for p, t, _ in batch])
            except Exception as exc:
                if len(batch) > 1:
                    await self._one_by_one(batch)  # one bad push must not fail the others
                    continue
                for _, _, fut in batch or self._take():  # every waiter learns about it
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self._committed([(p, t) for p, t, _ in batch])
            for (_, _, fut), created in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(created)

    async def _one_by_one(self, batch: list[tuple[int, Token, asyncio.Future[bool]]]) -> None:
        """After a failed batch: each push in its own transaction, with its own outcome."""
        for partner_id, token, fut in batch:
            try:
                async with self._db.transaction() as tx:
                    [created] = await self._write(tx, [(partner_id, token)])
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
                continue
            self._committed([(partner_id, token)])
            if not fut.done():
                fut.set_result(created)
