"""The service shell: which eMSP is asked, the deadline, reuse, commands, ConcurrentTx.

Ports are fakes here (a controllable eMSP, a shifted clock); the same behaviours are
shown over real sockets in the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from csms.authz.model import (
    Allowed,
    AuthMethod,
    AuthRequest,
    AuthStatus,
    Decision,
    FallbackRules,
    RemoteVerdict,
    Source,
    TokenUnknown,
    Unreachable,
    UnreachableKind,
    Whitelist,
)
from csms.authz.service import AuthorizationService
from csms.authz.settings import AuthzSettings
from tests.csms.authz.fakes import (
    FakeCache,
    FakeClock,
    FakeLocations,
    FakeRemote,
    FakeTransactions,
    ListSink,
    tok,
)
from tests.support.waiting import wait_until

DEADLINE = 0.3
MARGIN = 0.15


def allow(ref: str = "AuTh-1", partner: str = "NL-EMS", token=None):
    async def behave(uid, location):
        return RemoteVerdict(
            partner_id=partner,
            allowed=Allowed.ALLOWED,
            token=token,
            authorization_reference=ref,
            display_text="hi",
            location=location,
        )

    return behave


def answer(outcome, delay: float = 0.0):
    async def behave(uid, location):
        if delay:
            await asyncio.sleep(delay)
        return outcome

    return behave


async def hang(uid, location):
    """An eMSP that never answers: waits until the service cancels the call."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def make(cache, remote, **kw):
    settings = kw.pop("settings", AuthzSettings(deadline_s=DEADLINE))
    sink = ListSink()
    svc = AuthorizationService(
        cache=cache,
        remote=remote,
        settings=settings,
        clock=kw.pop("clock", FakeClock()),
        locations=FakeLocations(),
        transactions=kw.pop("transactions", FakeTransactions()),
        sink=sink,
        learner=cache,
        **kw,
    )
    return svc, sink


def req(uid="04a1b2c3", charger="CP1", trigger="Authorize", connector=None, received_at=None):
    return AuthRequest(charger, uid, trigger, connector, received_at=received_at)


async def test_cache_hit_makes_no_remote_call_and_is_recorded():
    remote = FakeRemote(NL_EMS=hang)
    svc, sink = make(FakeCache(tok(whitelist=Whitelist.ALWAYS)), remote)
    d = await svc.decide(req("04A1b2c3"))
    assert (d.status, d.source, d.auth_method) == (
        AuthStatus.ACCEPTED,
        Source.CACHE,
        AuthMethod.WHITELIST,
    )
    assert d.expiry_date == "2024-05-04T12:00:00Z"
    assert remote.calls == []
    [e] = sink.entries
    assert (e.uid, e.uid_norm, e.source, e.status, e.partner_id) == (
        "04A1b2c3",
        "04A1B2C3",
        "cache",
        "Accepted",
        "NL-EMS",
    )


@pytest.mark.parametrize("wl", [Whitelist.NEVER, Whitelist.ALLOWED_OFFLINE])
async def test_remote_whitelists_ask_the_tokens_emsp_with_location_refs(wl):
    remote = FakeRemote(NL_EMS=allow("AuTh-MiXeD"), DE_OTH=hang)
    svc, sink = make(FakeCache(tok(whitelist=wl)), remote)
    d = await svc.decide(req(connector=2))
    assert (d.status, d.source, d.auth_method) == (
        AuthStatus.ACCEPTED,
        Source.REMOTE,
        AuthMethod.AUTH_REQUEST,
    )
    assert d.authorization_reference == "AuTh-MiXeD"
    [(partner, uid, refs, deadline)] = remote.calls
    assert (partner, uid) == ("NL-EMS", "04a1b2c3")  # uid as the charger presented it
    assert refs.location_id == "LOC-CP1" and refs.evse_uids == ("CP1-2",)
    assert 0 < deadline <= DEADLINE
    assert sink.entries[0].authorization_reference == "AuTh-MiXeD"


async def test_hung_emsp_gets_fallback_at_the_deadline_and_late_call_is_cancelled():
    remote = FakeRemote(NL_EMS=hang)
    svc, sink = make(FakeCache(tok(whitelist=Whitelist.ALLOWED_OFFLINE)), remote)
    t0 = time.monotonic()
    d = await svc.decide(req())
    took = time.monotonic() - t0
    assert DEADLINE - 0.05 <= took < DEADLINE + MARGIN
    assert (d.status, d.source) == (AuthStatus.ACCEPTED, Source.FALLBACK)
    assert "timeout" in d.reason
    await wait_until(lambda: remote.cancelled == ["NL-EMS"], what="the hung call cancelled")
    assert sink.entries[0].latency_ms >= (DEADLINE - 0.05) * 1000


