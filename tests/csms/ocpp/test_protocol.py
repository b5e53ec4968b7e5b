"""Every class of bad input gets its OCPP-J 1.6 CALLERROR code and the socket keeps working."""

from __future__ import annotations

import orjson
import pytest

from tests.csms.ocpp.conftest import TS, Connect, StartServer

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}

BAD_FRAMES = [
    # (raw text, expected unique id in the answer, expected code)
    ("this is not json", "-1", "FormationViolation"),
    ('{"a": 1}', "-1", "FormationViolation"),
    ("[]", "-1", "FormationViolation"),
    ('[2, 17, "Heartbeat", {}]', "-1", "FormationViolation"),
    ('[7, "u1", "Heartbeat", {}]', "u1", "FormationViolation"),
    ('[2, "u2", "Heartbeat"]', "u2", "ProtocolError"),
    ('[2, "u3", "Heartbeat", {}, "extra"]', "u3", "FormationViolation"),
    ('[2, "u4", 5, {}]', "u4", "FormationViolation"),
]

BAD_CALLS = [
    # (action, payload, expected code)
    ("FlyToTheMoon", {}, "NotImplemented"),
    ("RemoteStartTransaction", {"idTag": "T"}, "NotSupported"),
    ("Reset", {"type": "Hard"}, "NotSupported"),
    ("BootNotification", {"chargePointVendor": "V"}, "ProtocolError"),
    ("BootNotification", {**BOOT, "colour": "red"}, "FormationViolation"),
    (
        "StartTransaction",
        {"connectorId": "1", "idTag": "T", "meterStart": 0, "timestamp": TS},
        "TypeConstraintViolation",
    ),
    ("Heartbeat", [], "TypeConstraintViolation"),
    (
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
        "PropertyConstraintViolation",
    ),
    ("Authorize", {"idTag": "X" * 21}, "PropertyConstraintViolation"),
    (
        "StartTransaction",
        {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday at noon"},
        "PropertyConstraintViolation",
    ),
    ("MeterValues", {"connectorId": 1, "meterValue": []}, "OccurenceConstraintViolation"),
]


@pytest.mark.parametrize(("raw", "uid", "code"), BAD_FRAMES)
async def test_bad_frame_is_answered_and_connection_survives(
    start_server: StartServer, connect_cp: Connect, raw: str, uid: str, code: str
):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    reply = await cp.send_text(raw)
    assert reply[:3] == [4, uid, code], reply
    assert isinstance(reply[3], str) and reply[3]
    assert (await cp.boot())["status"] == "Accepted"


@pytest.mark.parametrize(("action", "payload", "code"), BAD_CALLS)
async def test_bad_call_gets_its_error_code(
    start_server: StartServer, connect_cp: Connect, action: str, payload: object, code: str
):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    reply = await cp.call(action, payload)
    assert reply[0] == 4 and reply[2] == code, reply
    assert (await cp.ok("Heartbeat", {}))["currentTime"]


async def test_schema_error_names_the_field(start_server: StartServer, connect_cp: Connect):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    reply = await cp.call("Authorize", {"idTag": 5})
    assert "payload.idTag" in reply[3]


async def test_unsolicited_result_is_ignored(start_server: StartServer, connect_cp: Connect):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.ws.send(orjson.dumps([3, "nobody-asked", {}]))
    await cp.ws.send('[4, "nobody-asked"]')  # broken CALLERROR: never answered
    assert (await cp.boot())["status"] == "Accepted"


async def test_handler_failure_is_internal_error_without_details(
    db, start_server: StartServer, connect_cp: Connect
):
    from csms.ocpp16.events import NoEvents

    class Exploding(NoEvents):
        async def statuses_changed(self, *args: object) -> None:
            raise RuntimeError("secret internals")

    srv = await start_server(events=Exploding())
    cp = await connect_cp(srv, "CP1")
    reply = await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    assert reply[:3] == [4, reply[1], "InternalError"]
    assert "secret" not in reply[3]
    # Rolled back with the failed callback: the charger will retry, nothing half-stored.
    assert (await db.fetchone("SELECT count(*) FROM status_notifications"))[0] == 0
    assert (await cp.ok("Heartbeat", {}))["currentTime"]


async def test_bad_input_on_one_charger_does_not_affect_another(
    start_server: StartServer, connect_cp: Connect
):
    srv = await start_server()
    bad, good = await connect_cp(srv, "BAD"), await connect_cp(srv, "GOOD")
    for raw, _, _ in BAD_FRAMES:
        await bad.send_text(raw)
    assert (await good.boot())["status"] == "Accepted"
    assert srv.gateway.is_connected("BAD")
