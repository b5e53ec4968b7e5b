"""SmartCharging profile calls: charging profiles per connector and the composite schedule.

Why the composite schedule is only the highest stack level's schedule: the simulator
answers plausibly for tests and demos; it does not merge profiles the way a real
charger's scheduler would.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result

from simulator.driver import Driver
from simulator.wire import now_iso


class SmartCharging:
    def __init__(self, driver: Driver) -> None:
        self.state = driver.state

    @on("SetChargingProfile")
    def _on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kw: Any
    ) -> Any:
        conn = self.state.connectors.get(connector_id)
        profile = cs_charging_profiles
        if conn is None:
            return call_result.SetChargingProfile(status="Rejected")
        purpose = profile.get("charging_profile_purpose")
        if purpose == "TxProfile" and connector_id not in self.state.transactions:
            return call_result.SetChargingProfile(status="Rejected")
        conn.profiles[int(profile["charging_profile_id"])] = profile
        return call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def _on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **kw: Any,
    ) -> Any:
        removed = 0
        for cid, conn in self.state.connectors.items():
            if connector_id is not None and cid != connector_id:
                continue
            for pid, prof in list(conn.profiles.items()):
                if id is not None and pid != id:
                    continue
                if (
                    charging_profile_purpose is not None
                    and prof.get("charging_profile_purpose") != charging_profile_purpose
                ):
                    continue
                if stack_level is not None and prof.get("stack_level") != stack_level:
                    continue
                del conn.profiles[pid]
                removed += 1
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on("GetCompositeSchedule")
    def _on_get_composite_schedule(
        self,
        connector_id: int,
        duration: int,
        charging_rate_unit: str | None = None,
        **kw: Any,
    ) -> Any:
        conn = self.state.connectors.get(connector_id)
        if conn is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        profiles = [*conn.profiles.values(), *self.state.connectors[0].profiles.values()]
        profiles.sort(key=lambda p: p.get("stack_level", 0), reverse=True)
        if profiles:
            sched = profiles[0]["charging_schedule"]
            unit = sched.get("charging_rate_unit", "A")
            periods = [
                {"startPeriod": int(p["start_period"]), "limit": float(p["limit"])}
                for p in sched.get("charging_schedule_period", [])
            ] or [{"startPeriod": 0, "limit": 32.0}]
        else:
            unit = charging_rate_unit or "A"
            rated = self.state.identity.power_w
            periods = [{"startPeriod": 0, "limit": 32.0 if unit == "A" else rated}]
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=now_iso(),
            charging_schedule={
                "duration": duration,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": periods,
            },
        )
