"""Every CSMS-initiated call, driven through the real CSMS gateway, gets a sensible answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from simulator.chargepoint import SimulatedChargePoint
from simulator.connector import Status
from tests.simulator.charge_point.conftest import TAG, Csms

CP = "CP-CALLS"


@pytest.fixture
async def cp(csms: Csms) -> AsyncIterator[SimulatedChargePoint]:
    async with SimulatedChargePoint.connect(
        csms.url, CP, meter_interval_s=0, step_delay_s=0.01
    ) as charger:
        await charger.boot()
        yield charger


async def call(csms: Csms, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    return await csms.app.gateway.call(CP, action, payload)


async def test_remote_start_then_remote_stop(csms: Csms, cp: SimulatedChargePoint) -> None:
    answer = await call(csms, "RemoteStartTransaction", {"idTag": TAG, "connectorId": 2})
    assert answer == {"status": "Accepted"}
    await cp.wait_until(lambda: len(cp.steps) == 5)  # Boot + the four below
    assert [s.action for s in cp.steps[-4:]] == [
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "StatusNotification",
    ]
    tx_id = cp.transactions[2].id
    assert cp.connectors[2].status is Status.CHARGING
    assert (await call(csms, "RemoteStopTransaction", {"transactionId": 999999}))[
        "status"
    ] == "Rejected"
    assert (await call(csms, "RemoteStopTransaction", {"transactionId": tx_id}))[
        "status"
    ] == "Accepted"
    await cp.wait_until(lambda: cp.connectors[2].status is Status.AVAILABLE)
    (row,) = await csms.rows("SELECT stop_reason FROM transactions WHERE id = ?", tx_id)
    assert row["stop_reason"] == "Remote"


async def test_remote_start_skips_authorize_when_configured(
    csms: Csms, cp: SimulatedChargePoint
) -> None:
    answer = await call(
        csms, "ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "false"}
    )
    assert answer == {"status": "Accepted"}
    await call(csms, "RemoteStartTransaction", {"idTag": TAG})
    await cp.wait_until(lambda: 1 in cp.transactions and cp.transactions[1].id is not None)
    assert "Authorize" not in [s.action for s in cp.steps]
    busy = await call(csms, "RemoteStartTransaction", {"idTag": TAG, "connectorId": 1})
    assert busy == {"status": "Rejected"}


async def test_configuration_keys(csms: Csms, cp: SimulatedChargePoint) -> None:
    assert (await call(csms, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "4"}))[
        "status"
    ] == "Rejected"
    assert (await call(csms, "ChangeConfiguration", {"key": "NoSuchKey", "value": "1"}))[
        "status"
    ] == "NotSupported"
    assert (await call(csms, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "abc"}))[
        "status"
    ] == "Rejected"
    assert (
        await call(csms, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"})
    )["status"] == "Accepted"
    some = await call(csms, "GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]})
    assert some["configurationKey"] == [
        {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"}
    ]
    assert some["unknownKey"] == ["Nope"]
    everything = await call(csms, "GetConfiguration", {})
    keys = {k["key"] for k in everything["configurationKey"]}
    assert {"HeartbeatInterval", "NumberOfConnectors", "AuthorizeRemoteTxRequests"} <= keys


async def test_reset_stops_transactions_and_reboots(csms: Csms, cp: SimulatedChargePoint) -> None:
    tx_id = (await cp.start_transaction(1, TAG, meter_start=10))["transactionId"]
    assert (await call(csms, "Reset", {"type": "Soft"})) == {"status": "Accepted"}
    await cp.wait_until(lambda: cp.boot_count == 2 and cp.connected, 5)
    (row,) = await csms.rows("SELECT stop_reason FROM transactions WHERE id = ?", tx_id)
    assert row["stop_reason"] == "SoftReset"
    assert cp.transactions == {}


async def test_availability_unlock_cache_datatransfer(csms: Csms, cp: SimulatedChargePoint) -> None:
    assert (await call(csms, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}))[
        "status"
    ] == "Accepted"
    await cp.wait_until(lambda: cp.connectors[1].status is Status.UNAVAILABLE)
    assert (await call(csms, "ChangeAvailability", {"connectorId": 1, "type": "Operative"}))[
        "status"
    ] == "Accepted"
    await cp.wait_until(lambda: cp.connectors[1].status is Status.AVAILABLE)
    await cp.start_transaction(2, TAG)
    scheduled = await call(csms, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
    assert scheduled["status"] == "Scheduled"
    assert (await call(csms, "UnlockConnector", {"connectorId": 1}))["status"] == "Unlocked"
    assert (await call(csms, "UnlockConnector", {"connectorId": 9}))["status"] == "NotSupported"
    assert (await call(csms, "ClearCache", {}))["status"] == "Accepted"
    ok = await call(csms, "DataTransfer", {"vendorId": "csms-sim", "data": "ping"})
    assert ok == {"status": "Accepted", "data": "ping"}
    assert (await call(csms, "DataTransfer", {"vendorId": "other"}))["status"] == "UnknownVendorId"


async def test_trigger_message_sends_the_requested_message(
    csms: Csms, cp: SimulatedChargePoint
) -> None:
    before = sum(s.action == "Heartbeat" for s in cp.steps)
    assert (await call(csms, "TriggerMessage", {"requestedMessage": "Heartbeat"}))[
        "status"
    ] == "Accepted"
    await cp.wait_until(lambda: sum(s.action == "Heartbeat" for s in cp.steps) == before + 1)
    answer = await call(
        csms, "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 2}
    )
    assert answer["status"] == "Accepted"
    await cp.wait_until(
        lambda: (
            cp.steps[-1].action == "StatusNotification" and cp.steps[-1].request["connectorId"] == 2
        )
    )
    bad = await call(csms, "TriggerMessage", {"requestedMessage": "Heartbeat", "connectorId": 7})
    assert bad["status"] == "Rejected"


async def test_local_list(csms: Csms, cp: SimulatedChargePoint) -> None:
    assert (await call(csms, "GetLocalListVersion", {})) == {"listVersion": 0}
    full = {
        "listVersion": 3,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": "A1", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "B2", "idTagInfo": {"status": "Blocked"}},
        ],
    }
    assert (await call(csms, "SendLocalList", full))["status"] == "Accepted"
    diff = {
        "listVersion": 4,
        "updateType": "Differential",
        "localAuthorizationList": [{"idTag": "B2"}],
    }
    assert (await call(csms, "SendLocalList", diff))["status"] == "Accepted"
    assert set(cp.local_list) == {"A1"}
    assert (await call(csms, "GetLocalListVersion", {})) == {"listVersion": 4}
    stale = {**diff, "listVersion": 2}
    assert (await call(csms, "SendLocalList", stale))["status"] == "VersionMismatch"


async def test_reservations(csms: Csms, cp: SimulatedChargePoint) -> None:
    reserve = {
        "connectorId": 1,
        "expiryDate": "2030-01-01T00:00:00Z",
        "idTag": TAG,
        "reservationId": 7,
    }
    assert (await call(csms, "ReserveNow", reserve))["status"] == "Accepted"
    await cp.wait_until(lambda: cp.connectors[1].status is Status.RESERVED)
    other = {**reserve, "reservationId": 8}
    assert (await call(csms, "ReserveNow", other))["status"] == "Occupied"
    assert (await call(csms, "CancelReservation", {"reservationId": 99}))["status"] == "Rejected"
    assert (await call(csms, "CancelReservation", {"reservationId": 7}))["status"] == "Accepted"
    await cp.wait_until(lambda: cp.connectors[1].status is Status.AVAILABLE)
    assert cp.reservations == {}


async def test_charging_profiles(csms: Csms, cp: SimulatedChargePoint) -> None:
    profile = {
        "chargingProfileId": 5,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }
    answer = await call(
        csms, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile}
    )
    assert answer["status"] == "Accepted"
    tx_profile = {**profile, "chargingProfileId": 6, "chargingProfilePurpose": "TxProfile"}
    rejected = await call(
        csms, "SetChargingProfile", {"connectorId": 2, "csChargingProfiles": tx_profile}
    )
    assert rejected["status"] == "Rejected"
    sched = await call(csms, "GetCompositeSchedule", {"connectorId": 1, "duration": 3600})
    assert sched["status"] == "Accepted"
    assert sched["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0
    assert (await call(csms, "ClearChargingProfile", {"id": 5}))["status"] == "Accepted"
    assert (await call(csms, "ClearChargingProfile", {"id": 5}))["status"] == "Unknown"


async def test_firmware_and_diagnostics_report_progress(
    csms: Csms, cp: SimulatedChargePoint
) -> None:
    await call(
        csms,
        "UpdateFirmware",
        {"location": "https://fw.example/f.bin", "retrieveDate": "2024-01-01T00:00:00Z"},
    )
    diag = await call(csms, "GetDiagnostics", {"location": "ftp://diag.example/"})
    assert diag["fileName"].startswith(f"diagnostics-{CP}-")

    def sent(action: str) -> list[str]:
        return [s.request["status"] for s in cp.steps if s.action == action and not s.error]

    await cp.wait_until(
        lambda: (
            sent("FirmwareStatusNotification")[-1:] == ["Installed"]
            and sent("DiagnosticsStatusNotification")[-1:] == ["Uploaded"]
        )
    )
    assert sent("FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert sent("DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]
    (row,) = await csms.rows(
        "SELECT firmware_status, diagnostics_status FROM chargers WHERE id = ?", CP
    )
    assert (row["firmware_status"], row["diagnostics_status"]) == ("Installed", "Uploaded")
    assert [a for a, _ in cp.received_calls] == ["UpdateFirmware", "GetDiagnostics"]
