"""Every CSMS-initiated call round-trips admin API -> OCPP server -> simulator and back,
and every gateway failure maps to its HTTP status."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from csms.admin.calls import ACTIONS
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ocpp_url
from tests.support.raw_cp import HANG, Error, RawChargePoint, Result

PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "startSchedule": "2030-01-01T00:00:00Z",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}

# (action, request payload, expected fields of the answer)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "ChangeConfiguration",
        {"key": "MeterValueSampleInterval", "value": "30"},
        {"status": "Accepted"},
    ),
    ("GetConfiguration", {"key": ["MeterValueSampleInterval"]}, {}),
    ("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}, {"status": "Accepted"}),
    ("UnlockConnector", {"connectorId": 1}, {}),
    ("ClearCache", {}, {"status": "Accepted"}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
    ("DataTransfer", {"vendorId": "acme", "messageId": "ping", "data": "x"}, {}),
    (
        "SendLocalList",
        {
            "listVersion": 3,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}}],
        },
        {"status": "Accepted"},
    ),
    ("GetLocalListVersion", {}, {"listVersion": 3}),
    (
        "ReserveNow",
        {
            "connectorId": 1,
            "expiryDate": "2030-01-01T00:00:00Z",
            "idTag": "TAG1",
            "reservationId": 9,
        },
        {"status": "Accepted"},
    ),
    ("CancelReservation", {"reservationId": 9}, {"status": "Accepted"}),
    (
        "SetChargingProfile",
        {"connectorId": 1, "csChargingProfiles": PROFILE},
        {"status": "Accepted"},
    ),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 3600}, {}),
    ("ClearChargingProfile", {"id": 7}, {"status": "Accepted"}),
    ("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1}, {"status": "Accepted"}),
    ("RemoteStopTransaction", {"transactionId": -1}, {}),  # transaction id filled in below
    (
        "UpdateFirmware",
        {"location": "http://example.invalid/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z"},
        {},
    ),
    ("GetDiagnostics", {"location": "ftp://example.invalid/upload"}, {}),
    # The security extensions (real certificates: tests/e2e/security).
    ("CertificateSigned", {"certificateChain": "not a chain"}, {"status": "Rejected"}),
    (
        "InstallCertificate",
        {"certificateType": "CentralSystemRootCertificate", "certificate": "not a cert"},
        {"status": "Rejected"},
    ),
    (
        "GetInstalledCertificateIds",
        {"certificateType": "ManufacturerRootCertificate"},
        {"status": "NotFound"},
    ),
    (
        "DeleteCertificate",
        {
            "certificateHashData": {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": "00",
                "issuerKeyHash": "00",
                "serialNumber": "1",
            }
        },
        {"status": "NotFound"},
    ),
    ("ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
    (
        "GetLog",
        {"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "ftp://x"}},
        {"status": "Accepted"},
    ),
    (
        "SignedUpdateFirmware",
        {
            "requestId": 2,
            "firmware": {
                "location": "http://example.invalid/fw.bin",
                "retrieveDateTime": "2030-01-01T00:00:00Z",
                "signingCertificate": "not a cert",
                "signature": "c2ln",
            },
        },
        {"status": "InvalidCertificate"},
    ),
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
]


def test_cases_cover_every_supported_action() -> None:
    assert sorted(a for a, _, _ in CASES) == sorted(ACTIONS)


async def _register(http: aiohttp.ClientSession, cp_id: str) -> None:
    resp = await http.post("/api/chargers", json={"id": cp_id})
    assert resp.status == 201


async def test_every_call_round_trips_to_the_simulator(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "SIM1")
    await http.post("/api/tokens", json={"id_tag": "TAG1"})
    async with SimulatedChargePoint.connect(
        ocpp_url(csms_app), "SIM1", heartbeat=False, step_delay_s=0.0
    ) as cp:
        await cp.boot()
        for action, payload, expected in CASES:
            if action == "RemoteStopTransaction":
                await cp.wait_until(
                    lambda: cp.transactions.get(1) is not None and cp.transactions[1].id is not None
                )
                payload = {"transactionId": cp.transactions[1].id}
                expected = {"status": "Accepted"}
            resp = await http.post(f"/api/chargers/SIM1/calls/{action}", json=payload)
            assert resp.status == 200, (action, await resp.text())
            answer = await resp.json()
            for key, value in expected.items():
                assert answer[key] == value, (action, answer)
            assert cp.received_calls[-1] == (action, payload), action
            if action == "GetConfiguration":
                assert answer["configurationKey"] == [
                    {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"}
                ]
            if action == "GetDiagnostics":
                assert answer["fileName"].startswith("diagnostics-SIM1")

        # the transaction started by RemoteStart is visible through the admin API
        txs = (await (await http.get("/api/transactions?charger_id=SIM1")).json())["transactions"]
        assert len(txs) == 1
        assert txs[0]["id_tag"] == "TAG1"
        detail = await (await http.get(f"/api/transactions/{txs[0]['id']}")).json()
        assert detail["charger_id"] == "SIM1"
        # Reset (one of the cases) makes the simulator reconnect: wait for its new session.
        await cp.wait_until(
            lambda: cp.connected and csms_app.gateway.is_connected("SIM1"), timeout=5
        )
        charger = await (await http.get("/api/chargers/SIM1")).json()
        assert charger["connected"] is True
        assert charger["connection"]["subprotocol"] == "ocpp1.6"
        assert charger["connection"]["remote_address"].startswith("127.0.0.1")
        assert charger["vendor"] == "csms-sim"


async def test_action_name_is_case_insensitive_and_unknown_is_404(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "SIM2")
    async with SimulatedChargePoint.connect(ocpp_url(csms_app), "SIM2", heartbeat=False) as cp:
        await cp.boot()
        resp = await http.post("/api/chargers/SIM2/calls/clearcache", json={})
        assert resp.status == 200
        resp = await http.post("/api/chargers/SIM2/calls/Explode", json={})
        assert resp.status == 404
        body = await resp.json()
        assert body["error"] == "unknown_action"
        assert "RemoteStartTransaction" in body["supported"]
        assert "Explode" in body["message"]


async def test_payload_failing_the_schema_is_400_and_never_sent(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "SIM3")
    async with SimulatedChargePoint.connect(ocpp_url(csms_app), "SIM3", heartbeat=False) as cp:
        await cp.boot()
        before = len(cp.received_calls)
        for payload, fragment in (
            ({"type": "Gentle"}, "type"),
            ({}, "type"),
            ({"type": "Soft", "extra": 1}, "extra"),
        ):
            resp = await http.post("/api/chargers/SIM3/calls/Reset", json=payload)
            assert resp.status == 400, payload
            body = await resp.json()
            assert body["error"] == "invalid_payload"
            assert fragment in body["message"]
        resp = await http.post("/api/chargers/SIM3/calls/Reset", data=b"[1,")
        assert resp.status == 400
        assert (await resp.json())["error"] == "malformed_json"
        await asyncio.sleep(0.05)
        assert len(cp.received_calls) == before


async def test_unknown_charger_404_and_offline_charger_409(http: aiohttp.ClientSession) -> None:
    resp = await http.post("/api/chargers/GHOST/calls/ClearCache", json={})
    assert resp.status == 404
    assert (await resp.json())["error"] == "unknown_charger"
    await _register(http, "OFFLINE")
    resp = await http.post("/api/chargers/OFFLINE/calls/ClearCache", json={})
    assert resp.status == 409
    assert (await resp.json())["error"] == "not_connected"


async def test_callerror_is_502_with_code_and_description(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "RAW1")

    def reply(action: str, payload: dict[str, Any]) -> Any:
        return Error("NotSupported", "no resets here", {"hint": "x"})

    cp = await RawChargePoint.connect(ocpp_url(csms_app), "RAW1", reply)
    try:
        await _wait_connected(http, "RAW1")
        resp = await http.post("/api/chargers/RAW1/calls/Reset", json={"type": "Hard"})
        assert resp.status == 502
        body = await resp.json()
        assert body["error"] == "call_error"
        assert body["ocpp_error"] == {
            "code": "NotSupported",
            "description": "no resets here",
            "details": {"hint": "x"},
        }
        assert cp.received == [("Reset", {"type": "Hard"})]
    finally:
        await cp.close()


async def test_charger_that_never_answers_is_504(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "HUNG")
    cp = await RawChargePoint.connect(ocpp_url(csms_app), "HUNG", lambda a, p: HANG)
    try:
        await _wait_connected(http, "HUNG")
        resp = await http.post("/api/chargers/HUNG/calls/ClearCache?timeout=0.3", json={})
        assert resp.status == 504
        assert (await resp.json())["error"] == "call_timeout"
        assert cp.received == [("ClearCache", {})]
        bad = await http.post("/api/chargers/HUNG/calls/ClearCache?timeout=-1", json={})
        assert bad.status == 400
    finally:
        await cp.close()


async def test_invalid_answer_from_charger_is_502(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "ODD")
    cp = await RawChargePoint.connect(
        ocpp_url(csms_app), "ODD", lambda a, p: Result({"status": "Maybe"})
    )
    try:
        await _wait_connected(http, "ODD")
        resp = await http.post("/api/chargers/ODD/calls/ClearCache", json={})
        assert resp.status == 502
        assert (await resp.json())["error"] == "invalid_result"
    finally:
        await cp.close()


async def _wait_connected(http: aiohttp.ClientSession, cp_id: str) -> None:
    for _ in range(100):
        doc = await (await http.get(f"/api/chargers/{cp_id}")).json()
        if doc["connected"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{cp_id} never showed as connected")


async def test_removing_a_connected_charger_closes_its_session(
    csms_app: System, http: aiohttp.ClientSession
) -> None:
    await _register(http, "GONE")
    async with SimulatedChargePoint.connect(ocpp_url(csms_app), "GONE", heartbeat=False) as cp:
        await cp.boot()
        resp = await http.delete("/api/chargers/GONE")
        assert (await resp.json()) == {"id": "GONE", "removed": True, "disconnected": True}
        await cp.wait_closed(timeout=5)
        for _ in range(100):
            if not csms_app.gateway.is_connected("GONE"):
                break
            await asyncio.sleep(0.02)
        assert not csms_app.gateway.is_connected("GONE")
        assert (await http.get("/api/chargers/GONE")).status == 404
