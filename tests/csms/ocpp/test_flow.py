"""Charger-initiated messages end to end over a real socket, asserting the stored rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from csms.domain.chargers import StatusReport
from csms.domain.transactions import MeterReport, TransactionRecord
from csms.ocpp16.events import NoEvents
from csms.store.db import Database, Executor
from csms.store.id_tags import IdTagRepo
from tests.csms.ocpp.conftest import TS, Connect, StartServer


class RecordingEvents(NoEvents):
    """Records every callback and proves it runs inside the persisting transaction."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def transaction_started(self, tx: Executor, txn: TransactionRecord) -> None:
        row = await tx.fetchone("SELECT id FROM transactions WHERE id = ?", (txn.id,))
        assert row is not None
        self.calls.append(("started", txn))

    async def transaction_stopped(self, tx: Executor, txn: TransactionRecord) -> None:
        self.calls.append(("stopped", txn))

    async def meter_values(self, tx: Executor, charger_id: str, report: MeterReport) -> None:
        r = report
        self.calls.append(("meter", (charger_id, r.connector_id, r.transaction_id, r.samples)))

    async def statuses_changed(
        self, tx: Executor, reports: Sequence[tuple[str, StatusReport]]
    ) -> None:
        for charger_id, r in reports:
            self.calls.append(
                ("status", (charger_id, r.connector_id, r.status, r.error_code, r.status_timestamp))
            )


def start_payload(**kw: Any) -> dict[str, Any]:
    return {"connectorId": 1, "idTag": "TAG1", "meterStart": 100, "timestamp": TS, **kw}


