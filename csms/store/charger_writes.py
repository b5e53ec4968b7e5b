"""Group commit for the per-charger writes every connection makes: connect, boot, heartbeat.

Why: each of these was its own SQLite transaction, and through aiosqlite every statement
is two or three hops to its worker thread and back, serialised behind the database lock.
When 5,000 chargers connect at once (a depot after a power cut) that chain, not the CPU,
decided how long the last one waited. Here callers still wait until their write is
committed (a BootNotification is answered only once it is stored), but every write that
arrives while a batch is being committed joins the next batch: one transaction, one
``executemany`` per kind, one SELECT for the boots' registration statuses.

Heartbeats alone may linger ``heartbeat_linger_s`` (50 ms) before their batch starts:
thousands of idle chargers then cost a few commits a second instead of one per
Heartbeat; the answer waits that much longer, which a Heartbeat can afford.

Errors: if a batch fails, each of its writes is retried alone, so one bad row (e.g. a
charger removed meanwhile) fails only its own caller, with the original exception.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from csms.domain.chargers import BootInfo, HandshakeFacts
from csms.store.db import Database, Executor
from csms.store.events import INSERT_EVENT

log = structlog.get_logger("csms.store")

_BOOT = (
    "UPDATE chargers SET vendor = ?, model = ?, serial_number = ?, charge_box_serial = ?, "
    "firmware_version = ?, iccid = ?, imsi = ?, meter_type = ?, meter_serial = ?, "
    "last_boot_at = ?, last_heartbeat_at = ? WHERE id = ?"
)
_CONNECTED = "UPDATE chargers SET last_connected_at = ? WHERE id = ?"
_HEARTBEAT = "UPDATE chargers SET last_heartbeat_at = ? WHERE id = ?"


@dataclass(slots=True)
class _Write:
    kind: str  # "boot" | "connected" | "heartbeat"
    charger_id: str
    at: str
    boot: BootInfo | None  # what a "boot" says
    done: asyncio.Future[str | None]


def _boot_row(w: _Write, b: BootInfo) -> tuple[Any, ...]:
    return (
        b.vendor,
        b.model,
        b.serial_number,
        b.charge_box_serial,
        b.firmware_version,
        b.iccid,
        b.imsi,
        b.meter_type,
        b.meter_serial,
        w.at,
        w.at,
        w.charger_id,
    )


async def _apply(tx: Executor, batch: list[_Write]) -> dict[str, str]:
    """Write ``batch`` in order of kind; returns registration status by booted charger id."""
    connected = [(w.at, w.charger_id) for w in batch if w.kind == "connected"]
    boots = [(w, w.boot) for w in batch if w.boot is not None]
    beats = [(w.at, w.charger_id) for w in batch if w.kind == "heartbeat"]
    if connected:
        await tx.executemany(_CONNECTED, connected)
    statuses: dict[str, str] = {}
    if boots:
        await tx.executemany(_BOOT, [_boot_row(w, b) for w, b in boots])
        await tx.executemany(
            INSERT_EVENT,
            [
                (w.charger_id, "BootNotification", orjson.dumps(b.message).decode(), w.at)
                for w, b in boots
            ],
        )
        ids = sorted({w.charger_id for w, _ in boots})
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = await tx.fetchall(
                "SELECT id, registration_status FROM chargers WHERE id IN "
                f"({', '.join('?' for _ in chunk)})",
                chunk,
            )
            statuses.update({r[0]: r[1] for r in rows})
    if beats:
        await tx.executemany(_HEARTBEAT, beats)
    return statuses


class ChargerWrites:
    """Connect / boot / heartbeat writes, committed in shared transactions."""

    def __init__(self, db: Database, heartbeat_linger_s: float = 0.05) -> None:
        self.db = db
        self.heartbeat_linger_s = heartbeat_linger_s
        self._pending: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None
        self._urgent = asyncio.Event()
        self.batches = 0  # committed batches (observability, tests)

    async def connected(self, charger_id: str, at: str) -> None:
        await self._submit("connected", charger_id, at, None)

    async def heartbeat(self, charger_id: str, at: str) -> None:
        await self._submit("heartbeat", charger_id, at, None)

    async def boot(self, charger_id: str, boot: BootInfo, at: str) -> str:
        """Store what a BootNotification says (and its event); returns the registration
        status to answer ("Rejected" for a charger no longer registered)."""
        status = await self._submit("boot", charger_id, at, boot)
        return status or "Rejected"

    async def _submit(
        self, kind: str, charger_id: str, at: str, boot: BootInfo | None
    ) -> str | None:
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(kind, charger_id, at, boot, done))
        if kind != "heartbeat":
            self._urgent.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._pending:
                if not self._urgent.is_set() and self.heartbeat_linger_s > 0:
                    # Only heartbeats waiting: let more join (a commit each costs a WAL
                    # page write); a connect or boot arriving meanwhile cuts this short.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.heartbeat_linger_s):
                            await self._urgent.wait()
                self._urgent.clear()
                batch, self._pending = self._pending, []
                try:
                    async with self.db.transaction() as tx:
                        statuses = await _apply(tx, batch)
                except Exception:
                    if len(batch) == 1:
                        raise
                    log.warning("charger_writes.batch_failed", size=len(batch))
                    await self._one_by_one(batch)
                    continue
                self.batches += 1
                for w in batch:
                    if not w.done.done():
                        w.done.set_result(statuses.get(w.charger_id))
        except BaseException as exc:
            for w in batch:
                if not w.done.done():
                    if isinstance(exc, Exception):
                        w.done.set_exception(exc)
                    else:
                        w.done.cancel()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._writer = None
            if self._pending:  # arrived while we were failing: keep them moving
                self._writer = asyncio.create_task(self._drain())

    async def _one_by_one(self, batch: list[_Write]) -> None:
        for w in batch:
            try:
                async with self.db.transaction() as tx:
                    statuses = await _apply(tx, [w])
            except Exception as exc:
                if not w.done.done():
                    w.done.set_exception(exc)
                continue
            if not w.done.done():
                w.done.set_result(statuses.get(w.charger_id))

    async def close(self) -> None:
        """Wait for the writes already submitted (a clean shutdown loses none)."""
        self._urgent.set()
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(writer)


class AuthFactsReader:
    """Batched handshake reads: :class:`HandshakeFacts` per charger id.

    Why batched like the writes: a reconnect storm asks for thousands of these at once;
    one ``SELECT ... WHERE id IN (...)`` per batch replaces three aiosqlite thread hops
    per charger. Each caller gets its own row (or None for an unknown id).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: dict[str, list[asyncio.Future[HandshakeFacts | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def get(self, charger_id: str) -> HandshakeFacts | None:
        fut: asyncio.Future[HandshakeFacts | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(charger_id, []).append(fut)
        if self._reader is None:
            self._reader = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                ids = list(batch)
                try:
                    found: dict[str, HandshakeFacts] = {}
                    for start in range(0, len(ids), 500):
                        chunk = ids[start : start + 500]
                        rows = await self.db.fetchall(
                            "SELECT id, registration_status, password_hash, security_profile FROM chargers "
                            f"WHERE id IN ({', '.join('?' for _ in chunk)})",
                            chunk,
                        )
                        found.update({r[0]: HandshakeFacts(r[1], r[2], r[3]) for r in rows})
                except Exception as exc:
                    for futs in batch.values():
                        for f in futs:
                            if not f.done():
                                f.set_exception(exc)
                    continue
                for cid, futs in batch.items():
                    for f in futs:
                        if not f.done():
                            f.set_result(found.get(cid))
        finally:
            self._reader = None
            if self._pending:
                self._reader = asyncio.create_task(self._drain())
