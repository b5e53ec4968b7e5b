"""``security_events``, ``security_calls``, ``security_notifications`` and
``signed_certificates``: what the OCPP 1.6 security extensions leave behind.

Why the calls are stored: an operator must see what was installed, deleted or triggered
and how the charger answered, and the security profile upgrade reads its CA installs
back from here (the documented order: the CA certificate first).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from csms.domain.security import (
    SecurityCall,
    SecurityEvent,
    SecurityNotification,
    SignedCertificate,
)
from csms.store.db import Database, Executor

_MAX_LIMIT = 1000


def _limit(limit: int) -> int:
    return max(1, min(limit, _MAX_LIMIT))


class SecurityRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def add_event(ex: Executor, e: SecurityEvent) -> int:
        return await ex.insert(
            "INSERT INTO security_events (charger_id, type, timestamp, tech_info, critical,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (e.charger_id, e.type, e.timestamp, e.tech_info, int(e.critical), e.received_at),
        )

    async def events(
        self, charger_id: str | None = None, critical_only: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest first."""
        where, params = _filters(charger_id)
        if critical_only:
            where.append("critical = 1")
        rows = await self.db.fetchall(
            "SELECT id, charger_id, type, timestamp, tech_info, critical, received_at"
            f" FROM security_events{_where(where)} ORDER BY id DESC LIMIT ?",
            (*params, _limit(limit)),
        )
        return [{**dict(r), "critical": bool(r["critical"])} for r in rows]

    async def add_call(self, c: SecurityCall) -> int:
        return await self.db.insert(
            "INSERT INTO security_calls (charger_id, action, request, response, error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (c.charger_id, c.action, c.request, c.response, c.error, c.created_at),
        )

    async def calls(
        self, charger_id: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest first; ``request``/``response`` as stored (JSON text)."""
        where, params = _filters(charger_id)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        rows = await self.db.fetchall(
            "SELECT id, charger_id, action, request, response, error, created_at"
            f" FROM security_calls{_where(where)} ORDER BY id DESC LIMIT ?",
            (*params, _limit(limit)),
        )
        return [dict(r) for r in rows]

    async def ca_installed(self, charger_id: str) -> bool:
        """Whether the charger accepted an InstallCertificate of a CentralSystemRootCertificate
        (the first step of every profile upgrade)."""
        row = await self.db.fetchone(
            "SELECT 1 FROM security_calls WHERE charger_id = ? AND action = 'InstallCertificate'"
            " AND json_extract(request, '$.certificateType') = 'CentralSystemRootCertificate'"
            " AND json_extract(response, '$.status') = 'Accepted' LIMIT 1",
            (charger_id,),
        )
        return row is not None

    @staticmethod
    async def add_notification(ex: Executor, n: SecurityNotification) -> int:
        return await ex.insert(
            "INSERT INTO security_notifications (charger_id, action, status, request_id,"
            " received_at) VALUES (?, ?, ?, ?, ?)",
            (n.charger_id, n.action, n.status, n.request_id, n.received_at),
        )

    async def notifications(
        self, charger_id: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Oldest first within the newest ``limit``: a status sequence reads in order."""
        where, params = _filters(charger_id)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        rows = await self.db.fetchall(
            "SELECT * FROM (SELECT id, charger_id, action, status, request_id, received_at"
            f" FROM security_notifications{_where(where)} ORDER BY id DESC LIMIT ?) AS newest"
            " ORDER BY id",
            (*params, _limit(limit)),
        )
        return [dict(r) for r in rows]

    async def add_signed(self, c: SignedCertificate) -> int:
        return await self.db.insert(
            "INSERT INTO signed_certificates (charger_id, serial, subject, not_after, issued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            tuple(asdict(c).values()),
        )

    async def signed(self, charger_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT id, charger_id, serial, subject, not_after, issued_at"
            " FROM signed_certificates WHERE charger_id = ? ORDER BY id DESC",
            (charger_id,),
        )
        return [dict(r) for r in rows]


def _filters(charger_id: str | None) -> tuple[list[str], list[Any]]:
    if charger_id is None:
        return [], []
    return ["charger_id = ?"], [charger_id]


def _where(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""
