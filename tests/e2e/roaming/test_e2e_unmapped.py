"""Where a roaming charge happens decides what its Session and CDR say, never whether they
are sent: unmapped connectors wait for a location, unpublished Locations are billed at
once, and a CDR keeps the real place even when its EVSE is removed before the stop."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from roaming import credentials
from simulator.emsp.sandbox import EmspSandbox
from tests.e2e.roaming.conftest import FAST, LOCATIONS_TOML, World
from tests.e2e.roaming.test_cli_catalog import cli
from tests.support.csms import admin_session, running_csms, runtime_of
from tests.support.waiting import stays_false, wait_until

TOKEN = "0C0C0C0C"

# A tariff of its own for the connector mapped later, so the CDR's price can only come
# from the mapping made after the charge.
CP2_TARIFF = """
[[tariffs]]
id = "AC-KADE"
currency = "EUR"
energy_price = 0.55
vat = 21.0
"""

KADE = """
[[locations]]
id = "LOC-KADE"
name = "Kade Zuid"
address = "Oudegracht 7"
city = "Utrecht"
postal_code = "3511AA"
country = "NLD"
latitude = "52.09074"
longitude = "5.12142"
time_zone = "Europe/Amsterdam"
{publish}

[[locations.evses]]
uid = "KADE-CP2-1"
evse_id = "NL*CPO*E2*1"
charger_id = "CP2"
connector_id = 1
standard = "IEC_62196_T2_COMBO"
format = "CABLE"
power_type = "DC"
max_voltage = 400
max_amperage = 125
tariff_ids = ["AC-KADE"]
"""


def utc_second() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reload_locations(w: World, admin: Any, text: str) -> dict[str, Any]:
    (w.tmp_path / "locations.toml").write_text(text)
    async with admin.post("/api/locations/reload") as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def outbox_messages(admin: Any) -> dict[str, Any]:
    async with admin.get("/api/outbox") as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def whitelisted_token(w: World) -> None:
    w.emsp.add_token(TOKEN, whitelist="ALWAYS")
    await w.emsp.push_tokens()


def assert_kade(where: dict[str, Any]) -> None:
    assert where["id"] == "LOC-KADE" and where["name"] == "Kade Zuid"
    assert where["address"] == "Oudegracht 7" and where["city"] == "Utrecht"
    assert where["postal_code"] == "3511AA" and where["country"] == "NLD"
    assert where["coordinates"] == {"latitude": "52.09074", "longitude": "5.12142"}
    assert where["evse_uid"] == "KADE-CP2-1" and where["evse_id"] == "NL*CPO*E2*1"
    assert where["connector_id"] == "1" and where["connector_standard"] == "IEC_62196_T2_COMBO"
    assert where["connector_format"] == "CABLE" and where["connector_power_type"] == "DC"


async def test_a_charge_on_an_unmapped_connector_waits_then_reaches_the_emsp_once(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        emsp = w.emsp
        await whitelisted_token(w)
        await w.outbox_idle()
        async with w.charger("CP2") as cp:
            start = await cp.start_transaction(1, TOKEN, meter_start=1000, meter_loop=False)
            assert start["idTagInfo"]["status"] == "Accepted"
            await cp.send_meter_values(1, energy_wh=3000)
            await cp.stop_transaction(1, meter_stop=5000, reason="Local")

        # Nothing can be sent yet (no Location to name), and nothing is lost: the Session
        # PUT, its PATCHes and the CDR wait in the outbox, saying why.
        data = await outbox_messages(admin)
        waiting = [m for m in data["messages"] if m["status"] == "waiting"]
        reason = "waiting for location: CP2 connector 1 has no EVSE"
        assert {m["held_reason"] for m in waiting} == {reason}
        kinds = [(m["module"], m["method"]) for m in waiting]
        assert kinds[0] == ("sessions", "PUT") and kinds[-1] == ("cdrs", "POST")
        assert kinds.count(("sessions", "PATCH")) >= 2  # kwh progress, then COMPLETED
        assert data["counts"]["waiting"] == len(waiting)
        code, out, _ = await cli(w.app, "outbox", "list")
        assert code == 0 and f"waiting={len(waiting)}" in out and reason in out
        await stays_false(
            lambda: emsp.session_events or emsp.cdr_posts, period=0.5, what="a push to the eMSP"
        )
        pulled = await emsp.call_peer(
            "GET", "sessions", "SENDER", query="?date_from=2000-01-01T00:00:00Z"
        )
        assert pulled.headers["X-Total-Count"] == "0"  # no Session without a location
        assert (await emsp.call_peer("GET", "cdrs", "SENDER")).data == []

        # The operator maps the connector: everything goes, once, with the real place.
        await reload_locations(w, admin, CP2_TARIFF + LOCATIONS_TOML + KADE.format(publish=""))
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = emsp.cdrs.values()
        sid = cdr["session_id"]
        await emsp.wait_until(lambda: emsp.sessions[sid]["status"] == "COMPLETED")
        await stays_false(
            lambda: (
                len(emsp.cdr_posts) > 1
                or len([e for e in emsp.session_events if e[0] == "PUT"]) > 1
            ),
            period=1.0,
            what="a second Session or CDR",
        )

        events = [e for e in emsp.events if e[0] in ("session", "cdr")]
        assert events[0] == ("session", "PUT", sid) and events[-1][:2] == ("cdr", "POST")
        assert events[-2] == ("session", "PATCH", sid)  # COMPLETED before the CDR
        [put] = [body for method, _, body in emsp.session_events if method == "PUT"]
        assert put["location_id"] == "LOC-KADE" and put["evse_uid"] == "KADE-CP2-1"
        assert put["connector_id"] == "1" and put["currency"] == "EUR"
        assert put["status"] == "ACTIVE" and put["cdr_token"]["uid"] == TOKEN
        kwh = [b["kwh"] for m, _, b in emsp.session_events if m == "PATCH" and "status" not in b]
        assert kwh and kwh[0] == 2.0
        final = emsp.sessions[sid]
        assert final["kwh"] == 4.0 and final["total_cost"] == cdr["total_cost"]

        assert_kade(cdr["cdr_location"])
        assert [t["id"] for t in cdr["tariffs"]] == ["AC-KADE"]
        assert cdr["total_energy"] == 4.0
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("2.20")
        assert Decimal(str(cdr["total_cost"]["incl_vat"])) == Decimal("2.66")
        assert emsp.cdr_duplicates == {} and emsp.violations == []

        after = await outbox_messages(admin)
        assert not [m for m in after["messages"] if m["status"] == "waiting"]
        pulled = await emsp.call_peer(
            "GET", "sessions", "SENDER", query="?date_from=2000-01-01T00:00:00Z"
        )
        assert [s["id"] for s in pulled.data] == [sid]
        stored = await w.cpo.cdrs.by_transaction(start["transactionId"])
        assert stored is not None and stored["cdr"]["id"] == cdr["id"]
        assert stored["emsp_location"].endswith("/" + cdr["id"])


async def test_a_connector_mapped_during_the_charge_sends_everything_at_the_stop(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        emsp = w.emsp
        await whitelisted_token(w)
        async with w.charger("CP2") as cp:
            await cp.start_transaction(1, TOKEN, meter_start=0, meter_loop=False)
            await cp.send_meter_values(1, energy_wh=1000)
            # An eMSP that pulls from a time after the start must still get the Session,
            # which only became a Session it may see when the connector was mapped.
            started = utc_second()
            await wait_until(lambda: utc_second() > started, what="the next second")
            since = utc_second()
            await reload_locations(w, admin, CP2_TARIFF + LOCATIONS_TOML + KADE.format(publish=""))
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            [session] = emsp.sessions.values()
            assert session["location_id"] == "LOC-KADE" and session["status"] == "ACTIVE"
            pulled = await emsp.call_peer(
                "GET", "sessions", "SENDER", query=f"?date_from={since.replace(':', '%3A')}"
            )
            assert [s["id"] for s in pulled.data] == [session["id"]]
            await cp.stop_transaction(1, meter_stop=2000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = emsp.cdrs.values()
        assert cdr["session_id"] == session["id"] and cdr["total_energy"] == 2.0
        assert_kade(cdr["cdr_location"])
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("1.10")
        assert len([e for e in emsp.session_events if e[0] == "PUT"]) == 1


async def test_an_unpublished_location_is_billed_at_once_but_not_listed(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        emsp = w.emsp
        await whitelisted_token(w)
        text = CP2_TARIFF + LOCATIONS_TOML + KADE.format(publish="publish = false")
        await reload_locations(w, admin, text)
        await w.outbox_idle()
        async with w.charger("CP2") as cp:
            await cp.status(1, "Preparing")
            await cp.start_transaction(1, TOKEN, meter_start=0, meter_loop=False)
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            [session] = emsp.sessions.values()
            assert session["location_id"] == "LOC-KADE" and session["evse_uid"] == "KADE-CP2-1"
            await cp.stop_transaction(1, meter_stop=3000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = emsp.cdrs.values()
        assert_kade(cdr["cdr_location"])
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("1.65")
        await w.outbox_idle()

        # Not shown to eMSPs: no Location push or EVSE status PATCH, not in the list, 404.
        assert "LOC-KADE" not in emsp.locations
        assert not [e for e in emsp.location_events if "KADE" in e[1].upper()]
        listed = await emsp.call_peer("GET", "locations", "SENDER")
        assert [loc["id"] for loc in listed.data] == ["LOC-1"]
        assert listed.headers["X-Total-Count"] == "1"
        for path in (["LOC-KADE"], ["LOC-KADE", "KADE-CP2-1"], ["LOC-KADE", "KADE-CP2-1", "1"]):
            hidden = await emsp.call_peer("GET", "locations", "SENDER", *path)
            assert hidden.http_status == 404
        # The operator still sees it.
        async with admin.get("/api/locations/LOC-KADE") as resp:
            assert resp.status == 200 and (await resp.json())["publish"] is False

        # Published later: it is PUT like any new Location; unpublished again: PUT once
        # more with publish = false, so the eMSP hides it.
        await reload_locations(w, admin, CP2_TARIFF + LOCATIONS_TOML + KADE.format(publish=""))
        await emsp.wait_until(lambda: "LOC-KADE" in emsp.locations)
        await reload_locations(w, admin, text)
        await emsp.wait_until(lambda: emsp.locations["LOC-KADE"]["publish"] is False)


async def test_an_evse_removed_before_the_stop_keeps_its_real_place_in_the_cdr(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        emsp = w.emsp
        await whitelisted_token(w)
        async with w.charger() as cp:
            await cp.start_transaction(2, TOKEN, meter_start=0, meter_loop=False)
            await emsp.wait_until(lambda: len(emsp.sessions) == 1)
            # The operator takes CP1 connector 2 out of the file mid-charge.
            without = LOCATIONS_TOML.split("[[locations.evses]]")
            report = await reload_locations(w, admin, "[[locations.evses]]".join(without[:2]))
            assert report["removed_evses"] == ["LOC-1-CP1-2"]
            await cp.stop_transaction(2, meter_stop=2000, reason="Local")
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = emsp.cdrs.values()
        where = cdr["cdr_location"]
        assert "#NA" not in where.values()
        assert where == {
            "id": "LOC-1",
            "name": "Depot Nord",
            "address": "Hafenstraat 12",
            "city": "Amsterdam",
            "postal_code": "1011AB",
            "country": "NLD",
            "coordinates": {"latitude": "52.37403", "longitude": "4.88969"},
            "evse_uid": "LOC-1-CP1-2",
            "evse_id": "NL*CPO*E1*2",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "CABLE",
            "connector_power_type": "AC_3_PHASE",
        }
        # Priced from the tariff the connector had when the charge started.
        assert [t["id"] for t in cdr["tariffs"]] == ["AC-STD"]
        assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("0.80")
        assert emsp.violations == []


async def test_a_waiting_charge_survives_a_restart_and_goes_when_mapped_at_start_up(tmp_path):
    loc_file = tmp_path / "locations.toml"
    loc_file.write_text(LOCATIONS_TOML)
    sections: dict[str, Any] = {
        "server": {"unknown_chargers": "accept"},
        "ocpi": {"enabled": True, "country_code": "NL", "party_id": "CPO"},
        "ocpi_cpo": {"locations_file": str(loc_file), **FAST},
    }
    async with EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp:
        async with running_csms(tmp_path, **sections) as app:
            w = World(app, emsp, tmp_path)
            _, token_a = await credentials.invite(runtime_of(app).ctx, "NL", "EMS")
            await emsp.register_with(runtime_of(app).ctx.settings.versions_url, token_a)
            await whitelisted_token(w)
            async with w.charger("CP2") as cp:
                await cp.start_transaction(1, TOKEN, meter_start=0, meter_loop=False)
                await cp.stop_transaction(1, meter_stop=1000, reason="Local")
            held = (await w.cpo.outbox.counts())["waiting"]
            assert held >= 3  # PUT, (kwh PATCHes,) COMPLETED PATCH, CDR
        assert not emsp.session_events and not emsp.cdr_posts

        # The operator maps the connector in the file while the CSMS is down.
        loc_file.write_text(CP2_TARIFF + LOCATIONS_TOML + KADE.format(publish=""))
        async with running_csms(tmp_path, **sections) as app:
            await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
            [cdr] = emsp.cdrs.values()
            assert_kade(cdr["cdr_location"])
            assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == Decimal("0.55")
            await emsp.wait_until(lambda: emsp.sessions[cdr["session_id"]]["status"] == "COMPLETED")
            await stays_false(lambda: len(emsp.cdr_posts) > 1, period=0.3, what="a second CDR")
            assert len(emsp.session_events) == held - 1 and len(emsp.cdr_posts) == 1


async def test_a_partner_registering_later_is_not_sent_unpublished_locations(make_world):
    async with make_world(register=False) as w, admin_session(w.app) as admin:
        text = CP2_TARIFF + LOCATIONS_TOML + KADE.format(publish="publish = false")
        await reload_locations(w, admin, text)
        _, token_a = await credentials.invite(runtime_of(w.app).ctx, "NL", "EMS")
        await w.emsp.register_with(runtime_of(w.app).ctx.settings.versions_url, token_a)
        await w.emsp.wait_until(lambda: "LOC-1" in w.emsp.locations)
        await w.outbox_idle()
        assert list(w.emsp.locations.keys()) == ["LOC-1"]
