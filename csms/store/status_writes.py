"""Group commit for StatusNotifications: the message idle chargers send most.

Why: each report was its own transaction of six statements, and through aiosqlite every
statement is a hop to its worker thread and back. Profiled at 50 chargers sending
StatusNotifications as fast as answered, handing a statement to the worker thread
(``SimpleQueue.put_nowait``, where the event loop meets the worker for the GIL) cost
about 50 µs of the loop's time per hop, six hops per report: the largest single cost of
the message. Here reports that arrive while a batch is being written join the next one,
and a batch costs ``BEGIN``, one SELECT of the previous statuses, one ``executemany``
for the history, one for the connectors' current rows, the roaming hook once (one SELECT
of the batch's EVSE mappings, a write per EVSE whose status changed), and ``COMMIT``.
Measured figures: tests/bench/README.md ("StatusNotification").

A report is answered only after its batch is committed, as before. A batch of fewer
than :data:`LINGER_BELOW` reports lingers ``linger_s`` (20 ms) so that a steady trickle
of idle chargers (one report a minute each) still shares commits; a batch never holds
more than ``max_batch`` reports.

Errors: a batch that fails is retried one report per transaction, so one report the
database refuses fails only its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from csms.domain.chargers import StatusReport
from csms.store.chargers import HISTORY_INSERT, UPSERT_CONNECTOR, status_row
from csms.store.db import Database, Executor

# A batch lingers only while fewer reports than this wait: under load the reports that
# arrive during one commit fill the next batch anyway, and lingering would only slow
# chargers that send reports back to back.
LINGER_BELOW = 8

# Told a batch's reports, (charger id, report) in arrival order, inside its transaction
# (the roaming EVSE status push is queued in the same transaction as the status).
StatusHook = Callable[[Executor, Sequence[tuple[str, StatusReport]]], Awaitable[None]]


@dataclass(slots=True)
class _Report:
    charger_id: str
    report: StatusReport
    at: str
    done: asyncio.Future[str | None]  # the connector's status before this report


async def _apply(tx: Executor, batch: Sequence[_Report], hook: StatusHook) -> list[str | None]:
    """Write ``batch`` in order; returns each report's previous connector status."""
    ids = sorted({r.charger_id for r in batch})
    marks = ", ".join("?" * len(ids))
    rows = await tx.fetchall(
        f"SELECT charger_id, connector_id, status FROM connectors WHERE charger_id IN ({marks})",
        ids,
    )
    current: dict[tuple[str, int], str | None] = {(r[0], int(r[1])): r[2] for r in rows}
    previous: list[str | None] = []
    for r in batch:
        key = (r.charger_id, r.report.connector_id)
        previous.append(current.get(key))
        current[key] = r.report.status  # a later report of the same connector follows it
    params = [status_row(r.charger_id, r.report, r.at) for r in batch]
    await tx.executemany(HISTORY_INSERT, params)
    await tx.executemany(UPSERT_CONNECTOR, params)
    await hook(tx, [(r.charger_id, r.report) for r in batch])
    return previous


class StatusWrites:
    """StatusNotification writes, committed in shared transactions."""

    def __init__(
        self,
        db: Database,
        hook: StatusHook,
        *,
        linger_s: float = 0.02,
        max_batch: int = 500,
    ) -> None:
        self.db = db
        self.hook = hook
        self.linger_s = linger_s
        self.max_batch = max_batch
        self._pending: list[_Report] = []
        self._writer: asyncio.Task[None] | None = None
        self._enough = asyncio.Event()
        self.batches = 0  # committed batches (observability, tests)

    async def record(self, charger_id: str, report: StatusReport, at: str) -> str | None:
        """Store ``report`` (history and current row); returns the connector's previous
        status once committed."""
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Report(charger_id, report, at, done))
        if len(self._pending) >= LINGER_BELOW:
            self._enough.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        batch: list[_Report] = []
        try:
            while self._pending:
                if len(self._pending) < LINGER_BELOW and self.linger_s > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.linger_s):
                            await self._enough.wait()
                self._enough.clear()
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    async with self.db.transaction() as tx:
                        previous = await _apply(tx, batch, self.hook)
                except Exception:
                    if len(batch) == 1:
                        raise
                    await self._one_by_one(batch)
                    continue
                self.batches += 1
                for r, before in zip(batch, previous, strict=True):
                    if not r.done.done():
                        r.done.set_result(before)
                batch = []
        except BaseException as exc:
            for r in batch:
                if not r.done.done():
                    if isinstance(exc, Exception):
                        r.done.set_exception(exc)
                    else:
                        r.done.cancel()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._writer = None
            if self._pending:  # arrived while we were failing: keep them moving
                self._writer = asyncio.create_task(self._drain())

    async def _one_by_one(self, batch: Sequence[_Report]) -> None:
        for r in batch:
            try:
                async with self.db.transaction() as tx:
                    [before] = await _apply(tx, [r], self.hook)
            except Exception as exc:
                if not r.done.done():
                    r.done.set_exception(exc)
                continue
            if not r.done.done():
                r.done.set_result(before)

    async def close(self) -> None:
        """Write what was already submitted (a clean shutdown loses no report)."""
        self._enough.set()
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writer)
