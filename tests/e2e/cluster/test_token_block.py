"""A token blocked by an eMSP PATCH on node A is refused on node B within the bound.

Two real ``csms serve`` processes on one PostgreSQL database, the eMSP sandbox paired
with node A through the real credentials handshake, the real simulator connected to
node B. The token is whitelist ALWAYS: node B decides it from its token cache, so only
the cache's coherence (a notification through PostgreSQL, or failing that the age bound
``cluster.cache_bound_s``, 5 s by default) can make B refuse it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp import EmspSandbox
from tests.support.nodes import Node, csms_nodes
from tests.support.waiting import scaled, wait_until

CARD = "04B10C4ED1"
BOUND_S = 5.0  # cluster.cache_bound_s, the documented default


@pytest.fixture
async def nodes(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[Node]]:
    async with csms_nodes(tmp_path, postgres_url, 2, ocpi=True) as started:
        yield started


async def pair(node: Node, emsp: EmspSandbox) -> None:
    """The real handshake with ``node``; then wait for a complete token sync."""
    invite = await node.admin(
        "POST", "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"}
    )
    await emsp.register_with(invite["versions_url"], invite["token_a"])

    async def synced() -> bool:
        detail = await node.admin("GET", "/api/partners/NL-EMS")
        return any(run["status"] == "complete" for run in detail["sync_runs"])

    await wait_until(synced, timeout=15, what="a complete token sync")


async def status_of(cp: Any, uid: str) -> str:
    return str((await cp.authorize(uid))["idTagInfo"]["status"])


async def test_a_token_blocked_on_node_a_is_refused_on_node_b_within_the_bound(
    nodes: list[Node],
):
    a, b = nodes
    async with EmspSandbox.start(control_port=None) as emsp:
        emsp.add_token(CARD, whitelist="ALWAYS")
        await pair(a, emsp)
        async with SimulatedChargePoint.connect(
            b.ocpp_url, "CP-B-BLOCK", heartbeat=False, meter_interval_s=0, step_delay_s=0
        ) as cp:
            await cp.boot()
            assert await status_of(cp, CARD) == "Accepted"
            assert await status_of(cp, CARD) == "Accepted"  # from node B's cache

            t0 = time.monotonic()
            blocked = await emsp.block_token(CARD)  # PATCH valid=false to node A
            assert blocked.http_status == 200 and blocked.status_code == 1000, blocked.body
            assert emsp.state.peer.versions_url is not None
            assert str(a.ocpi_port) in emsp.state.peer.versions_url  # A got the PATCH
            status = "Accepted"
            while status == "Accepted" and time.monotonic() - t0 < scaled(2 * BOUND_S):
                status = await status_of(cp, CARD)
            took = time.monotonic() - t0
            assert status == "Invalid", f"still {status} after {took:.2f} s"
            assert took < BOUND_S, f"refused after {took:.2f} s, the bound is {BOUND_S} s"
            print(f"\nnode B refused the token {took * 1000:.0f} ms after node A's PATCH")
    # ALWAYS: decided from the cache every time, the eMSP was never asked in real time.
    assert emsp.requests_to("/authorize", "POST") == []
