"""Adapters that serve the authorization ports from roaming, and
:func:`build_roaming_authorization`, which puts the roaming service behind the own cards.

Why here: ``csms.ocpi`` is the only csms package allowed to import ``roaming``; the
authorization core sees only its own ports and value types.

What each adapter serves:

* :class:`StoreTokenCache` (TokenCache + TokenLearner) - the roaming token store, with a
  short-lived in-memory memo in front so that a card presented again and again does
  not cost a SQLite round trip per Authorize. The memo listens to the store's token
  writes (push, PATCH, sync, sweep, learning), so it never serves a token older than
  the last committed write of this process; ``memo_ttl_s`` (default 300 s) is only a
  backstop for writes made by another process on the same database file. With several
  nodes on PostgreSQL the other nodes' writes arrive as notifications
  (:mod:`csms.cluster.coherence`) and the TTL is the cluster's bound: an entry is never
  served longer than that after its read began, and a hot entry is re-read in the
  background before it runs out, so the hot path still does not wait.
* :class:`OcpiRemoteAuthorizer` - ``OcpiClient.authorize``; maps the client's error
  tree onto the outcomes the policy knows (see :func:`outcome_of_error`).

With them :func:`build_roaming_authorization` assembles one
:class:`~csms.authz.service.AuthorizationService`: the operator's own cards held in
memory first, then roaming.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, assert_never

from csms import logs
from csms.authorization import Authorization
from csms.authz.model import (
    Allowed,
    CachedToken,
    LocationRefs,
    RemoteOutcome,
    RemoteQuery,
    RemoteRefused,
    RemoteVerdict,
    TokenUnknown,
    Unreachable,
    UnreachableKind,
    Whitelist,
    normalise,
)
from csms.authz.ports import ActiveTransactions, LocationLookup, OwnCards
from csms.authz.service import AuthorizationService
from csms.authz.settings import AuthzSettings
from csms.config import Config
from csms.ocpi.memo import TtlMemo
from csms.store.authorizations import AuthorizationLog
from roaming.client import OcpiClient, UnknownToken
from roaming.errors import ErrorKind, RoamingError
from roaming.models import AuthorizationInfo, LocationReferences, Token
from roaming.ports import StoredToken

if TYPE_CHECKING:
    from roaming.store import RoamingStore

log = logs.get("csms.authz")


# ---------------------------------------------------------------------- conversions


def cached_from_token(token: Token, partner_key: str = "") -> CachedToken:
    return CachedToken(
        country_code=token.country_code,
        party_id=token.party_id,
        uid=token.uid,
        token_type=token.type.value,
        contract_id=token.contract_id,
        valid=token.valid,
        whitelist=Whitelist(token.whitelist.value),
        group_id=token.group_id,
        issuer=token.issuer,
        visual_number=token.visual_number,
        language=token.language,
        last_updated=token.last_updated,
        partner_key=partner_key,
        raw=token,
    )


def cached_from_stored(stored: StoredToken) -> CachedToken:
    return cached_from_token(stored.token, stored.partner_key)


def verdict_from_info(partner_key: str, info: AuthorizationInfo) -> RemoteVerdict:
    loc = info.location
    return RemoteVerdict(
        partner_id=partner_key,
        allowed=Allowed(info.allowed.value),
        token=cached_from_token(info.token, partner_key),
        authorization_reference=info.authorization_reference,
        display_text=info.info.text if info.info is not None else None,
        location=LocationRefs(loc.location_id, tuple(loc.evse_uids)) if loc else None,
    )


def outcome_of_error(partner_key: str, exc: RoamingError) -> RemoteOutcome:
    """The one mapping of the OCPI client's errors onto policy outcomes, by ``exc.kind``.

    Unreachable (fallback applies): timeout, connection error, HTTP 5xx, hub 4002/4003,
    a body that is not an OCPI envelope or not an AuthorizationInfo, and a partner we
    cannot call at all (not registered, no tokens SENDER). Refused (Invalid, no
    fallback): any other definite non-success answer, e.g. 401 or OCPI 2002; a definite
    answer of the eMSP is never "unreachable".
    """
    msg = exc.message
    match exc.kind:
        case ErrorKind.REFUSED:
            return RemoteRefused(partner_key, msg)
        case ErrorKind.TIMEOUT:
            return Unreachable(partner_key, UnreachableKind.TIMEOUT, msg)
        case ErrorKind.CONNECTION:
            return Unreachable(partner_key, UnreachableKind.CONNECTION, msg)
        case ErrorKind.SERVER_ERROR:
            return Unreachable(partner_key, UnreachableKind.SERVER_ERROR, msg)
        case ErrorKind.MALFORMED:
            return Unreachable(partner_key, UnreachableKind.MALFORMED, msg)
        case ErrorKind.NO_ENDPOINT:
            return Unreachable(partner_key, UnreachableKind.NO_ENDPOINT, msg)
        case _:
            assert_never(exc.kind)


# ---------------------------------------------------------------------- adapters


class StoreTokenCache(TtlMemo):
    """TokenCache and TokenLearner over the roaming token store, with a TTL memo.

    Why a TTL memo and not a full in-memory copy: the store may hold millions of
    tokens of which few are presented in any minute; a memo of recently presented uids
    serves the repeat presentations (the benchmark's and the real world's hot path)
    with bounded memory.

    Why it is coherent: :meth:`attach` registers :meth:`on_tokens_changed` as a token
    listener of the store, which calls it after every committed token write (push,
    PATCH, learning, sync page, removal sweep) and before that write's caller is
    answered. The TTL is then only a backstop for writes that bypass this store object
    (another process on the same file). A lookup whose store read raced an invalidation
    answers what it read but does not memoise it, so an in-flight read of the old row
    cannot put that row back into the memo after the write.

    ``refresh_ahead`` (several nodes, a TTL of a few seconds): an entry served in the
    last half of its life is re-read in the background, so a uid presented again and
    again never misses; its age still never passes the TTL, counted from the start of
    the read that filled it.
    """

    def __init__(
        self,
        store: RoamingStore,
        *,
        ttl_s: float = 300.0,
        max_entries: int = 200_000,
        monotonic: Callable[[], float] = time.monotonic,
        refresh_ahead: bool = False,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_entries=max_entries, monotonic=monotonic)
        self.store = store
        self.refresh_ahead = refresh_ahead
        self._refreshing: dict[tuple[str, str], asyncio.Task[None]] = {}
        # uid_norm -> token_type -> (expires_at, tokens); per-uid so one uid's
        # invalidation costs O(1) however large the memo is.
        self._memo: dict[str, dict[str, tuple[float, tuple[CachedToken, ...]]]] = {}
        self._entries = 0
        self._generation = 0  # bumped by every invalidation
        self._detach: Callable[[], None] | None = None
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    def attach(self) -> None:
        """Listen to the store's token writes (idempotent)."""
        if self._detach is None:
            self._detach = self.store.tokens.add_token_listener(self.on_tokens_changed)

    def detach(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        for task in self._refreshing.values():
            task.cancel()
        self._refreshing.clear()

    def peek(self, uid_norm: str, token_type: str) -> Sequence[CachedToken] | None:
        """The memo's answer without I/O, or None when the store must be asked."""
        by_type = self._memo.get(uid_norm)
        if by_type is not None:
            held = by_type.get(token_type)
            if held is not None:
                left = held[0] - self._now()
                if left > 0:
                    self.hits += 1
                    if self.refresh_ahead and left < self.ttl_s / 2:
                        self._refresh(uid_norm, token_type)
                    return held[1]
        return None

    async def lookup(self, uid_norm: str, token_type: str) -> Sequence[CachedToken]:
        held = self.peek(uid_norm, token_type)
        if held is not None:
            return held
        self.misses += 1
        return await self._read(uid_norm, token_type)

    async def _read(self, uid_norm: str, token_type: str) -> tuple[CachedToken, ...]:
        """Read the store and memoise what it said, unless a write raced the read."""
        generation = self._generation
        started = self._now()  # the entry's age counts from before the read
        rows = await self.store.tokens.get_token(uid_norm, token_type)
        tokens = tuple(cached_from_stored(s) for s in rows if not s.removed)
        if self.ttl_s > 0 and generation == self._generation:
            if self._entries >= self.max_entries:
                self._memo.clear()  # crude but bounded; the memo refills from hot uids
                self._entries = 0
            by_type = self._memo.setdefault(uid_norm, {})
            held = by_type.get(token_type)
            if held is None:
                self._entries += 1
            elif held[1] == tokens:
                tokens = held[1]  # the same objects: decisions memoised on them still hold
            by_type[token_type] = (started + self.ttl_s, tokens)
        return tokens

    def _refresh(self, uid_norm: str, token_type: str) -> None:
        key = (uid_norm, token_type)
        if key in self._refreshing:
            return

        async def refresh() -> None:
            try:
                await self._read(uid_norm, token_type)
            except Exception as exc:  # the entry runs out; the next lookup reads again
                log.warning("authz.token_refresh_failed", error=str(exc) or type(exc).__name__)
            finally:
                self._refreshing.pop(key, None)

        self._refreshing[key] = asyncio.get_running_loop().create_task(refresh())

    def invalidate(self, uid_norm: str | None = None) -> None:
        """Forget one uid (any type), or everything (``None``), e.g. after a token sync."""
        self._generation += 1
        self.invalidations += 1
        if uid_norm is None:
            self._memo.clear()
            self._entries = 0
            return
        dropped = self._memo.pop(uid_norm, None)
        if dropped is not None:
            self._entries -= len(dropped)

    def on_tokens_changed(self, uids: Collection[str] | None) -> None:
        """The store's token listener: ``uids`` written (normalised), None for any."""
        if uids is None:
            self.invalidate()
            return
        self._generation += 1
        self.invalidations += 1
        memo = self._memo
        for uid in uids:
            dropped = memo.pop(uid, None)
            if dropped is not None:
                self._entries -= len(dropped)

    def is_current(self, token: CachedToken) -> bool:
        """True when the memo already holds this token (same party, uid and type) at the
        same or a newer ``last_updated``: learning it would write nothing. Why: an eMSP
        echoes the token in every real-time answer, and re-reading partner and token
        from SQLite to find that out cost more than the rest of the remote decision."""
        by_type = self._memo.get(token.uid_norm)
        held = by_type.get(token.token_type) if by_type is not None else None
        if held is None or held[0] <= self._now():
            return False
        return any(
            t.country_code == token.country_code
            and t.party_id == token.party_id
            and t.uid == token.uid
            and t.last_updated >= token.last_updated
            for t in held[1]
        )

    async def learn(self, token: CachedToken) -> None:
        """Keep a token an eMSP returned in a definite answer, unless we hold a newer copy
        or the answering partner does not own it (a hub answering for another party)."""
        raw = token.raw
        if not isinstance(raw, Token) or self.is_current(token):
            return
        try:
            partner = await self.store.partners.partner_by_key(token.partner_id)
            if partner is None or not partner.owns(raw.country_code, raw.party_id):
                return
            existing = await self.store.tokens.find_token(
                raw.country_code, raw.party_id, raw.uid, raw.type.value, include_removed=True
            )
            if existing is not None and existing.last_updated >= raw.last_updated:
                return
            await self.store.tokens.upsert_token(partner.id, raw)
            self.invalidate(token.uid_norm)  # the store's listener did too, if attached
            log.info("authz.token_learned", partner=partner.key, uid=logs.mask(raw.uid))
        except Exception:
            log.exception("authz.token_learn_failed", uid=logs.mask(raw.uid))


class OcpiRemoteAuthorizer:
    """RemoteAuthorizer over ``OcpiClient.authorize`` (the client does the HTTP).

    The uid in the authorize URL is spelt as the eMSP spelt it when we hold that
    partner's token (pushed, synced or learned; ``known``, matched case-insensitively):
    an eMSP that keys tokens case-sensitively must find its own uid. Otherwise the
    charger's spelling is all we have and goes as sent.
    """

    def __init__(
        self, store: RoamingStore, client: OcpiClient, known: StoreTokenCache | None = None
    ) -> None:
        self.store = store
        self.client = client
        self.known = known

    async def _spelling(self, partner_key: str, uid: str, token_type: str) -> str:
        if self.known is None:
            return uid
        held = await self.known.lookup(normalise(uid), token_type)  # memo first
        for token in held:
            if token.partner_id == partner_key:
                return token.uid
        return uid

    async def partners(self) -> Sequence[str]:
        return [p.key for p in await self.store.partners.registered_partners_with_tokens_sender()]

    async def authorize(self, partner_id: str, query: RemoteQuery) -> RemoteOutcome:
        partner = await self.store.partners.partner_by_key(partner_id)
        if partner is None or not partner.registered:
            return Unreachable(partner_id, UnreachableKind.NO_ENDPOINT, "partner not registered")
        location = query.location
        refs = (
            LocationReferences(location.location_id, tuple(location.evse_uids))
            if location is not None
            else None
        )
        try:
            uid = await self._spelling(partner.key, query.uid, query.token_type)
            result = await self.client.authorize(
                partner, uid, query.token_type, refs, query.deadline_s
            )
        except RoamingError as exc:
            return outcome_of_error(partner.key, exc)
        if isinstance(result, UnknownToken):
            return TokenUnknown(partner.key)
        return verdict_from_info(partner.key, result)


# ---------------------------------------------------------------------- composition


async def build_roaming_authorization(
    config: Config,
    store: RoamingStore,
    client: OcpiClient,
    *,
    decisions: AuthorizationLog,
    own_cards: OwnCards,
    locations: LocationLookup | None,
    transactions: ActiveTransactions,
    memo_ttl_s: float = 300.0,
    max_age_s: float | None = None,
) -> Authorization:
    """One :class:`AuthorizationService`: the operator's own cards first, then roaming.

    ``decisions`` is the one decision log of the system; ``own_cards`` are held in memory
    (:class:`~csms.authz.own_cards.HeldOwnCards`), so both own cards and roaming cache
    hits are decided without awaiting. ``max_age_s`` (several nodes): the token memo
    serves no entry older than this, refreshing hot ones ahead of time.
    """
    if max_age_s is not None:
        memo_ttl_s = min(memo_ttl_s, max_age_s)
    cache = StoreTokenCache(store, ttl_s=memo_ttl_s, refresh_ahead=max_age_s is not None)
    cache.attach()
    service = AuthorizationService(
        own_cards=own_cards,
        cache=cache,
        remote=OcpiRemoteAuthorizer(store, client, cache),
        settings=AuthzSettings.from_config(config),
        locations=locations,
        transactions=transactions,
        sink=decisions,
        learner=cache,
    )
    log.info(
        "authz.installed",
        deadline_s=service.settings.deadline_s,
        concurrent_tx=service.settings.concurrent_tx,
        memo_ttl_s=memo_ttl_s,
    )

    async def close() -> None:
        cache.detach()
        await service.close()

    return Authorization(
        service=service,
        authorizer=service,
        decisions=decisions,
        token_cache=cache,
        closers=[close],
    )
