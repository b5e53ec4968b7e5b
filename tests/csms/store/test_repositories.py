"""The store's repositories take and return csms.domain records, on both backends (a real
SQLite file and a real PostgreSQL database: every test runs once on each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest

from csms.domain.chargers import ChargerEvent, StatusReport
from csms.domain.commands import CommandOutcome, ReceivedCommand, ReservationRequest
from csms.domain.transactions import MeterSample, TransactionStart, TransactionStop
from csms.ocpi.charger_events import charger_time
from csms.ocpp16.payloads import samples_of, transaction_stop
from csms.store.chargers import ChargerRepo, ConnectorRepo
from csms.store.commands import CommandRepo
from csms.store.db import Database
from csms.store.events import ChargerEventRepo
from csms.store.meter_values import MeterValueRepo
from csms.store.transactions import TransactionRepo
from roaming.store import schema as roaming_schema
from tests.support.waiting import wait_until


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[Database]:
    database = await Database.open(store_url)
    yield database
    await database.close()


def start(
    charger_id: str = "CP1", id_tag: str = "TAG1", meter_start: int = 100
) -> TransactionStart:
    return TransactionStart(
        charger_id=charger_id,
        connector_id=1,
        id_tag=id_tag,
        id_tag_norm=id_tag.upper(),
        meter_start=meter_start,
        start_timestamp="2026-01-01T10:00:00Z",
        start_received_at="2026-01-01T10:00:01.000Z",
        reservation_id=None,
        start_status="Accepted",
        parent_id_tag=None,
        authorization_reference=None,
        partner_id="NL-EMS",
        token_type="RFID",
        token_country_code="NL",
        token_party_id="EMS",
        contract_id=None,
        auth_method="WHITELIST",
        token_uid=None,
    )


async def test_a_resent_start_is_the_same_transaction(db: Database) -> None:
    repo = TransactionRepo(db)
    async with db.transaction() as tx:
        first, created = await repo.insert_start(tx, start())
        again, created_again = await repo.insert_start(tx, start())
    assert created and not created_again and again == first
    assert first.active and first.partner_id == "NL-EMS" and first.start_status == "Accepted"
    assert await repo.find_start(db, "CP1", 1, "TAG1", "2026-01-01T10:00:00Z", 100) == first


async def test_stop_and_the_running_views(db: Database) -> None:
    repo = TransactionRepo(db)
    async with db.transaction() as tx:
        one, _ = await repo.insert_start(tx, start())
        two, _ = await repo.insert_start(tx, start(meter_start=200))
        other, _ = await repo.insert_start(tx, start("CP2", "TAG2"))
        stop = TransactionStop(one.id, 900, "2026-01-01T11:00:00Z", "Local", "tag1", None)
        stopped = await TransactionRepo.stop(tx, stop, "2026-01-01T11:00:02.000Z")
    assert not stopped.active and stopped.meter_stop == 900 and stopped.stop_id_tag == "tag1"
    assert [t.id for t in await repo.running_at("CP1")] == [two.id]
    assert sorted(await repo.active_for("TAG1")) == [("CP1", 1)]
    assert [t.id for t in await repo.list()] == [other.id, two.id, one.id]
    assert [t.id for t in await repo.list(charger_id="CP1", active=False)] == [one.id]
    assert [t.id for t in await repo.list(active=True, limit=1)] == [other.id]
    assert await repo.get(one.id) == stopped


async def test_a_stop_that_stops_nothing_is_kept_as_sent(db: Database) -> None:
    data = [{"timestamp": "2026-01-01T11:00:00Z", "sampledValue": [{"value": "900"}]}]
    payload = {"transactionId": -1, "meterStop": 900, "timestamp": "2026-01-01T11:00:00Z"}
    stop = transaction_stop({**payload, "transactionData": data})
    async with db.transaction() as tx:
        await TransactionRepo.add_stop_record(tx, "CP1", "orphan", stop, "now")
    row = await db.fetchone(
        "SELECT transaction_id, kind, id_tag, transaction_data FROM stop_records"
    )
    assert tuple(row[:3]) == (-1, "orphan", None)
    assert orjson.loads(row[3]) == data


async def test_meter_samples_round_trip_in_reading_order(db: Database) -> None:
    later = {"timestamp": "2026-01-01T10:30:00Z", "sampledValue": [{"value": "5", "unit": "kWh"}]}
    earlier = {
        "timestamp": "2026-01-01T10:10:00Z",
        "sampledValue": [
            {"value": "1000"},
            {"value": "230", "measurand": "Voltage", "phase": "L1"},
        ],
    }
    samples = samples_of([later, earlier])
    async with db.transaction() as tx:
        await MeterValueRepo.add(tx, "CP1", 1, 7, "MeterValues", samples, "now")
        await MeterValueRepo.add(tx, "CP2", 1, 7, "MeterValues", samples[:1], "now")
        got = await MeterValueRepo.of_transaction(tx, "CP1", 7)
    assert got == [samples[1], samples[2], samples[0]]
    assert got[0] == MeterSample("2026-01-01T10:10:00Z", "1000")
    assert got[0].effective("unit") == "Wh"
    summary = await MeterValueRepo(db).summary(7)
    assert (summary.count, summary.last_timestamp) == (4, "2026-01-01T10:30:00Z")
    assert (await MeterValueRepo(db).summary(8)).count == 0


async def test_a_status_report_updates_the_connector_and_its_history(db: Database) -> None:
    await ChargerRepo(db).add("CP1")
    async with db.transaction() as tx:
        for status in ("Available", "Preparing"):
            report = StatusReport(1, status, "NoError", None, "ACME", None, "2026-01-01T10:00:00Z")
            await ConnectorRepo.record_status(tx, "CP1", report, "now")
        assert await ConnectorRepo.current_status(tx, "CP1", 1) == "Preparing"
    (connector,) = await ConnectorRepo(db).list("CP1")
    assert connector.status == "Preparing" and connector.vendor_id == "ACME"
    assert connector.status_timestamp == "2026-01-01T10:00:00Z" and connector.received_at == "now"
    history = await db.fetchone("SELECT count(*) FROM status_notifications")
    assert history[0] == 2


async def test_a_connectors_status_history_since_a_start(db: Database) -> None:
    """The status in effect at the start (the last report before it), then every report
    since, of that connector only; the charger's timestamp, else when it was received."""
    reports = [
        (1, "Available", "2026-01-01T09:00:00Z", "2026-01-01T09:00:00.100Z"),
        (1, "Preparing", None, "2026-01-01T09:59:00.000Z"),
        (2, "SuspendedEV", "2026-01-01T10:10:00Z", "2026-01-01T10:10:00.200Z"),
        (1, "SuspendedEV", "2026-01-01T10:20:00Z", "2026-01-01T10:20:00.300Z"),
        (1, "Charging", "2026-01-01T10:40:00Z", "2026-01-01T10:40:00.300Z"),
    ]
    async with db.transaction() as tx:
        for connector, status, at, received in reports:
            report = StatusReport(connector, status, "NoError", None, None, None, at)
            await ConnectorRepo.record_status(tx, "CP1", report, received)
        history = await ConnectorRepo.status_history(tx, "CP1", 1, "2026-01-01T10:00:00.000Z")
    assert history == [
        ("2026-01-01T09:59:00.000Z", "Preparing"),
        ("2026-01-01T10:20:00Z", "SuspendedEV"),
        ("2026-01-01T10:40:00Z", "Charging"),
    ]
    async with db.transaction() as tx:  # read a row at a time: the pages join up the same
        paged = await ConnectorRepo.status_history(tx, "CP1", 1, "2026-01-01T10:00:00.000Z", 1)
        everything = await ConnectorRepo.status_history(tx, "CP1", 1, "2026-01-01T00:00:00Z")
    assert paged == history
    assert [s for _, s in everything] == ["Available", "Preparing", "SuspendedEV", "Charging"]


