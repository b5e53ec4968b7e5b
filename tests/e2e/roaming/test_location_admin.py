"""Locations, EVSEs and Tariffs managed through the admin API and the CLI, against the real
CSMS, the real eMSP sandbox (which receives the PUTs) and the real charger simulator."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog.testing

from csms.ocpi.locations import unmapped_connectors
from roaming import credentials
from roaming.models import format_datetime
from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp.sandbox import EmspSandbox
from tests.e2e.roaming.conftest import FAST, LOCATIONS_TOML
from tests.e2e.roaming.test_cli_catalog import cli, js
from tests.support.csms import (
    ADMIN_TOKEN,
    admin_session,
    admin_url,
    ocpp_url,
    running_csms,
    runtime_of,
)
from tests.support.waiting import stays_false, wait_until

SITE = {
    "address": "Kade 1",
    "city": "Utrecht",
    "postal_code": "3511AA",
    "country": "NLD",
    "latitude": "52.09074",
    "longitude": "5.12142",
    "time_zone": "Europe/Amsterdam",
}
EVSE = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 16,
}


async def next_second(stamp: str) -> None:
    """Wait until the clock has left ``stamp``'s second (OCPI times have whole seconds)."""

    def later() -> bool:
        return format_datetime(datetime.now(UTC)) > stamp

    await wait_until(later, timeout=2.0, interval=0.02, what="the next second")


