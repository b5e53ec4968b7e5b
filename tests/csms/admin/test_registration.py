"""Operators accept a Pending charger (policy ``pending``) and can demote it again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from csms.cli import main
from simulator.chargepoint import CallFailed, SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN, admin_session, admin_url, ocpp_url, running_csms


async def test_pending_charger_is_accepted_by_the_operator(tmp_path: Path) -> None:
    async with running_csms(tmp_path, server={"unknown_chargers": "pending"}) as app:
        async with SimulatedChargePoint.connect(ocpp_url(app), "NEW-CP", heartbeat=False) as cp:
            boot = await cp.request(
                "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            assert boot["status"] == "Pending"
            try:
                await cp.authorize("TAG1")
            except CallFailed as exc:
                assert exc.code == "SecurityError"
            else:
                raise AssertionError("a Pending charger's Authorize must be refused")

            conn = ["--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN]
            code = await asyncio.to_thread(main, ["chargers", "accept", "NEW-CP", *conn])
            assert code == 0
            # Accepted at the next message, without a new boot.
            reply = await cp.authorize("TAG1")
            assert reply["idTagInfo"]["status"] == "Invalid"  # an answer, not SecurityError

            code = await asyncio.to_thread(main, ["chargers", "reject", "NEW-CP", *conn])
            assert code == 0
            await cp.wait_closed(timeout=5)
        row = await app.db.fetchone("SELECT registration_status FROM chargers WHERE id='NEW-CP'")
        assert row["registration_status"] == "Rejected"


async def test_registration_route_rejects_bad_input(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as app, admin_session(app) as http:
        r = await http.post("/api/chargers/NOPE/registration", json={"status": "Accepted"})
        assert r.status == 404
        await http.post("/api/chargers", json={"id": "CP1"})
        r = await http.post("/api/chargers/CP1/registration", json={"status": "Maybe"})
        assert r.status == 400
        assert "status" in (await r.json())["message"]
        r = await http.post("/api/chargers/CP1/registration", json={"status": "Pending", "x": 1})
        assert r.status == 400
        r = await http.post("/api/chargers/CP1/registration", json={"status": "Pending"})
        assert r.status == 200
        assert (await r.json())["registration_status"] == "Pending"
