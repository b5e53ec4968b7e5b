"""Integers the OCPP 1.6 schemas admit (they say only "integer") at and beyond the
signed 64 bits the store holds.

Every such CALL is answered: PropertyConstraintViolation for a value the store cannot
hold, except a StopTransaction, which is always answered and kept, the value as its
exact decimal text. InternalError is for our own bugs only, and is counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import structlog

from csms.domain.chargers import StatusReport
from csms.ocpp16.events import NoEvents
from csms.store.db import Database, Executor
from tests.csms.ocpp.conftest import TS, Connect, RawClient, StartServer

MAX, MIN = 2**63 - 1, -(2**63)
# 2^63 and -2^63-1 fit no SQLite integer; 2^64 and beyond are past what orjson reads as
# an integer (it reads a float, which the draft-4 schemas call the wrong type), and
# 10^400 past what it reads at all.
BEYOND = [2**63, 2**64 - 1, 2**64, 10**30, 10**400, MIN - 1, -(10**30), -(10**400)]

START = {"connectorId": 1, "idTag": "CARD1", "meterStart": 0, "timestamp": TS}
METER = {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "5"}]}]}
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
REFUSED = [
    ("StartTransaction", START, "connectorId"),
    ("StartTransaction", START, "meterStart"),
    ("StartTransaction", START, "reservationId"),
    ("MeterValues", METER, "connectorId"),
    ("MeterValues", METER, "transactionId"),
    ("StatusNotification", STATUS, "connectorId"),
    # The 1.6 security extensions' requests are searched the same way.
    ("LogStatusNotification", {"status": "Uploaded", "requestId": 1}, "requestId"),
    ("SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 1}, "requestId"),
]


async def call_text(cp: RawClient, uid: str, action: str, payload: dict[str, Any]) -> list[Any]:
    """Send with the standard library's encoder: orjson cannot write these integers."""
    reply = await cp.send_text(json.dumps([2, uid, action, payload]))
    assert reply[1] == uid, reply
    return reply


@pytest.mark.parametrize("value", BEYOND)
@pytest.mark.parametrize(("action", "base", "field"), REFUSED)
async def test_an_integer_the_store_cannot_hold_is_a_property_constraint_violation(
    start_server: StartServer, connect_cp: Connect, action, base, field, value
) -> None:
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    reply = await call_text(cp, "big", action, {**base, field: value})
    assert reply[2] == "PropertyConstraintViolation", reply
    assert str(value) in reply[3] and field in reply[3]
    assert srv.internal_errors == 0
    assert (await cp.ok("Heartbeat", {}))["currentTime"]


@pytest.mark.parametrize("value", [MAX, MIN])
async def test_the_extremes_the_store_holds_are_accepted(
    start_server: StartServer, connect_cp: Connect, db: Database, value: int
) -> None:
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    started = await call_text(
        cp, "s", "StartTransaction", {**START, "meterStart": value, "reservationId": value}
    )
    assert started[0] == 3, started
    tid = started[2]["transactionId"]
    assert (await call_text(cp, "m", "MeterValues", {**METER, "transactionId": value}))[0] == 3
    assert (await call_text(cp, "n", "StatusNotification", {**STATUS, "connectorId": 2}))[0] == 3
    stop = {"transactionId": tid, "meterStop": value, "timestamp": TS}
    assert (await call_text(cp, "e", "StopTransaction", stop)) == [3, "e", {}]
    row = await db.fetchone("SELECT meter_start, meter_stop FROM transactions WHERE id = ?", (tid,))
    assert tuple(row) == (value, value)
    assert srv.internal_errors == 0


@pytest.mark.parametrize("value", BEYOND)
async def test_a_stop_naming_an_unstorable_transaction_id_is_answered_and_kept(
    start_server: StartServer, connect_cp: Connect, db: Database, value: int
) -> None:
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    stop = {"transactionId": value, "meterStop": 700, "timestamp": TS, "reason": "Local"}
    assert await call_text(cp, "e", "StopTransaction", stop) == [3, "e", {}]
    row = await db.fetchone(
        "SELECT kind, meter_stop, reason, raw_integers FROM stop_records WHERE charger_id = 'CP1'"
    )
    assert (row["kind"], row["meter_stop"], row["reason"]) == ("orphan", 700, "Local")
    assert orjson.loads(row["raw_integers"]) == {"transactionId": str(value)}
    assert srv.internal_errors == 0


@pytest.mark.parametrize("value", BEYOND)
async def test_a_stop_with_an_unstorable_meter_stop_stops_its_transaction(
    start_server: StartServer, connect_cp: Connect, db: Database, value: int
) -> None:
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    tid = (await cp.ok("StartTransaction", START))["transactionId"]
    stop = {"transactionId": tid, "meterStop": value, "timestamp": TS}
    assert await call_text(cp, "e", "StopTransaction", stop) == [3, "e", {}]
    row = await db.fetchone(
        "SELECT meter_stop, meter_stop_raw, stop_received_at FROM transactions WHERE id = ?",
        (tid,),
    )
    assert row["stop_received_at"] is not None  # stopped
    assert (row["meter_stop"], row["meter_stop_raw"]) == (None, str(value))
    # The same stop again is a duplicate, kept with its exact value too.
    assert await call_text(cp, "f", "StopTransaction", stop) == [3, "f", {}]
    dup = await db.fetchone("SELECT kind, transaction_id, raw_integers FROM stop_records")
    assert (dup["kind"], dup["transaction_id"]) == ("duplicate", tid)
    assert orjson.loads(dup["raw_integers"]) == {"meterStop": str(value)}
    assert srv.internal_errors == 0


class FailingEvents(NoEvents):
    """A consumer with a bug: every status change raises."""

    async def statuses_changed(
        self, tx: Executor, reports: Sequence[tuple[str, StatusReport]]
    ) -> None:
        raise RuntimeError("a bug in a consumer")


async def test_an_internal_error_is_counted_and_logged_once(
    start_server: StartServer, connect_cp: Connect
) -> None:
    srv = await start_server(events=FailingEvents())
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    with structlog.testing.capture_logs() as logged:
        first = await cp.call("StatusNotification", STATUS)
        second = await cp.call("StatusNotification", STATUS)
    assert first[2] == second[2] == "InternalError"
    assert srv.internal_errors == 2
    reports = [e for e in logged if e["event"] == "ocpp.internal_error"]
    assert len(reports) == 2 and all(e["action"] == "StatusNotification" for e in reports)
    assert all(e["exc_info"] for e in reports)  # the traceback goes with it


@pytest.mark.parametrize(
    "text",
    [
        r'[2,"u1","StopTransaction",{"transactionId":18446744073709551616,"meterStop":1,'
        r'"timestamp":"2024-05-01T10:00:00Z","idTag":"\ud800"}]',
        r'[2,"1234567890123456789\udfff","Heartbeat",{}]',
    ],
)
async def test_a_frame_read_exactly_with_a_lone_surrogate_is_not_json(
    start_server: StartServer, connect_cp: Connect, text: str
) -> None:
    """Read again for its long integer, a frame must still be text: a lone surrogate
    escape is refused as orjson refuses it, and the session goes on."""
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    reply = await cp.send_text(text)
    assert reply[:3] == [4, "-1", "FormationViolation"], reply
    assert (await cp.ok("Heartbeat", {}))["currentTime"]
    assert srv.internal_errors == 0
