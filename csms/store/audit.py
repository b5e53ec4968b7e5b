"""The ``audit_log`` table: one row per admin write, kept for the operator to read back.

Why rows hold no request body: bodies carry passwords, tokens and keys; the row keeps
who (a token id or a dashboard session), what (method and route), the target (the ids
the route names) and the HTTP status, which is what an audit asks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from csms.datetimes import now_millis
from csms.store.db import Database

_COLUMNS = "id, at, actor, method, action, path, target, status, remote"


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    method: str
    action: str  # method and route pattern, e.g. "POST /api/chargers/{charger_id}/registration"
    path: str
    target: str | None
    status: int
    remote: str | None = None
    at: str = ""
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, entry: AuditEntry) -> int:
        at = entry.at or now_millis()
        return await self.db.insert(
            "INSERT INTO audit_log (at, actor, method, action, path, target, status, remote)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                entry.actor,
                entry.method,
                entry.action,
                entry.path,
                entry.target,
                entry.status,
                entry.remote,
            ),
        )

    async def latest(
        self, *, limit: int = 100, actor: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages further back."""
        where: list[str] = []
        params: list[Any] = []
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        sql = f"SELECT {_COLUMNS} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = await self.db.fetchall(sql, (*params, limit))
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                actor=r["actor"],
                method=r["method"],
                action=r["action"],
                path=r["path"],
                target=r["target"],
                status=r["status"],
                remote=r["remote"],
            )
            for r in rows
        ]
