"""The dashboard's roaming view during an eMSP outage: pushes that failed are counted per
partner and listed with their error, the backlog shows on the overview, and the eMSP
error rate counts fallbacks (real CSMS, real eMSP sandbox, real simulator)."""

from __future__ import annotations

import re
from pathlib import Path

from csms.ocpi.dashboard import StoreRoamingView
from tests.e2e.roaming.conftest import World, world
from tests.support.csms import admin_session, runtime_of
from tests.support.waiting import wait_until


def _view(w: World) -> StoreRoamingView:
    view = w.app.admin.roaming_view
    assert isinstance(view, StoreRoamingView)
    return view


async def test_failed_pushes_show_per_partner_and_on_the_pages(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        emsp = w.emsp
        emsp.add_token("0A0B0C0D", whitelist="ALWAYS")
        emsp.add_token("0E0E0E0E", whitelist="NEVER")  # real-time only: fails while down
        await emsp.push_tokens()
        await w.outbox_idle()
        await emsp.set_down("refuse")
        await runtime_of(w.app).client.forget("NL-EMS")
        async with w.charger() as cp:
            await cp.start_transaction(1, "0A0B0C0D", meter_start=0, meter_loop=False)
            await cp.stop_transaction(1, meter_stop=5000, reason="EVDisconnected")
            await cp.authorize("0E0E0E0E")  # the eMSP cannot answer: the fallback decides

        async def cdr_failed() -> bool:
            open_items = await _view(w).outbox_open()
            return any(m.module == "cdrs" and m.last_error for m in open_items)

        await wait_until(cdr_failed, what="a failed CDR push listed with its error")
        [partner] = await _view(w).partners()
        assert partner.key == "NL-EMS" and partner.status == "registered"
        assert partner.failing >= 1 and partner.backlog >= 1 and partner.tokens == 2

        async with admin_session(w.app) as api:  # the bearer token reads pages too
            roaming = await (await api.get("/dashboard/roaming")).text()
            overview = await (await api.get("/dashboard/")).text()
        assert 'data-partner="NL-EMS"' in roaming
        assert re.search(r'id="waiting-cdrs".*?data-message=', roaming, re.S)
        backlog = re.search(r'id="outbox-backlog">(\d+)<', overview)
        assert backlog is not None and int(backlog.group(1)) >= 1
        rate = re.search(r'id="emsp-error-rate">([^<]+)<', overview)
        assert rate is not None and rate.group(1) == "100.0 %"  # one query, one fallback

        await emsp.set_down("up")
        await w.outbox_idle()
        [after] = await _view(w).partners()
        assert after.failing == 0 and after.backlog == 0
