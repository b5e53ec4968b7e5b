"""Rows 4 to 6 of the precedence (:mod:`csms.authz.policy`) with I/O: the token cache,
then the eMSP under a deadline, then the fallback. The code in ``csms.authz`` that
awaits roaming; :class:`csms.authz.service.AuthorizationService` calls it when memory
alone cannot decide.

Why the deadline counts from ``AuthRequest.received_at``: the charger times its CALL
from when it sent it, not from when we got round to it; time spent queueing and in
the store is charged against the same budget, so a hung eMSP yields the fallback
before the deadline: the wait ends ``reply_reserve_s`` early, which leaves the answer
time to be built and written even after a collector pause or a burst of frames. A
late eMSP reply is cancelled, never applied.

Errors: nothing here raises; every failure of a port becomes an outcome the policy
knows (unreachable, unknown token) and is recorded with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from csms.authz import policy
from csms.authz.model import (
    AuthRequest,
    CachedToken,
    Decision,
    FallbackRules,
    LocationRefs,
    RemoteOutcome,
    RemoteQuery,
    RemoteVerdict,
    Unreachable,
    UnreachableKind,
)
from csms.authz.ports import (
    ActiveTransactions,
    Clock,
    LocationLookup,
    RemoteAuthorizer,
    TokenCache,
    TokenLearner,
)
from csms.authz.settings import AuthzSettings


@dataclass(slots=True)
class _Attempt:
    """What is known so far, so that a deadline hit can still fall back on it."""

    cached: CachedToken | None = None
    partner_id: str | None = None
    outcomes: list[RemoteOutcome] = field(default_factory=list)


class RealTime:
    """The roaming ports and the deadline that bounds every await on them."""

    def __init__(
        self,
        *,
        cache: TokenCache,
        remote: RemoteAuthorizer,
        settings: AuthzSettings,
        clock: Clock,
        locations: LocationLookup | None = None,
        transactions: ActiveTransactions | None = None,
        learner: TokenLearner | None = None,
    ) -> None:
        self.cache = cache
        self.remote = remote
        self.settings = settings
        self.clock = clock
        self.locations = locations
        self.transactions = transactions
        self.learner = learner
        self._background: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Cancel background token learning (nothing else runs in the background)."""
        tasks = list(self._background)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def decide(self, request: AuthRequest, start: float, now: datetime) -> Decision:
        s = self.settings
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

    async def concurrency(self, request: AuthRequest, decision: Decision, start: float) -> Decision:
        """ConcurrentTx (config ``authz.concurrent_tx``), :func:`policy.concurrent_tx`.
        Skipped, not failed, when the deadline leaves no time for the lookup."""
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
        return policy.concurrent_tx(
            decision, request.charger_id, request.trigger, request.connector_id, active
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
                    partner_id, RemoteQuery(request.uid, request.token_type, refs, remaining)
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

    def _learn(self, token: CachedToken) -> None:
        learner = self.learner
        if learner is None or learner.is_current(token):
            return  # nothing to learn: no task, no store reads
        task = asyncio.ensure_future(self._learn_quietly(learner, token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _learn_quietly(self, learner: TokenLearner, token: CachedToken) -> None:
        try:
            await learner.learn(token)
        except Exception:  # the learner logs its own failures; the answer was given already
            pass
