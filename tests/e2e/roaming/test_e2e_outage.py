"""An eMSP outage delays Sessions and CDRs but never loses or duplicates them."""

from __future__ import annotations

from tests.support.csms import runtime_of
from tests.support.waiting import wait_until


async def test_emsp_down_for_a_whole_session_gets_everything_once_after_recovery(make_world):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("0A0B0C0D", whitelist="ALWAYS")  # cached: no real-time call needed
        await emsp.push_tokens()
        await w.outbox_idle()
        await emsp.set_down("refuse")
        # Closing the listener leaves keep-alive connections open; drop our pool so the
        # outage is total (as after a real network cut).
        await runtime_of(w.app).client.forget("NL-EMS")
        async with w.charger() as cp:
            start = await cp.start_transaction(1, "0A0B0C0D", meter_start=0, meter_loop=False)
            assert start["idTagInfo"]["status"] == "Accepted"
            await cp.send_meter_values(1, energy_wh=2500)
            await cp.stop_transaction(1, meter_stop=5000, reason="EVDisconnected")

        # While down: the pushes wait in the outbox, with the reason recorded.
        async def cdr_tried() -> bool:
            waiting = await w.cpo.outbox.waiting()
            cdrs = [m for m in waiting if m.module == "cdrs"]
            return bool(cdrs) and all(m.attempts >= 1 and m.last_error for m in cdrs)

        await wait_until(cdr_tried, what="a failed CDR push recorded in the outbox")
        waiting = await w.cpo.outbox.waiting()
        modules = {m.module for m in waiting}
        assert {"sessions", "cdrs"} <= modules
        assert not emsp.sessions and not emsp.cdrs
        # The CDR is already served by GET /cdrs (complete list) while the push waits.
        await emsp.set_down("up")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1, timeout=5)
        await w.outbox_idle()
        [session] = list(emsp.sessions.values())
        assert session["status"] == "COMPLETED" and session["kwh"] == 5.0
        methods = [e[0] for e in emsp.session_events]
        assert methods[0] == "PUT" and methods.count("PUT") == 1  # in order: PUT first
        assert len(emsp.cdr_posts) == 1 and emsp.cdr_duplicates == {}
        [cdr] = emsp.cdrs.values()
        assert cdr["session_id"] == session["id"] and cdr["total_energy"] == 5.0
        counts = await w.cpo.outbox.counts()
        assert counts.get("dead", 0) == 0 and counts.get("pending", 0) == 0


async def test_emsp_answering_503_then_recovering_posts_the_cdr_once(make_world):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("0A0B0C0E", whitelist="ALWAYS")
        await emsp.push_tokens()
        await w.outbox_idle()
        async with w.charger() as cp:
            await cp.start_transaction(2, "0A0B0C0E", meter_start=100, meter_loop=False)
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            await emsp.set_down("503")  # ambiguous failures: the eMSP may have acted
            await cp.stop_transaction(2, meter_stop=1100, reason="Local")

        async def cdr_refused() -> bool:
            return any(m.module == "cdrs" and m.attempts >= 1 for m in await w.cpo.outbox.waiting())

        await wait_until(cdr_refused, what="the CDR POST answered 503 and kept for retry")
        assert not emsp.cdrs
        await emsp.set_down("up")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1, timeout=5)
        await w.outbox_idle()
        assert len(emsp.cdr_posts) == 1 and emsp.cdr_duplicates == {}
