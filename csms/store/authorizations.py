"""The ``authorizations`` table: every decision, written behind the answer in batches.

Why write-behind: the answer to the charger must not wait for a SQLite round trip, and
one ``executemany`` per batch costs far less than one INSERT per decision at thousands
of decisions a second. Nothing is lost on a clean shutdown: :meth:`AuthorizationLog.close`
writes whatever is still buffered; a flush that fails keeps its rows and retries.

The same object emits the ``authorization_decided`` log event (uid masked), so "every
decision is stored and logged" holds in exactly one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from csms import logs
from csms.authz.model import DecisionRecord
from csms.datetimes import PerSecond
from csms.store.db import Database, Executor

COLUMNS: tuple[str, ...] = (
    "decided_at",
    "charger_id",
    "connector_id",
    "trigger",
    "uid",
    "uid_norm",
    "partner_id",
    "token_type",
    "source",
    "allowed",
    "status",
    "authorization_reference",
    "display_text",
    "latency_ms",
    "reason",
)
_INSERT = (
    f"INSERT INTO authorizations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)

log = logs.get("csms.authz")
_decided = logs.HotEvent("csms.authz", "authorization_decided")


_stamp = PerSecond()


def row_of(entry: DecisionRecord) -> tuple[Any, ...]:
    """The ``authorizations`` row of a decision, in :data:`COLUMNS` order.

    A plain tuple of str/int/float/None: sqlite3 binds it fastest, and it leaves the
    collector's view at its first look, so buffered rows do not lengthen collections.
    ``_value_`` rather than ``.value``: the same string without the enum property's
    Python-level descriptor call (three per decision on the hot path).
    """
    request, d = entry.request, entry.decision
    allowed = d.allowed
    return (
        _stamp.millis(entry.decided_at),
        request.charger_id,
        request.connector_id,
        request.trigger,
        request.uid,
        request.uid_norm,
        d.partner_id,
        d.token_type or request.token_type,
        d.source._value_,
        allowed._value_ if allowed is not None else None,
        d.status._value_,
        d.authorization_reference,
        d.display_text,
        entry.latency_ms,
        d.reason,
    )


def log_decision(row: tuple[Any, ...]) -> None:
    """The one structured event per decision (a :func:`row_of` row); the uid is masked,
    never logged whole."""
    (_, charger_id, connector_id, trigger, uid, _, partner, _, source, allowed, status,
     reference, _, latency_ms, reason) = row  # fmt: skip
    _decided(
        source=source,
        status=status,
        latency_ms=latency_ms,
        authorization_reference=reference,
        charger_id=charger_id,
        connector_id=connector_id,
        trigger=trigger,
        uid=logs.mask(uid),
        partner=partner,
        allowed=allowed,
        reason=reason,
    )


class AuthorizationLog:
    """Implements :class:`csms.authz.ports.DecisionSink` over the ``authorizations`` table.

    ``record`` only appends to a buffer and wakes the writer; the writer flushes when
    ``batch_size`` rows wait or ``flush_interval_s`` has passed. Above ``soft_limit``
    buffered rows (the disk cannot keep up) a warning is logged once per episode, and
    rows are still kept: losing an audit record is worse than using memory.
    """

    def __init__(
        self,
        db: Database,
        *,
        flush_interval_s: float = 0.2,
        batch_size: int = 1000,
        soft_limit: int = 100_000,
        emit_log: bool = True,
    ) -> None:
        self.db = db
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.soft_limit = soft_limit
        self.emit_log = emit_log
        # Rows of :func:`row_of`: untracked by the collector after its first look.
        self._buffer: list[tuple[Any, ...]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self._closed = False
        self._warned = False
        self.written = 0
        # Told every decision as it is recorded (metrics); quick, never raising.
        self.observers: list[Callable[[DecisionRecord], None]] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def record(self, entry: DecisionRecord) -> None:
        row = row_of(entry)
        for observe in self.observers:
            observe(entry)
        if self.emit_log:
            log_decision(row)
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()
        if len(self._buffer) > self.soft_limit and not self._warned:
            self._warned = True
            log.warning("authorization_log_backlog", buffered=len(self._buffer))
        if self._task is None and not self._closed:
            with contextlib.suppress(RuntimeError):  # no running loop: flushed on close()
                self.start()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self) -> int:
        """Write everything buffered now; returns the number of rows written."""
        written = 0
        async with self._flushing:
            while self._buffer:
                batch = self._buffer[: self.batch_size]
                try:
                    # One transaction per batch: in autocommit each row would be its own commit.
                    async with self.db.transaction() as tx:
                        await tx.executemany(_INSERT, batch)
                except Exception:
                    log.exception("authorization_log_flush_failed", rows=len(batch))
                    raise
                del self._buffer[: len(batch)]
                written += len(batch)
            self.written += written
        if len(self._buffer) <= self.soft_limit:
            self._warned = False
        return written

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # kept in the buffer; logged by flush(); retried next round
                await asyncio.sleep(self.flush_interval_s)

    async def close(self) -> None:
        """Stop the writer and write what is left (clean shutdown loses nothing)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            # Not cancelled: a cancelled executemany may still commit in aiosqlite's
            # thread, and its rows would then be written twice.
            await self._task
            self._task = None
        await self.flush()


async def latest(
    db: Executor,
    *,
    limit: int = 50,
    charger_id: str | None = None,
    uid: str | None = None,
    source: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The newest decisions first, optionally for one charger / token / source / status."""
    where: list[str] = []
    params: list[Any] = []
    if charger_id:
        where.append("charger_id = ?")
        params.append(charger_id)
    if uid:
        where.append("uid_norm = ?")
        params.append(uid.upper())
    if source:
        where.append("source = ?")
        params.append(source)
    if status:
        where.append("status = ?")
        params.append(status)
    sql = "SELECT * FROM authorizations"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = await db.fetchall(sql, (*params, limit))
    return [dict(r) for r in rows]
