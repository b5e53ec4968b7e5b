"""The Sessions we are Sender of: ``ocpi_sessions``, one row per roaming transaction.

Why ``body`` holds the whole OCPI Session: GET ``/sessions`` serves it as is, and every
PATCH is computed from it. It carries a ``_meta`` object the eMSP never sees (meter
start, the OCPP charger and connector), removed when the Session is served.
``last_patch_at`` (an outbox stamp) rate-limits the ``kwh`` PATCHes.

``waiting_for`` (a reason) marks a Session whose connector no EVSE maps: it has no
location yet, is not served to the eMSP, and its pushes are held in the outbox until
the connector is mapped (:meth:`roaming.sessions.SessionService.release_waiting`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from roaming.ports import SqlExecutor
from roaming.store.outbox import stamp
from roaming.store.paging import PartnerObjects, count_and_page, last_updated_filter


def _dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


class SessionStore(PartnerObjects):
    """Session rows; writes go on the caller's transaction (the OCPP fact's own)."""

    table = "ocpi_sessions"
    order_by = "created_at, id"

    def served(self, body: dict[str, Any]) -> dict[str, Any]:
        body.pop("_meta", None)
        return body

    async def page(
        self, partner_key: str, date_from: str | None, date_to: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The partner's Sessions, except those still waiting for a location."""
        where, params = last_updated_filter(date_from, date_to, partner_key=partner_key)
        where += " AND waiting_for IS NULL"
        total, rows = await count_and_page(
            self.db, self.table, where, params, order_by=self.order_by, offset=offset, limit=limit
        )
        return total, [self.served(orjson.loads(r["body"])) for r in rows]

    async def releasable(self, tx: SqlExecutor) -> list[Any]:
        """Waiting Sessions whose charger connector an EVSE maps now (oldest first)."""
        return await tx.fetchall(
            "SELECT s.* FROM ocpi_sessions s WHERE s.waiting_for IS NOT NULL AND EXISTS ("
            "SELECT 1 FROM ocpi_evses e WHERE e.status != 'REMOVED'"
            " AND e.charger_id = json_extract(s.body, '$._meta.charger_id')"
            " AND e.connector_id = CAST(json_extract(s.body, '$._meta.connector_id') AS INTEGER))"
            " ORDER BY s.created_at, s.id"
        )

    async def waiting_rows(self, tx: SqlExecutor, ids: Sequence[str]) -> list[Any]:
        """Those of ``ids`` still waiting, in the order :meth:`releasable` gives."""
        if not ids:
            return []
        return await tx.fetchall(
            f"SELECT * FROM ocpi_sessions WHERE id IN ({', '.join('?' * len(ids))})"
            " AND waiting_for IS NOT NULL ORDER BY created_at, id",
            list(ids),
        )

    async def any_waiting(self, tx: SqlExecutor) -> bool:
        row = await tx.fetchone("SELECT 1 FROM ocpi_sessions WHERE waiting_for IS NOT NULL LIMIT 1")
        return row is not None

    async def save_waiting(
        self, tx: SqlExecutor, session_id: str, body: dict[str, Any], waiting_for: str | None
    ) -> None:
        """New ``body`` (and ``_meta``) of a waiting Session; ``None`` ends the wait."""
        await tx.execute(
            "UPDATE ocpi_sessions SET body = ?, waiting_for = ?, last_updated = ? WHERE id = ?",
            (_dumps(body), waiting_for, body["last_updated"], session_id),
        )

    async def save_body(self, tx: SqlExecutor, session_id: str, body: dict[str, Any]) -> None:
        """Replace ``body`` (with its ``_meta``) and nothing else: no push, no new stamp."""
        await tx.execute(
            "UPDATE ocpi_sessions SET body = ? WHERE id = ?", (_dumps(body), session_id)
        )

    async def exists_for_transaction(self, tx: SqlExecutor, transaction_id: int) -> bool:
        return await self.id_for_transaction(tx, transaction_id) is not None

    async def id_for_transaction(self, tx: SqlExecutor, transaction_id: int) -> str | None:
        row = await tx.fetchone(
            "SELECT id FROM ocpi_sessions WHERE transaction_id = ?", (transaction_id,)
        )
        return str(row["id"]) if row else None

    async def by_transaction(self, tx: SqlExecutor, transaction_id: int) -> Any:
        """The row (``id``, ``partner_key``, ``status``, ``body``, ``last_patch_at``...)."""
        return await tx.fetchone(
            "SELECT * FROM ocpi_sessions WHERE transaction_id = ?", (transaction_id,)
        )

    async def insert(
        self,
        tx: SqlExecutor,
        *,
        session_id: str,
        transaction_id: int,
        partner_key: str,
        body: dict[str, Any],
        now: datetime,
        waiting_for: str | None = None,
    ) -> None:
        """A new ACTIVE Session; its PUT is due now, so ``last_patch_at`` is now."""
        await tx.execute(
            "INSERT INTO ocpi_sessions (id, transaction_id, partner_key, status, body,"
            " last_patch_at, created_at, last_updated, waiting_for)"
            " VALUES (?, ?, ?, 'ACTIVE', ?, ?, ?, ?, ?)",
            (
                session_id,
                transaction_id,
                partner_key,
                _dumps(body),
                stamp(now),
                stamp(now),
                body["last_updated"],
                waiting_for,
            ),
        )

    async def save_progress(
        self,
        tx: SqlExecutor,
        session_id: str,
        body: dict[str, Any],
        *,
        patched: bool,
        now: datetime,
    ) -> None:
        """New energy in ``body``; ``patched`` when a PATCH was queued with it."""
        await tx.execute(
            "UPDATE ocpi_sessions SET body = ?, last_updated = ?,"
            " last_patch_at = CASE WHEN ? THEN ? ELSE last_patch_at END WHERE id = ?",
            (_dumps(body), body["last_updated"], patched, stamp(now), session_id),
        )

    async def complete(
        self, tx: SqlExecutor, session_id: str, body: dict[str, Any], now: datetime
    ) -> None:
        await tx.execute(
            "UPDATE ocpi_sessions SET status = 'COMPLETED', body = ?, last_updated = ?,"
            " last_patch_at = ? WHERE id = ?",
            (_dumps(body), body["last_updated"], stamp(now), session_id),
        )