async def test_full_session_is_persisted(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    await IdTagRepo(db).add("Tag1", parent_id_tag="GROUP")
    events = RecordingEvents()
    srv = await start_server(events=events)
    cp = await connect_cp(srv, "CP1")

    boot = await cp.ok(
        "BootNotification",
        {
            "chargePointVendor": "ACME",
            "chargePointModel": "X1",
            "chargePointSerialNumber": "S1",
            "firmwareVersion": "1.2",
            "iccid": "IC",
            "imsi": "IM",
            "meterType": "MT",
            "meterSerialNumber": "MS",
        },
    )
    assert boot["status"] == "Accepted" and boot["interval"] == 300
    charger = await db.fetchone("SELECT * FROM chargers WHERE id = 'CP1'")
    assert (
        charger["vendor"],
        charger["model"],
        charger["firmware_version"],
        charger["imsi"],
        charger["meter_serial"],
    ) == ("ACME", "X1", "1.2", "IM", "MS")
    assert charger["last_boot_at"] is not None and charger["last_connected_at"] is not None
    assert (
        await db.fetchone("SELECT count(*) FROM charger_events WHERE action='BootNotification'")
    )[0] == 1

    hb = await cp.ok("Heartbeat", {})
    assert hb["currentTime"].endswith("Z")
    assert (await db.fetchone("SELECT last_heartbeat_at FROM chargers"))[0] == hb["currentTime"]

    for connector in (0, 1):
        await cp.ok(
            "StatusNotification",
            {
                "connectorId": connector,
                "errorCode": "NoError",
                "status": "Available",
                "timestamp": TS,
            },
        )
    await cp.ok(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
    )
    rows = await db.fetchall(
        "SELECT connector_id, status, status_timestamp FROM connectors ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [(0, "Available", TS), (1, "Preparing", None)]
    assert (await db.fetchone("SELECT count(*) FROM status_notifications"))[0] == 3

    auth = await cp.ok("Authorize", {"idTag": "TAG1"})  # case-insensitive match of "Tag1"
    assert auth["idTagInfo"]["status"] == "Accepted"
    assert auth["idTagInfo"]["parentIdTag"] == "GROUP"
    assert "expiryDate" in auth["idTagInfo"]

    start = await cp.ok("StartTransaction", start_payload())
    tid = start["transactionId"]
    assert start["idTagInfo"]["status"] == "Accepted"

    await cp.ok(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tid,
            "meterValue": [
                {
                    "timestamp": "2024-05-01T10:05:00Z",
                    "sampledValue": [
                        {
                            "value": "150",
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                            "context": "Sample.Periodic",
                            "location": "Outlet",
                            "format": "Raw",
                        },
                        {
                            "value": "16.0",
                            "measurand": "Current.Import",
                            "phase": "L1",
                            "unit": "A",
                        },
                    ],
                }
            ],
        },
    )
    stop = await cp.ok(
        "StopTransaction",
        {
            "transactionId": tid,
            "idTag": "tag1",
            "meterStop": 300,
            "timestamp": "2024-05-01T10:30:00Z",
            "reason": "Local",
            "transactionData": [
                {
                    "timestamp": "2024-05-01T10:30:00Z",
                    "sampledValue": [{"value": "300", "context": "Transaction.End"}],
                }
            ],
        },
    )
    assert stop["idTagInfo"]["status"] == "Accepted"

    txn = await db.fetchone("SELECT * FROM transactions WHERE id = ?", (tid,))
    assert (
        txn["charger_id"],
        txn["connector_id"],
        txn["id_tag"],
        txn["meter_start"],
        txn["start_timestamp"],
        txn["start_status"],
        txn["parent_id_tag"],
    ) == ("CP1", 1, "TAG1", 100, TS, "Accepted", "GROUP")
    assert (txn["meter_stop"], txn["stop_timestamp"], txn["stop_reason"], txn["stop_id_tag"]) == (
        300,
        "2024-05-01T10:30:00Z",
        "Local",
        "tag1",
    )
    assert txn["auth_method"] == "WHITELIST" and txn["stop_received_at"] is not None
    mv = await db.fetchall(
        "SELECT source, timestamp, value, measurand, phase, unit, context, location, format "
        "FROM meter_values WHERE transaction_id = ? ORDER BY id",
        (tid,),
    )
    assert [tuple(r) for r in mv] == [
        (
            "MeterValues",
            "2024-05-01T10:05:00Z",
            "150",
            "Energy.Active.Import.Register",
            None,
            "Wh",
            "Sample.Periodic",
            "Outlet",
            "Raw",
        ),
        (
            "MeterValues",
            "2024-05-01T10:05:00Z",
            "16.0",
            "Current.Import",
            "L1",
            "A",
            None,
            None,
            None,
        ),
        (
            "StopTransaction",
            "2024-05-01T10:30:00Z",
            "300",
            None,
            None,
            None,
            "Transaction.End",
            None,
            None,
        ),
    ]
    kinds = [k for k, _ in events.calls]
    assert kinds == ["status", "status", "status", "started", "meter", "meter", "stopped"]
    assert events.calls[3][1].id == tid and events.calls[-1][1].meter_stop == 300
    assert events.calls[5][1][3][0].effective("measurand") == "Energy.Active.Import.Register"


async def test_retried_start_returns_same_transaction(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    await IdTagRepo(db).add("TAG1")
    events = RecordingEvents()
    srv = await start_server(events=events)
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    first = await cp.ok("StartTransaction", start_payload())
    again = await cp.ok(
        "StartTransaction", start_payload(idTag="tag1")
    )  # new message id, same content
    other = await cp.ok("StartTransaction", start_payload(meterStart=101))
    assert again["transactionId"] == first["transactionId"]
    assert again["idTagInfo"]["status"] == "Accepted"
    assert other["transactionId"] > first["transactionId"]
    assert (await db.fetchone("SELECT count(*) FROM transactions"))[0] == 2
    assert [k for k, _ in events.calls] == ["started", "started"]


async def test_start_is_stored_even_when_not_accepted(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    await IdTagRepo(db).add("BLOCKED1", status="Blocked")
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    blocked = await cp.ok("StartTransaction", start_payload(idTag="BLOCKED1"))
    unknown = await cp.ok("StartTransaction", start_payload(idTag="NOBODY"))
    assert blocked["idTagInfo"] == {"status": "Blocked"}
    assert unknown["idTagInfo"] == {"status": "Invalid"}
    rows = await db.fetchall("SELECT id, start_status FROM transactions ORDER BY id")
    assert [(r["id"], r["start_status"]) for r in rows] == [
        (blocked["transactionId"], "Blocked"),
        (unknown["transactionId"], "Invalid"),
    ]


async def test_unmatched_stops_are_answered_and_recorded(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    await IdTagRepo(db).add("TAG1")
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    tid = (await cp.ok("StartTransaction", start_payload()))["transactionId"]
    stop = {"meterStop": 200, "timestamp": "2024-05-01T11:00:00Z"}
    assert await cp.ok("StopTransaction", {"transactionId": tid, **stop}) == {}
    dup = await cp.ok("StopTransaction", {"transactionId": tid, "idTag": "TAG1", **stop})
    assert dup["idTagInfo"]["status"] == "Accepted"
    unknown = await cp.ok("StopTransaction", {"transactionId": 9999, "idTag": "NOBODY", **stop})
    assert unknown["idTagInfo"]["status"] == "Invalid"
    data = [{"timestamp": "2024-05-01T11:00:00Z", "sampledValue": [{"value": "7"}]}]
    assert (
        await cp.ok("StopTransaction", {"transactionId": -1, "transactionData": data, **stop}) == {}
    )
    rows = await db.fetchall(
        "SELECT transaction_id, kind, id_tag, meter_stop, transaction_data FROM stop_records ORDER BY id"
    )
    assert [tuple(r)[:4] for r in rows] == [
        (tid, "duplicate", "TAG1", 200),
        (9999, "orphan", "NOBODY", 200),
        (-1, "orphan", None, 200),
    ]
    assert orjson.loads(rows[2]["transaction_data"]) == data
    # The first stop stays the stop of record.
    assert (await db.fetchone("SELECT stop_id_tag FROM transactions WHERE id = ?", (tid,)))[
        0
    ] is None


async def test_stop_from_another_charger_is_an_orphan(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    await IdTagRepo(db).add("TAG1")
    srv = await start_server()
    cp1, cp2 = await connect_cp(srv, "CP1"), await connect_cp(srv, "CP2")
    await cp1.boot()
    await cp2.boot()
    tid = (await cp1.ok("StartTransaction", start_payload()))["transactionId"]
    await cp2.ok("StopTransaction", {"transactionId": tid, "meterStop": 1, "timestamp": TS})
    assert (await db.fetchone("SELECT kind, charger_id FROM stop_records"))[:] == ("orphan", "CP2")
    assert (await db.fetchone("SELECT stop_received_at FROM transactions"))[0] is None


async def test_offline_history_keeps_charger_timestamps(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    await IdTagRepo(db).add("TAG1")
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    old = "2023-01-02T03:04:05.678+01:00"
    tid = (await cp.ok("StartTransaction", start_payload(timestamp=old)))["transactionId"]
    await cp.ok(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 4242,
            "meterValue": [{"timestamp": old, "sampledValue": [{"value": "1"}]}],
        },
    )
    await cp.ok(
        "StopTransaction",
        {"transactionId": tid, "meterStop": 5, "timestamp": "2023-01-02T04:00:00Z"},
    )
    txn = await db.fetchone("SELECT * FROM transactions WHERE id = ?", (tid,))
    assert txn["start_timestamp"] == old and txn["stop_timestamp"] == "2023-01-02T04:00:00Z"
    assert txn["start_received_at"].startswith("20") and txn["start_received_at"] != old
    mv = await db.fetchone("SELECT transaction_id, timestamp, received_at FROM meter_values")
    assert (mv[0], mv[1]) == (4242, old) and mv[2] != old  # unknown transaction id kept


async def test_transaction_ids_survive_restart(
    db: Database, start_server: StartServer, connect_cp: Connect, tmp_path
):
    await IdTagRepo(db).add("TAG1")
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    first = (await cp.ok("StartTransaction", start_payload()))["transactionId"]
    await db.execute("DELETE FROM transactions")  # even a deleted row's id is never reused
    await srv.close()
    path = db.path
    await db.close()

    db2 = await Database.open(path)
    try:
        from csms.authz.own_cards import own_cards_authorizer
        from csms.server import start_ocpp_server
        from tests.csms.ocpp.conftest import make_config

        srv2 = await start_ocpp_server(
            make_config(unknown_chargers="accept"), db2, own_cards_authorizer(db2, 60)
        )
        try:
            cp2 = await connect_cp(srv2, "CP1")
            await cp2.boot()
            second = (await cp2.ok("StartTransaction", start_payload(meterStart=5)))[
                "transactionId"
            ]
            assert second > first
        finally:
            await srv2.close()
    finally:
        await db2.close()
        db.conn = db2.conn  # the fixture closes "db" again; closing twice is harmless


async def test_data_transfer_vendor_registry(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    srv = await start_server()
    seen: list[tuple[str, str | None, str | None]] = []

    async def acme(
        charger_id: str, message_id: str | None, data: str | None
    ) -> tuple[str, str | None]:
        seen.append((charger_id, message_id, data))
        return "Accepted", "pong"

    srv.register_vendor("com.acme", acme, message_id="ping")
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    assert await cp.ok(
        "DataTransfer", {"vendorId": "com.acme", "messageId": "ping", "data": "x"}
    ) == {"status": "Accepted", "data": "pong"}
    assert await cp.ok("DataTransfer", {"vendorId": "com.acme", "messageId": "other"}) == {
        "status": "UnknownMessageId"
    }
    assert await cp.ok("DataTransfer", {"vendorId": "org.nobody"}) == {"status": "UnknownVendorId"}
    assert seen == [("CP1", "ping", "x")]
    rows = await db.fetchall("SELECT payload FROM charger_events WHERE action = 'DataTransfer'")
    assert len(rows) == 3 and orjson.loads(rows[2][0]) == {"vendorId": "org.nobody"}


async def test_firmware_and_diagnostics_status(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    srv = await start_server()
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    await cp.ok("FirmwareStatusNotification", {"status": "Downloading"})
    await cp.ok("DiagnosticsStatusNotification", {"status": "Uploaded"})
    row = await db.fetchone("SELECT firmware_status, diagnostics_status FROM chargers")
    assert tuple(row) == ("Downloading", "Uploaded")
    actions = [r[0] for r in await db.fetchall("SELECT action FROM charger_events ORDER BY id")]
    assert actions == [
        "BootNotification",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
    ]


async def test_pending_charger_may_only_boot_heartbeat_and_status(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    from csms.store.chargers import ChargerRepo

    srv = await start_server(unknown_chargers="pending", pending_retry_interval_s=7)
    cp = await connect_cp(srv, "NEW1")
    boot = await cp.boot()
    assert (boot["status"], boot["interval"]) == ("Pending", 7)
    await cp.ok("Heartbeat", {})
    await cp.ok(
        "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}
    )
    refused = await cp.call("Authorize", {"idTag": "TAG1"})
    assert refused[0] == 4 and refused[2] == "SecurityError"
    assert (await db.fetchone("SELECT count(*) FROM transactions"))[0] == 0
    # The operator accepts it; it takes effect without a new boot, and the next boot says so.
    assert await ChargerRepo(db).set_registration_status("NEW1", "Accepted")
    assert (await cp.ok("Authorize", {"idTag": "TAG1"}))["idTagInfo"]["status"] == "Invalid"
    assert (await cp.boot())["status"] == "Accepted"


async def test_rejected_charger_is_refused(
    db: Database, start_server: StartServer, connect_cp: Connect
):
    from csms.store.chargers import ChargerRepo

    await ChargerRepo(db).add("BAD1", registration_status="Rejected")
    srv = await start_server(unknown_chargers="reject")
    cp = await connect_cp(srv, "BAD1")
    assert (await cp.boot())["status"] == "Rejected"
    refused = await cp.call("StartTransaction", start_payload())
    assert refused[2] == "SecurityError"
