"""The same happy path driven by the project's charge point simulator (a real OCPP client
built on the ocpp library), proving interoperability beyond our own raw client."""

from __future__ import annotations

from typing import Any

from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from csms.store.id_tags import IdTagRepo
from simulator.chargepoint import SimulatedChargePoint
from tests.csms.ocpp.conftest import StartServer


async def test_simulator_session_with_basic_auth(db: Database, start_server: StartServer):
    await ChargerRepo(db).add("SIM1", password="pw-sim-1")
    await IdTagRepo(db).add("TAG1")
    srv = await start_server(unknown_chargers="reject")
    url = f"ws://127.0.0.1:{srv.port}/ocpp"
    sim_kwargs: dict[str, Any] = {"password": "pw-sim-1", "heartbeat": False, "step_delay_s": 0}
    async with SimulatedChargePoint.connect(url, "SIM1", **sim_kwargs) as cp:
        assert (await cp.boot(announce=True))["status"] == "Accepted"
        assert (await cp.authorize("TAG1"))["idTagInfo"]["status"] == "Accepted"
        start = await cp.start_transaction(1, "TAG1", meter_start=1000, meter_loop=False)
        tid = start["transactionId"]
        await cp.send_meter_values(1)
        await cp.stop_transaction(1, reason="Local")
        config = await srv.gateway.call("SIM1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
        assert config["configurationKey"][0]["key"] == "HeartbeatInterval"

    txn = await db.fetchone("SELECT * FROM transactions WHERE id = ?", (tid,))
    assert txn is not None
    assert txn["meter_start"] == 1000 and txn["stop_reason"] == "Local"
    assert txn["meter_stop"] is not None and txn["meter_stop"] >= 1000
    sources = {
        r[0]
        for r in await db.fetchall(
            "SELECT source FROM meter_values WHERE transaction_id = ?", (tid,)
        )
    }
    assert sources == {"MeterValues", "StopTransaction"}
    connectors = await db.fetchall("SELECT connector_id FROM connectors ORDER BY 1")
    assert [r[0] for r in connectors] == [0, 1, 2]
