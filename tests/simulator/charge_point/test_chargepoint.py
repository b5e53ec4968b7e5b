"""SimulatedChargePoint against the real CSMS: what it sends is what the CSMS stores."""

from __future__ import annotations

import pytest

from simulator.chargepoint import CallFailed, ConnectFailed, SimulatedChargePoint
from simulator.connector import IllegalTransition, Status
from tests.simulator.charge_point.conftest import TAG, Csms


async def test_basic_session_is_persisted(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(csms.url, "CP-BASIC", meter_interval_s=0) as cp:
        boot = await cp.boot(announce=True)
        assert boot["status"] == "Accepted"
        assert (await cp.authorize(TAG))["idTagInfo"]["status"] == "Accepted"
        started = await cp.start_transaction(1, TAG, meter_start=1000)
        tx_id = started["transactionId"]
        assert started["idTagInfo"]["status"] == "Accepted"
        assert cp.connectors[1].status is Status.CHARGING
        await cp.send_meter_values(1, energy_wh=1500)
        await cp.stop_transaction(1, reason="Local", meter_stop=2500)
        assert cp.connectors[1].status is Status.AVAILABLE

    chargers = await csms.rows("SELECT * FROM chargers WHERE id = 'CP-BASIC'")
    assert chargers[0]["vendor"] == "csms-sim" and chargers[0]["last_boot_at"]
    statuses = await csms.rows(
        "SELECT connector_id, status FROM status_notifications WHERE charger_id = 'CP-BASIC' ORDER BY id"
    )
    seq = [(r["connector_id"], r["status"]) for r in statuses]
    assert seq[:3] == [(0, "Available"), (1, "Available"), (2, "Available")]
    assert [s for c, s in seq if c == 1][1:] == ["Preparing", "Charging", "Finishing", "Available"]
    (tx,) = await csms.rows("SELECT * FROM transactions WHERE id = ?", tx_id)
    assert (tx["charger_id"], tx["connector_id"], tx["meter_start"]) == ("CP-BASIC", 1, 1000)
    assert (tx["meter_stop"], tx["stop_reason"]) == (2500, "Local")
    values = await csms.rows(
        "SELECT measurand, unit, value, context FROM meter_values WHERE transaction_id = ?", tx_id
    )
    periodic = {
        (v["measurand"], v["unit"], v["value"]) for v in values if v["context"] == "Sample.Periodic"
    }
    assert ("Energy.Active.Import.Register", "Wh", "1500") in periodic
    assert any(m == "Power.Active.Import" and u == "W" for m, u, _ in periodic)


async def test_periodic_meter_values_flow_during_a_transaction(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(
        csms.url, "CP-METER", meter_interval_s=1, time_scale=600
    ) as cp:
        await cp.boot()
        tx_id = (await cp.start_transaction(1, TAG, meter_start=0))["transactionId"]
        await cp.wait_until(lambda: sum(s.action == "MeterValues" for s in cp.steps) >= 2, 5)
        await cp.stop_transaction(1)
    rows = await csms.rows(
        "SELECT value FROM meter_values WHERE transaction_id = ? AND measurand = "
        "'Energy.Active.Import.Register' AND source = 'MeterValues' ORDER BY id",
        tx_id,
    )
    energies = [int(r["value"]) for r in rows]
    assert len(energies) >= 2 and energies == sorted(energies) and energies[-1] > 0


async def test_heartbeats_follow_the_interval_the_csms_gave(tmp_path) -> None:
    from tests.support.csms import ocpp_url, running_csms

    async with running_csms(
        tmp_path, server={"unknown_chargers": "accept", "heartbeat_interval_s": 1}
    ) as app:
        async with SimulatedChargePoint.connect(ocpp_url(app), "CP-HB") as cp:
            await cp.boot()
            assert cp.heartbeat_interval == 1
            await cp.wait_until(lambda: any(s.action == "Heartbeat" for s in cp.steps), 3)
        row = await app.db.fetchone("SELECT last_heartbeat_at FROM chargers WHERE id = 'CP-HB'")
        assert row is not None and row["last_heartbeat_at"]


async def test_wrong_password_is_refused_at_the_handshake(csms: Csms) -> None:
    await csms.add_charger("CP-PW", password="s3cret-pass")
    with pytest.raises(ConnectFailed) as err:
        async with SimulatedChargePoint.connect(csms.url, "CP-PW", password="wrong"):
            pass
    assert err.value.status == 401
    async with SimulatedChargePoint.connect(csms.url, "CP-PW", password="s3cret-pass") as cp:
        assert (await cp.boot())["status"] == "Accepted"


async def test_call_error_is_raised_not_swallowed(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(csms.url, "CP-ERR") as cp:
        await cp.boot()
        with pytest.raises(CallFailed) as err:
            await cp.request("Authorize", {"idTag": "X" * 30}, validate=False)
        assert err.value.code in (
            "TypeConstraintViolation",
            "FormationViolation",
            "PropertyConstraintViolation",
        )
        assert cp.steps[-1].error is not None


async def test_send_raw_returns_the_matching_reply(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(csms.url, "CP-RAW") as cp:
        await cp.boot()
        reply = await cp.send_raw('[2,"raw-1","Heartbeat",{}]')
        assert reply is not None and reply.startswith('[3,"raw-1"')
        reply = await cp.send_raw('[2,"raw-2","NoSuchAction",{}]')
        assert reply is not None and '"raw-2"' in reply and "NotImplemented" in reply


async def test_illegal_status_change_is_refused_locally(csms: Csms) -> None:
    async with SimulatedChargePoint.connect(csms.url, "CP-ILL") as cp:
        await cp.boot()
        with pytest.raises(IllegalTransition):
            await cp.status(1, "Finishing")
        await cp.status(1, "Finishing", force=True)
        assert cp.connectors[1].status is Status.FINISHING


async def test_long_charge_point_id_still_boots(csms: Csms) -> None:
    cp_id = "CP-" + "L" * 40  # the serial number derived from it must fit CiString25
    async with SimulatedChargePoint.connect(csms.url, cp_id) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        assert len(cp.serial) == 25
