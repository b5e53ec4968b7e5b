"""Transactions a charger started offline from the list we sent it: accepted as WHITELIST.

Why an authorizer in front of the others: when a charger replays a StartTransaction it
started while offline (its timestamp is before the current connection opened, see
``AuthRequest.started_offline``), the charge has already happened on the strength of the
list we gave it. Asking the eMSP now would be an authorization after the fact; what
matters is who pays. If that idTag is a roaming token in this charger's list as we last
had it accepted, the transaction is Accepted with ``auth_method`` WHITELIST and the
partner of that entry (OCPI 2.2.1: the token was authorized by the whitelist), so its
Session and CDR go to that eMSP like any other. Everything else (own cards, online
starts, idTags not in the list) goes to the wrapped authorizer unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from time import monotonic
from typing import Literal

from csms import datetimes, logs
from csms.authz import policy
from csms.authz.model import (
    NEED_IO,
    AuthMethod,
    AuthRequest,
    AuthStatus,
    CachedToken,
    Decision,
    DecisionRecord,
    NeedIO,
    Source,
)
from csms.authz.ports import Authorizer, DecisionSink
from csms.domain.local_lists import Entry
from csms.locallist.ports import RoamingCards
from csms.store.local_lists import LocalListRepo

log = logs.get("csms.locallist")


def listed_start(entry: Entry, token: CachedToken | None, now: datetime, expiry_s: int) -> Decision:
    """The decision for an offline start of a listed roaming token (pure)."""
    return Decision(
        AuthStatus.ACCEPTED,
        Source.CACHE,
        reason="started offline from the charger's local list",
        partner_id=entry.partner_key,
        token_type=token.token_type if token is not None else "RFID",
        token_country_code=token.country_code if token is not None else None,
        token_party_id=token.party_id if token is not None else None,
        contract_id=token.contract_id if token is not None else None,
        parent_id_tag=entry.parent_id_tag,
        expiry_date=policy.expiry(now, expiry_s),
        auth_method=AuthMethod.WHITELIST,
    )


class ListedOfflineStarts:
    """An :class:`~csms.authz.ports.Authorizer` that decides offline starts of listed
    roaming tokens and hands everything else to ``inner``."""

    def __init__(
        self,
        inner: Authorizer,
        repo: LocalListRepo,
        roaming: RoamingCards,
        *,
        sink: DecisionSink | None,
        expiry_s: int,
        clock: Callable[[], datetime] = datetimes.utc_now,
    ) -> None:
        self.inner = inner
        self.repo = repo
        self.roaming = roaming
        self.sink = sink
        self.expiry_s = expiry_s
        self.clock = clock

    def try_now(self, request: AuthRequest) -> Decision | Literal[NeedIO.NEED_IO]:
        if request.started_offline and request.trigger == policy.START_TRANSACTION:
            return NEED_IO  # the list is in the store: decide() reads it
        return self.inner.try_now(request)

    async def decide(self, request: AuthRequest) -> Decision:
        if request.started_offline and request.trigger == policy.START_TRANSACTION:
            start = request.received_at if request.received_at is not None else monotonic()
            entry = await self.repo.entry(request.charger_id, request.uid_norm)
            if entry is not None and entry.partner_key is not None:
                token = await self.roaming.token(request.uid_norm, entry.partner_key)
                now = self.clock()
                decision = listed_start(entry, token, now, self.expiry_s)
                self._record(request, decision, now, start)
                log.info(
                    "local_list.offline_start",
                    partner=entry.partner_key,
                    id_tag=logs.mask(request.uid),
                )
                return decision
        return await self.inner.decide(request)

    def _record(self, request: AuthRequest, d: Decision, now: datetime, start: float) -> None:
        if self.sink is None:
            return
        latency_ms = round((monotonic() - start) * 1000.0, 3)
        try:
            self.sink.record(DecisionRecord(request, d, now, latency_ms))
        except Exception:
            log.exception("local_list.record_failed")
