"""End to end: the real CSMS (OCPP + OCPI + admin), the charge point simulator and the
eMSP sandbox, all over real sockets on 127.0.0.1, with short retry timings via config.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from csms.ocpi.cpo import CpoModules
from csms.system import System
from roaming import credentials
from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp.sandbox import EmspSandbox
from tests.support.csms import ocpp_url, running_csms, runtime_of
from tests.support.waiting import wait_until

LOCATIONS_TOML = """
[[tariffs]]
id = "AC-STD"
currency = "EUR"
energy_price = 0.40
flat_price = 1.00
parking_price = 6.00
vat = 21.0

[[locations]]
id = "LOC-1"
name = "Depot Nord"
address = "Hafenstraat 12"
city = "Amsterdam"
postal_code = "1011AB"
country = "NLD"
latitude = "52.37403"
longitude = "4.88969"
time_zone = "Europe/Amsterdam"
parking_type = "PARKING_LOT"

[[locations.evses]]
uid = "LOC-1-CP1-1"
evse_id = "NL*CPO*E1*1"
charger_id = "CP1"
connector_id = 1
capabilities = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]
standard = "IEC_62196_T2"
format = "SOCKET"
power_type = "AC_3_PHASE"
max_voltage = 230
max_amperage = 32
tariff_ids = ["AC-STD"]

[[locations.evses]]
uid = "LOC-1-CP1-2"
evse_id = "NL*CPO*E1*2"
charger_id = "CP1"
connector_id = 2
standard = "IEC_62196_T2"
format = "CABLE"
power_type = "AC_3_PHASE"
max_voltage = 230
max_amperage = 16
tariff_ids = ["AC-STD"]
"""

FAST = {
    "outbox_retry_initial_s": 0.05,
    "outbox_retry_max_s": 0.2,
    "outbox_poll_interval_s": 0.1,
    "session_update_interval_s": 0.001,
    "command_timeout_s": 5,
}


@dataclass
class World:
    app: System
    emsp: EmspSandbox
    tmp_path: Path

    @property
    def cpo(self) -> CpoModules:
        assert self.app.roaming is not None
        return self.app.roaming.cpo

    @asynccontextmanager
    async def charger(self, cp_id: str = "CP1", **kw: Any) -> AsyncIterator[SimulatedChargePoint]:
        kw = {"heartbeat": False, "step_delay_s": 0, "meter_interval_s": 3600, **kw}
        async with SimulatedChargePoint.connect(ocpp_url(self.app), cp_id, **kw) as cp:
            assert (await cp.boot(announce=True))["status"] == "Accepted"
            yield cp

    async def outbox_idle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is pending in the outbox (polls the store)."""

        async def idle() -> bool:
            return not (await self.cpo.outbox.counts()).get("pending", 0)

        await wait_until(idle, timeout=timeout, interval=0.02, what="an idle outbox")


@asynccontextmanager
async def world(
    tmp_path: Path,
    *,
    register: bool = True,
    cpo: dict[str, Any] | None = None,
    locations: str = LOCATIONS_TOML,
    **sections: Any,
) -> AsyncIterator[World]:
    loc_file = tmp_path / "locations.toml"
    loc_file.write_text(locations)
    # The eMSP starts first and stops last: the CSMS may still be pushing to it while it
    # stops, and its requests must find the eMSP there, not a closing socket.
    async with (
        EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp,
        running_csms(
            tmp_path,
            server={"unknown_chargers": "accept"},
            ocpi={"enabled": True, "country_code": "NL", "party_id": "CPO", "http_timeout_s": 1.0},
            ocpi_cpo={"locations_file": str(loc_file), **FAST, **(cpo or {})},
            **sections,
        ) as app,
    ):
        w = World(app, emsp, tmp_path)
        if register:
            runtime = runtime_of(app)
            _, token_a = await credentials.invite(runtime.ctx, "NL", "EMS")
            await emsp.register_with(runtime.ctx.settings.versions_url, token_a)
        yield w


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[..., Any]:
    def make(**kw: Any) -> Any:
        return world(tmp_path, **kw)

    return make
