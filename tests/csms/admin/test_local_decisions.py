"""Without roaming, the local id_tags table's decisions are stored and listed too."""

from __future__ import annotations

from pathlib import Path

from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import admin_session, ocpp_url, running_csms


async def test_local_decisions_are_recorded_and_listed(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as app, admin_session(app) as http:
        assert not app.config.ocpi.enabled
        await http.post("/api/chargers", json={"id": "CP-L"})
        await http.post("/api/tokens", json={"id_tag": "Tag-Local", "status": "Accepted"})
        async with SimulatedChargePoint.connect(ocpp_url(app), "CP-L", heartbeat=False) as cp:
            await cp.boot()
            assert (await cp.authorize("tag-local"))["idTagInfo"]["status"] == "Accepted"
            assert (await cp.authorize("NOPE"))["idTagInfo"]["status"] == "Invalid"
        r = await http.get("/api/authorizations", params={"charger_id": "CP-L"})
        assert r.status == 200
        body = await r.json()
        rows = body["authorizations"] if isinstance(body, dict) else body
        got = [(d["uid"], d["uid_norm"], d["source"], d["status"]) for d in rows]
        assert got == [
            ("NOPE", "NOPE", "local", "Invalid"),
            ("tag-local", "TAG-LOCAL", "local", "Accepted"),
        ]
        assert all(d["trigger"] == "Authorize" and d["latency_ms"] >= 0 for d in rows)
