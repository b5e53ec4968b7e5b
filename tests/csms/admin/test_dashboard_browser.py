"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` package)
driven by Playwright against a real CSMS, the real charge point simulator and, with
OCPI on, the eMSP sandbox.

Chromium missing is a FAILURE, not a skip: ``.ci/run`` installs it, and a dashboard
nobody has looked at in a browser is not tested. One browser serves the module; each
test gets its own browser context (cookies) and its own CSMS. A screenshot of every
page is written to ``var/screenshots/<page>.png``.

Waiting is Playwright's auto-waiting ``expect`` (bounded by ``TIMEOUT_MS``); the one
store condition is waited for with :func:`tests.support.waiting.wait_until`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from csms.system import System
from tests.e2e.roaming.conftest import world
from tests.support.csms import ADMIN_TOKEN, admin_session, admin_url, running_csms
from tests.support.waiting import scaled, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"
TIMEOUT_MS = scaled(15) * 1000
TAG = "04A1B2C3D4E5F6"  # an eMSP token, authorized in real time
MASKED_TAG = "04A1…F6"


def _require_chromium() -> None:
    """Fail (never skip) without Chromium; make the screenshot folder."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's "
            "`chromium` package (apt-get install -y chromium; .ci/run installs it)"
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    _require_chromium()
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _log_in(page: Page, base: str, token: str = ADMIN_TOKEN) -> None:
    await page.goto(f"{base}/dashboard/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.fill('input[name="token"]', token)
    await page.click('button[type="submit"]')


async def _shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_wrong_token_is_refused_and_a_write_without_csrf_is_403(
    tmp_path: Path, page: Page
) -> None:
    async with running_csms(tmp_path) as app:
        base = admin_url(app)
        await _log_in(page, base, token="not-the-admin-token")
        await expect(page.locator("#login-error")).to_have_text("wrong admin token")
        await expect(page).to_have_url(re.compile(r"/login$"))
        assert await page.context.cookies() == []
        await _shot(page, "login")

        await page.fill('input[name="token"]', ADMIN_TOKEN)
        await page.click('button[type="submit"]')
        await expect(page.locator("h1")).to_have_text("Overview")
        [cookie] = await page.context.cookies()
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert await page.evaluate("document.cookie") == ""  # scripts cannot read it
        await expect(page.locator("#outbox-backlog")).to_have_text("roaming off")

        statuses = await page.evaluate(
            """async () => {
                const csrf = document.querySelector('meta[name="csrf-token"]').content;
                const post = (extra) => fetch('/api/tokens', {
                    method: 'POST',
                    headers: {'Content-Type': 'application/json', ...extra},
                    body: JSON.stringify({id_tag: 'CSRF-TEST'}),
                }).then((r) => r.status);
                return [await post({}), await post({'X-CSRF-Token': csrf})];
            }"""
        )
        assert statuses == [403, 201]  # refused without the token, done with it

        await page.click("text=Log out")
        await expect(page).to_have_url(re.compile(r"/login$"))
        await page.goto(f"{base}/dashboard/chargers")
        await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_an_operator_watches_and_drives_a_roaming_charge(tmp_path: Path, page: Page) -> None:
    async with world(tmp_path) as w:
        app: System = w.app
        base = admin_url(app)
        w.emsp.add_token(TAG, whitelist="NEVER")  # real-time: a reference
        await w.emsp.push_tokens()
        async with admin_session(app) as api:
            assert (await api.post("/api/chargers", json={"id": "CP1"})).status == 201

        await _log_in(page, base)
        await expect(page.locator("h1")).to_have_text("Overview")

        # A charger comes online while the page is open: the row turns without a reload.
        await page.goto(f"{base}/dashboard/chargers")
        row = page.locator('tr[data-charger="CP1"]')
        await expect(row.locator(".connection")).to_have_text("disconnected")
        await page.evaluate("window.notReloaded = true")
        async with w.charger("CP1", meter_interval_s=1, time_scale=360.0) as cp:
            await expect(row.locator(".connection")).to_have_text("connected")
            await expect(row.locator('[data-connector="1"]')).to_have_text("1: Available")
            assert await page.evaluate("window.notReloaded === true")
            await _shot(page, "chargers")

            # Remote start from the charger's page; the charger's answer is shown.
            await row.locator("a").click()
            await expect(page.locator("h1")).to_have_text("Charger CP1")
            start = page.locator("#action-RemoteStartTransaction")
            await start.locator('input[name="idTag"]').fill(TAG)
            await start.locator("button").click()
            await expect(start.locator("output")).to_have_text('{"status":"Accepted"}')
            running = page.locator("#running tr[data-transaction]")
            await expect(running).to_have_count(1)
            tx_id = int(await running.get_attribute("data-transaction") or 0)
            await expect(page.locator('#connectors tr[data-connector="1"] .status')).to_have_text(
                "Charging"
            )
            await _shot(page, "charger")

            # An authorization decision appears live on the decision log.
            await page.goto(f"{base}/dashboard/authorizations")
            decisions = page.locator("#decisions tr[data-decision]")
            before = await decisions.count()
            assert before >= 1
            await expect(decisions.first).to_contain_text(MASKED_TAG)
            assert TAG not in await page.content()  # idTags are masked
            await cp.authorize(TAG)
            await expect(decisions).to_have_count(before + 1)
            await expect(decisions.first.locator(".status")).to_have_text("Accepted")
            await _shot(page, "authorizations")

            # Energy accrues, then the operator stops the charge from the page.
            async def charged() -> bool:
                row = await app.db.fetchone(
                    "SELECT count(*) FROM meter_values WHERE transaction_id = ?", (tx_id,)
                )
                return bool(row and row[0] >= 2)

            await wait_until(charged, timeout=10, what="meter values of the transaction")
            await page.goto(f"{base}/dashboard/chargers/CP1")
            await page.locator("#running form button").click()
            await expect(page.locator("#running tr[data-transaction]")).to_have_count(0)

            # The transaction is listed with its energy, token, partner and CDR delivery.
            async with admin_session(app) as api:
                txn = await (await api.get(f"/api/transactions/{tx_id}")).json()
            assert txn["energy_wh"] > 0
            await page.goto(f"{base}/dashboard/transactions")
            done = page.locator(f'#recent-transactions tr[data-transaction="{tx_id}"]')
            await expect(done.locator(".energy")).to_have_text(f"{txn['energy_wh'] / 1000:.3f} kWh")
            await expect(done).to_contain_text(MASKED_TAG)
            await expect(done).to_contain_text(txn["partner_id"])
            await expect(done).to_contain_text(txn["authorization_reference"])
            await expect(done.locator(".cdr")).to_have_text("delivered")
            await _shot(page, "transactions")

            # A charger the locations file does not know: its connectors show as unmapped.
            await page.goto(f"{base}/dashboard/locations")
            evse = page.locator('#evses tr[data-evse="LOC-1-CP1-1"]')
            await expect(evse).to_contain_text("CP1")
            await expect(evse.locator(".published")).to_have_text("yes")
            await expect(page.locator("#unmapped tr[data-unmapped]")).to_have_count(0)
            async with w.charger("CP2") as cp2:
                await expect(page.locator('#unmapped tr[data-unmapped="CP2/1"]')).to_have_count(1)
                await _shot(page, "locations")
                await page.goto(f"{base}/dashboard/")
                await expect(page.locator("#chargers-online")).to_have_text("2")
                await expect(page.locator("#outbox-backlog")).to_have_text("0")
                await expect(page.locator("#decisions-by-source")).to_contain_text("Accepted")
                await _shot(page, "overview")

                # A roaming charge there: its CDR waits for a location, shown with why.
                await page.goto(f"{base}/dashboard/roaming")
                partner = page.locator("#partners tr[data-partner]")
                await expect(partner).to_have_count(1)
                await expect(partner.locator(".registration")).to_contain_text("registered")
                await expect(partner.locator(".outbox")).to_contain_text("delivered")
                await expect(page.locator("#waiting-cdrs tr[data-message]")).to_have_count(0)
                await cp2.authorize(TAG)
                await cp2.start_transaction(1, TAG, meter_start=0, meter_loop=False)
                await cp2.stop_transaction(1, meter_stop=1500, reason="Local")
                held = page.locator("#waiting-cdrs tr[data-message]")
                await expect(held).to_have_count(1)
                await expect(held.locator(".status")).to_have_text("waiting")
                await expect(held.locator(".held")).to_have_text(
                    "waiting for location: CP2 connector 1 has no EVSE"
                )
                await expect(partner.locator(".outbox")).to_contain_text("waiting")
                await _shot(page, "roaming")
                await page.goto(f"{base}/dashboard/transactions")
                cp2_row = page.locator("#recent-transactions tr", has_text="CP2")
                await expect(cp2_row.locator(".cdr")).to_have_text("waiting")
                await expect(cp2_row.locator(".session")).to_contain_text("waiting for location")
