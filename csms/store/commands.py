"""``ocpi_commands`` (every remote command received, with its outcome) and
``ocpi_reservations`` (an eMSP's reservation ids mapped to our own).

Why these live in the CSMS store: the commands are carried out here (they become OCPP
calls), so the CSMS owns their log; the session lookup reads the CPO's own OCPI session
rows beside its transactions, in the same database.
"""

from __future__ import annotations

from csms.domain.commands import (
    CommandOutcome,
    ReceivedCommand,
    Reservation,
    ReservationRequest,
    SessionTarget,
)
from csms.store.db import Database

_FIND_RESERVATION = (
    "SELECT id, charger_id FROM ocpi_reservations WHERE partner_key = ? AND reservation_id_norm = ?"
)


class CommandRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, c: ReceivedCommand) -> int:
        """Log a command as answered; returns its id (for :meth:`finish`)."""
        return await self.db.insert(
            "INSERT INTO ocpi_commands (partner_key, command, request, response, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (c.partner_key, c.command, c.request, c.response, c.created_at),
        )

    async def finish(self, command_id: int, outcome: CommandOutcome) -> None:
        await self.db.execute(
            "UPDATE ocpi_commands SET result = ?, result_delivered = ?, error = ?, finished_at = ?"
            " WHERE id = ?",
            (
                outcome.result,
                int(outcome.delivered),
                outcome.error,
                outcome.finished_at,
                command_id,
            ),
        )

    async def session_target(self, session_id: str) -> SessionTarget | None:
        """The session (id compared case-insensitively) with its transaction, or None."""
        row = await self.db.fetchone(
            "SELECT s.partner_key, s.status, t.id AS transaction_id, t.charger_id"
            " FROM ocpi_sessions s JOIN transactions t ON t.id = s.transaction_id"
            " WHERE upper(s.id) = upper(?)",
            (session_id,),
        )
        return None if row is None else SessionTarget(*row)

    async def reserve(self, r: ReservationRequest) -> int:
        """Our id for the partner's reservation: a repeated id is the same reservation,
        moved to the new connector and requested again."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(_FIND_RESERVATION, (r.partner_key, r.reservation_id_norm))
            if row is not None:
                await tx.execute(
                    "UPDATE ocpi_reservations SET charger_id = ?, connector_id = ?, location_id = ?,"
                    " status = 'requested' WHERE id = ?",
                    (r.charger_id, r.connector_id, r.location_id, row["id"]),
                )
                return int(row["id"])
            return await tx.insert(
                "INSERT INTO ocpi_reservations (partner_key, reservation_id, reservation_id_norm,"
                " charger_id, connector_id, location_id, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'requested', ?)",
                (
                    r.partner_key,
                    r.reservation_id,
                    r.reservation_id_norm,
                    r.charger_id,
                    r.connector_id,
                    r.location_id,
                    r.created_at,
                ),
            )

    async def reservation(self, partner_key: str, reservation_id_norm: str) -> Reservation | None:
        row = await self.db.fetchone(_FIND_RESERVATION, (partner_key, reservation_id_norm))
        return None if row is None else Reservation(int(row["id"]), row["charger_id"])