async def test_charger_events_are_kept_verbatim(db: Database) -> None:
    payload = {"vendorId": "ACME", "data": {"nested": [1, 2]}}
    async with db.transaction() as tx:
        await ChargerEventRepo.add(tx, ChargerEvent("CP1", "DataTransfer", payload, "now"))
    row = await db.fetchone("SELECT action, payload FROM charger_events")
    assert row[0] == "DataTransfer" and orjson.loads(row[1]) == payload


async def test_commands_and_reservations(db: Database) -> None:
    await roaming_schema.migrate(db)  # the command tables are roaming's (OCPI commands)
    repo = CommandRepo(db)
    cmd_id = await repo.add(
        ReceivedCommand("NL-EMS", "StopSession", "{}", '{"result":"ACCEPTED"}', "t0")
    )
    await repo.finish(cmd_id, CommandOutcome("ACCEPTED", True, None, "t1"))
    row = await db.fetchone("SELECT result, result_delivered, finished_at FROM ocpi_commands")
    assert tuple(row) == ("ACCEPTED", 1, "t1")

    request = ReservationRequest("NL-EMS", "r-1", "R-1", "CP1", 1, "LOC1", "t0")
    first = await repo.reserve(request)
    moved = ReservationRequest("NL-EMS", "R-1", "R-1", "CP2", 2, "LOC1", "t1")
    assert await repo.reserve(moved) == first  # the same reservation, moved
    found = await repo.reservation("NL-EMS", "R-1")
    assert found is not None and (found.id, found.charger_id) == (first, "CP2")
    assert await repo.reservation("DE-EMS", "R-1") is None

    async with db.transaction() as tx:
        txn, _ = await TransactionRepo(db).insert_start(tx, start())
        await tx.execute(
            "INSERT INTO ocpi_sessions (id, transaction_id, partner_key, status, body, created_at,"
            " last_updated) VALUES ('s-1', ?, 'NL-EMS', 'ACTIVE', '{}', 't', 't')",
            (txn.id,),
        )
    target = await repo.session_target("S-1")
    assert target is not None
    assert (target.partner_key, target.status, target.transaction_id, target.charger_id) == (
        "NL-EMS",
        "ACTIVE",
        txn.id,
        "CP1",
    )
    assert await repo.session_target("s-2") is None


