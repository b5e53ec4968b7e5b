"""The ``admin_sessions`` table: dashboard logins, server-side, with an absolute expiry.

Why server-side: a cookie that only names a row can be revoked (logout, expiry, a
purge) at once, which a self-contained signed cookie cannot. Why only the SHA-256 of the
cookie is stored: the store file (backups, a copied database) then holds nothing a
browser could present. The CSRF token is per session and stored as is; it is worthless
without the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from csms.datetimes import millis
from csms.store.db import Database


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A live dashboard login. ``short_id`` names it in logs and the audit trail (a prefix
    of the hash, never of the cookie itself)."""

    id_hash: str
    csrf_token: str
    created_at: str
    expires_at: str

    @property
    def short_id(self) -> str:
        return self.id_hash[:8]


def hash_cookie(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class AdminSessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, now: datetime, ttl: timedelta, remote_address: str | None
    ) -> tuple[str, AdminSession]:
        """A new session; returns the cookie value (shown once, never stored) and the row."""
        cookie = secrets.token_urlsafe(32)
        session = AdminSession(
            id_hash=hash_cookie(cookie),
            csrf_token=secrets.token_urlsafe(32),
            created_at=millis(now),
            expires_at=millis(now + ttl),
        )
        await self.db.execute(
            "INSERT INTO admin_sessions (id_hash, csrf_token, created_at, expires_at,"
            " remote_address) VALUES (?, ?, ?, ?, ?)",
            (
                session.id_hash,
                session.csrf_token,
                session.created_at,
                session.expires_at,
                remote_address,
            ),
        )
        return cookie, session

    async def find(self, cookie: str, now: datetime) -> AdminSession | None:
        """The session a cookie names, when it exists and has not expired."""
        return await self.find_by_hash(hash_cookie(cookie), now)

    async def find_by_hash(self, id_hash: str, now: datetime) -> AdminSession | None:
        row = await self.db.fetchone(
            "SELECT id_hash, csrf_token, created_at, expires_at FROM admin_sessions"
            " WHERE id_hash = ? AND expires_at > ?",
            (id_hash, millis(now)),
        )
        if row is None:
            return None
        return AdminSession(row[0], row[1], row[2], row[3])

    async def delete(self, id_hash: str) -> bool:
        return await self.db.execute("DELETE FROM admin_sessions WHERE id_hash = ?", (id_hash,)) > 0

    async def purge_expired(self, now: datetime) -> int:
        """Forget sessions past their expiry (called at each login: the table stays small)."""
        return await self.db.execute(
            "DELETE FROM admin_sessions WHERE expires_at <= ?", (millis(now),)
        )
