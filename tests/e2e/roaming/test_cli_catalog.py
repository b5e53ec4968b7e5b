"""The locations file is validated with the culprit key named; the CLI shows locations
and what waits in the outbox (and why), against the running CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json

import pytest

from csms.cli import main as cli_main
from csms.config import ConfigError
from csms.ocpi.locations import OCPP_TO_OCPI_STATUS, load_catalog, ocpi_status
from roaming.models import ValidationError
from tests.e2e.roaming.conftest import LOCATIONS_TOML
from tests.support.csms import ADMIN_TOKEN, admin_url, runtime_of
from tests.support.waiting import wait_until


async def cli(app, *argv: str) -> tuple[int, str, str]:
    args = [*argv, "--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN]

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(args)
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


def js(out: str):
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    return json.loads("\n".join(lines[start:]))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('standard = "IEC_62196_T2"\nformat = "SOCKET"', 'standard = "T2"\nformat = "SOCKET"'), "locations[0].evses[0].standard"),
        (('latitude = "52.37403"', 'latitude = "52.3"'), "locations[0].latitude"),
        (('tariff_ids = ["AC-STD"]\n\n', 'tariff_ids = ["NOPE"]\n\n'), "locations[0].evses[0].tariff_ids"),
        (('connector_id = 2', 'connector_id = 1'), "locations[0].evses[1].connector_id"),
        (('uid = "LOC-1-CP1-2"', 'uid = "loc-1-cp1-1"'), "locations[0].evses[1].uid"),
        (('vat = 21.0', 'vat = "21"'), "tariffs[0].vat"),
        (('currency = "EUR"', 'currency = "euro"'), "tariffs[0].currency"),
        (('time_zone = "Europe/Amsterdam"', 'time_zone = "Europe/Amsterdam"\ncolour = "red"'), "locations[0].colour"),
    ],
)  # fmt: skip
def test_bad_locations_file_names_the_key(tmp_path, change, key):
    old, new = change
    assert old in LOCATIONS_TOML
    path = tmp_path / "locations.toml"
    path.write_text(LOCATIONS_TOML.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_catalog(str(path), country_code="NL", party_id="CPO")
    assert err.value.key == f"{path}: {key}"


def test_good_file_loads_and_status_table_covers_every_ocpp_status(tmp_path):
    path = tmp_path / "locations.toml"
    path.write_text(LOCATIONS_TOML)
    catalog = load_catalog(str(path), country_code="NL", party_id="CPO")
    [loc] = catalog.locations
    assert [(e.charger_id, e.connector_id) for e in loc.evses] == [("CP1", 1), ("CP1", 2)]
    assert catalog.tariffs[0].to_json()["elements"][0]["price_components"][0] == {
        "type": "FLAT",
        "price": 1,
        "vat": 21,
        "step_size": 1,
    }
    ocpp = ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing",
            "Reserved", "Unavailable", "Faulted"]  # fmt: skip
    assert set(OCPP_TO_OCPI_STATUS) == set(ocpp)
    assert ocpi_status("Charging") == "CHARGING" and ocpi_status("Bogus") == "UNKNOWN"
    with pytest.raises(ConfigError):
        load_catalog(str(tmp_path / "missing.toml"), country_code="NL", party_id="CPO")


def test_validation_error_type_is_roamings():
    from roaming.catalog import parse_catalog

    with pytest.raises(ValidationError) as err:
        parse_catalog("[[locations]]\nid = 5\n", country_code="NL", party_id="CPO")
    assert err.value.field == "locations[0].id"


async def test_cli_locations_and_outbox_show_state_and_reasons(make_world, tmp_path):
    async with make_world() as w:
        code, out, _ = await cli(w.app, "locations", "list")
        assert code == 0 and "LOC-1-CP1-2" in out and "NL*CPO*E1*2" in out
        code, out, _ = await cli(w.app, "locations", "show", "loc-1", "--json")
        assert code == 0 and js(out)["id"] == "LOC-1"
        code, out, _ = await cli(w.app, "tariffs", "list")
        assert code == 0 and "AC-STD" in out and "ENERGY 0.4 +21% VAT" in out

        await w.outbox_idle()
        await w.emsp.set_down("503")
        await runtime_of(w.app).client.forget("NL-EMS")
        async with w.charger():

            async def failed_once() -> bool:
                return any(m.last_error for m in await w.cpo.outbox.waiting())

            await wait_until(failed_once, what="a push that failed against the 503")
            code, out, _ = await cli(w.app, "outbox", "list", "--json")
            data = js(out)
            assert code == 0 and data["counts"]["pending"] >= 1
            [msg, *_] = data["messages"]
            assert msg["module"] == "locations" and "503" in msg["last_error"]
            code, out, _ = await cli(w.app, "outbox", "list")
            assert "HTTP 503" in out
            code, _, err = await cli(w.app, "outbox", "retry", "999999")
            assert code != 0 and "999999" in err
            await w.emsp.set_down("up")
            await w.outbox_idle()
        code, out, _ = await cli(w.app, "outbox", "list", "--all", "--json")
        assert {m["status"] for m in js(out)["messages"]} <= {"delivered", "expanded"}

        # Reload after an edit: a new EVSE is published and PUT to the partner.
        path = tmp_path / "locations.toml"
        path.write_text(LOCATIONS_TOML.replace('"LOC-1-CP1-2"', '"LOC-1-CP1-2B"'))
        code, out, _ = await cli(w.app, "locations", "reload", "--json")
        assert code == 0 and js(out)["removed_evses"] == ["LOC-1-CP1-2"]
        await w.emsp.wait_until(lambda: w.emsp.evse_status("LOC-1", "LOC-1-CP1-2") == "REMOVED")
        # The new EVSE stands for the connector CP1 last reported Available: it says so.
        assert w.emsp.evse_status("LOC-1", "LOC-1-CP1-2B") == "AVAILABLE"

    code, out, _ = await asyncio.to_thread(_check, str(path))
    assert code == 0 and "1 location(s), 2 EVSE(s), 1 tariff(s)" in out


def _check(path: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["locations", "check", path])
    return code, out.getvalue(), err.getvalue()
