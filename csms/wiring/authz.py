"""Adapters that serve the authorization ports from roaming, and :func:`install`.

Why here: ``csms.wiring`` is the only csms package allowed to import ``roaming``; the
authorization core sees only its own ports and value types.

What each adapter serves:

* :class:`StoreTokenCache` (TokenCache + TokenLearner) - roaming's token store, with a
  short-lived in-memory memo in front so that a card presented again and again does
  not cost a SQLite round trip per Authorize. The memo listens to the store's token
  writes (push, PATCH, sync, sweep, learning), so it never serves a token older than
  the last committed write; ``memo_ttl_s`` (default 300 s) is only a backstop for
  writes made by another process on the same database file.
* :class:`OcpiRemoteAuthorizer` - ``OcpiClient.authorize``; maps the client's error
  tree onto the outcomes the policy knows (see :func:`outcome_of_error`).
* :class:`SqlActiveTransactions` - the ``transactions`` table (partial index on
  ``id_tag_norm`` for rows without a stop).
* :class:`ExtensionLocations` - whatever ``LocationLookup`` the locations module
  publishes in ``app.extensions["location_lookup"]``, looked up per call so it may
  arrive after us.

With them :func:`install` assembles one :class:`~csms.authz.service.AuthorizationService`:
the operator's own cards held in memory first, then roaming.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from csms import logs
from csms.admin.authorizations import LOG_EXTENSION
from csms.admin.authorizations import routes as admin_routes
from csms.authz.model import (
    Allowed,
    CachedToken,
    LocationRefs,
    RemoteOutcome,
    RemoteRefused,
    RemoteVerdict,
    TokenUnknown,
    Unreachable,
    UnreachableKind,
    Whitelist,
)
from csms.authz.own_cards import HeldOwnCards
from csms.authz.service import AuthorizationService
from csms.authz.settings import AuthzSettings
from csms.store.authorizations import AuthorizationLog
from csms.store.db import Executor
from csms.store.id_tags import IdTagRepo
from roaming.client import (
    InvalidResponse,
    OcpiClient,
    PartnerRejected,
    PartnerUnreachable,
    RoamingError,
    UnknownToken,
)
from roaming.models import AuthorizationInfo, LocationReferences, Token
from roaming.ports import StoredToken

if TYPE_CHECKING:
    from csms.app import CsmsApp
    from roaming.store_sqlite import RoamingStore

SERVICE_EXTENSION = "authorization_service"  # app.extensions key of the AuthorizationService
LOCATIONS_EXTENSION = "location_lookup"  # app.extensions key of the locations' LocationLookup

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
    """The one mapping of the OCPI client's errors onto policy outcomes.

    Unreachable (fallback applies): timeout, connection error, HTTP 5xx, hub 4002/4003,
    a body that is not an OCPI envelope or not an AuthorizationInfo, and a partner we
    cannot call at all (not registered, no tokens SENDER). Refused (Invalid, no
    fallback): any other definite non-success answer, e.g. 401 or OCPI 2002.
    """
    msg = exc.message
    if isinstance(exc, PartnerUnreachable):
        if "timed out" in msg:
            kind = UnreachableKind.TIMEOUT
        elif "HTTP 5" in msg or "hub reports" in msg:
            kind = UnreachableKind.SERVER_ERROR
        else:
            kind = UnreachableKind.CONNECTION
        return Unreachable(partner_key, kind, msg)
    if isinstance(exc, InvalidResponse):
        return Unreachable(partner_key, UnreachableKind.MALFORMED, msg)
    if isinstance(exc, PartnerRejected):
        if exc.http_status == 0:  # raised before any request was sent
            return Unreachable(partner_key, UnreachableKind.NO_ENDPOINT, msg)
        return RemoteRefused(partner_key, msg)
    return Unreachable(partner_key, UnreachableKind.ERROR, msg)


# ---------------------------------------------------------------------- adapters


class StoreTokenCache:
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
    """

    def __init__(
        self,
        store: RoamingStore,
        *,
        ttl_s: float = 300.0,
        max_entries: int = 200_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._now = monotonic
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
            self._detach = self.store.add_token_listener(self.on_tokens_changed)

    def detach(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None

    def peek(self, uid_norm: str, token_type: str) -> Sequence[CachedToken] | None:
        """The memo's answer without I/O, or None when the store must be asked."""
        by_type = self._memo.get(uid_norm)
        if by_type is not None:
            held = by_type.get(token_type)
            if held is not None and held[0] > self._now():
                self.hits += 1
                return held[1]
        return None

    async def lookup(self, uid_norm: str, token_type: str) -> Sequence[CachedToken]:
        held = self.peek(uid_norm, token_type)
        if held is not None:
            return held
        self.misses += 1
        generation = self._generation
        rows = await self.store.get_token(uid_norm, token_type)
        tokens = tuple(cached_from_stored(s) for s in rows if not s.removed)
        if self.ttl_s > 0 and generation == self._generation:
            if self._entries >= self.max_entries:
                self._memo.clear()  # crude but bounded; the memo refills from hot uids
                self._entries = 0
            by_type = self._memo.setdefault(uid_norm, {})
            if token_type not in by_type:
                self._entries += 1
            by_type[token_type] = (self._now() + self.ttl_s, tokens)
        return tokens

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
            partner = await self.store.partner_by_key(token.partner_id)
            if partner is None or not partner.owns(raw.country_code, raw.party_id):
                return
            existing = await self.store.find_token(
                raw.country_code, raw.party_id, raw.uid, raw.type.value, include_removed=True
            )
            if existing is not None and existing.last_updated >= raw.last_updated:
                return
            await self.store.upsert_token(partner.id, raw)
            self.invalidate(token.uid_norm)  # the store's listener did too, if attached
            log.info("authz.token_learned", partner=partner.key, uid=logs.mask(raw.uid))
        except Exception:
            log.exception("authz.token_learn_failed", uid=logs.mask(raw.uid))


class OcpiRemoteAuthorizer:
    """RemoteAuthorizer over ``OcpiClient.authorize`` (the client does the HTTP)."""

    def __init__(self, store: RoamingStore, client: OcpiClient) -> None:
        self.store = store
        self.client = client

    async def partners(self) -> Sequence[str]:
        return [p.key for p in await self.store.registered_partners_with_tokens_sender()]

    async def authorize(
        self,
        partner_id: str,
        uid: str,
        token_type: str,
        location: LocationRefs | None,
        deadline_s: float,
    ) -> RemoteOutcome:
        partner = await self.store.partner_by_key(partner_id)
        if partner is None or not partner.registered:
            return Unreachable(partner_id, UnreachableKind.NO_ENDPOINT, "partner not registered")
        refs = (
            LocationReferences(location.location_id, tuple(location.evse_uids))
            if location is not None
            else None
        )
        try:
            result = await self.client.authorize(partner, uid, token_type, refs, deadline_s)
        except RoamingError as exc:
            return outcome_of_error(partner.key, exc)
        if isinstance(result, UnknownToken):
            return TokenUnknown(partner.key)
        return verdict_from_info(partner.key, result)


class SqlActiveTransactions:
    """ActiveTransactions over the ``transactions`` table."""

    def __init__(self, db: Executor) -> None:
        self.db = db

    async def active_for(self, uid_norm: str) -> Sequence[tuple[str, int]]:
        rows = await self.db.fetchall(
            "SELECT charger_id, connector_id FROM transactions "
            "WHERE id_tag_norm = ? AND stop_received_at IS NULL",
            (uid_norm,),
        )
        return [(r["charger_id"], int(r["connector_id"])) for r in rows]


class ExtensionLocations:
    """LocationLookup that forwards to the one published in ``extensions``, if any."""

    def __init__(self, extensions: MutableMapping[str, Any]) -> None:
        self.extensions = extensions

    async def refs(self, charger_id: str, connector_id: int | None) -> LocationRefs | None:
        lookup = self.extensions.get(LOCATIONS_EXTENSION)
        if lookup is None:
            return None
        result = lookup.refs(charger_id, connector_id)
        if asyncio.iscoroutine(result):
            result = await result
        if result is None:
            return None
        location_id, evse_uids = result
        return LocationRefs(location_id, tuple(evse_uids))


# ---------------------------------------------------------------------- composition


async def install(
    app: CsmsApp,
    store: RoamingStore,
    client: OcpiClient,
    *,
    memo_ttl_s: float = 300.0,
) -> Callable[[], Awaitable[None]]:
    """Make the roaming-aware :class:`AuthorizationService` the app's authorizer.

    Call from a *setup* hook (before the OCPP server starts). Publishes the service at
    ``app.extensions["authorization_service"]`` (commands call its ``preauthorize``)
    and the decision log at ``app.extensions["authorization_log"]``, and mounts
    ``GET /api/authorizations``. Returns the closer: it writes every buffered decision.
    """
    decisions = AuthorizationLog(app.db)
    decisions.start()
    cache = StoreTokenCache(store, ttl_s=memo_ttl_s)
    cache.attach()
    # The operator's own cards (the id_tags table) stay decided locally, first, and are
    # held in memory; not when the app was started with an authorizer of its own.
    local = app.authorizer
    own_cards = (
        await HeldOwnCards.load(IdTagRepo(app.db))
        if isinstance(local, AuthorizationService) and local.own_cards is not None
        else None
    )
    service = AuthorizationService(
        own_cards=own_cards,
        cache=cache,
        remote=OcpiRemoteAuthorizer(store, client),
        settings=AuthzSettings.from_config(app.config),
        locations=ExtensionLocations(app.extensions),
        transactions=SqlActiveTransactions(app.db),
        sink=decisions,
        learner=cache,
    )
    app.authorizer = service
    app.extensions[SERVICE_EXTENSION] = service
    app.extensions[LOG_EXTENSION] = decisions
    app.extensions["token_cache"] = cache
    app.add_admin_routes(admin_routes)
    log.info(
        "authz.installed",
        deadline_s=service.settings.deadline_s,
        concurrent_tx=service.settings.concurrent_tx,
        memo_ttl_s=memo_ttl_s,
    )

    async def close() -> None:
        cache.detach()
        await service.close()
        await decisions.close()

    return close
