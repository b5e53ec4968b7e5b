"""Token writes reach the authorizer's memo at once; a push during a full sync survives it.

Everything is real and wired as in production: the CSMS with OCPI enabled (so the
authorizer's memo sits in front of the same ``RoamingStore`` the OCPI server writes),
the eMSP sandbox registered through the credentials handshake, and the simulated charge
point over OCPP. The memo TTL is raised to 60 s so that a missed invalidation shows up
as a wrong answer instead of being hidden by expiry on a slow machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import simulator.emsp.app as emsp_app
from csms.ocpi.authorization import StoreTokenCache
from csms.system import System
from roaming.partners import Partner
from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp import EmspSandbox
from tests.support.csms import admin_session, ocpp_url, running_csms, runtime_of
from tests.support.waiting import wait_until

CARD = "04C0FFEE01"
PUSHED = "04PUSHED77"


@pytest.fixture
async def csms(tmp_path) -> AsyncIterator[System]:
    async with running_csms(
        tmp_path,
        server={"unknown_chargers": "accept", "call_timeout_s": 5.0},
        ocpi={"enabled": True},
        authz={"authorize_deadline_s": 2.0},
    ) as app:
        cache: StoreTokenCache = app.authorization.token_cache
        cache.ttl_s = 60.0
        yield app


async def registered(app: System, emsp: EmspSandbox) -> Partner:
    """The real handshake, then wait for the full sync that follows registration."""
    async with (
        admin_session(app) as admin,
        admin.post("/api/partners/invite", json={"country_code": "NL", "party_id": "EMS"}) as r,
    ):
        assert r.status in (200, 201), await r.text()
        invite = await r.json()
    await emsp.register_with(invite["versions_url"], invite["token_a"])
    store = runtime_of(app).store
    partner = await store.partners.partner_by_key("NL-EMS")
    assert partner is not None
    await wait_for(lambda: _complete_runs(app, partner), 1)
    # The run's row says "complete" a moment before its lock is released.
    sync = runtime_of(app).sync
    await wait_until(lambda: not sync.running(partner), what="the sync run's lock released")
    return partner


async def _complete_runs(app: System, partner: Partner) -> int:
    runs = await runtime_of(app).store.token_syncs.sync_runs(partner.id)
    return sum(1 for r in runs if r.status == "complete")


async def wait_for(
    probe: Callable[[], Awaitable[int]], at_least: int, timeout: float = 5.0
) -> None:
    async def reached() -> bool:
        return await probe() >= at_least

    await wait_until(reached, timeout=timeout, what=f"at least {at_least}")


def charger(app: System) -> Any:
    return SimulatedChargePoint.connect(
        ocpp_url(app), "CP-COHERE", heartbeat=False, meter_interval_s=0, step_delay_s=0
    )


async def status_of(cp: Any, uid: str) -> str:
    return (await cp.authorize(uid))["idTagInfo"]["status"]


async def test_blocking_patch_is_seen_by_the_very_next_authorize(csms: System):
    cache: StoreTokenCache = csms.authorization.token_cache
    async with EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALLOWED")
        await registered(csms, emsp)
        async with charger(csms) as cp:
            await cp.boot()
            assert await status_of(cp, CARD) == "Accepted"  # memo miss: read from the store
            hits = cache.hits
            assert await status_of(cp, CARD.lower()) == "Accepted"
            assert cache.hits > hits, "the second Authorize must be a memo hit"

            blocked = await emsp.block_token(CARD)
            assert blocked.http_status == 200 and blocked.status_code == 1000, blocked.body
            assert await status_of(cp, CARD) == "Invalid"  # no sleep: the memo was told

            # Unblocking by PUT (not PATCH) is seen at once too.
            rec = emsp.tokens.get(CARD)
            assert rec is not None
            rec.token.update(valid=True, last_updated="2099-01-01T00:00:00Z")
            assert (await emsp.push_token(CARD)).status_code == 1000
            assert await status_of(cp, CARD) == "Accepted"
    assert emsp.requests_to("/authorize", "POST") == []  # all decided from the cache


async def test_token_removed_by_a_full_sync_is_refused_at_once(csms: System):
    async with EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALLOWED")
        emsp.add_token("04OTHER001", whitelist="ALLOWED")
        partner = await registered(csms, emsp)
        async with charger(csms) as cp:
            await cp.boot()
            assert await status_of(cp, CARD) == "Accepted"
            assert await status_of(cp, CARD) == "Accepted"  # now held by the memo

            keep = [r for r in emsp.tokens.records() if r.uid.upper() != CARD]
            emsp.tokens.clear()
            for rec in keep:
                emsp.tokens.put(rec.token, rec.allowed)
            outcome = await runtime_of(csms).sync.run(partner)
            assert outcome.ok and outcome.run.tokens_removed == 1

            # Unknown now: the eMSP is asked in real time and does not know it either.
            assert await status_of(cp, CARD) == "Invalid"
            assert await status_of(cp, "04OTHER001") == "Accepted"
    assert [c.path.rsplit("/", 2)[-2] for c in emsp.requests_to("/authorize", "POST")] == [CARD]


async def test_token_pushed_during_a_full_sync_survives_its_removal_sweep(
    csms: System, monkeypatch: pytest.MonkeyPatch
):
    """The sync is held on page 2 (a page we release), the eMSP pushes a token that is
    in none of the sync's pages, then the sync finishes and sweeps."""
    gate = asyncio.Event()
    held = asyncio.Event()
    real_list = emsp_app.list_tokens

    async def list_tokens_held_after_page_1(request: web.Request) -> web.StreamResponse:
        if int(request.query.get("offset", "0")) > 0:
            held.set()
            await gate.wait()
        return await real_list(request)

    monkeypatch.setattr(emsp_app, "list_tokens", list_tokens_held_after_page_1)
    async with EmspSandbox.start(control_port=None, page_limit=2) as emsp:
        for n in range(5):
            emsp.add_token(f"04LISTED{n:02d}", whitelist="ALLOWED")
        gate.set()  # the sync after registration runs through
        partner = await registered(csms, emsp)
        gate.clear()
        held.clear()

        runtime = runtime_of(csms)
        sync = asyncio.create_task(runtime.sync.run(partner))
        async with asyncio.timeout(5):
            await held.wait()  # page 1 is stored, page 2 is being served... slowly

        pushed = {
            "country_code": "NL",
            "party_id": "EMS",
            "uid": PUSHED,
            "type": "RFID",
            "contract_id": "NL-EMS-C-PUSHED77",
            "issuer": "eMSP Sandbox",
            "valid": True,
            "whitelist": "ALLOWED",
            "last_updated": "2024-06-01T12:00:00Z",
        }
        reply = await emsp.call_peer(
            "PUT", "tokens", "RECEIVER", "NL", "EMS", PUSHED, body=pushed, query="?type=RFID"
        )
        assert reply.http_status == 201 and reply.status_code == 1000, reply.body
        assert not sync.done()

        emsp.tokens.clear()  # the rest of the list now lacks 04LISTED02..04 as well
        for n in range(2):
            emsp.add_token(f"04LISTED{n:02d}", whitelist="ALLOWED")
        gate.set()
        outcome = await sync
        assert outcome.ok and outcome.run.status == "complete"
        assert outcome.run.tokens_seen == 2  # the pushed token was in none of its pages
        # The sweep did run (the three tokens missing from the list are gone) ...
        assert outcome.run.tokens_removed == 3
        # ... but not over the token pushed while it ran.
        [stored] = await runtime.store.tokens.get_token(PUSHED, "RFID")
        assert stored.removed is False
        async with charger(csms) as cp:
            await cp.boot()
            assert await status_of(cp, PUSHED) == "Accepted"
            assert await status_of(cp, "04LISTED03") == "Invalid"
        # Decided from our copy: the eMSP was never asked about the pushed token.
        asked = [c.path.rsplit("/", 2)[-2] for c in emsp.requests_to("/authorize", "POST")]
        assert asked == ["04LISTED03"]


