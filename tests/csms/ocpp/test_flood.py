"""One charger pipelining thousands of CALLs (OCPP-J allows one at a time) must not
starve the others or grow the server without bound.

The flood is not refused: beyond ``server.max_calls_in_flight`` CALLs being answered,
the flooding socket is simply not read until one is answered, and each socket gets
``server.read_budget_bytes`` of frames per turn of the event loop, so the others' calls
are answered between its turns. Everything the flooder sent is answered in the end.
"""

from __future__ import annotations

import asyncio
from time import monotonic

from csms.authz import policy
from csms.authz.model import NEED_IO, AuthRequest, Decision, NeedIO
from simulator.chargepoint import SimulatedChargePoint
from tests.csms.ocpp.conftest import Connect, StartServer
from tests.support.csms import ocpp_url, running_csms
from tests.support.raw_cp import RawChargePoint
from tests.support.waiting import scaled, wait_until

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
# Today's code answered the healthy charger after ~6 s with this flood on this machine;
# with fairness it is tens of milliseconds (the flood runs in the test's own process).
PROMPT_S = 2.0


async def test_a_flooding_charger_does_not_starve_the_others(tmp_path) -> None:
    frames = 20_000
    async with running_csms(tmp_path, server={"unknown_chargers": "accept"}) as app:
        url = ocpp_url(app)
        flooder = await RawChargePoint.connect(url, "FLOOD", lambda a, p: None)
        try:
            assert (await flooder.call("BootNotification", BOOT))[2]["status"] == "Accepted"
            async with SimulatedChargePoint.connect(
                url, "CP1", heartbeat=False, step_delay_s=0, meter_interval_s=3600
            ) as cp:
                await cp.boot()
                flood = asyncio.create_task(
                    flooder.flood("Authorize", ({"idTag": f"F{i:08d}"} for i in range(frames)))
                )
                await wait_until(lambda: flooder.flood_answered >= 200, what="the flood going")
                slowest = 0.0
                for _ in range(10):  # while the flood is being answered
                    t0 = monotonic()
                    assert (await cp.heartbeat())["currentTime"]
                    assert (await cp.authorize("CARD1"))["idTagInfo"]["status"] == "Invalid"
                    slowest = max(slowest, monotonic() - t0)
                assert slowest < scaled(PROMPT_S), f"a healthy charger waited {slowest:.2f} s"
                assert flooder.flood_answered < frames, "the flood ended before it was measured"
                assert flooder.flood_errors == {}  # (that all is answered: the test below)
                assert app.ocpp is not None and app.ocpp.internal_errors == 0
                flood.cancel()
        finally:
            await flooder.abort()


class SlowAuthorizer:
    """Every decision takes a while (an eMSP far away); counts how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.decided = 0

    def try_now(self, request: AuthRequest) -> Decision | NeedIO:
        return NEED_IO

    async def decide(self, request: AuthRequest) -> Decision:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.002)
        finally:
            self.running -= 1
        self.decided += 1
        return policy.UNKNOWN_CARD


async def test_a_flood_of_slow_calls_is_read_no_faster_than_it_is_answered(
    start_server: StartServer, connect_cp: Connect
) -> None:
    frames = 2_000
    authorizer = SlowAuthorizer()
    srv = await start_server(authorizer=authorizer, max_calls_in_flight=4)
    flooder = await RawChargePoint.connect(f"ws://127.0.0.1:{srv.port}/ocpp", "FLOOD", None)  # type: ignore[arg-type]
    try:
        await flooder.call("BootNotification", BOOT)
        healthy = await connect_cp(srv, "CP1")
        await healthy.boot()
        flood = asyncio.create_task(
            flooder.flood("Authorize", ({"idTag": f"F{i:08d}"} for i in range(frames)))
        )
        while flooder.flood_answered < frames // 2:  # bounded: the flood ends
            t0 = monotonic()
            assert (await healthy.ok("Heartbeat", {}))["currentTime"]
            assert monotonic() - t0 < scaled(PROMPT_S)
        assert authorizer.most <= 4, f"{authorizer.most} of the flood's decisions ran at once"
        await flood
        await wait_until(
            lambda: flooder.flood_answered == frames, timeout=60, what="every flood answer"
        )
        assert flooder.flood_results == frames and authorizer.decided == frames
        assert srv.internal_errors == 0
    finally:
        await flooder.close()
