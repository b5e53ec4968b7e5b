"""The dashboard of one node shows every node: two Systems on one PostgreSQL database,
a real simulated charger on node b, node a's dashboard in Chromium lists both nodes on
the overview and names node b as the charger's node on the Chargers page, live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.csms.admin.test_dashboard_browser import _log_in, _shot, browser, page
from tests.support.csms import admin_url, ocpp_url, running_csms

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["browser", "page"]  # the module's browser and a fresh context per test


@pytest_asyncio.fixture(loop_scope="module")
async def two(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[System, System]]:
    async with AsyncExitStack() as stack:
        systems = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            systems.append(
                await stack.enter_async_context(
                    running_csms(
                        tmp_path / name,
                        store={"url": postgres_url, "pool_size": 4},
                        server={"unknown_chargers": "accept"},
                        cluster={"node_id": f"node-{name}"},
                    )
                )
            )
        yield systems[0], systems[1]


async def test_one_nodes_dashboard_shows_the_others_charger(two, page: Page) -> None:
    a, b = two
    base = admin_url(a)
    await _log_in(page, base)
    await expect(page.locator("h1")).to_have_text("Overview")
    await expect(page.locator('#nodes tr[data-node="node-a"] .state')).to_have_text("alive")
    await expect(page.locator('#nodes tr[data-node="node-b"] .chargers')).to_have_text("0")

    async with SimulatedChargePoint.connect(ocpp_url(b), "CP-ELSEWHERE") as cp:
        await cp.boot()
        # The overview follows without a reload (its live topic includes presence).
        await expect(page.locator('#nodes tr[data-node="node-b"] .chargers')).to_have_text("1")
        await expect(page.locator("#chargers-online")).to_have_text("1")
        await _shot(page, "overview-nodes")

        await page.goto(f"{base}/dashboard/chargers")
        row = page.locator('tr[data-charger="CP-ELSEWHERE"]')
        await expect(row.locator(".connection")).to_have_text("connected")
        await expect(row.locator(".node")).to_have_text("node-b")
        await _shot(page, "chargers-nodes")
    await expect(row.locator(".connection")).to_have_text("disconnected")
    await expect(row.locator(".node")).to_have_text("–")