def test_charger_time_reads_offsets_naive_values_and_falls_back() -> None:
    fallback = datetime(2020, 1, 1, tzinfo=UTC)
    assert charger_time("2026-01-01T12:00:00+02:00", fallback) == datetime(
        2026, 1, 1, 10, tzinfo=UTC
    )
    assert charger_time("2026-01-01T10:00:00Z", fallback) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert charger_time("2026-01-01T10:00:00", fallback) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert charger_time("yesterday", fallback) is fallback
    assert charger_time(None, fallback) is fallback
    assert charger_time("", fallback) is fallback


async def test_two_nodes_stopping_one_transaction_take_turns(postgres_url: str) -> None:
    """Two nodes (two pools on one database) handle the same StopTransaction at once: the
    second reads the row only after the first committed its stop, so it sees a stopped
    transaction (and records a duplicate) instead of stopping it a second time."""
    first, second = await Database.open(postgres_url), await Database.open(postgres_url)
    try:
        repo = TransactionRepo(first)
        async with first.transaction() as tx:
            txn, _ = await repo.insert_start(tx, start())
        stop = transaction_stop(
            {"transactionId": txn.id, "meterStop": 900, "timestamp": "2026-01-01T11:00:00Z"}
        )
        order: list[str] = []
        holding = asyncio.Event()

        async def b_waits_for_the_row() -> bool:
            row = await first.fetchone(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
            )
            return bool(row["n"])

        async def node_a() -> None:
            async with first.transaction() as tx:
                seen = await TransactionRepo.get_in(tx, txn.id, for_update=True)
                assert seen is not None and seen.active
                holding.set()
                # Node a is slow: it stops only once node b is blocked on the row.
                await wait_until(b_waits_for_the_row, what="node b waiting for the row lock")
                await TransactionRepo.stop(tx, stop, "2026-01-01T11:00:01.000Z")
                order.append("a stopped")

        async def node_b() -> bool:
            await holding.wait()
            async with second.transaction() as tx:
                seen = await TransactionRepo.get_in(tx, txn.id, for_update=True)
                order.append("b read")
                assert seen is not None
                return seen.active

        _, b_saw_active = await asyncio.gather(node_a(), node_b())
        assert order == ["a stopped", "b read"]
        assert b_saw_active is False
    finally:
        await first.close()
        await second.close()
