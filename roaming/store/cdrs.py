"""The CDRs we are Sender of: ``ocpi_cdrs``, one immutable CDR per transaction.

Why the row is written with the StopTransaction: GET ``/cdrs`` serves the CDR even while
its push still waits in the outbox, and the id fixed here is the one a retried POST
carries, so the eMSP can recognise it.
"""

from __future__ import annotations

from typing import Any

import orjson

from roaming.ports import SqlDatabase, SqlExecutor
from roaming.store.paging import last_updated_filter


async def insert(
    tx: SqlExecutor, cdr: dict[str, Any], *, transaction_id: int, partner_key: str
) -> None:
    await tx.execute(
        "INSERT INTO ocpi_cdrs (id, transaction_id, session_id, partner_key, body, created_at,"
        " last_updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            cdr["id"],
            transaction_id,
            cdr.get("session_id"),
            partner_key,
            orjson.dumps(cdr).decode(),
            cdr["last_updated"],
            cdr["last_updated"],
        ),
    )


async def id_for_transaction(tx: SqlExecutor, transaction_id: int) -> str | None:
    row = await tx.fetchone("SELECT id FROM ocpi_cdrs WHERE transaction_id = ?", (transaction_id,))
    return str(row["id"]) if row else None


async def set_emsp_location(tx: SqlExecutor, cdr_id: Any, location: str) -> None:
    """Where the eMSP stored the CDR (the Location header of its POST answer)."""
    await tx.execute("UPDATE ocpi_cdrs SET emsp_location = ? WHERE id = ?", (location, cdr_id))


class CdrStore:
    """Reads of stored CDRs: a partner's GET list and the operator's view of one charge."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    async def page(
        self,
        partner_key: str,
        date_from: str | None,
        date_to: str | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        where, params = last_updated_filter(date_from, date_to, partner_key=partner_key)
        total = await self.db.fetchone(f"SELECT count(*) AS n FROM ocpi_cdrs {where}", params)
        rows = await self.db.fetchall(
            f"SELECT body FROM ocpi_cdrs {where} ORDER BY created_at, rowid LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return total["n"], [orjson.loads(r["body"]) for r in rows]

    async def by_transaction(self, transaction_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            "SELECT body, emsp_location FROM ocpi_cdrs WHERE transaction_id = ?", (transaction_id,)
        )
        if row is None:
            return None
        return {"cdr": orjson.loads(row["body"]), "emsp_location": row["emsp_location"]}