async def test_reply_reserve_moves_the_fallback_ahead_of_the_deadline():
    """``reply_reserve_s`` is kept back for answering: the wait ends that much earlier."""
    reserve = 0.1
    settings = AuthzSettings(deadline_s=DEADLINE, reply_reserve_s=reserve)
    remote = FakeRemote(NL_EMS=hang)
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.ALLOWED_OFFLINE)), remote, settings=settings)
    t0 = time.monotonic()
    d = await svc.decide(req())
    took = time.monotonic() - t0
    # Timers never fire early, so the lower bound is exact; the upper bound only says the
    # answer came before the deadline (a loaded machine delays wake-ups, never advances them).
    assert DEADLINE - reserve - 0.01 <= took < DEADLINE
    assert d.source is Source.FALLBACK
    [(_, _, _, budget)] = remote.calls
    assert budget <= DEADLINE - reserve  # the eMSP client's own timeout is the shorter one


async def test_late_reply_is_ignored():
    late = answer(RemoteVerdict(partner_id="NL-EMS", allowed=Allowed.ALLOWED), delay=DEADLINE + 0.2)
    remote = FakeRemote(NL_EMS=late)
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.NEVER)), remote)
    d = await svc.decide(req())
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.FALLBACK)
    await wait_until(lambda: remote.cancelled == ["NL-EMS"], what="the late call cancelled")


async def test_deadline_counts_from_received_at():
    clock = FakeClock()
    remote = FakeRemote(NL_EMS=hang)
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.ALLOWED_OFFLINE)), remote, clock=clock)
    t0 = time.monotonic()
    d = await svc.decide(req(received_at=clock.monotonic() - (DEADLINE - 0.1)))
    assert time.monotonic() - t0 < 0.1 + MARGIN
    assert d.source is Source.FALLBACK


async def test_spent_deadline_answers_at_once_without_calling():
    clock = FakeClock()
    remote = FakeRemote(NL_EMS=hang)
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.NEVER)), remote, clock=clock)
    d = await svc.decide(req(received_at=clock.monotonic() - 10))
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.FALLBACK)
    assert remote.calls == []


async def test_partner_deadline_override_and_rules():
    settings = AuthzSettings(
        deadline_s=DEADLINE,
        partner_deadlines={"NL-EMS": 0.1},
        partner_rules={"NL-EMS": FallbackRules(allowed_offline_accept=False)},
    )
    svc, _ = make(
        FakeCache(tok(whitelist=Whitelist.ALLOWED_OFFLINE)),
        FakeRemote(NL_EMS=hang),
        settings=settings,
    )
    t0 = time.monotonic()
    d = await svc.decide(req())
    assert time.monotonic() - t0 < 0.1 + MARGIN
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.FALLBACK)


@pytest.mark.parametrize(
    "kind", [UnreachableKind.SERVER_ERROR, UnreachableKind.MALFORMED, UnreachableKind.CONNECTION]
)
async def test_unreachable_outcomes_fall_back(kind):
    remote = FakeRemote(NL_EMS=answer(Unreachable("NL-EMS", kind, "x")))
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.ALLOWED_OFFLINE)), remote)
    d = await svc.decide(req())
    assert (d.status, d.source) == (AuthStatus.ACCEPTED, Source.FALLBACK)
    assert kind.value in d.reason


async def test_remote_port_raising_is_a_fallback_not_a_crash():
    async def boom(uid, location):
        raise RuntimeError("bug in adapter")

    svc, _ = make(FakeCache(tok(whitelist=Whitelist.NEVER)), FakeRemote(NL_EMS=boom))
    d = await svc.decide(req())
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.FALLBACK)


async def test_cache_failure_is_an_invalid_fallback():
    cache = FakeCache()
    cache.fail = OSError("disk")
    svc, sink = make(cache, FakeRemote(NL_EMS=hang))
    d = await svc.decide(req())
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.FALLBACK)
    assert "disk" in sink.entries[0].reason


