"""Caches stay coherent across nodes: two Systems in this process on one PostgreSQL
schema, as two nodes would be, the eMSP sandbox paired with node A, a real simulated
charger on node B.

A write on A (an eMSP token PATCH through A's OCPI endpoint, an own card added through
A's admin API, a partner unregistered on A) reaches B's caches through the bus. With a
long ``cluster.cache_bound_s`` only the notification can explain B following in time;
with a short one and A announcing nothing (as if it died between its commit and its
NOTIFY), B still follows within the bound.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from csms.authz.own_cards import HeldOwnCards
from csms.cluster.bus import PgBus
from csms.cluster.coherence import OWN_CARDS, PARTNERS, TOKENS
from csms.ocpi.authorization import StoreTokenCache
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp import EmspSandbox
from tests.support.csms import admin_session, ocpp_url, running_csms, runtime_of
from tests.support.waiting import scaled, wait_until

CARD = "04C0FFEE01"
OWN = "OWNCARD01"

Nodes = Callable[[float], AbstractAsyncContextManager[tuple[System, System]]]


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Nodes:
    @asynccontextmanager
    async def two(bound_s: float) -> AsyncIterator[tuple[System, System]]:
        async with AsyncExitStack() as stack:
            systems = []
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                systems.append(
                    await stack.enter_async_context(
                        running_csms(
                            tmp_path / name,
                            store={"url": postgres_url, "pool_size": 4},
                            server={"unknown_chargers": "accept", "call_timeout_s": 5.0},
                            ocpi={"enabled": True},
                            authz={"authorize_deadline_s": 2.0},
                            cluster={"node_id": f"node-{name}", "cache_bound_s": bound_s},
                        )
                    )
                )
            yield systems[0], systems[1]

    return two


async def paired(a: System, emsp: EmspSandbox) -> None:
    """The eMSP registers with node A; its tokens are synced (by either node)."""
    async with (
        admin_session(a) as admin,
        admin.post("/api/partners/invite", json={"country_code": "NL", "party_id": "EMS"}) as r,
    ):
        assert r.status in (200, 201), await r.text()
        invite = await r.json()
    await emsp.register_with(invite["versions_url"], invite["token_a"])
    tokens = runtime_of(a).store.tokens

    async def synced() -> bool:
        return bool(await tokens.get_token(CARD, "RFID"))

    await wait_until(synced, what="the eMSP's tokens synced")


def charger(app: System) -> Any:
    return SimulatedChargePoint.connect(
        ocpp_url(app), "CP-ON-B", heartbeat=False, meter_interval_s=0, step_delay_s=0
    )


async def status_of(cp: Any, uid: str) -> str:
    return str((await cp.authorize(uid))["idTagInfo"]["status"])


async def until_status(cp: Any, uid: str, status: str, within_s: float) -> float:
    """Authorize ``uid`` again and again until it is answered ``status``; the seconds it
    took (asserted at most ``within_s``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 <= within_s:
        if await status_of(cp, uid) == status:
            return time.monotonic() - t0
    raise AssertionError(f"{uid} not {status} within {within_s:.1f} s")


def silenced(app: System) -> None:
    """The node announces none of its writes from now on (its NOTIFY is lost)."""
    app.coherence.multi = False


async def test_a_token_patch_on_node_a_invalidates_node_bs_memo(nodes: Nodes):
    async with nodes(60.0) as (a, b), EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALLOWED")
        await paired(a, emsp)
        memo_b: StoreTokenCache = b.authorization.token_cache
        async with charger(b) as cp:
            await cp.boot()
            assert await status_of(cp, CARD) == "Accepted"
            hits = memo_b.hits
            assert await status_of(cp, CARD) == "Accepted"
            assert memo_b.hits > hits, "B answers from its memo"
            heard = b.coherence.topic(TOKENS).received

            blocked = await emsp.block_token(CARD)  # to node A's OCPI endpoint
            assert blocked.status_code == 1000, blocked.body
            took = await until_status(cp, CARD, "Invalid", scaled(3.0))
            assert b.coherence.topic(TOKENS).received > heard
            assert took < 3.0  # far below the 60 s bound: the notification did it
    assert emsp.requests_to("/authorize", "POST") == []  # decided from the caches


async def test_a_lost_token_notification_is_bounded_by_cache_bound_s(nodes: Nodes):
    bound = 1.5
    async with nodes(bound) as (a, b), EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALLOWED")
        await paired(a, emsp)
        async with charger(b) as cp:
            await cp.boot()
            assert await status_of(cp, CARD) == "Accepted"
            assert await status_of(cp, CARD) == "Accepted"
            silenced(a)
            heard = b.coherence.topic(TOKENS).received
            blocked = await emsp.block_token(CARD)
            assert blocked.status_code == 1000, blocked.body
            took = await until_status(cp, CARD, "Invalid", bound + scaled(1.0))
            assert b.coherence.topic(TOKENS).received == heard  # nothing was heard
            assert took <= bound + scaled(0.5)


async def test_an_own_card_added_on_node_a_is_accepted_on_node_b(nodes: Nodes):
    async with nodes(60.0) as (a, b), charger(b) as cp:
        await cp.boot()
        assert await status_of(cp, OWN) == "Invalid"
        async with admin_session(a) as admin, admin.post("/api/tokens", json={"id_tag": OWN}) as r:
            assert r.status == 201, await r.text()
        took = await until_status(cp, OWN, "Accepted", scaled(3.0))
        assert took < 3.0
        assert b.coherence.topic(OWN_CARDS).received >= 1

        async with admin_session(a) as admin, admin.post(f"/api/tokens/{OWN}/block") as r:
            assert r.status == 200, await r.text()
        await until_status(cp, OWN, "Blocked", scaled(3.0))


async def test_a_lost_own_card_notification_is_bounded_by_cache_bound_s(nodes: Nodes):
    bound = 1.5
    async with nodes(bound) as (a, b), charger(b) as cp:
        await cp.boot()
        assert await status_of(cp, OWN) == "Invalid"
        silenced(a)
        async with admin_session(a) as admin, admin.post("/api/tokens", json={"id_tag": OWN}) as r:
            assert r.status == 201, await r.text()
        took = await until_status(cp, OWN, "Accepted", bound + scaled(1.0))
        assert b.coherence.topic(OWN_CARDS).received == 0
        assert took <= bound + scaled(0.5)


async def test_a_partner_unregistered_on_node_a_is_forgotten_by_node_b(nodes: Nodes):
    async with nodes(60.0) as (a, b), EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALLOWED")
        await paired(a, emsp)
        partners_b = runtime_of(b).store.partners
        held = await partners_b.partner_by_key("NL-EMS")
        assert held is not None and held.registered
        assert [p.key for p in await partners_b.registered_partners_with_tokens_sender()] == [
            "NL-EMS"
        ]
        async with admin_session(a) as admin, admin.post("/api/partners/NL-EMS/unregister") as r:
            assert r.status == 200, await r.text()

        async def forgotten() -> bool:
            partner = await partners_b.partner_by_key("NL-EMS")
            return partner is not None and not partner.registered

        await wait_until(forgotten, timeout=3.0, what="node B sees the partner unregistered")
        assert await partners_b.registered_partners_with_tokens_sender() == []
        assert b.coherence.topic(PARTNERS).received >= 1


async def test_a_gap_in_node_bs_bus_flushes_its_caches(nodes: Nodes, postgres_url: str):
    """Whatever was announced while B's listening connection was down is lost: B
    forgets its token memo, its partner memo and reloads its own cards."""
    async with nodes(60.0) as (a, b), EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALLOWED")
        await paired(a, emsp)
        memo_b: StoreTokenCache = b.authorization.token_cache

        async def memoised() -> bool:  # a read raced by the sync's notifications is not kept
            await memo_b.lookup(CARD, "RFID")
            return memo_b.peek(CARD, "RFID") is not None

        await wait_until(memoised, what="the token in B's memo")
        held = b.authorization.service.own_cards
        assert isinstance(held, HeldOwnCards)
        reloads = held.reloads
        bus = b.cluster.bus
        assert isinstance(bus, PgBus) and bus._conn is not None
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", bus._conn.get_server_pid())
        finally:
            await conn.close()
        await wait_until(lambda: memo_b.peek(CARD, "RFID") is None, what="B's memo flushed")
        await wait_until(lambda: held.reloads > reloads, what="B's own cards reloaded")
