"""The asyncio shell around :mod:`csms.authz.policy`: cache, then the eMSP under a
deadline, then the fallback. The only code in ``csms.authz`` that awaits.

Why the deadline counts from ``AuthRequest.received_at``: the charger times its CALL
from when it sent it, not from when we got round to it; time spent queueing and in
the store is charged against the same budget, so a hung eMSP yields the fallback
before the deadline: the wait ends ``reply_reserve_s`` early, which leaves the answer
time to be built and written even after a collector pause or a burst of frames. A
late eMSP reply is cancelled, never applied.

Why two small in-memory maps (recent Authorize answers, command pre-authorizations):
a StartTransaction right after an Authorize, or after a START_SESSION, must not call
the eMSP again (OCPI §8.4) and must carry the same ``authorization_reference``; both
are per-process, short-lived facts a restart may safely forget.

Errors: :meth:`AuthorizationService.authorize` never raises; every failure of a port
becomes an outcome the policy knows (unreachable, unknown token) and is recorded with
its reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from csms.authz import policy
from csms.authz.model import (
    AuthMethod,
    AuthRequest,
    AuthStatus,
    CachedToken,
    Decision,
    DecisionRecord,
    FallbackRules,
    LocationRefs,
    RemoteOutcome,
    RemoteVerdict,
    Source,
    Unreachable,
    UnreachableKind,
    normalise,
)
from csms.authz.ports import (
    ActiveTransactions,
    Clock,
    DecisionSink,
    LocationLookup,
    RemoteAuthorizer,
    TokenCache,
    TokenLearner,
)
from csms.config import Config

START_TRANSACTION = "StartTransaction"
AUTHORIZE = "Authorize"
_MAP_LIMIT = 100_000  # entries per in-memory map before expired ones are swept


class _MillisStamp:
    """``decided_at``: ISO 8601 UTC with milliseconds (``2026-11-21T15:00:00.123Z``).

    Why not ``isoformat()``: with the offset formatting and the ``+00:00`` -> ``Z``
    replace it was a visible share of a cache-hit decision; the date and time change
    once a second, so they are formatted once a second.
    """

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, moment: datetime) -> str:
        second = int(moment.timestamp())
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            self._second = second
        return f"{self._prefix}{moment.microsecond // 1000:03d}Z"


_stamp = _MillisStamp()


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class AuthzSettings:
    """The slice of :class:`csms.config.Config` the service needs, per partner resolved."""

    deadline_s: float = 5.0
    id_tag_expiry_s: int = 86400
    reuse_window_s: float = 900.0
    concurrent_tx: Literal["reject", "allow"] = "reject"
    # ConcurrentTx is always checked on StartTransaction; on Authorize only when asked,
    # because it costs a store query on the hot path (see docs/authorization.md).
    concurrent_check_on_authorize: bool = False
    # Kept back from every deadline for answering: the fallback timer fires this much
    # earlier, so a GC pause or a queue of frames after it still lands inside the deadline.
    reply_reserve_s: float = 0.0
    partner_deadlines: Mapping[str, float] = field(default_factory=dict)
    partner_rules: Mapping[str, FallbackRules] = field(default_factory=dict)
    uid_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config) -> AuthzSettings:
        deadlines: dict[str, float] = {}
        rules: dict[str, FallbackRules] = {}
        prefixes: dict[str, tuple[str, ...]] = {}
        for key, p in cfg.partners.items():
            if p.authorize_deadline_s is not None:
                deadlines[key] = p.authorize_deadline_s
            rules[key] = FallbackRules(
                allowed_offline_accept=p.fallback_allowed_offline != "reject",
                allowed_accept=p.fallback_allowed != "reject",
            )
            if p.uid_prefixes:
                prefixes[key] = tuple(normalise(x) for x in p.uid_prefixes)
        return cls(
            deadline_s=cfg.authz.authorize_deadline_s,
            id_tag_expiry_s=cfg.authz.id_tag_expiry_s,
            reuse_window_s=float(cfg.authz.authorize_reuse_window_s),
            concurrent_tx=cfg.authz.concurrent_tx,
            concurrent_check_on_authorize=cfg.authz.concurrent_tx_on_authorize,
            reply_reserve_s=cfg.authz.reply_reserve_s,
            partner_deadlines=deadlines,
            partner_rules=rules,
            uid_prefixes=prefixes,
        )

    def deadline_for(self, partner_id: str | None) -> float:
        if partner_id is None:
            return self.deadline_s
        return self.partner_deadlines.get(partner_id.upper(), self.deadline_s)

    def timer_for(self, partner_id: str | None) -> float:
        """Seconds after arrival at which waiting stops: the deadline less the reserve."""
        return self.deadline_for(partner_id) - self.reply_reserve_s

    def rules_for(self, partner_id: str | None) -> FallbackRules:
        if partner_id is None:
            return FallbackRules()
        return self.partner_rules.get(partner_id.upper(), FallbackRules())

    def route(self, uid_norm: str) -> list[str]:
        """Partners whose configured uid prefixes match: they alone are asked."""
        return [p for p, pre in self.uid_prefixes.items() if uid_norm.startswith(pre)]


@dataclass(slots=True)
class _Held:
    decision: Decision
    until: float  # clock.monotonic()


@dataclass(slots=True)
class _Attempt:
    """What is known so far, so that a deadline hit can still fall back on it."""

    cached: CachedToken | None = None
    partner_id: str | None = None
    outcomes: list[RemoteOutcome] = field(default_factory=list)


class AuthorizationService:
    """Implements :class:`csms.authz.ports.Authorizer` for roaming tokens."""

    def __init__(
        self,
        *,
        cache: TokenCache,
        remote: RemoteAuthorizer,
        settings: AuthzSettings | None = None,
        clock: Clock | None = None,
        locations: LocationLookup | None = None,
        transactions: ActiveTransactions | None = None,
        sink: DecisionSink | None = None,
        learner: TokenLearner | None = None,
    ) -> None:
        self.cache = cache
        self.remote = remote
        self.settings = settings or AuthzSettings()
        self.clock: Clock = clock or SystemClock()
        self.locations = locations
        self.transactions = transactions
        self.sink = sink
        self.learner = learner
        self._recent: dict[tuple[str, str], _Held] = {}
        self._commands: dict[tuple[str, str], _Held] = {}
        # Cache-hit decisions by token object: (token, expiryDate, decision). Why: a
        # Decision depends only on the token and on the expiry second, yet building it
        # (field dicts, a frozen 15-field dataclass) was the largest part of a cache hit.
        # The token object itself is kept, so ``is`` on it also rules out a reused id().
        self._hits: dict[int, tuple[CachedToken, str, Decision]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.sink_failures = 0

    # ------------------------------------------------------------------ public API

    async def authorize(self, request: AuthRequest) -> Decision:
        start = request.received_at if request.received_at is not None else self.clock.monotonic()
        key = (request.charger_id, request.uid_norm)
        held = self._held(self._commands, key)
        if held is not None:
            decision = held
        elif (
            request.trigger == START_TRANSACTION
            and (reused := self._held(self._recent, key)) is not None
        ):
            decision = dataclasses.replace(
                reused, source=Source.REUSED, reason=f"reuses Authorize ({reused.source})"
            )
        else:
            remembered = self._decide_from_memory(request, self.clock.now())
            decision = remembered if remembered is not None else await self._decide(request, start)
            if (
                request.trigger == AUTHORIZE
                and decision.accepted
                and decision.source in (Source.REMOTE, Source.FALLBACK)
            ):
                self._hold(self._recent, key, decision, self.settings.reuse_window_s)
        if self._needs_concurrency_check(request, decision):
            decision = await self._concurrency(request, decision, start)
        self._record(request, decision, start)
        return decision

    def authorize_now(self, request: AuthRequest) -> Decision | None:
        """The synchronous twin of :meth:`authorize` for what memory alone decides: a
        command pre-authorization, or a token the cache decides via ``peek``. Same
        decision, same record and log line; None whenever :meth:`authorize` would await
        (store, eMSP, ConcurrentTx query, StartTransaction reuse), and the caller then
        awaits :meth:`authorize`. Why: the OCPP server answers such an Authorize inline,
        without a task per call (added by engineer H for the Authorize benchmarks).
        """
        start = request.received_at if request.received_at is not None else self.clock.monotonic()
        now = self.clock.now()  # read once: the expiry date and the record's decided_at
        key = (request.charger_id, request.uid_norm)
        decision = self._held(self._commands, key)
        if decision is None:
            if request.trigger == START_TRANSACTION:
                return None
            decision = self._decide_from_memory(request, now)
            if decision is None:
                return None
        if self._needs_concurrency_check(request, decision):
            return None
        self._record(request, decision, start, now)
        return decision

    def _needs_concurrency_check(self, request: AuthRequest, decision: Decision) -> bool:
        """An accepted, not command-given decision for a StartTransaction (or an Authorize,
        when configured) must still pass the ConcurrentTx query, which awaits the store."""
        return (
            decision.accepted
            and decision.source is not Source.COMMAND
            and (
                request.trigger == START_TRANSACTION
                or (request.trigger == AUTHORIZE and self.settings.concurrent_check_on_authorize)
            )
        )

    def preauthorize(
        self, charger_id: str, uid: str, decision: Decision, ttl_s: float = 900
    ) -> None:
        """A START_SESSION/RESERVE_NOW token the eMSP already authorized: for ``ttl_s``
        an Authorize or StartTransaction of it at this charger gets ``decision`` (source
        COMMAND, its authorization_reference) without a real-time call (OCPI §8.4)."""
        d = dataclasses.replace(
            decision,
            source=Source.COMMAND,
            auth_method=AuthMethod.COMMAND,
            reason=decision.reason or "pre-authorized by command",
        )
        self._hold(self._commands, (charger_id, normalise(uid)), d, ttl_s)

    async def close(self) -> None:
        """Cancel background token learning (nothing else runs in the background)."""
        tasks = list(self._background)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ decision

    def _decide_from_memory(self, request: AuthRequest, now: datetime) -> Decision | None:
        """The hot path: a cache that can answer from memory (``peek``) and a token the
        cache decides on its own need no timer, no task and no await."""
        peek = getattr(self.cache, "peek", None)
        if peek is None:
            return None
        tokens = peek(request.uid_norm, request.token_type)
        if tokens is None:
            return None
        token = policy.choose_cached(tokens)
        if token is None or token.whitelist not in policy.CACHE_DECIDES:
            return None
        expiry = policy.expiry(now, self.settings.id_tag_expiry_s)
        hit = self._hits.get(id(token))
        if hit is not None and hit[0] is token and hit[1] == expiry:
            return hit[2]
        first = policy.from_cache(token, now, self.settings.id_tag_expiry_s)
        if first is policy.NEED_REMOTE:  # pragma: no cover - excluded above
            return None
        if len(self._hits) >= _MAP_LIMIT:
            self._hits.clear()
        self._hits[id(token)] = (token, expiry, first)
        return first

    async def _decide(self, request: AuthRequest, start: float) -> Decision:
        s = self.settings
        now = self.clock.now()
        loop = asyncio.get_running_loop()

        def at(budget_s: float) -> float:
            return loop.time() + (start + budget_s - self.clock.monotonic())

        state = _Attempt()
        try:
            async with asyncio.timeout_at(at(s.timer_for(None))) as scope:
                try:
                    tokens = await self.cache.lookup(request.uid_norm, request.token_type)
                except Exception as exc:  # the store failed: nothing is known
                    return policy.fallback(
                        None,
                        now=now,
                        expiry_s=s.id_tag_expiry_s,
                        why=f"token cache error ({exc!r})",
                    )
                cached = state.cached = policy.choose_cached(tokens)
                first = policy.from_cache(cached, now, s.id_tag_expiry_s)
                if first is not policy.NEED_REMOTE:
                    return first
                refs = await self._refs(request)
                if cached is not None:
                    partner = state.partner_id = cached.partner_id
                    budget = s.timer_for(partner)
                    scope.reschedule(at(budget))
                    outcome: RemoteOutcome | None = await self._call(
                        partner, request, refs, start + budget
                    )
                    assert outcome is not None
                    state.outcomes.append(outcome)
                else:
                    outcome = await self._fan_out(request, refs, start, state)
                rules = s.rules_for(outcome.partner_id if outcome else None)
                decision = policy.resolve(cached, outcome, now, rules, s.id_tag_expiry_s)
                if isinstance(outcome, RemoteVerdict) and outcome.token is not None:
                    self._learn(outcome.token)
                return decision
        except TimeoutError:
            budget = s.deadline_for(state.partner_id)
            late = Unreachable(
                partner_id=state.partner_id or "*",
                kind=UnreachableKind.TIMEOUT,
                detail=f"no answer within {budget:g} s",
            )
            if state.cached is None and state.outcomes:
                outcome = policy.pick([*state.outcomes, late])
                return policy.resolve(None, outcome, now, FallbackRules(), s.id_tag_expiry_s)
            return policy.fallback(
                state.cached,
                s.rules_for(state.partner_id),
                now=now,
                expiry_s=s.id_tag_expiry_s,
                why=f"eMSP unreachable (timeout after {budget:g} s)",
            )

    async def _refs(self, request: AuthRequest) -> LocationRefs | None:
        if self.locations is None:
            return None
        try:
            return await self.locations.refs(request.charger_id, request.connector_id)
        except Exception:  # no references is a valid request; the eMSP may ask for them
            return None

    async def _call(
        self, partner_id: str, request: AuthRequest, refs: LocationRefs | None, until: float
    ) -> RemoteOutcome:
        remaining = until - self.clock.monotonic()
        if remaining <= 0:
            return Unreachable(
                partner_id, UnreachableKind.TIMEOUT, "deadline spent before the call"
            )
        try:
            async with asyncio.timeout(remaining):
                return await self.remote.authorize(
                    partner_id, request.uid, request.token_type, refs, remaining
                )
        except TimeoutError:
            return Unreachable(
                partner_id, UnreachableKind.TIMEOUT, f"no answer in {remaining:.3g} s"
            )
        except Exception as exc:
            return Unreachable(partner_id, UnreachableKind.ERROR, repr(exc))

    async def _fan_out(
        self, request: AuthRequest, refs: LocationRefs | None, start: float, state: _Attempt
    ) -> RemoteOutcome | None:
        """Ask every candidate eMSP at once; the first ALLOWED wins, the rest are cancelled."""
        partners: Sequence[str] = self.settings.route(request.uid_norm)
        if not partners:
            try:
                partners = await self.remote.partners()
            except Exception as exc:
                return Unreachable("*", UnreachableKind.ERROR, f"partner list: {exc!r}")
        if not partners:
            return None
        tasks = [
            asyncio.ensure_future(self._call(p, request, refs, start + self.settings.timer_for(p)))
            for p in partners
        ]
        try:
            pending: set[asyncio.Future[RemoteOutcome]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    o = t.result()
                    state.outcomes.append(o)
                    if policy.is_final_for_fanout(o):
                        return o
            return policy.pick(state.outcomes)
        finally:
            for t in tasks:
                t.cancel()

    async def _concurrency(
        self, request: AuthRequest, decision: Decision, start: float
    ) -> Decision:
        """ConcurrentTx when the token charges elsewhere (config ``authz.concurrent_tx``).

        Elsewhere: another charger for an Authorize (at the same charger the driver is
        most likely presenting the card to stop), another connector for a
        StartTransaction (its own row may already be stored). Skipped, not failed, when
        the deadline leaves no time for the lookup.
        """
        if self.settings.concurrent_tx != "reject" or self.transactions is None:
            return decision
        remaining = start + self.settings.timer_for(decision.partner_id) - self.clock.monotonic()
        if remaining <= 0:
            return decision
        try:
            async with asyncio.timeout(remaining):
                active = await self.transactions.active_for(request.uid_norm)
        except Exception:
            return decision
        for charger_id, connector_id in active:
            if charger_id != request.charger_id or (
                request.trigger == START_TRANSACTION and connector_id != request.connector_id
            ):
                return dataclasses.replace(
                    decision,
                    status=AuthStatus.CONCURRENT_TX,
                    expiry_date=None,
                    reason=f"active transaction at {charger_id}/{connector_id}",
                )
        return decision

    # ------------------------------------------------------------------ bookkeeping

    def _held(self, table: dict[tuple[str, str], _Held], key: tuple[str, str]) -> Decision | None:
        held = table.get(key)
        if held is None:
            return None
        if held.until <= self.clock.monotonic():
            del table[key]
            return None
        return held.decision

    def _hold(
        self, table: dict[tuple[str, str], _Held], key: tuple[str, str], d: Decision, ttl: float
    ) -> None:
        now = self.clock.monotonic()
        if len(table) >= _MAP_LIMIT:
            for k in [k for k, h in table.items() if h.until <= now]:
                del table[k]
        table.pop(key, None)
        table[key] = _Held(d, now + ttl)

    def _learn(self, token: CachedToken) -> None:
        if self.learner is None:
            return
        is_current = getattr(self.learner, "is_current", None)
        if is_current is not None and is_current(token):
            return  # nothing to learn: no task, no store reads
        task = asyncio.ensure_future(self._learn_quietly(token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _learn_quietly(self, token: CachedToken) -> None:
        assert self.learner is not None
        try:
            await self.learner.learn(token)
        except Exception:  # the learner logs its own failures; the answer was given already
            pass

    def _record(
        self, request: AuthRequest, d: Decision, start: float, now: datetime | None = None
    ) -> None:
        if self.sink is None:
            return
        # ``_value_`` rather than ``.value``: the same string, without the enum
        # property's Python-level descriptor call (three per decision on the hot path).
        allowed = d.allowed
        entry = DecisionRecord(
            decided_at=_stamp(now if now is not None else self.clock.now()),
            charger_id=request.charger_id,
            connector_id=request.connector_id,
            trigger=request.trigger,
            uid=request.uid,
            uid_norm=request.uid_norm,
            partner_id=d.partner_id,
            token_type=d.token_type or request.token_type,
            source=d.source._value_,
            allowed=allowed._value_ if allowed is not None else None,
            status=d.status._value_,
            authorization_reference=d.authorization_reference,
            display_text=d.display_text,
            latency_ms=round((self.clock.monotonic() - start) * 1000.0, 3),
            reason=d.reason,
        )
        try:
            self.sink.record(entry)
        except Exception:
            self.sink_failures += 1
