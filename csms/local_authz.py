"""The :class:`Authorizer` served from the local ``id_tags`` table, used until (and beside)
the roaming-aware authorization service.

Rules: unknown -> Invalid; Blocked/Expired/Invalid as stored; Accepted with an
``expiry_date`` in the past -> Expired; Accepted -> expiryDate = now + authz.id_tag_expiry_s
(never later than the tag's own expiry), so the charger's cache forgets it in time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from csms.authz.model import (
    AuthMethod,
    AuthRequest,
    AuthStatus,
    Decision,
    DecisionRecord,
    Source,
    normalise,
)
from csms.authz.ports import DecisionSink
from csms.store.db import Database
from csms.store.id_tags import IdTagRepo


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso_ms(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _parse(value: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class LocalTokenAuthorizer:
    """Decides from ``id_tags``; with a ``sink``, every decision is stored and logged too,
    exactly as the roaming service does (one row, one ``authorization_decided`` event)."""

    def __init__(
        self, db: Database, id_tag_expiry_s: int, sink: DecisionSink | None = None
    ) -> None:
        self.repo = IdTagRepo(db)
        self.expiry = timedelta(seconds=id_tag_expiry_s)
        self.sink = sink

    async def authorize(self, request: AuthRequest) -> Decision:
        started = request.received_at if request.received_at is not None else time.monotonic()
        decision = await self._decide(request)
        if self.sink is not None:
            self.sink.record(
                DecisionRecord(
                    decided_at=_iso_ms(datetime.now(UTC)),
                    charger_id=request.charger_id,
                    connector_id=request.connector_id,
                    trigger=request.trigger,
                    uid=request.uid,
                    uid_norm=request.uid_norm,
                    partner_id=None,
                    token_type=request.token_type,
                    source=decision.source.value,
                    allowed=None,
                    status=decision.status.value,
                    authorization_reference=None,
                    display_text=None,
                    latency_ms=round((time.monotonic() - started) * 1000, 3),
                    reason=decision.reason,
                )
            )
        return decision

    async def _decide(self, request: AuthRequest) -> Decision:
        row = await self.repo.get(request.uid)
        if row is None:
            return Decision(AuthStatus.INVALID, Source.LOCAL, reason="unknown idTag")
        now = datetime.now(UTC)
        status = AuthStatus(row.status)
        own_expiry = _parse(row.expiry_date) if row.expiry_date else None
        if status is AuthStatus.ACCEPTED and own_expiry is not None and own_expiry <= now:
            status = AuthStatus.EXPIRED
        if status is not AuthStatus.ACCEPTED:
            return Decision(
                status,
                Source.LOCAL,
                reason=f"idTag is {status.value}",
                parent_id_tag=row.parent_id_tag,
            )
        expiry = now + self.expiry
        if own_expiry is not None and own_expiry < expiry:
            expiry = own_expiry
        return Decision(
            AuthStatus.ACCEPTED,
            Source.LOCAL,
            parent_id_tag=row.parent_id_tag,
            expiry_date=_iso(expiry),
            token_type=request.token_type,
            auth_method=AuthMethod.WHITELIST,
            reason="idTag is Accepted",
        )


class OwnCardsFirst:
    """The operator's own cards (``id_tags``) first, roaming for every other token.

    Why: with OCPI on, the roaming service would otherwise answer a fleet card the
    operator added with ``csms tokens add`` as an unknown token (and fan it out to every
    eMSP). The set of own card keys is held in memory, so roaming cache hits keep their
    synchronous fast path; :meth:`refresh` follows every write to ``id_tags``.
    """

    def __init__(self, local: LocalTokenAuthorizer, roaming: Any, own: set[str]) -> None:
        self.local = local
        self.roaming = roaming
        self.own = own

    @classmethod
    async def build(cls, local: LocalTokenAuthorizer, roaming: Any) -> OwnCardsFirst:
        made = cls(local, roaming, set())
        await made.refresh()
        return made

    async def refresh(self) -> None:
        self.own = {normalise(row.id_tag) for row in await self.local.repo.list()}

    async def authorize(self, request: AuthRequest) -> Decision:
        if request.uid_norm in self.own:
            return await self.local.authorize(request)
        decision: Decision = await self.roaming.authorize(request)
        return decision

    def authorize_now(self, request: AuthRequest) -> Decision | None:
        """Roaming's synchronous answer where it has one; own cards take the async path."""
        if request.uid_norm in self.own:
            return None
        now = getattr(self.roaming, "authorize_now", None)
        return now(request) if now is not None else None
