"""The ``WHERE`` of a Sender GET list: the caller's own rows, by ``last_updated``.

Why one helper: Locations, Tariffs, Sessions and CDRs filter the same way, and
``last_updated`` is stored as ``YYYY-MM-DDTHH:MM:SSZ``, so the request's dates are
brought to that shape before they are compared as text.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from roaming.models import format_datetime, parse_datetime
from roaming.ports import SqlDatabase, SqlExecutor


def last_updated_filter(
    date_from: str | None, date_to: str | None, *, partner_key: str | None = None
) -> tuple[str, tuple[Any, ...]]:
    """``(where clause or "", params)``; ``partner_key`` keeps one partner's rows."""
    clauses: list[str] = []
    params: list[Any] = []
    if partner_key is not None:
        clauses.append("upper(partner_key) = upper(?)")
        params.append(partner_key)
    if date_from:
        clauses.append("last_updated >= ?")
        params.append(format_datetime(parse_datetime(date_from)))
    if date_to:
        clauses.append("last_updated < ?")
        params.append(format_datetime(parse_datetime(date_to)))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)


async def count_and_page(
    db: SqlExecutor,
    table: str,
    where: str,
    params: tuple[Any, ...],
    *,
    order_by: str,
    offset: int,
    limit: int,
) -> tuple[int, list[Any]]:
    """The number of matching rows and one page of them (``SELECT *``)."""
    total = await db.fetchone(f"SELECT count(*) AS n FROM {table} {where}", params)
    rows = await db.fetchall(
        f"SELECT * FROM {table} {where} ORDER BY {order_by} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return int(total["n"]), rows


class PartnerObjects:
    """The objects one partner may list (Sessions, CDRs): ``body`` JSON per row.

    Subclasses name their ``table`` and ``order_by`` and may shape what is served.
    """

    table: ClassVar[str]
    order_by: ClassVar[str]

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    def served(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    async def page(
        self, partner_key: str, date_from: str | None, date_to: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        where, params = last_updated_filter(date_from, date_to, partner_key=partner_key)
        total, rows = await count_and_page(
            self.db, self.table, where, params, order_by=self.order_by, offset=offset, limit=limit
        )
        return total, [self.served(orjson.loads(r["body"])) for r in rows]
