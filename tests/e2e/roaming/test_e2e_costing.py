"""Correct periods and costs end to end: the real CSMS, the simulator (with its own
timestamps placing the charge in time) and the eMSP sandbox receiving the CDR."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.roaming.conftest import LOCATIONS_TOML
from tests.support.csms import admin_session
from tests.support.waiting import stays_false, wait_until

# 0.30/kWh, 0.45/kWh from 18:00 to 07:00 local time (Europe/Amsterdam), no VAT.
TOU = """
[[tariffs]]
id = "AC-TOU"
currency = "EUR"

[[tariffs.elements]]
energy_price = 0.45
start_time = "18:00"
end_time = "07:00"

[[tariffs.elements]]
energy_price = 0.30
"""


def volumes(period: dict) -> dict[str, float]:
    return {d["type"]: d["volume"] for d in period["dimensions"]}


async def test_a_charge_across_the_evening_price_change_is_priced_per_period(make_world):
    """Friday 4 December 2026, 17:30 to 18:30 in Amsterdam (16:30Z-17:30Z) at 10 kW: the
    CDR has a period at 0.30/kWh and one from 18:00 local at 0.45/kWh."""
    locations = LOCATIONS_TOML.replace('tariff_ids = ["AC-STD"]', 'tariff_ids = ["AC-TOU"]', 1)
    async with make_world(locations=TOU + locations) as w:
        emsp = w.emsp
        emsp.add_token("TOU0001", whitelist="ALLOWED")
        await emsp.push_tokens()
        async with w.charger() as cp:
            start = await cp.start_transaction(
                1, "TOU0001", meter_start=0, timestamp="2026-12-04T16:30:00Z", meter_loop=False
            )
            assert start["idTagInfo"]["status"] == "Accepted"
            for minute, wh in ((45, 2500), (60, 5000), (75, 7500)):
                hh, mm = divmod(16 * 60 + 30 + minute - 30, 60)
                await cp.send_meter_values(
                    1, energy_wh=wh, power_w=10000, timestamp=f"2026-12-04T{hh:02d}:{mm:02d}:00Z"
                )
            await cp.stop_transaction(1, meter_stop=10000, timestamp="2026-12-04T17:30:00Z")
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)

        [cdr] = list(emsp.cdrs.values())
        periods = cdr["charging_periods"]
        assert [p["start_date_time"] for p in periods] == [
            "2026-12-04T16:30:00Z",
            "2026-12-04T17:00:00Z",  # 18:00 in Amsterdam
        ]
        assert [volumes(p) for p in periods] == [
            {"ENERGY": 5, "TIME": 0.5},
            {"ENERGY": 5, "TIME": 0.5},
        ]
        assert all(p["tariff_id"] == "AC-TOU" for p in periods)
        assert cdr["tariffs"][0]["elements"][0]["restrictions"] == {
            "start_time": "18:00",
            "end_time": "07:00",
        }
        # 5 kWh x 0.30 + 5 kWh x 0.45.
        assert cdr["total_energy_cost"] == {"excl_vat": 3.75, "incl_vat": 3.75}
        assert cdr["total_cost"] == {"excl_vat": 3.75, "incl_vat": 3.75}
        assert cdr["total_parking_time"] == 0 and cdr["total_time"] == 1
        await emsp.wait_until(lambda: emsp.sessions[cdr["session_id"]]["status"] == "COMPLETED")
        assert emsp.sessions[cdr["session_id"]]["total_cost"] == cdr["total_cost"]


async def test_a_suspended_ev_interval_is_exactly_the_parking_time(make_world):
    """The charger says SuspendedEV from 10:20 to 10:40 (its clock) in a charge that starts
    at 10:00:00.400: the CDR has no leading parking and exactly those 20 minutes parked,
    priced at the tariff's 6.00/h parking price."""
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("PARK0001", whitelist="ALLOWED")
        await emsp.push_tokens()
        async with w.charger() as cp:
            await cp.start_transaction(
                1, "PARK0001", meter_start=0, timestamp="2026-12-04T10:00:00.400Z", meter_loop=False
            )
            await cp.send_meter_values(
                1, energy_wh=2000, power_w=11000, timestamp="2026-12-04T10:10:00Z"
            )
            await cp.status(1, "SuspendedEV", timestamp="2026-12-04T10:20:00Z")
            await cp.send_meter_values(
                1, energy_wh=3667, power_w=0, timestamp="2026-12-04T10:30:00Z"
            )
            await cp.status(1, "Charging", timestamp="2026-12-04T10:40:00Z")
            await cp.send_meter_values(
                1, energy_wh=5000, power_w=11000, timestamp="2026-12-04T10:50:00Z"
            )
            await cp.stop_transaction(1, meter_stop=7000, timestamp="2026-12-04T11:00:00Z")
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)

        [cdr] = list(emsp.cdrs.values())
        periods = cdr["charging_periods"]
        kinds = [(p["start_date_time"], sorted(volumes(p))) for p in periods]
        assert kinds == [
            ("2026-12-04T10:00:00Z", ["ENERGY", "TIME"]),
            ("2026-12-04T10:20:00Z", ["ENERGY", "PARKING_TIME"]),
            ("2026-12-04T10:40:00Z", ["ENERGY", "TIME"]),
        ]
        parked = volumes(periods[1])
        assert abs(parked["PARKING_TIME"] - 20 / 60) <= 0.0001  # 4 decimals of an hour
        assert parked["ENERGY"] == 0
        assert cdr["total_parking_time"] == parked["PARKING_TIME"]
        assert Decimal(str(cdr["total_parking_cost"]["excl_vat"])) == Decimal("2.00")
        assert cdr["total_energy"] == 7
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("2.80")


