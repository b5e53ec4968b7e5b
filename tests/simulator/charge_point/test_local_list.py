"""The simulator's charger side of Local Authorization Lists, driven through the real CSMS
gateway: limits, versions, no support, and deciding from its list while offline."""

from __future__ import annotations

from typing import Any

from simulator.chargepoint import SimulatedChargePoint
from tests.simulator.charge_point.conftest import Csms

CP = "CP-LIST"


def entry(tag: str, **info: Any) -> dict[str, Any]:
    return {"idTag": tag, "idTagInfo": {"status": "Accepted", **info}}


async def send(csms: Csms, version: int, kind: str, items: list[dict[str, Any]]) -> str:
    payload = {"listVersion": version, "updateType": kind, "localAuthorizationList": items}
    answer = await csms.app.gateway.call(CP, "SendLocalList", payload)
    return str(answer["status"])


async def test_limits_fail_a_message_and_change_nothing(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(
        csms.url, CP, heartbeat=False, local_list_max_length=5, send_local_list_max_length=3
    ) as cp:
        await cp.boot()
        assert await send(csms, 1, "Full", [entry("A"), entry("B"), entry("C")]) == "Accepted"
        too_many = [entry(t) for t in "DEFG"]
        assert await send(csms, 2, "Differential", too_many) == "Failed"  # > SendLocalListMax
        assert await send(csms, 2, "Differential", [entry("D"), entry("E")]) == "Accepted"
        assert await send(csms, 3, "Differential", [entry("F")]) == "Failed"  # 6 > 5 held
        assert sorted(cp.local_list) == ["A", "B", "C", "D", "E"]
        assert cp.local_list_version == 2
        assert await send(csms, 2, "Differential", [{"idTag": "A"}]) == "VersionMismatch"
        assert await send(csms, 3, "Differential", [{"idTag": "A"}]) == "Accepted"
        assert sorted(cp.local_list) == ["B", "C", "D", "E"]
        version = await csms.app.gateway.call(CP, "GetLocalListVersion", {})
        assert version == {"listVersion": 3}
        config = await csms.app.gateway.call(
            CP, "GetConfiguration", {"key": ["LocalAuthListMaxLength", "SendLocalListMaxLength"]}
        )
        assert {k["key"]: k["value"] for k in config["configurationKey"]} == {
            "LocalAuthListMaxLength": "5",
            "SendLocalListMaxLength": "3",
        }


async def test_a_charger_without_the_profile_says_so(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(
        csms.url, CP, heartbeat=False, feature_profiles="Core,RemoteTrigger"
    ) as cp:
        await cp.boot()
        assert await send(csms, 1, "Full", [entry("A")]) == "NotSupported"
        assert await csms.app.gateway.call(CP, "GetLocalListVersion", {}) == {"listVersion": -1}
        assert cp.local_list == {}


async def test_offline_the_charger_decides_from_its_list_then_its_cache(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(csms.url, CP, heartbeat=False) as cp:
        await cp.boot()
        items = [
            entry("LISTED"),
            entry("OLD", expiryDate="2020-01-01T00:00:00Z"),
            {"idTag": "BLOCKED1", "idTagInfo": {"status": "Blocked"}},
        ]
        assert await send(csms, 1, "Full", items) == "Accepted"
        cp.auth_cache["CACHED"] = {"status": "Accepted"}
        await cp.disconnect()
        decided = {
            t: (await cp.authorize(t))["idTagInfo"]["status"]
            for t in ["listed", "OLD", "BLOCKED1", "CACHED", "UNKNOWN"]
        }
        assert decided == {
            "listed": "Accepted",
            "OLD": "Expired",
            "BLOCKED1": "Blocked",
            "CACHED": "Accepted",
            "UNKNOWN": "Invalid",
        }
        assert cp.config.set("AllowOfflineTxForUnknownId", "true") == "Accepted"
        assert (await cp.authorize("UNKNOWN"))["idTagInfo"]["status"] == "Accepted"
        assert cp.config.set("LocalAuthorizeOffline", "false") == "Accepted"
        assert cp.config.set("AllowOfflineTxForUnknownId", "false") == "Accepted"
        assert (await cp.authorize("LISTED"))["idTagInfo"]["status"] == "Invalid"