async def test_unknown_token_404_is_invalid_without_fallback():
    svc, _ = make(
        FakeCache(tok(whitelist=Whitelist.ALLOWED_OFFLINE)),
        FakeRemote(NL_EMS=answer(TokenUnknown("NL-EMS"))),
    )
    d = await svc.decide(req())
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.REMOTE)


async def test_fan_out_first_allowed_wins_and_cancels_the_rest():
    remote = FakeRemote(
        NL_AAA=answer(TokenUnknown("NL-AAA")),
        DE_BBB=allow("REF-B", partner="DE-BBB", token=tok(party="BBB", country="DE")),
        FR_CCC=hang,
    )
    cache = FakeCache()
    svc, _ = make(cache, remote)
    t0 = time.monotonic()
    d = await svc.decide(req())
    assert time.monotonic() - t0 < DEADLINE / 2
    assert (d.status, d.partner_id, d.authorization_reference) == (
        AuthStatus.ACCEPTED,
        "DE-BBB",
        "REF-B",
    )
    assert {c[0] for c in remote.calls} == {"NL-AAA", "DE-BBB", "FR-CCC"}
    await wait_until(lambda: cache.learned, what="the token learnt in the background")
    assert remote.cancelled == ["FR-CCC"]
    assert [t.partner_id for t in cache.learned] == ["DE-BBB"]


async def test_fan_out_all_unknown_is_invalid_remote():
    remote = FakeRemote(
        NL_AAA=answer(TokenUnknown("NL-AAA")), DE_BBB=answer(TokenUnknown("DE-BBB"))
    )
    svc, _ = make(FakeCache(), remote)
    d = await svc.decide(req())
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.REMOTE)


async def test_fan_out_unknown_and_unreachable_is_invalid_fallback():
    remote = FakeRemote(NL_AAA=answer(TokenUnknown("NL-AAA")), DE_BBB=hang)
    svc, _ = make(FakeCache(), remote)
    t0 = time.monotonic()
    d = await svc.decide(req())
    assert time.monotonic() - t0 < DEADLINE + MARGIN
    assert (d.status, d.source) == (AuthStatus.INVALID, Source.FALLBACK)


async def test_fan_out_definite_no_from_one_emsp_beats_a_hung_other():
    blocked = RemoteVerdict(partner_id="NL-AAA", allowed=Allowed.BLOCKED)
    svc, _ = make(FakeCache(), FakeRemote(NL_AAA=answer(blocked), DE_BBB=hang))
    d = await svc.decide(req())
    assert (d.status, d.source, d.partner_id) == (AuthStatus.BLOCKED, Source.REMOTE, "NL-AAA")


async def test_no_emsp_at_all_is_invalid():
    svc, _ = make(FakeCache(), FakeRemote())
    d = await svc.decide(req())
    assert d.status is AuthStatus.INVALID


async def test_uid_prefix_routing_avoids_the_fan_out():
    remote = FakeRemote(NL_AAA=hang, DE_BBB=allow(partner="DE-BBB"))
    settings = AuthzSettings(deadline_s=DEADLINE, uid_prefixes={"DE-BBB": ("04A1",)})
    svc, _ = make(FakeCache(), remote, settings=settings)
    d = await svc.decide(req("04a1ffff"))
    assert d.accepted and [c[0] for c in remote.calls] == ["DE-BBB"]


async def test_start_transaction_reuses_a_recent_authorize():
    remote = FakeRemote(NL_EMS=allow("AuTh-Keep"))
    clock = FakeClock()
    svc, sink = make(FakeCache(tok(whitelist=Whitelist.NEVER)), remote, clock=clock)
    await svc.decide(req())
    d = await svc.decide(req("04A1B2C3", trigger="StartTransaction", connector=1))
    assert (d.source, d.authorization_reference, d.status) == (
        Source.REUSED,
        "AuTh-Keep",
        AuthStatus.ACCEPTED,
    )
    assert len(remote.calls) == 1
    # another charger, or after the window: asked again
    await svc.decide(req(charger="CP2", trigger="StartTransaction", connector=1))
    clock.skew += 901
    d = await svc.decide(req(trigger="StartTransaction", connector=1))
    assert d.source is Source.REMOTE and len(remote.calls) == 3
    assert [e.source for e in sink.entries] == ["remote", "reused", "remote", "remote"]


