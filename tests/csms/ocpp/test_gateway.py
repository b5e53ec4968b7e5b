"""CSMS-initiated calls through ChargerGateway against a real answering client, typed errors,
and that a slow Authorizer holds neither the socket nor other chargers."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from csms.authz.model import NEED_IO, AuthRequest, AuthStatus, Decision, NeedIO, Source
from csms.ocpp16 import errors
from tests.csms.ocpp.conftest import TS, Connect, StartServer

PROFILE = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}

ROUND_TRIPS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("CancelReservation", {"reservationId": 1}, {"status": "Accepted"}),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Scheduled"}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": "Accepted"}),
    ("ClearCache", {}, {"status": "Accepted"}),
    ("ClearChargingProfile", {"id": 1}, {"status": "Unknown"}),
    ("DataTransfer", {"vendorId": "com.acme", "data": "x"}, {"status": "Accepted", "data": "y"}),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 60}, {"status": "Rejected"}),
    (
        "GetConfiguration",
        {"key": ["HeartbeatInterval"]},
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]},
    ),
    ("GetDiagnostics", {"location": "ftp://example.com/diag/"}, {"fileName": "diag.zip"}),
    ("GetLocalListVersion", {}, {"listVersion": 3}),
    ("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1}, {"status": "Accepted"}),
    ("RemoteStopTransaction", {"transactionId": 7}, {"status": "Rejected"}),
    (
        "ReserveNow",
        {"connectorId": 1, "expiryDate": TS, "idTag": "TAG1", "reservationId": 2},
        {"status": "Occupied"},
    ),
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
    (
        "SendLocalList",
        {
            "listVersion": 4,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}}],
        },
        {"status": "Accepted"},
    ),
    (
        "SetChargingProfile",
        {"connectorId": 1, "csChargingProfiles": PROFILE},
        {"status": "Accepted"},
    ),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
    ("UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"}),
    ("UpdateFirmware", {"location": "https://example.com/fw.bin", "retrieveDate": TS}, {}),
]


@pytest.mark.parametrize(
    ("action", "request_payload", "answer"), ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS]
)
async def test_every_action_round_trips(
    start_server: StartServer,
    connect_cp: Connect,
    action: str,
    request_payload: dict[str, Any],
    answer: dict[str, Any],
):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    call = asyncio.create_task(srv.gateway.call("CP1", action, request_payload))
    frame = await cp.answer_next(lambda _action, _payload: answer)
    assert frame[2:] == [action, request_payload]
    assert await call == answer


async def test_typed_errors(start_server: StartServer, connect_cp: Connect):
    srv = await start_server()
    gw = srv.gateway
    with pytest.raises(errors.ChargerNotConnected) as nc:
        await gw.call("NOBODY", "ClearCache", {})
    assert nc.value.charger_id == "NOBODY"

    with pytest.raises(errors.InvalidCallPayload) as bad:
        await gw.call("NOBODY", "Reset", {"type": "Medium"})
    assert bad.value.action == "Reset" and "type" in bad.value.message
    with pytest.raises(errors.InvalidCallPayload):
        await gw.call("NOBODY", "Heartbeat", {})  # not a CSMS-initiated action

    cp = await connect_cp(srv, "CP1")
    with pytest.raises(errors.CallTimeout) as to:
        await gw.call("CP1", "ClearCache", {}, timeout=0.2)
    assert (to.value.charger_id, to.value.action, to.value.timeout) == ("CP1", "ClearCache", 0.2)
    await cp.recv()  # the CALL that was never answered

    call = asyncio.create_task(gw.call("CP1", "Reset", {"type": "Hard"}))
    frame = await cp.recv()
    await cp.ws.send(orjson.dumps([4, frame[1], "NotSupported", "no resets here", {"why": "x"}]))
    with pytest.raises(errors.CallErrorReceived) as ce:
        await call
    assert (ce.value.code, ce.value.description, ce.value.details) == (
        "NotSupported",
        "no resets here",
        {"why": "x"},
    )

    call = asyncio.create_task(gw.call("CP1", "Reset", {"type": "Hard"}))
    await cp.answer_next(lambda _a, _p: {"status": "Maybe"})
    with pytest.raises(errors.InvalidCallResult) as ir:
        await call
    assert ir.value.action == "Reset" and "status" in ir.value.message

    call = asyncio.create_task(gw.call("CP1", "ClearCache", {}))
    await cp.recv()
    await cp.ws.close()
    with pytest.raises(errors.ChargerNotConnected):
        await call


async def test_one_outstanding_call_per_charger(start_server: StartServer, connect_cp: Connect):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    first = asyncio.create_task(srv.gateway.call("CP1", "ClearCache", {}))
    second = asyncio.create_task(srv.gateway.call("CP1", "Reset", {"type": "Soft"}))
    frame1 = await cp.recv()
    with pytest.raises(TimeoutError):
        await cp.recv(timeout=0.2)  # the second CALL waits for the first answer
    await cp.ws.send(orjson.dumps([3, frame1[1], {"status": "Accepted"}]))
    frame2 = await cp.answer_next(lambda _a, _p: {"status": "Rejected"})
    assert (frame1[2], frame2[2]) == ("ClearCache", "Reset")
    assert await first == {"status": "Accepted"} and await second == {"status": "Rejected"}


class GatedAuthorizer:
    """Blocks every decision until the test opens the gate: a slow eMSP under test control."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    def try_now(self, request: AuthRequest) -> NeedIO:
        return NEED_IO

    async def decide(self, request: AuthRequest) -> Decision:
        self.waiting.set()
        await self.gate.wait()
        return Decision(AuthStatus.ACCEPTED, Source.REMOTE)


async def test_slow_authorizer_blocks_nothing_else(start_server: StartServer, connect_cp: Connect):
    authz = GatedAuthorizer()
    srv = await start_server(authorizer=authz)
    slow, other = await connect_cp(srv, "SLOW"), await connect_cp(srv, "OTHER")
    await slow.ws.send(orjson.dumps([2, "auth-1", "Authorize", {"idTag": "TAG1"}]))
    await asyncio.wait_for(authz.waiting.wait(), 5)

    assert (await other.ok("Heartbeat", {}))["currentTime"]  # another charger is not delayed
    assert (await slow.ok("Heartbeat", {}))["currentTime"]  # nor this charger's other CALLs
    call = asyncio.create_task(srv.gateway.call("SLOW", "GetConfiguration", {}))
    frame = await slow.answer_next(lambda _a, _p: {"configurationKey": []})
    assert frame[2] == "GetConfiguration"
    assert await asyncio.wait_for(call, 5) == {"configurationKey": []}

    authz.gate.set()
    reply = await slow.recv()
    assert reply[:2] == [3, "auth-1"] and reply[2]["idTagInfo"]["status"] == "Accepted"


async def test_raising_authorizer_still_stores_the_start(
    db, start_server: StartServer, connect_cp: Connect
):
    class Broken:
        def try_now(self, request: AuthRequest) -> NeedIO:
            return NEED_IO

        async def decide(self, request: AuthRequest) -> Decision:
            raise ConnectionError("backend down")

    srv = await start_server(authorizer=Broken())
    cp = await connect_cp(srv, "CP1")
    start = await cp.ok(
        "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}
    )
    assert start["idTagInfo"]["status"] == "Invalid"
    row = await db.fetchone(
        "SELECT start_status FROM transactions WHERE id = ?", (start["transactionId"],)
    )
    assert row[0] == "Invalid"