async def test_a_store_read_that_raced_a_write_is_answered_but_not_memoised(csms: System):
    """The read started before the write's invalidation: its (old) rows must not go
    back into the memo, or the write would be hidden until the TTL."""
    cache: StoreTokenCache = csms.authorization.token_cache
    in_flight = asyncio.create_task(cache.lookup(CARD, "RFID"))
    await asyncio.sleep(0)  # the task is now waiting for the database thread
    assert not in_flight.done()
    cache.on_tokens_changed({CARD})
    assert await in_flight == ()
    assert cache.peek(CARD, "RFID") is None
    await cache.lookup(CARD, "RFID")  # an undisturbed read is memoised
    assert cache.peek(CARD, "RFID") == ()
    cache.on_tokens_changed(None)  # a sweep forgets everything
    assert cache.peek(CARD, "RFID") is None


async def test_a_patch_between_a_page_fetch_and_its_write_is_not_undone_by_the_page(
    csms: System, monkeypatch: pytest.MonkeyPatch
):
    """Page 2 is built (the card still valid in it), then held; meanwhile the eMSP
    blocks the card by PATCH. When the stale page lands, the newer PATCH must stand."""
    gate = asyncio.Event()
    held = asyncio.Event()
    real_list = emsp_app.list_tokens

    async def page_built_then_held(request: web.Request) -> web.StreamResponse:
        response = await real_list(request)  # the snapshot is taken here
        if int(request.query.get("offset", "0")) > 0:
            held.set()
            await gate.wait()
        return response

    monkeypatch.setattr(emsp_app, "list_tokens", page_built_then_held)
    async with EmspSandbox.start(control_port=None, page_limit=2) as emsp:
        emsp.add_token("04FIRST001", whitelist="ALLOWED")
        emsp.add_token("04FIRST002", whitelist="ALLOWED")
        emsp.add_token(CARD, whitelist="ALLOWED", last_updated="2024-01-01T00:00:00Z")
        gate.set()
        partner = await registered(csms, emsp)
        gate.clear()
        held.clear()
        sync = asyncio.create_task(runtime_of(csms).sync.run(partner))
        async with asyncio.timeout(5):
            await held.wait()
        blocked = await emsp.block_token(CARD)  # last_updated: now, newer than the page's
        assert blocked.status_code == 1000, blocked.body
        gate.set()
        outcome = await sync
        assert outcome.ok and outcome.run.tokens_seen == 3 and outcome.run.tokens_removed == 0
        [stored] = await runtime_of(csms).store.tokens.get_token(CARD, "RFID")
        assert stored.token.valid is False and stored.removed is False
        async with charger(csms) as cp:
            await cp.boot()
            assert await status_of(cp, CARD) == "Invalid"
            assert await status_of(cp, "04FIRST002") == "Accepted"
