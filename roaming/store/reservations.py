"""``ocpi_reservations`` after the charger answered, and the Sessions reservations became.

Why here: the mapping of an eMSP's reservation id to ours is written when the command
arrives (by the CSMS's command log); what follows, the charger's acceptance, a charge
that uses the reservation, its expiry or cancellation, changes OCPI Sessions and CDRs,
so it is written with them, on the caller's transaction.

A Session that began as a reservation has ``reservation_id`` set and, until a charge
uses it, ``transaction_id = -reservation_id`` (the column is NOT NULL UNIQUE; real
transaction ids are positive, so the two can never collide).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from roaming.models import norm
from roaming.ports import SqlDatabase, SqlExecutor
from roaming.store.outbox import stamp

# Our reservation ids are SQLite integers: a charger may echo anything in reservationId.
MAX_ID = 2**63 - 1


def _dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


async def reservation(tx: SqlExecutor, reservation_id: int) -> Any:
    if not 0 < reservation_id <= MAX_ID:
        return None
    return await tx.fetchone("SELECT * FROM ocpi_reservations WHERE id = ?", (reservation_id,))


async def reserved_at(tx: SqlExecutor, charger_id: str, connector_id: int, uid: str) -> Any:
    """The live reservation at this connector for this token uid (case-insensitive)."""
    return await tx.fetchone(
        "SELECT * FROM ocpi_reservations WHERE charger_id = ? AND connector_id = ?"
        " AND status = 'reserved' AND upper(json_extract(token, '$.uid')) = ?"
        " ORDER BY id DESC LIMIT 1",
        (charger_id, connector_id, norm(uid)),
    )


async def mark_reserved(
    tx: SqlExecutor,
    reservation_id: int,
    *,
    expiry_date: str,
    token: dict[str, Any],
    authorization_reference: str | None,
) -> None:
    await tx.execute(
        "UPDATE ocpi_reservations SET status = 'reserved', expiry_date = ?, token = ?,"
        " authorization_reference = ? WHERE id = ?",
        (expiry_date, _dumps(token), authorization_reference, reservation_id),
    )


async def set_session(tx: SqlExecutor, reservation_id: int, session_id: str) -> None:
    await tx.execute(
        "UPDATE ocpi_reservations SET session_id = ? WHERE id = ?", (session_id, reservation_id)
    )


async def finish(tx: SqlExecutor, reservation_id: int, status: str, now: datetime) -> None:
    """End a reservation: ``used``, ``cancelled``, ``expired`` or ``rejected``."""
    await tx.execute(
        "UPDATE ocpi_reservations SET status = ?, ended_at = ? WHERE id = ?",
        (status, stamp(now), reservation_id),
    )


async def refused(tx: SqlExecutor, reservation_id: int) -> None:
    """The charger did not take a (re)reservation: one that already had its Session stays
    reserved (the charger keeps the earlier one), a new one is rejected."""
    await tx.execute(
        "UPDATE ocpi_reservations SET status = CASE WHEN session_id IS NULL THEN 'rejected'"
        " ELSE 'reserved' END WHERE id = ? AND status = 'requested'",
        (reservation_id,),
    )


async def due(db: SqlDatabase, now: str, limit: int) -> list[int]:
    """Reservations past their expiry still reserved, oldest first, at most ``limit``."""
    rows = await db.fetchall(
        "SELECT id FROM ocpi_reservations WHERE status = 'reserved' AND expiry_date <= ?"
        " ORDER BY expiry_date, id LIMIT ?",
        (now, limit),
    )
    return [int(r["id"]) for r in rows]


async def status_of(db: SqlDatabase, reservation_id: int) -> str | None:
    row = await db.fetchone("SELECT status FROM ocpi_reservations WHERE id = ?", (reservation_id,))
    return None if row is None else str(row["status"])


# ------------------------------------------------------------------ the Session rows


async def session_of(tx: SqlExecutor, reservation_id: int) -> Any:
    """The reservation's Session while it is still a reservation (status RESERVATION)."""
    return await tx.fetchone(
        "SELECT * FROM ocpi_sessions WHERE reservation_id = ? AND status = 'RESERVATION'",
        (reservation_id,),
    )


async def insert_session(
    tx: SqlExecutor,
    *,
    session_id: str,
    reservation_id: int,
    partner_key: str,
    body: dict[str, Any],
    now: datetime,
) -> None:
    await tx.execute(
        "INSERT INTO ocpi_sessions (id, transaction_id, reservation_id, partner_key, status,"
        " body, last_patch_at, created_at, last_updated)"
        " VALUES (?, ?, ?, ?, 'RESERVATION', ?, ?, ?, ?)",
        (
            session_id,
            -reservation_id,
            reservation_id,
            partner_key,
            _dumps(body),
            stamp(now),
            stamp(now),
            body["last_updated"],
        ),
    )


async def replace_session(
    tx: SqlExecutor, session_id: str, body: dict[str, Any], now: datetime
) -> None:
    """A re-reservation moved the reserved Session (it stays RESERVATION)."""
    await tx.execute(
        "UPDATE ocpi_sessions SET body = ?, last_updated = ?, last_patch_at = ? WHERE id = ?",
        (_dumps(body), body["last_updated"], stamp(now), session_id),
    )


async def activate_session(
    tx: SqlExecutor, session_id: str, transaction_id: int, body: dict[str, Any], now: datetime
) -> None:
    """The charge that used the reservation continues its Session, from now on keyed by
    its transaction like any other Session."""
    await tx.execute(
        "UPDATE ocpi_sessions SET transaction_id = ?, status = 'ACTIVE', body = ?,"
        " last_updated = ?, last_patch_at = ? WHERE id = ?",
        (transaction_id, _dumps(body), body["last_updated"], stamp(now), session_id),
    )
