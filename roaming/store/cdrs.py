"""The CDRs we are Sender of: ``ocpi_cdrs``, one immutable CDR per transaction.

Why the row is written with the StopTransaction: GET ``/cdrs`` serves the CDR even while
its push still waits in the outbox, and the id fixed here is the one a retried POST
carries, so the eMSP can recognise it.
"""

from __future__ import annotations

from typing import Any

import orjson

from roaming.ports import SqlExecutor
from roaming.store.paging import PartnerObjects


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


class CdrStore(PartnerObjects):
    """Reads of stored CDRs: a partner's GET list and the operator's view of one charge."""

    table = "ocpi_cdrs"
    order_by = "created_at, transaction_id"  # one CDR per transaction: a total order

    async def by_transaction(self, transaction_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            "SELECT body, emsp_location FROM ocpi_cdrs WHERE transaction_id = ?", (transaction_id,)
        )
        if row is None:
            return None
        return {"cdr": orjson.loads(row["body"]), "emsp_location": row["emsp_location"]}
