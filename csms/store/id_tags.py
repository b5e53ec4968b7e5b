"""``id_tags``: the local token table behind :class:`csms.local_authz.LocalTokenAuthorizer`.

Keys are case-insensitive (``normalise`` = upper-case); the original spelling is kept
for display and answers.
"""

from __future__ import annotations

import hashlib

from csms.authz.model import normalise
from csms.datetimes import now_millis
from csms.domain.tokens import IdTag
from csms.store.db import Database

ID_TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")


class IdTagRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        id_tag: str,
        status: str = "Accepted",
        expiry_date: str | None = None,
        parent_id_tag: str | None = None,
    ) -> IdTag:
        """Create or replace the tag (an existing tag takes the new values)."""
        if not id_tag or len(id_tag) > 20:
            raise ValueError("idTag must be 1 to 20 characters (OCPP 1.6 CiString20)")
        if status not in ID_TAG_STATUSES:
            raise ValueError(f"status must be one of {ID_TAG_STATUSES}")
        if parent_id_tag is not None and len(parent_id_tag) > 20:
            raise ValueError("parentIdTag must be at most 20 characters")
        now = now_millis()
        await self.db.execute(
            "INSERT INTO id_tags (id_tag_norm, id_tag, status, expiry_date, parent_id_tag, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id_tag_norm) DO "
            "UPDATE SET id_tag = excluded.id_tag, status = excluded.status, "
            "expiry_date = excluded.expiry_date, parent_id_tag = excluded.parent_id_tag, "
            "updated_at = excluded.updated_at",
            (normalise(id_tag), id_tag, status, expiry_date, parent_id_tag, now, now),
        )
        row = await self.get(id_tag)
        assert row is not None
        return row

    async def get(self, id_tag: str) -> IdTag | None:
        row = await self.db.fetchone(
            "SELECT id_tag, status, expiry_date, parent_id_tag, created_at, updated_at "
            "FROM id_tags WHERE id_tag_norm = ?",
            (normalise(id_tag),),
        )
        return IdTag(**dict(row)) if row else None

    async def list(self) -> list[IdTag]:
        rows = await self.db.fetchall(
            "SELECT id_tag, status, expiry_date, parent_id_tag, created_at, updated_at "
            "FROM id_tags ORDER BY id_tag_norm"
        )
        return [IdTag(**dict(r)) for r in rows]

    async def fingerprint(self) -> tuple[object, ...]:
        """What changes whenever any row does (another node's write included): a digest
        of every row, made by PostgreSQL; on SQLite (one node, where nothing reads it but
        tests) made here. Why not the newest ``updated_at``: two writes within one
        millisecond, or on nodes whose clocks differ, would leave it unchanged."""
        if self.db.dialect == "postgresql":
            row = await self.db.fetchone(
                "SELECT count(*) AS n, md5(string_agg(id_tag_norm || '|' || id_tag || '|' || "
                "status || '|' || coalesce(expiry_date, '') || '|' || "
                "coalesce(parent_id_tag, ''), ',' ORDER BY id_tag_norm)) AS h FROM id_tags"
            )
            return (row["n"], row["h"])
        rows = await self.db.fetchall(
            "SELECT id_tag_norm, id_tag, status, expiry_date, parent_id_tag FROM id_tags"
            " ORDER BY id_tag_norm"
        )
        digest = hashlib.md5(repr([tuple(r) for r in rows]).encode(), usedforsecurity=False)
        return (len(rows), digest.hexdigest())

    async def block(self, id_tag: str) -> bool:
        return await self.set_status(id_tag, "Blocked")

    async def set_status(self, id_tag: str, status: str) -> bool:
        if status not in ID_TAG_STATUSES:
            raise ValueError(f"status must be one of {ID_TAG_STATUSES}")
        n = await self.db.execute(
            "UPDATE id_tags SET status = ?, updated_at = ? WHERE id_tag_norm = ?",
            (status, now_millis(), normalise(id_tag)),
        )
        return n > 0

    async def remove(self, id_tag: str) -> bool:
        return (
            await self.db.execute("DELETE FROM id_tags WHERE id_tag_norm = ?", (normalise(id_tag),))
            > 0
        )
