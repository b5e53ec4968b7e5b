"""Retention: the decision log's rows older than ``retention.decisions_days`` are purged
in the background.

Why this shape: the ``authorizations`` table grows by one row per decision (hundreds of
millions a year on a busy node), and one ``DELETE ... WHERE decided_at < ?`` over a
backlog would hold SQLite's single writer, and the store lock every other write waits
on, for seconds. So a round deletes at most ``batch_rows`` rows per statement, pauses
``pause_s`` between statements (the loop serves chargers meanwhile, the decision log
flushes between two batches), and stops after ``max_rows_per_round``; while a backlog
remains the next round follows after one pause, else after ``interval_s``.

Why by id and not by an index on ``decided_at``: the table is append-only and has no
secondary index (an index costs every insert; see migration ``0005``). Rows arrive in
decision order, so the oldest rows are the lowest ids: each statement looks at the
``batch_rows`` lowest ids only and deletes those older than the horizon, a bounded walk
of the primary key however large the table is. A window with nothing to delete ends the
round; a row stamped out of order (a wall-clock step) waits until the rows before it
have gone.

Several nodes on one database: a round runs under the cluster's job lock
(``exclusive``), so one node purges while the others skip that round.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from csms import datetimes, logs
from csms.config import RetentionConfig
from csms.store.db import Database

log = logs.get("csms.retention")

JOB = "retention_purge"  # the job lock's name


@dataclass(frozen=True)
class Purgeable:
    """An append-only table whose rows expire: its name, its timestamp column (``millis``
    text, so text order is time order) and how many days a row is kept (0: forever)."""

    table: str
    stamped: str
    days: int

    def statement(self) -> str:
        # Table and column names come from code (:func:`purgeables`), never from input.
        return (
            f"DELETE FROM {self.table} WHERE id IN "
            f"(SELECT id FROM {self.table} ORDER BY id LIMIT ?) AND {self.stamped} < ?"
        )


def purgeables(config: RetentionConfig) -> tuple[Purgeable, ...]:
    """The tables that grow per decision: the decision log only (other per-message
    tables hold history that charges are priced from, and stay)."""
    return (Purgeable("authorizations", "decided_at", config.decisions_days),)


@dataclass
class RoundResult:
    deleted: int
    seconds: float
    backlog: bool  # stopped at ``max_rows_per_round`` with rows still to delete


class Retention:
    """Deletes expired rows of :func:`purgeables` in small batches, on its own timer."""

    def __init__(
        self,
        db: Database,
        config: RetentionConfig,
        *,
        now: Callable[[], datetime] = datetimes.utc_now,
        tables: tuple[Purgeable, ...] | None = None,
        exclusive: Callable[[str], AbstractAsyncContextManager[bool]] | None = None,
    ) -> None:
        self.db = db
        self.exclusive = exclusive
        self.config = config
        self.now = now
        self.tables = tuple(t for t in (tables or purgeables(config)) if t.days > 0)
        self.deleted = 0
        self._task: asyncio.Task[None] | None = None

    def horizon(self, days: int) -> str:
        """The oldest ``millis`` stamp kept."""
        return datetimes.millis(self.now() - timedelta(days=days))

    async def purge_round(self) -> RoundResult:
        """One round over every table: batches until nothing old is left or the round's
        bound is reached, pausing between statements."""
        started = time.monotonic()
        budget = self.config.max_rows_per_round
        deleted = 0
        backlog = False
        for target in self.tables:
            horizon = self.horizon(target.days)
            sql = target.statement()
            while True:
                batch = min(self.config.batch_rows, budget - deleted)
                if batch <= 0:
                    backlog = True
                    break
                n = await self.db.execute(sql, (batch, horizon))
                deleted += n
                if n == 0:
                    break
                await asyncio.sleep(self.config.pause_s)
        self.deleted += deleted
        result = RoundResult(deleted, time.monotonic() - started, backlog)
        if deleted:
            log.info(
                "retention_purged",
                rows=deleted,
                seconds=round(result.seconds, 3),
                backlog=backlog,
            )
        return result

    def start(self, first_delay_s: float | None = None) -> None:
        """Run rounds in the background (nothing to do when every table keeps forever).

        The first round comes after ``first_delay_s``, by default one interval but at
        most a minute: start-up (a reconnect storm) has the store to itself first."""
        if first_delay_s is None:
            first_delay_s = min(self.config.interval_s, 60.0)
        if self._task is None and self.tables:
            self._task = asyncio.get_running_loop().create_task(self._run(first_delay_s))

    async def exclusive_round(self) -> RoundResult | None:
        """:meth:`purge_round` unless another node runs one now (then None)."""
        if self.exclusive is None:
            return await self.purge_round()
        async with self.exclusive(JOB) as mine:
            return await self.purge_round() if mine else None

    async def _run(self, delay_s: float) -> None:
        while True:
            await asyncio.sleep(delay_s)
            try:
                result = await self.exclusive_round()
                if result is None:  # another node purges; look again next interval
                    delay_s = self.config.interval_s
                    continue
            except Exception:  # the store is busy or failing: try again next interval
                log.exception("retention_failed")
                delay_s = self.config.interval_s
                continue
            delay_s = self.config.pause_s if result.backlog else self.config.interval_s

    async def close(self) -> None:
        """Stop the timer. A statement already handed to the store's thread completes
        (and its rows are gone); the round simply ends there."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
