"""OCPI partners: the ``ocpi_partners`` table, with an in-memory memo.

Why a memo: every OCPI request resolves its caller from a token hash, and every remote
Authorize reads a partner by key; the partner table is tiny and changes only through
this class (the CLI goes through the admin API), so an in-memory map invalidated on
every write saves a query per request without ever serving a stale token.

Several processes on one database (nodes on PostgreSQL): each write is told to the
``write_listeners`` (the CSMS announces it to the other nodes, whose :meth:`forget`
drops their memo), and with ``max_age_s`` set the memo starts over once it is that old,
so a lost announcement leaves a revoked credentials token usable for at most that long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from roaming.models import CredentialsRole, Endpoint, InterfaceRole, ModuleID, now_str
from roaming.partners import Partner, PartnerStatus, TokenKind
from roaming.ports import SqlDatabase

_PARTNER_COLS = (
    "id, key, country_code, party_id, status, initiated_by, roles, token_in_kind, token_out, "
    "auth_encoding, versions_url, version, endpoints, created_at, updated_at, registered_at"
)


def _partner_from_row(row: Any) -> Partner:
    kind = row["token_in_kind"]
    return Partner(
        id=row["id"],
        key=row["key"],
        country_code=row["country_code"],
        party_id=row["party_id"],
        status=PartnerStatus(row["status"]),
        initiated_by=row["initiated_by"],
        roles=tuple(
            CredentialsRole.from_json(r, "roles") for r in orjson.loads(row["roles"] or "[]")
        ),
        token_in_kind=TokenKind(kind) if kind else None,
        token_out=row["token_out"],
        auth_encoding=row["auth_encoding"],
        versions_url=row["versions_url"],
        version=row["version"],
        endpoints=tuple(
            Endpoint.from_json(e, "endpoints") for e in orjson.loads(row["endpoints"] or "[]")
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        registered_at=row["registered_at"],
    )


class PartnerStore:
    """Partners by token hash, key and id; every write drops the memo."""

    def __init__(
        self,
        db: SqlDatabase,
        *,
        max_age_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.max_age_s = max_age_s
        self._now = monotonic
        self._memo_since = monotonic()  # every memoised read began after this
        self.write_listeners: list[Callable[[], None]] = []
        self._by_hash: dict[str, Partner | None] = {}
        # Partners by key and the eMSPs to ask for unknown tokens: read on every remote
        # Authorize, written only by the methods below, which all call _invalidate().
        self._by_key: dict[str, Partner | None] = {}
        self._senders: list[Partner] | None = None
        self._partners_generation = 0  # bumped by every partner write

    def _invalidate(self) -> None:
        """After a write: the memo starts over and the write listeners hear of it."""
        self.forget()
        for listener in tuple(self.write_listeners):
            listener()

    def forget(self) -> None:
        """Drop the memo (another process wrote a partner)."""
        self._by_hash.clear()
        self._by_key.clear()
        self._senders = None
        self._partners_generation += 1
        self._memo_since = self._now()

    def _aged(self) -> None:
        if self.max_age_s is not None and self._now() - self._memo_since > self.max_age_s:
            self.forget()

    async def partner_by_token_hash(self, token_hash: str) -> Partner | None:
        self._aged()
        if token_hash in self._by_hash:
            return self._by_hash[token_hash]
        generation = self._partners_generation
        row = await self.db.fetchone(
            f"SELECT {_PARTNER_COLS} FROM ocpi_partners "
            "WHERE token_in_hash = ? OR token_in_next_hash = ?",
            (token_hash, token_hash),
        )
        partner = _partner_from_row(row) if row else None
        if generation == self._partners_generation:
            if len(self._by_hash) > 10_000:
                self._by_hash.clear()  # unknown hashes must not grow the cache without bound
            self._by_hash[token_hash] = partner
        return partner

    async def partner_by_key(self, key: str) -> Partner | None:
        """Memoised (Partner is frozen); a read that raced a partner write is answered
        but not kept, so the memo never holds a row older than the last write."""
        key = key.upper()
        self._aged()
        if key in self._by_key:
            return self._by_key[key]
        generation = self._partners_generation
        row = await self.db.fetchone(
            f"SELECT {_PARTNER_COLS} FROM ocpi_partners WHERE key = ?", (key,)
        )
        partner = _partner_from_row(row) if row else None
        if generation == self._partners_generation:
            if len(self._by_key) > 10_000:
                self._by_key.clear()  # unknown keys must not grow the memo without bound
            self._by_key[key] = partner
        return partner

    async def partner_by_id(self, partner_id: int) -> Partner | None:
        row = await self.db.fetchone(
            f"SELECT {_PARTNER_COLS} FROM ocpi_partners WHERE id = ?", (partner_id,)
        )
        return _partner_from_row(row) if row else None

    async def list_partners(self) -> list[Partner]:
        rows = await self.db.fetchall(f"SELECT {_PARTNER_COLS} FROM ocpi_partners ORDER BY key")
        return [_partner_from_row(r) for r in rows]

    async def registered_partners_with_tokens_sender(self) -> list[Partner]:
        """Registered partners whose version details list a tokens SENDER interface
        (memoised like :meth:`partner_by_key`: asked for every unknown token)."""
        self._aged()
        if self._senders is not None:
            return list(self._senders)
        generation = self._partners_generation
        senders = [
            p
            for p in await self.list_partners()
            if p.registered and p.endpoint(ModuleID.TOKENS, InterfaceRole.SENDER)
        ]
        if generation == self._partners_generation:
            self._senders = senders
        return list(senders)

    async def create_invited(
        self,
        key: str,
        country_code: str,
        party_id: str,
        token_in_hash: str,
        *,
        kind: TokenKind,
        initiated_by: str,
        versions_url: str | None = None,
    ) -> Partner:
        """A partner row awaiting the handshake; re-inviting a known key replaces its token.

        Tokens a partner pushed earlier stay attached to the row (same id).
        """
        now = now_str()
        async with self.db.transaction() as tx:
            existing = await tx.fetchone(
                "SELECT id, status FROM ocpi_partners WHERE key = ?", (key,)
            )
            if existing is not None:
                if existing["status"] == PartnerStatus.REGISTERED:
                    raise ValueError(f"partner {key} is registered; unregister it first")
                await tx.execute(
                    "UPDATE ocpi_partners SET status = 'invited', initiated_by = ?, "
                    "token_in_hash = ?, token_in_kind = ?, token_in_next_hash = NULL, "
                    "token_out = NULL, versions_url = ?, updated_at = ? WHERE id = ?",
                    (initiated_by, token_in_hash, kind.value, versions_url, now, existing["id"]),
                )
                pid = existing["id"]
            else:
                pid = await tx.insert(
                    "INSERT INTO ocpi_partners (key, country_code, party_id, status, "
                    "initiated_by, token_in_hash, token_in_kind, versions_url, created_at, "
                    "updated_at) VALUES (?, ?, ?, 'invited', ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        country_code,
                        party_id,
                        initiated_by,
                        token_in_hash,
                        kind.value,
                        versions_url,
                        now,
                        now,
                    ),
                )
        self._invalidate()
        partner = await self.partner_by_id(pid)
        assert partner is not None
        return partner

    async def complete_registration(
        self,
        partner_id: int,
        *,
        key: str | None = None,
        roles: Sequence[CredentialsRole],
        token_in_hash: str,
        token_in_kind: TokenKind,
        token_out: str,
        auth_encoding: str,
        versions_url: str,
        version: str,
        endpoints: Sequence[Endpoint],
    ) -> Partner:
        """Switch to registered with the new tokens in one write (old token dead at once).

        ``key`` re-keys a provisional row (we initiated and learnt their ids only from
        the answer); an older row with that key is merged into this one.
        """
        now = now_str()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT key, registered_at FROM ocpi_partners WHERE id = ?", (partner_id,)
            )
            if row is None:
                raise LookupError(f"partner id {partner_id} vanished during registration")
            target_id = partner_id
            if key is not None and key != row["key"]:
                other = await tx.fetchone("SELECT id FROM ocpi_partners WHERE key = ?", (key,))
                if other is not None:
                    # Keep the older row (its tokens point at it); drop the provisional one.
                    await tx.execute("DELETE FROM ocpi_partners WHERE id = ?", (partner_id,))
                    target_id = other["id"]
                cc, _, pid = key.partition("-")
                await tx.execute(
                    "UPDATE ocpi_partners SET key = ?, country_code = ?, party_id = ? WHERE id = ?",
                    (key, cc, pid, target_id),
                )
            await tx.execute(
                "UPDATE ocpi_partners SET status = 'registered', roles = ?, token_in_hash = ?, "
                "token_in_kind = ?, token_in_next_hash = NULL, token_out = ?, auth_encoding = ?, "
                "versions_url = ?, version = ?, endpoints = ?, updated_at = ?, "
                "registered_at = ? WHERE id = ?",
                (
                    orjson.dumps([r.to_json() for r in roles]).decode(),
                    token_in_hash,
                    token_in_kind.value,
                    token_out,
                    auth_encoding,
                    versions_url,
                    version,
                    orjson.dumps([e.to_json() for e in endpoints]).decode(),
                    now,
                    now,
                    target_id,
                ),
            )
        self._invalidate()
        partner = await self.partner_by_id(target_id)
        assert partner is not None
        return partner

    async def delete_partner_row(self, partner_id: int) -> None:
        """Drop a provisional row of a registration that never completed."""
        await self.db.execute(
            "DELETE FROM ocpi_partners WHERE id = ? AND status = 'invited'", (partner_id,)
        )
        self._invalidate()

    async def set_next_token(self, partner_id: int, token_hash: str | None) -> None:
        await self.db.execute(
            "UPDATE ocpi_partners SET token_in_next_hash = ?, updated_at = ? WHERE id = ?",
            (token_hash, now_str(), partner_id),
        )
        self._invalidate()

    async def set_auth_encoding(self, partner_id: int, encoding: str) -> None:
        await self.db.execute(
            "UPDATE ocpi_partners SET auth_encoding = ?, updated_at = ? WHERE id = ?",
            (encoding, now_str(), partner_id),
        )
        self._invalidate()

    async def unregister(self, partner_id: int) -> None:
        """Every token of this partner stops working now; its pushed tokens stay stored."""
        await self.db.execute(
            "UPDATE ocpi_partners SET status = 'unregistered', token_in_hash = NULL, "
            "token_in_next_hash = NULL, token_out = NULL, updated_at = ? WHERE id = ?",
            (now_str(), partner_id),
        )
        self._invalidate()