async def test_preauthorized_command_skips_the_real_time_call_for_its_ttl():
    remote = FakeRemote(NL_EMS=hang)
    clock = FakeClock()
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.NEVER)), remote, clock=clock)
    svc.preauthorize(
        "CP1",
        "04a1B2c3",
        Decision(AuthStatus.ACCEPTED, Source.REMOTE, authorization_reference="CMD-Ref-1"),
        ttl_s=900,
    )
    d = await svc.decide(req(trigger="StartTransaction", connector=1))
    assert (d.source, d.auth_method, d.authorization_reference) == (
        Source.COMMAND,
        AuthMethod.COMMAND,
        "CMD-Ref-1",
    )
    assert remote.calls == []
    clock.skew += 901
    d = await svc.decide(req(trigger="StartTransaction", connector=1))
    assert d.source is Source.FALLBACK and len(remote.calls) == 1


async def test_concurrent_tx():
    txs = FakeTransactions()
    txs.active["04A1B2C3"] = [("CP9", 1)]
    svc, _ = make(FakeCache(tok(whitelist=Whitelist.ALWAYS)), FakeRemote(), transactions=txs)
    d = await svc.decide(req(trigger="StartTransaction", connector=1))
    assert d.status is AuthStatus.CONCURRENT_TX and d.expiry_date is None
    # at the same charger an Authorize is most likely the driver stopping: accepted
    d = await svc.decide(req(charger="CP9"))
    assert d.status is AuthStatus.ACCEPTED
    # the StartTransaction's own row does not count against it
    d = await svc.decide(req(charger="CP9", trigger="StartTransaction", connector=1))
    assert d.status is AuthStatus.ACCEPTED
    allow_all = AuthzSettings(deadline_s=DEADLINE, concurrent_tx="allow")
    svc, _ = make(
        FakeCache(tok(whitelist=Whitelist.ALWAYS)),
        FakeRemote(),
        transactions=txs,
        settings=allow_all,
    )
    d = await svc.decide(req(trigger="StartTransaction", connector=1))
    assert d.status is AuthStatus.ACCEPTED


def test_settings_from_config(tmp_path):
    from csms.config import load

    path = tmp_path / "c.toml"
    path.write_text(
        '[partners.nl-ems]\nauthorize_deadline_s = 1.5\nfallback_allowed_offline = "reject"\n'
        'uid_prefixes = ["04a1"]\n'
    )
    cfg = load(
        path,
        {
            "CSMS__AUTHZ__AUTHORIZE_DEADLINE_S": "2",
            "CSMS__AUTHZ__CONCURRENT_TX": "allow",
        },
    )
    s = AuthzSettings.from_config(cfg)
    assert (s.deadline_s, s.concurrent_tx, s.reuse_window_s) == (2.0, "allow", 900.0)
    assert s.rules_for("nl-x") == FallbackRules()
    assert s.rules_for("nl-ems") == FallbackRules(allowed_offline_accept=False)
    assert (s.deadline_for("NL-EMS"), s.deadline_for("DE-X")) == (1.5, 2.0)
    assert s.route("04A1FF") == ["NL-EMS"] and s.route("05") == []


async def test_concurrent_tx_on_authorize_when_asked():
    txs = FakeTransactions()
    txs.active["04A1B2C3"] = [("CP9", 1)]
    settings = AuthzSettings(deadline_s=DEADLINE, concurrent_check_on_authorize=True)
    svc, _ = make(
        FakeCache(tok(whitelist=Whitelist.ALWAYS)),
        FakeRemote(),
        transactions=txs,
        settings=settings,
    )
    assert (await svc.decide(req())).status is AuthStatus.CONCURRENT_TX
    assert (await svc.decide(req(charger="CP9"))).status is AuthStatus.ACCEPTED


async def test_memory_cache_hit_needs_no_lookup_and_remote_tokens_still_go_remote():
    class MemoCache(FakeCache):
        def peek(self, uid_norm, token_type):
            return [t for t in self.tokens if t.uid_norm == uid_norm]

    cache = MemoCache(tok(whitelist=Whitelist.ALWAYS), tok(uid="NEVER1", whitelist=Whitelist.NEVER))
    remote = FakeRemote(NL_EMS=allow())
    svc, sink = make(cache, remote)
    assert (await svc.decide(req())).source is Source.CACHE
    assert cache.lookups == 0
    assert (await svc.decide(req("never1"))).source is Source.REMOTE
    assert len(remote.calls) == 1
    assert [e.source for e in sink.entries] == ["cache", "remote"]
