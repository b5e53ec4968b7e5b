"""The authorizer: the precedence of :mod:`csms.authz.policy`, walked top to bottom, with
one fast path.

:meth:`AuthorizationService.try_now` walks the rows with what memory holds (own cards
held in memory, command pre-authorizations, the reuse window, the token cache's memo)
and answers without awaiting, or says :data:`~csms.authz.model.NEED_IO`;
:meth:`AuthorizationService.decide` is its continuation: the same rows, then the I/O
(the own-card store, :class:`csms.authz.realtime.RealTime` for the cache, the eMSP and
the fallback, the ConcurrentTx query). Both record every decision they return, once.

Why two small in-memory maps (recent Authorize answers, command pre-authorizations):
a StartTransaction right after an Authorize, or after a START_SESSION, must not call
the eMSP again (OCPI §8.4) and must carry the same ``authorization_reference``; both
are per-process, short-lived facts a restart may safely forget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from csms.authz import policy
from csms.authz.model import (
    NEED_IO,
    AuthRequest,
    CachedToken,
    Decision,
    DecisionRecord,
    NeedIO,
    OwnCard,
    normalise,
)
from csms.authz.ports import (
    ActiveTransactions,
    Clock,
    DecisionSink,
    LocationLookup,
    OwnCards,
    RemoteAuthorizer,
    TokenCache,
    TokenLearner,
)
from csms.authz.realtime import RealTime
from csms.authz.settings import AuthzSettings, SystemClock

RFID = "RFID"
_MAP_LIMIT = 100_000  # entries per in-memory map before it is swept / started over

Key = tuple[str, str]  # (charger_id, uid_norm)
Answer = Decision | Literal[NeedIO.NEED_IO]


@dataclass(slots=True)
class _Held:
    decision: Decision
    until: float  # clock.monotonic()


class AuthorizationService:
    """Implements :class:`csms.authz.ports.Authorizer`: own cards and/or roaming tokens.

    ``own_cards`` alone: the operator's ``id_tags`` decide every uid (no roaming).
    ``cache`` and ``remote``: roaming tokens (rows 2 to 6); with ``own_cards`` too, the
    operator's own cards come first and every other uid goes to roaming.
    """

    def __init__(
        self,
        *,
        own_cards: OwnCards | None = None,
        cache: TokenCache | None = None,
        remote: RemoteAuthorizer | None = None,
        settings: AuthzSettings | None = None,
        clock: Clock | None = None,
        locations: LocationLookup | None = None,
        transactions: ActiveTransactions | None = None,
        sink: DecisionSink | None = None,
        learner: TokenLearner | None = None,
    ) -> None:
        self.own_cards = own_cards
        self.settings = settings or AuthzSettings()
        self.clock: Clock = clock or SystemClock()
        self.sink = sink
        self.cache = cache
        self.realtime: RealTime | None = None
        if cache is not None and remote is not None:
            self.realtime = RealTime(
                cache=cache,
                remote=remote,
                settings=self.settings,
                clock=self.clock,
                locations=locations,
                transactions=transactions,
                learner=learner,
            )
        self._expiry_s = self.settings.id_tag_expiry_s
        self._on_authorize = self.settings.concurrent_check_on_authorize
        self._recent: dict[Key, _Held] = {}
        self._commands: dict[Key, _Held] = {}
        # Memory-decided decisions by uid_norm: (token or card, expiryDate, decision).
        # Why: such a Decision depends only on the token (or own card) and on the expiry
        # second, yet building it was the largest part of a cache hit. ``is`` on the
        # token or card rules out one that has since been replaced (a write makes a new
        # object) or, for tokens, one of another type.
        self._hits: dict[str, tuple[CachedToken | OwnCard, str, Decision]] = {}
        self.sink_failures = 0

    # ------------------------------------------------------------------ Authorizer

    def try_now(self, request: AuthRequest) -> Answer:
        """The decision when memory alone decides it (recorded), else NEED_IO (nothing
        recorded): then :meth:`decide` gives it, as it would have anyway."""
        start = request.received_at
        if start is None:
            start = self.clock.monotonic()
        now = self.clock.now()  # read once: the expiry date and the record's decided_at
        decision = self._from_memory(request, now)
        if decision is NEED_IO or policy.needs_concurrency_check(
            request.trigger, decision, self._on_authorize
        ):
            return NEED_IO
        self._record(request, decision, start, now)
        return decision

    async def decide(self, request: AuthRequest) -> Decision:
        """The whole decision, awaiting the store and the eMSP where memory cannot decide."""
        start = request.received_at
        if start is None:
            start = self.clock.monotonic()
        decision = self._from_memory(request, self.clock.now())
        if decision is NEED_IO:
            decision = await self._with_io(request, start)
        if policy.held_for_reuse(request.trigger, decision):
            self._hold(
                self._recent,
                (request.charger_id, request.uid_norm),
                decision,
                self.settings.reuse_window_s,
            )
        realtime = self.realtime
        if realtime is not None and policy.needs_concurrency_check(
            request.trigger, decision, self._on_authorize
        ):
            decision = await realtime.concurrency(request, decision, start)
        self._record(request, decision, start, self.clock.now())
        return decision

    def preauthorize(
        self, charger_id: str, uid: str, decision: Decision, ttl_s: float = 900
    ) -> None:
        """A START_SESSION/RESERVE_NOW token the eMSP already authorized: for ``ttl_s``
        an Authorize or StartTransaction of it at this charger gets ``decision`` (source
        COMMAND, its authorization_reference) without a real-time call (OCPI §8.4)."""
        key = (charger_id, normalise(uid))
        self._hold(self._commands, key, policy.commanded(decision), ttl_s)

    async def own_cards_changed(self) -> None:
        """Follow a write to the own cards (the admin API calls this after each)."""
        if self.own_cards is not None:
            await self.own_cards.reload()

    async def close(self) -> None:
        """Cancel background token learning (nothing else runs in the background)."""
        if self.realtime is not None:
            await self.realtime.close()

    # ------------------------------------------------------------------ the rows

    def _from_memory(self, request: AuthRequest, now: datetime) -> Answer:
        own = self.own_cards
        if own is not None:  # row 1
            card = own.held(request.uid_norm)
            if card is NEED_IO:
                return NEED_IO
            if card is not None:
                return self._own(card, request, now)
        if self.realtime is None:
            return policy.UNKNOWN_CARD
        return self._roaming_from_memory(request, now)

    def _own(self, card: OwnCard | None, request: AuthRequest, now: datetime) -> Decision:
        # Memoised only for a card without its own expiry, presented as an RFID (what
        # OCPP 1.6 idTags are): the decision then depends on the card and the second.
        if card is None or card.expiry is not None or request.token_type != RFID:
            return policy.own_card(card, request.token_type, now, self._expiry_s)
        expiry = policy.expiry(now, self._expiry_s)
        hit = self._hits.get(request.uid_norm)
        if hit is not None and hit[0] is card and hit[1] == expiry:
            return hit[2]
        decision = policy.own_card(card, RFID, now, self._expiry_s)
        self._memoise(request.uid_norm, card, expiry, decision)
        return decision

    def _roaming_from_memory(self, request: AuthRequest, now: datetime) -> Answer:
        if self._commands:  # row 2
            held = self._held(self._commands, (request.charger_id, request.uid_norm))
            if held is not None:
                return held
        if request.trigger == policy.START_TRANSACTION and self._recent:  # row 3
            held = self._held(self._recent, (request.charger_id, request.uid_norm))
            if held is not None:
                return policy.reused(held)
        return self._cache_hit(request, now)  # row 4, when the cache's memo holds the token

    def _cache_hit(self, request: AuthRequest, now: datetime) -> Answer:
        assert self.cache is not None  # with realtime
        tokens = self.cache.peek(request.uid_norm, request.token_type)
        if tokens is None:
            return NEED_IO
        token = policy.choose_cached(tokens)
        if token is None or token.whitelist not in policy.CACHE_DECIDES:
            return NEED_IO
        expiry = policy.expiry(now, self._expiry_s)
        hit = self._hits.get(request.uid_norm)
        if hit is not None and hit[0] is token and hit[1] == expiry:
            return hit[2]
        first = policy.from_cache(token, now, self._expiry_s)
        if first is policy.NEED_REMOTE:  # pragma: no cover - excluded above
            return NEED_IO
        self._memoise(request.uid_norm, token, expiry, first)
        return first

    def _memoise(
        self, uid_norm: str, source: CachedToken | OwnCard, expiry: str, decision: Decision
    ) -> None:
        if len(self._hits) >= _MAP_LIMIT:
            self._hits.clear()
        self._hits[uid_norm] = (source, expiry, decision)

    async def _with_io(self, request: AuthRequest, start: float) -> Decision:
        """The rows memory could not decide: the own-card store, then rows 4 to 6."""
        own = self.own_cards
        if own is not None and own.held(request.uid_norm) is NEED_IO:
            card = await own.get(request.uid_norm)
            if card is not None or self.realtime is None:
                return self._own(card, request, self.clock.now())
            decision = self._roaming_from_memory(request, self.clock.now())
            if decision is not NEED_IO:
                return decision
        assert self.realtime is not None  # _from_memory decides everything without it
        return await self.realtime.decide(request, start, self.clock.now())

    # ------------------------------------------------------------------ bookkeeping

    def _held(self, table: dict[Key, _Held], key: Key) -> Decision | None:
        held = table.get(key)
        if held is None:
            return None
        if held.until <= self.clock.monotonic():
            del table[key]
            return None
        return held.decision

    def _hold(self, table: dict[Key, _Held], key: Key, d: Decision, ttl: float) -> None:
        now = self.clock.monotonic()
        if len(table) >= _MAP_LIMIT:
            for k in [k for k, h in table.items() if h.until <= now]:
                del table[k]
        table.pop(key, None)
        table[key] = _Held(d, now + ttl)

    def _record(self, request: AuthRequest, d: Decision, start: float, now: datetime) -> None:
        sink = self.sink
        if sink is None:
            return
        latency_ms = round((self.clock.monotonic() - start) * 1000.0, 3)
        try:
            sink.record(DecisionRecord(request, d, now, latency_ms))
        except Exception:
            self.sink_failures += 1