async def cli_process(app: Any, *argv: str) -> tuple[int, str, str]:
    """The real ``csms`` command in its own process (its stdout holds nothing else)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", *argv, "--admin-url", admin_url(app),
        "--admin-token", ADMIN_TOKEN,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def call(admin: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with admin.request(method, path, json=body) as resp:
        return resp.status, await resp.json()


def emsp_evse(emsp: Any, loc: str, uid: str) -> dict[str, Any] | None:
    for e in (emsp.locations.get(loc) or {}).get("evses", []):
        if e["uid"] == uid:
            return dict(e)
    return None


async def test_a_location_created_through_the_api_reaches_the_emsp(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        await w.outbox_idle()
        status, loc = await call(admin, "POST", "/api/locations", {"id": "LOC-2", **SITE})
        assert status == 201 and loc["publish"] is True and loc["evses"] == []
        await w.emsp.wait_until(lambda: "LOC-2" in w.emsp.locations)
        assert w.emsp.locations["LOC-2"]["address"] == "Kade 1"

        body = {"uid": "LOC-2-A", "charger_id": "CP7", "connector_id": 1, **EVSE}
        status, loc = await call(admin, "POST", "/api/locations/LOC-2/evses", body)
        assert status == 201 and [e["uid"] for e in loc["evses"]] == ["LOC-2-A"]
        await w.emsp.wait_until(lambda: emsp_evse(w.emsp, "LOC-2", "LOC-2-A") is not None)
        pushed = emsp_evse(w.emsp, "LOC-2", "LOC-2-A")
        assert pushed is not None and pushed["connectors"][0]["max_amperage"] == 16
        assert w.emsp.locations["LOC-2"]["last_updated"] == loc["last_updated"]
        assert not w.emsp.violations


async def test_an_update_moves_last_updated_only_on_real_change_and_is_pushed(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        await w.outbox_idle()
        before = w.emsp.locations["LOC-1"]["last_updated"]
        await next_second(before)
        status, loc = await call(admin, "PATCH", "/api/locations/LOC-1", {"name": "Depot Zuid"})
        assert status == 200 and loc["name"] == "Depot Zuid" and loc["last_updated"] > before
        await w.emsp.wait_until(lambda: w.emsp.locations["LOC-1"].get("name") == "Depot Zuid")
        assert w.emsp.locations["LOC-1"]["last_updated"] == loc["last_updated"]
        puts = len([e for e in w.emsp.location_events if e[0] == "PUT"])

        # The same value again is no change: no new last_updated, nothing pushed.
        status, again = await call(admin, "PATCH", "/api/locations/LOC-1", {"name": "Depot Zuid"})
        assert status == 200 and again["last_updated"] == loc["last_updated"]

        async def pushed() -> bool:
            return len([e for e in w.emsp.location_events if e[0] == "PUT"]) > puts

        await stays_false(pushed, period=0.3, what="a PUT of an unchanged location")

        # An optional field can be cleared, and publish is exposed.
        status, loc = await call(
            admin, "PATCH", "/api/locations/LOC-1", {"name": None, "publish": False}
        )
        assert status == 200 and "name" not in loc and loc["publish"] is False
        await w.emsp.wait_until(lambda: w.emsp.locations["LOC-1"]["publish"] is False)


async def test_tariffs_are_put_at_the_emsp_on_create_and_update(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        # The file's tariff reached the partner when it registered.
        await w.emsp.wait_until(lambda: "AC-STD" in w.emsp.tariffs)
        new = {"id": "DC-FAST", "currency": "EUR", "energy_price": 0.59, "vat": 21.0}
        status, tariff = await call(admin, "POST", "/api/tariffs", new)
        assert status == 201 and tariff["id"] == "DC-FAST"
        await next_second(tariff["last_updated"])
        await w.emsp.wait_until(lambda: "DC-FAST" in w.emsp.tariffs)
        comps = w.emsp.tariffs["DC-FAST"]["elements"][0]["price_components"]
        assert comps == [{"type": "ENERGY", "price": 0.59, "step_size": 1, "vat": 21}]
        status, _ = await call(admin, "POST", "/api/tariffs", new)
        assert status == 409

        code, out, _ = await cli(w.app, "tariffs", "set", "DC-FAST", "--currency", "EUR",
                                 "--energy-price", "0.69", "--vat", "21", "--json")  # fmt: skip
        assert code == 0 and js(out)["last_updated"] > tariff["last_updated"]

        def price() -> float:
            return float(w.emsp.tariffs["DC-FAST"]["elements"][0]["price_components"][0]["price"])

        await w.emsp.wait_until(lambda: price() == 0.69)
        assert [m for m, oid, _ in w.emsp.tariff_events if oid == "DC-FAST"] == ["PUT", "PUT"]

        # Attach it to a connector: the Location PUT names it.
        status, _ = await call(
            admin, "PATCH", "/api/locations/LOC-1/evses/LOC-1-CP1-2", {"tariff_ids": ["DC-FAST"]}
        )
        assert status == 200

        def tariffs_of_cp1_2() -> list[str]:
            evse = emsp_evse(w.emsp, "LOC-1", "LOC-1-CP1-2") or {"connectors": [{}]}
            return list(evse["connectors"][0].get("tariff_ids", []))

        await w.emsp.wait_until(lambda: tariffs_of_cp1_2() == ["DC-FAST"])
        assert not w.emsp.violations


async def test_mapping_an_unmapped_connector_takes_effect_without_a_restart(make_world):
    async with make_world() as w, admin_session(w.app) as admin, w.charger("CP2") as cp:
        w.emsp.add_token("AA000001", whitelist="NEVER")
        w.emsp.add_token("AA000002", whitelist="NEVER")
        await w.emsp.push_tokens()
        await cp.status(1, "Preparing")

        async def unmapped() -> list[tuple[str, int]]:
            _, data = await call(admin, "GET", "/api/locations/unmapped")
            return [(u["charger_id"], u["connector_id"]) for u in data["unmapped"]]

        async def cp2_1_listed() -> bool:
            return ("CP2", 1) in await unmapped()

        await wait_until(cp2_1_listed, what="CP2/1 listed as unmapped")
        code, out, _ = await cli(w.app, "locations", "unmapped")
        assert code == 0 and "CP2" in out
        # A remote authorization on CP2 names no location (and the lookup memoises that).
        assert (await cp.authorize("AA000001"))["idTagInfo"]["status"] == "Accepted"

        # An EVSE added without a mapping, then mapped from the CLI.
        status, _ = await call(
            admin, "POST", "/api/locations/LOC-1/evses", {"uid": "LOC-1-CP2-1", **EVSE}
        )
        assert status == 201
        assert ("CP2", 1) in await unmapped()
        code, out, err = await cli(w.app, "locations", "map", "LOC-1", "LOC-1-CP2-1", "CP2", "1")
        assert code == 0, err
        assert ("CP2", 1) not in await unmapped()
        # The new EVSE shows the connector's last reported status at once.
        await w.emsp.wait_until(lambda: w.emsp.evse_status("LOC-1", "LOC-1-CP2-1") == "BLOCKED")

        assert (await cp.authorize("AA000002"))["idTagInfo"]["status"] == "Accepted"
        first, second = w.emsp.requests_to("/authorize", "POST")
        assert not first.body or "location_id" not in first.body
        assert second.body == {"location_id": "LOC-1", "evse_uids": ["LOC-1-CP2-1"]}

        # Unmapped again: listed again, and no EVSE stands for CP2 any more.
        code, _, _ = await cli(w.app, "locations", "unmap", "LOC-1", "LOC-1-CP2-1")
        assert code == 0 and ("CP2", 1) in await unmapped()


async def test_removing_an_evse_marks_it_removed(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        await w.outbox_idle()
        code, _, _ = await cli(w.app, "locations", "remove-evse", "LOC-1", "LOC-1-CP1-2")
        assert code == 0
        await w.emsp.wait_until(lambda: w.emsp.evse_status("LOC-1", "LOC-1-CP1-2") == "REMOVED")
        status, again = await call(admin, "DELETE", "/api/locations/LOC-1/evses/LOC-1-CP1-2")
        assert status == 200 and again["removed"] is False
        status, _ = await call(admin, "DELETE", "/api/locations/LOC-1/evses/NOPE")
        assert status == 404


BAD = [
    ("POST", "/api/locations", {"id": "L9", **SITE, "latitude": "52.1"}, 400, "latitude"),
    ("POST", "/api/locations", {"id": "L9", **SITE, "colour": "red"}, 400, "colour"),
    ("POST", "/api/locations", {"id": "LOC-1", **SITE}, 409, None),
    ("POST", "/api/locations",
     {"id": "L9", **SITE, "evses": [{"uid": "L9-1", "charger_id": "CP9", "connector_id": 1, **EVSE},
                                    {"uid": "L9-2", **EVSE, "standard": "T2"}]},
     400, "evses[1].standard"),
    ("PATCH", "/api/locations/LOC-1", {"country": "Netherlands"}, 400, "country"),
    ("PATCH", "/api/locations/LOC-1", {"id": "LOC-X"}, 400, "id"),
    ("PATCH", "/api/locations/NOPE", {"name": "x"}, 404, None),
    ("POST", "/api/locations/LOC-1/evses", {"uid": "LOC-1-CP1-9", **EVSE, "max_voltage": 0}, 400, "max_voltage"),
    ("POST", "/api/locations/LOC-1/evses", {"uid": "LOC-1-CP1-1", **EVSE}, 409, "uid"),
    ("POST", "/api/locations/LOC-1/evses", {"uid": "X", "charger_id": "CP1", **EVSE}, 400, "connector_id"),
    ("PATCH", "/api/locations/LOC-1/evses/LOC-1-CP1-2", {"connector_id": 1}, 400, "connector_id"),
    ("PATCH", "/api/locations/LOC-1/evses/LOC-1-CP1-2", {"tariff_ids": ["NOPE"]}, 400, "tariff_ids"),
    ("PUT", "/api/tariffs/T1", {"currency": "euro"}, 400, "currency"),
    ("PUT", "/api/tariffs/T1", {"currency": "EUR", "energy_price": -1}, 400, "energy_price"),
    ("POST", "/api/locations/import", {"toml": LOCATIONS_TOML.replace('"52.37403"', '"52.3"')},
     400, "locations[0].latitude"),
]  # fmt: skip


async def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(make_world):
    async with make_world() as w, admin_session(w.app) as admin:
        await w.outbox_idle()
        _, before = await call(admin, "GET", "/api/locations")
        _, tariffs_before = await call(admin, "GET", "/api/tariffs")
        queued = await w.cpo.outbox.counts()
        for method, path, body, want, fld in BAD:
            status, err = await call(admin, method, path, body)
            assert status == want, (path, body, err)
            if fld is not None:
                assert err["field"] == fld and err["message"].startswith(fld), err
        _, after = await call(admin, "GET", "/api/locations")
        _, tariffs_after = await call(admin, "GET", "/api/tariffs")
        assert after == before and tariffs_after == tariffs_before
        assert await w.cpo.outbox.counts() == queued


async def test_export_then_import_round_trips_to_identical_objects(make_world, tmp_path):
    async with make_world() as w, admin_session(w.app) as admin:
        await call(admin, "POST", "/api/locations", {"id": "LOC-2", **SITE, "publish": False})
        await call(admin, "POST", "/api/locations/LOC-2/evses", {"uid": "LOC-2-A", **EVSE})
        await call(admin, "PUT", "/api/tariffs/FREE", {"currency": "EUR"})
        evening = {"energy_price": 0.45, "start_time": "18:00", "end_time": "07:00"}
        tou = {"currency": "EUR", "vat": 21.0, "elements": [evening, {"energy_price": 0.3}]}
        status, _ = await call(admin, "PUT", "/api/tariffs/TOU", tou)
        assert status == 200
        code, exported, _ = await cli_process(w.app, "locations", "export")
        assert code == 0 and 'uid = "LOC-2-A"' in exported
        assert 'start_time = "18:00"' in exported  # restricted elements export too
        path = tmp_path / "exported.toml"
        path.write_text(exported)
        _, before = await call(admin, "GET", "/api/locations")
        code, out, err = await cli(w.app, "locations", "import", str(path), "--json")
        assert code == 0, (err, exported)
        assert code == 0 and js(out) == {
            "changed_locations": [], "removed_evses": [], "changed_tariffs": []
        }  # fmt: skip
        _, after = await call(admin, "GET", "/api/locations")
        assert after == before

    # Into a CSMS that has none of it: the same objects (bar times and live status).
    fresh = tmp_path / "fresh"
    fresh.mkdir()

    def static(locs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for loc in locs:
            loc = {k: v for k, v in loc.items() if k != "last_updated"}
            loc["evses"] = [
                {k: v for k, v in e.items() if k not in ("last_updated", "status")}
                | {
                    "connectors": [
                        {k: v for k, v in c.items() if k != "last_updated"} for c in e["connectors"]
                    ]
                }
                for e in loc["evses"]
            ]
            out.append(loc)
        return out

    ocpi = {"enabled": True, "country_code": "NL", "party_id": "CPO"}
    async with running_csms(fresh, ocpi=ocpi) as app2, admin_session(app2) as admin2:
        code, _, err = await cli(app2, "locations", "import", str(path))
        assert code == 0, err
        _, imported = await call(admin2, "GET", "/api/locations")
        assert static(imported["locations"]) == static(before["locations"])
        code, again, _ = await cli_process(app2, "locations", "export")
        assert again == exported


@pytest.mark.parametrize("via_cli", [True, False])
async def test_a_charger_added_with_its_site_gets_location_and_evses(make_world, via_cli):
    async with make_world() as w, admin_session(w.app) as admin:
        if via_cli:
            code, _, err = await cli(
                w.app, "chargers", "add", "CP9", "--location", "SITE-9",
                "--address", "Kade 1", "--city", "Utrecht", "--postal-code", "3511AA",
                "--country", "NLD", "--latitude", "52.09074", "--longitude", "5.12142",
                "--time-zone", "Europe/Amsterdam", "--connectors", "2",
            )  # fmt: skip
            assert code == 0, err
        else:
            body = {"id": "CP9", "site": {"location_id": "SITE-9", **SITE, "connectors": 2}}
            status, _ = await call(admin, "POST", "/api/chargers", body)
            assert status == 201
        _, loc = await call(admin, "GET", "/api/locations/SITE-9")
        assert loc["publish"] is False and loc["city"] == "Utrecht"
        assert [e["uid"] for e in loc["evses"]] == ["CP9-1", "CP9-2"]
        assert loc["evses"][0]["capabilities"] == ["REMOTE_START_STOP_CAPABLE"]
        _, unmapped = await call(admin, "GET", "/api/locations/unmapped")
        assert unmapped["unmapped"] == []
        async with w.charger("CP9") as cp:
            await cp.status(2, "Charging")

            async def cp9_2_charging() -> bool:
                _, site = await call(admin, "GET", "/api/locations/SITE-9")
                return bool(site["evses"][1]["status"] == "CHARGING")

            await wait_until(cp9_2_charging, what="CP9-2 CHARGING in our store")
        # Unpublished until the operator publishes it; then the eMSP gets it, status and all.
        assert "SITE-9" not in w.emsp.locations
        code, _, err = await cli(w.app, "locations", "publish", "SITE-9")
        assert code == 0, err
        await w.emsp.wait_until(lambda: w.emsp.evse_status("SITE-9", "CP9-2") == "CHARGING")

        # A second charger reuses the site; a site that differs is refused, nothing added.
        status, _ = await call(admin, "POST", "/api/chargers",
                               {"id": "CP10", "site": {"location_id": "SITE-9", "city": "Utrecht"}})  # fmt: skip
        assert status == 201
        status, err = await call(admin, "POST", "/api/chargers",
                                 {"id": "CP11", "site": {"location_id": "SITE-9", "city": "Delft"}})  # fmt: skip
        assert status == 409 and err["field"] == "site.city"
        status, err = await call(admin, "POST", "/api/chargers",
                                 {"id": "CP12", "site": {"location_id": "SITE-12", **SITE, "latitude": "1"}})  # fmt: skip
        assert status == 400 and err["field"] == "site.latitude"
        for cp_id in ("CP11", "CP12"):
            status, _ = await call(admin, "GET", f"/api/chargers/{cp_id}")
            assert status == 404
        status, _ = await call(admin, "GET", "/api/locations/SITE-12")
        assert status == 404
        _, loc = await call(admin, "GET", "/api/locations/SITE-9")
        assert [e["uid"] for e in loc["evses"]] == ["CP9-1", "CP9-2", "CP10-1"]


async def test_the_locations_file_at_boot_keeps_admin_edits_and_pushes_what_it_changed(tmp_path):
    """The file owns only what it says: a restart with an unchanged entry keeps the admin's
    edit, objects created through the API survive, and what changed in the file (here a
    tariff price) is applied and PUT to the partner."""
    loc_file = tmp_path / "locations.toml"
    loc_file.write_text(LOCATIONS_TOML)
    sections: dict[str, Any] = {
        "server": {"unknown_chargers": "accept"},
        "ocpi": {"enabled": True, "country_code": "NL", "party_id": "CPO"},
        "ocpi_cpo": {"locations_file": str(loc_file), **FAST},
    }
    async with EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp:
        async with running_csms(tmp_path, **sections) as app, admin_session(app) as admin:
            runtime = runtime_of(app)
            _, token_a = await credentials.invite(runtime.ctx, "NL", "EMS")
            await emsp.register_with(runtime.ctx.settings.versions_url, token_a)
            await call(admin, "PATCH", "/api/locations/LOC-1", {"name": "Renamed"})
            await call(admin, "POST", "/api/locations/LOC-1/evses", {"uid": "LOC-1-API", **EVSE})
            await call(admin, "PATCH", "/api/locations/LOC-1/evses/LOC-1-CP1-1",
                       {"max_amperage": 24})  # fmt: skip
            await call(admin, "DELETE", "/api/locations/LOC-1/evses/LOC-1-CP1-2")
            await emsp.wait_until(lambda: emsp_evse(emsp, "LOC-1", "LOC-1-API") is not None)
            _, before = await call(admin, "GET", "/api/locations/LOC-1")
        loc_file.write_text(LOCATIONS_TOML.replace("energy_price = 0.40", "energy_price = 0.45"))
        async with running_csms(tmp_path, **sections) as app, admin_session(app) as admin:
            _, after = await call(admin, "GET", "/api/locations/LOC-1")
            # The name, the API's EVSE, its edit and the removal are all kept, untouched.
            assert after == before
            assert after["evses"][1]["status"] == "REMOVED"
            assert after["name"] == "Renamed"
            assert after["evses"][0]["connectors"][0]["max_amperage"] == 24

            def energy_price() -> float:
                comps = emsp.tariffs["AC-STD"]["elements"][0]["price_components"]
                return float(next(c["price"] for c in comps if c["type"] == "ENERGY"))

            await emsp.wait_until(lambda: energy_price() == 0.45)
            # Editing an entry in the file applies the file's version of it.
            loc_file.write_text(
                LOCATIONS_TOML.replace('name = "Depot Nord"', 'name = "Depot Oost"')
            )
            code, out, _ = await cli(app, "locations", "reload", "--json")
            assert code == 0 and js(out)["changed_locations"] == ["LOC-1"]
            _, edited = await call(admin, "GET", "/api/locations/LOC-1")
            assert edited["name"] == "Depot Oost"
            assert [e["uid"] for e in edited["evses"]] == [
                "LOC-1-CP1-1",
                "LOC-1-CP1-2",
                "LOC-1-API",
            ]
            assert [e["status"] == "REMOVED" for e in edited["evses"]] == [False, True, False]
        # Without a locations file (managed through the API from now on) nothing is retired.
        sections["ocpi_cpo"]["locations_file"] = ""
        async with running_csms(tmp_path, **sections) as app, admin_session(app) as admin:
            _, kept = await call(admin, "GET", "/api/locations/LOC-1")
            assert kept == edited
            status, err = await call(admin, "POST", "/api/locations/reload")
            assert status == 400 and err["error"] == "no_locations_file"


async def test_unmapped_connectors_are_a_warning_at_boot(tmp_path):
    ocpi = {"enabled": True, "country_code": "NL", "party_id": "CPO"}
    sections: dict[str, Any] = {"server": {"unknown_chargers": "accept"}, "ocpi": ocpi}
    async with (
        running_csms(tmp_path, **sections) as app,
        SimulatedChargePoint.connect(ocpp_url(app), "CP5", heartbeat=False) as cp,
    ):
        await cp.boot(announce=True)
        await cp.status(1, "Available")

        async def listed() -> bool:
            return len(await unmapped_connectors(app.db)) == 2

        await wait_until(listed, what="CP5's connectors stored")
    with structlog.testing.capture_logs() as logged:
        async with running_csms(tmp_path, **sections):
            pass
    [warning] = [e for e in logged if e["event"] == "ocpi.unmapped_connectors"]
    assert warning["log_level"] == "warning" and warning["count"] == 2
    assert warning["connectors"] == ["CP5/1", "CP5/2"]


async def test_a_waiting_charge_is_sent_once_when_its_connector_is_mapped_from_the_cli(make_world):
    async with make_world() as w:
        emsp = w.emsp
        emsp.add_token("0D0D0D0D", whitelist="ALWAYS")
        await emsp.push_tokens()
        await w.outbox_idle()
        async with w.charger("CP2") as cp:
            await cp.start_transaction(1, "0D0D0D0D", meter_start=0, meter_loop=False)
            await cp.stop_transaction(1, meter_stop=2000, reason="Local")
        await stays_false(lambda: emsp.cdr_posts, period=0.3, what="a CDR before the mapping")

        code, _, err = await cli(
            w.app, "locations", "add-evse", "LOC-1", "LOC-1-CP2-1", "--charger", "CP2",
            "--connector", "1", "--standard", "IEC_62196_T2", "--format", "SOCKET",
            "--power-type", "AC_3_PHASE", "--max-voltage", "230", "--max-amperage", "16",
            "--tariff", "AC-STD",
        )  # fmt: skip
        assert code == 0, err
        await emsp.wait_until(lambda: len(emsp.cdrs) == 1)
        [cdr] = emsp.cdrs.values()
        assert cdr["cdr_location"]["id"] == "LOC-1"
        assert cdr["cdr_location"]["evse_uid"] == "LOC-1-CP2-1"
        assert cdr["total_energy"] == 2.0 and [t["id"] for t in cdr["tariffs"]] == ["AC-STD"]
        await stays_false(
            lambda: (
                len(emsp.cdr_posts) > 1
                or len([e for e in emsp.session_events if e[0] == "PUT"]) > 1
            ),
            period=0.5,
            what="a second Session or CDR",
        )
        assert emsp.sessions[cdr["session_id"]]["status"] == "COMPLETED"


async def test_a_site_without_roaming_is_refused_and_the_charger_not_added(tmp_path):
    async with running_csms(tmp_path) as app, admin_session(app) as admin:
        body = {"id": "CP1", "site": {"location_id": "LOC-1", **SITE}}
        status, err = await call(admin, "POST", "/api/chargers", body)
        assert status == 400 and err["field"] == "site" and "ocpi.enabled" in err["message"]
        status, _ = await call(admin, "GET", "/api/chargers/CP1")
        assert status == 404
