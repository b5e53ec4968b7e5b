"""With OCPI on, the operator's own cards (``csms tokens add``) are still decided locally;
every other token goes through the roaming service."""

from __future__ import annotations

from pathlib import Path

from csms.authz.own_cards import HeldOwnCards
from csms.authz.service import AuthorizationService
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import admin_session, ocpp_url, running_csms


async def test_own_cards_are_decided_locally_with_roaming_enabled(tmp_path: Path) -> None:
    async with (
        running_csms(
            tmp_path, server={"unknown_chargers": "accept"}, ocpi={"enabled": True}
        ) as app,
        admin_session(app) as http,
    ):
        authorizer = app.authorization.authorizer
        assert isinstance(authorizer, AuthorizationService) and authorizer.realtime is not None
        assert isinstance(authorizer.own_cards, HeldOwnCards)
        r = await http.post("/api/tokens", json={"id_tag": "Fleet-01", "parent_id_tag": "FLEET"})
        assert r.status in (200, 201)
        async with SimulatedChargePoint.connect(ocpp_url(app), "CP-O", heartbeat=False) as cp:
            await cp.boot()
            info = (await cp.authorize("FLEET-01"))["idTagInfo"]
            assert info["status"] == "Accepted" and info["parentIdTag"] == "FLEET"
            # Not an own card: the roaming service answers (no eMSP registered: Invalid).
            assert (await cp.authorize("ROAM-1"))["idTagInfo"]["status"] == "Invalid"
            # Blocking through the admin API takes effect at the next Authorize.
            assert (await http.post("/api/tokens/fleet-01/block")).status == 200
            assert (await cp.authorize("fleet-01"))["idTagInfo"]["status"] == "Blocked"
            start = await cp.start_transaction(1, "Fleet-01", meter_start=0)
            assert start["idTagInfo"]["status"] == "Blocked"
        r = await http.get("/api/authorizations", params={"charger_id": "CP-O", "limit": 10})
        rows = (await r.json())["authorizations"]
        by_uid = {(d["uid"], d["trigger"]): d["source"] for d in rows}
        assert by_uid[("ROAM-1", "Authorize")] != "local"