async def test_a_charge_without_tariff_waits_for_one_then_is_priced_once(make_world):
    """Connector 2 has no tariff: the eMSP learns at once that the Session ended (without
    ``total_cost``: absent is "not priced", 0 would say "free"), but the CDR, which must
    say what it costs, waits in the outbox with the reason until the operator attaches a
    tariff; then it arrives once, priced from that tariff."""
    locations = LOCATIONS_TOML.replace(
        'max_amperage = 16\ntariff_ids = ["AC-STD"]\n', "max_amperage = 16\n"
    )
    assert locations != LOCATIONS_TOML
    async with make_world(locations=locations) as w, admin_session(w.app) as admin:
        emsp = w.emsp
        emsp.add_token("FREE0001", whitelist="ALLOWED")
        await emsp.push_tokens()
        async with w.charger() as cp:
            await cp.start_transaction(2, "FREE0001", meter_start=0, meter_loop=False)
            await cp.stop_transaction(2, meter_stop=3000)

        def completed() -> bool:
            return any(x.get("status") == "COMPLETED" for x in emsp.sessions.values())

        await emsp.wait_until(completed)
        [session] = list(emsp.sessions.values())
        assert "total_cost" not in session and session["kwh"] == 3

        async def waiting() -> list[dict[str, object]]:
            async with admin.get("/api/outbox") as resp:
                return [
                    m
                    for m in (await resp.json())["messages"]
                    if "waiting for tariff" in str(m.get("held_reason"))
                ]

        async def cdr_waits() -> bool:
            return any(m["module"] == "cdrs" for m in await waiting())

        await wait_until(cdr_waits, what="the CDR held, waiting for a tariff")
        assert "LOC-1-CP1-2" in str((await waiting())[0]["held_reason"])
        await stays_false(lambda: len(emsp.cdrs) > 0, period=0.3, what="a CDR without a price")

        body = {"tariff_ids": ["AC-STD"]}
        async with admin.patch("/api/locations/LOC-1/evses/LOC-1-CP1-2", json=body) as resp:
            assert resp.status == 200, await resp.text()
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = list(emsp.cdrs.values())
        # 1.00 flat + 3 kWh at 0.40, 21 % VAT (AC-STD); no parking (the charge was Charging).
        assert Decimal(str(cdr["total_cost"]["excl_vat"])) == Decimal("2.20")
        assert cdr["tariffs"][0]["id"] == "AC-STD"
        await emsp.wait_until(lambda: "total_cost" in emsp.sessions[session["id"]])
        await stays_false(
            lambda: sum(emsp.state.cdr_post_counts.values()) > 1, period=0.5, what="a second POST"
        )
        assert await waiting() == []


async def test_slow_charging_on_a_whole_kwh_register_is_not_parking(make_world):
    """A charger whose register counts whole kWh, charging 1.75 kWh in 75 minutes from a
    start at 09:00:00.600: the register stands still for 45 minutes, which is charging
    (its status says Charging, its power is not zero), so the CDR has no PARKING_TIME."""
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("SLOW0001", whitelist="ALLOWED")
        await emsp.push_tokens()
        async with w.charger() as cp:
            await cp.start_transaction(
                1, "SLOW0001", meter_start=0, timestamp="2026-12-04T09:00:00.600Z", meter_loop=False
            )
            for at, wh in (("09:15", 0), ("09:30", 0), ("09:45", 1000), ("10:00", 1000)):
                await cp.send_meter_values(
                    1, energy_wh=wh, power_w=1400, timestamp=f"2026-12-04T{at}:00Z"
                )
            await cp.stop_transaction(1, meter_stop=1750, timestamp="2026-12-04T10:15:00Z")
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)

        [cdr] = list(emsp.cdrs.values())
        assert [sorted(volumes(p)) for p in cdr["charging_periods"]] == [["ENERGY", "TIME"]]
        assert cdr["charging_periods"][0]["start_date_time"] == "2026-12-04T09:00:00Z"
        assert cdr["total_parking_time"] == 0
        assert cdr["total_energy"] == 1.75 and cdr["total_time"] == 1.2498  # 74 min 59.4 s
        assert cdr["total_parking_cost"] == {"excl_vat": 0, "incl_vat": 0}  # 6.00/h unused


async def test_the_tariff_in_force_at_the_start_prices_the_charge(make_world):
    """The operator raises AC-STD from 0.40 to 0.80/kWh while a car charges: the driver
    accepted 0.40 at the start, so the CDR carries and is priced with that tariff."""
    async with make_world() as w, admin_session(w.app) as admin:
        emsp = w.emsp
        emsp.add_token("KEEP0001", whitelist="ALLOWED")
        await emsp.push_tokens()
        async with w.charger() as cp:
            await cp.start_transaction(1, "KEEP0001", meter_start=0, meter_loop=False)
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            (w.tmp_path / "locations.toml").write_text(
                LOCATIONS_TOML.replace("energy_price = 0.40", "energy_price = 0.80")
            )
            async with admin.post("/api/locations/reload") as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["changed_tariffs"] == ["AC-STD"]
            await cp.stop_transaction(1, meter_stop=5000)
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)

        [cdr] = list(emsp.cdrs.values())
        [tariff] = cdr["tariffs"]
        prices = {c["type"]: c["price"] for c in tariff["elements"][0]["price_components"]}
        assert prices["ENERGY"] == 0.40
        assert cdr["total_energy_cost"] == {"excl_vat": 2, "incl_vat": 2.42}  # 5 kWh x 0.40
        async with admin.get("/api/tariffs") as resp:  # the published tariff did change
            [now] = (await resp.json())["tariffs"]
        assert now["elements"][0]["price_components"][1]["price"] == 0.80
