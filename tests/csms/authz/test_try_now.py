"""``AuthorizationService.try_now``: the fast path, with ``decide`` as its continuation.

It must give exactly the decision ``decide`` gives whenever memory alone decides,
record it once, and say NEED_IO (recording nothing) whenever ``decide`` would await.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import pytest

from csms.authz.model import (
    NEED_IO,
    AuthRequest,
    AuthStatus,
    CachedToken,
    Decision,
    NeedIO,
    OwnCard,
    Source,
    Whitelist,
    normalise,
)
from csms.authz.own_cards import HeldOwnCards
from csms.authz.service import AuthorizationService
from csms.authz.settings import AuthzSettings
from tests.csms.authz.fakes import FakeCache, FakeClock, FakeRemote, FakeTransactions, ListSink, tok


class PeekCache(FakeCache):
    """A cache that can answer from memory for the uids in ``memo``."""

    def __init__(self, *tokens: CachedToken) -> None:
        super().__init__(*tokens)
        self.memo = {t.uid_norm for t in tokens}

    def peek(self, uid_norm: str, token_type: str) -> Sequence[CachedToken] | None:
        if uid_norm not in self.memo:
            return None
        return [t for t in self.tokens if t.uid_norm == uid_norm and t.token_type == token_type]


async def _never(uid, location):  # type: ignore[no-untyped-def]
    raise AssertionError("try_now must never reach the eMSP")


def make(cache: FakeCache, **settings: object) -> tuple[AuthorizationService, ListSink]:
    sink = ListSink()
    svc = AuthorizationService(
        cache=cache,
        remote=FakeRemote(NL_EMS=_never),
        settings=AuthzSettings(**settings),  # type: ignore[arg-type]
        clock=FakeClock(),
        transactions=FakeTransactions(),
        sink=sink,
    )
    return svc, sink


def req(uid: str = "04a1b2c3", trigger: str = "Authorize") -> AuthRequest:
    return AuthRequest("CP1", uid, trigger, None)


@pytest.mark.parametrize(
    ("whitelist", "valid", "status"),
    [
        (Whitelist.ALWAYS, True, AuthStatus.ACCEPTED),
        (Whitelist.ALLOWED, True, AuthStatus.ACCEPTED),
        (Whitelist.ALWAYS, False, AuthStatus.INVALID),
    ],
)
async def test_same_decision_as_decide_when_memory_decides(
    whitelist: Whitelist, valid: bool, status: AuthStatus
) -> None:
    svc, sink = make(PeekCache(tok(whitelist=whitelist, valid=valid)))
    now = svc.try_now(req())
    later = await svc.decide(req())
    assert now is not NEED_IO and now.status is status and now.source is Source.CACHE
    assert now == later
    assert [e.source for e in sink.entries] == ["cache", "cache"]  # recorded once each


async def test_need_io_and_nothing_recorded_when_decide_would_await() -> None:
    svc, sink = make(PeekCache(tok(whitelist=Whitelist.NEVER)))
    assert svc.try_now(req()) is NEED_IO  # needs the eMSP
    cache = PeekCache(tok(whitelist=Whitelist.ALWAYS))
    cache.memo.clear()
    svc2, sink2 = make(cache)
    assert svc2.try_now(req()) is NEED_IO  # not memoised: needs the store
    assert sink.entries == [] and sink2.entries == []


@pytest.mark.parametrize("trigger", ["StartTransaction", "Authorize"])
async def test_concurrent_tx_checks_stay_on_the_async_path(trigger: str) -> None:
    svc, sink = make(PeekCache(tok(whitelist=Whitelist.ALWAYS)), concurrent_check_on_authorize=True)
    assert svc.try_now(req(trigger=trigger)) is NEED_IO
    assert sink.entries == []


async def test_command_preauthorization_is_answered_from_memory() -> None:
    svc, sink = make(PeekCache())
    svc.preauthorize(
        "CP1",
        "04A1B2C3",
        Decision(AuthStatus.ACCEPTED, Source.REMOTE, authorization_reference="R1"),
    )
    d = svc.try_now(req())
    assert d is not NEED_IO and d.source is Source.COMMAND and d.authorization_reference == "R1"
    assert [e.source for e in sink.entries] == ["command"]


async def test_cache_hit_decisions_are_reused_within_a_second_and_rebuilt_after() -> None:
    """The per-token memo gives the same Decision while the token object and the expiry
    second are the same; a new second or a changed token (a new object) builds anew."""
    token = tok(whitelist=Whitelist.ALWAYS)
    cache = PeekCache(token)
    svc, sink = make(cache)
    first = svc.try_now(req())
    assert first is not NEED_IO and first.status is AuthStatus.ACCEPTED
    assert svc.try_now(req()) is first
    svc.clock.wall += timedelta(seconds=1)  # type: ignore[attr-defined]
    later = svc.try_now(req())
    assert later is not first and later is not NEED_IO
    assert first is not NEED_IO and later.expiry_date != first.expiry_date
    blocked = dataclasses.replace(token, valid=False)
    cache.tokens = [blocked]
    changed = svc.try_now(req())
    assert changed is not NEED_IO and changed.status is AuthStatus.INVALID
    assert len(sink.entries) == 4  # every answer is still recorded


class StoredCards:
    """OwnCards that must read a store for every uid (as without roaming)."""

    def __init__(self, *cards: OwnCard) -> None:
        self.cards = {normalise(c.id_tag): c for c in cards}
        self.reads = 0

    def held(self, uid_norm: str) -> OwnCard | Literal[NeedIO.NEED_IO] | None:
        return NEED_IO

    async def get(self, uid_norm: str) -> OwnCard | None:
        self.reads += 1
        return self.cards.get(uid_norm)

    async def reload(self) -> None:
        pass


FLEET = OwnCard("Fleet-01", AuthStatus.ACCEPTED, parent_id_tag="FLEET")


async def test_own_cards_held_in_memory_are_decided_now_and_come_first() -> None:
    own_in_cache = tok(uid="FLEET-01", whitelist=Whitelist.ALWAYS, valid=False)
    svc, sink = make(PeekCache(own_in_cache, tok(whitelist=Whitelist.ALWAYS)))
    svc.own_cards = HeldOwnCards(repo=None, cards={"FLEET-01": FLEET})  # type: ignore[arg-type]
    svc.preauthorize("CP1", "fleet-01", Decision(AuthStatus.BLOCKED, Source.REMOTE))
    d = svc.try_now(req("fleet-01"))
    assert d is not NEED_IO and (d.status, d.source) == (AuthStatus.ACCEPTED, Source.LOCAL)
    assert d.parent_id_tag == "FLEET" and d.expiry_date == "2024-05-04T12:00:00Z"
    start = svc.try_now(req("fleet-01", trigger="StartTransaction"))  # no ConcurrentTx query
    assert start is not NEED_IO and start.source is Source.LOCAL
    other = svc.try_now(req())  # not an own card: the roaming cache decides
    assert other is not NEED_IO and other.source is Source.CACHE
    assert [e.source for e in sink.entries] == ["local", "local", "cache"]


async def test_own_cards_in_a_store_are_decided_by_decide() -> None:
    cards = StoredCards(FLEET)
    svc = AuthorizationService(own_cards=cards, clock=FakeClock(), sink=(sink := ListSink()))
    assert svc.try_now(req("fleet-01")) is NEED_IO and cards.reads == 0
    d = await svc.decide(req("fleet-01"))
    assert (d.status, d.source, d.reason) == (
        AuthStatus.ACCEPTED,
        Source.LOCAL,
        "idTag is Accepted",
    )
    unknown = await svc.decide(req("nope"))
    assert (unknown.status, unknown.reason) == (AuthStatus.INVALID, "unknown idTag")
    assert [(e.uid, e.source, e.partner_id) for e in sink.entries] == [
        ("fleet-01", "local", None),
        ("nope", "local", None),
    ]


async def test_own_card_decisions_are_reused_within_a_second_and_follow_a_reload() -> None:
    svc, _ = make(PeekCache())
    cards = HeldOwnCards(repo=None, cards={"FLEET-01": FLEET})  # type: ignore[arg-type]
    svc.own_cards = cards
    first = svc.try_now(req("fleet-01"))
    assert first is not NEED_IO and svc.try_now(req("fleet-01")) is first
    cards.cards = {"FLEET-01": dataclasses.replace(FLEET, status=AuthStatus.BLOCKED)}
    blocked = svc.try_now(req("fleet-01"))
    assert blocked is not NEED_IO and blocked.status is AuthStatus.BLOCKED
    # A card with its own expiry is decided afresh: it turns Expired the moment it passes.
    wall = svc.clock.wall  # type: ignore[attr-defined]
    cards.cards = {"FLEET-01": dataclasses.replace(FLEET, expiry=wall + timedelta(seconds=0.5))}
    assert svc.try_now(req("fleet-01")).status is AuthStatus.ACCEPTED  # type: ignore[union-attr]
    svc.clock.wall = wall + timedelta(seconds=0.6)  # type: ignore[attr-defined]
    assert svc.try_now(req("fleet-01")).status is AuthStatus.EXPIRED  # type: ignore[union-attr]
