"""The store on both engines (every test runs on a SQLite file and on PostgreSQL):
migrations, transactions, transaction ids, chargers, own cards and the decision log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from csms.authz.model import Allowed, AuthRequest, AuthStatus, Decision, DecisionRecord, Source
from csms.config import load
from csms.domain.chargers import BootInfo
from csms.domain.transactions import TransactionStart, TransactionStop
from csms.store import authorizations, schema
from csms.store.authorizations import AuthorizationLog
from csms.store.charger_writes import ChargerWrites
from csms.store.chargers import ChargerExists, ChargerRepo
from csms.store.db import Database
from csms.store.id_tags import IdTagRepo
from csms.store.transactions import TransactionRepo
from csms.system import known_migrations, open_store
from roaming.store import schema as roaming_schema
from tests.support.waiting import wait_until

EVENT = (
    "INSERT INTO charger_events (charger_id, action, payload, received_at) "
    "VALUES (?, 'x', '{}', 't')"
)


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[Database]:
    database = await Database.open(store_url)
    yield database
    await database.close()


def start(meter_start: int = 100, charger_id: str = "CP1") -> TransactionStart:
    return TransactionStart(
        charger_id=charger_id,
        connector_id=1,
        id_tag="tag1",
        id_tag_norm="TAG1",
        meter_start=meter_start,
        start_timestamp="2026-01-01T10:00:00Z",
        start_received_at="2026-01-01T10:00:01.000Z",
        reservation_id=None,
        start_status="Accepted",
        parent_id_tag=None,
        authorization_reference=None,
        partner_id=None,
        token_type=None,
        token_country_code=None,
        token_party_id=None,
        contract_id=None,
        auth_method="LOCAL",
        token_uid=None,
    )


async def test_migrations_apply_once_and_are_recorded(store_url: str) -> None:
    db = await Database.open(store_url)
    assert await schema.recorded(db) == sorted(n for n, _ in schema.MIGRATIONS)
    await db.close()
    db = await Database.open(store_url)
    assert await schema.migrate_database(db) == []
    await db.close()


async def test_a_schema_newer_than_the_code_is_refused_by_name(store_url: str) -> None:
    config = load(None, {"CSMS__STORE__URL": store_url})
    db = await open_store(config)
    await db.execute(
        "INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_from_the_future', 't')"
    )
    await db.close()
    with pytest.raises(schema.SchemaNewerThanCode, match="9999_from_the_future") as caught:
        await open_store(config)
    assert caught.value.unknown == ["9999_from_the_future"]
    assert "9999_from_the_future" not in known_migrations()


async def test_a_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute(EVENT, ("A",))
            raise RuntimeError("boom")
    row = await db.fetchone("SELECT count(*) AS n FROM charger_events")
    assert row["n"] == 0


async def test_cancelled_writers_leave_the_store_usable(db: Database) -> None:
    """A caller cancelled at any point of its transaction (a charger's socket closing
    mid-write) must not leave a connection inside a transaction or out of the pool."""

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute(EVENT, ("A",))
            await tx.execute(EVENT, ("A",))

    for delay in range(30):  # cancel at several points of the round trips
        task = asyncio.create_task(writer())
        for _ in range(delay):
            await asyncio.sleep(0)
        task.cancel()  # a writer already done is not cancelled: it committed both rows
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for delay in range(30):  # lone statements (pooled connections) cancelled mid-flight
        lone = asyncio.create_task(db.fetchall("SELECT * FROM charger_events"))
        for _ in range(delay):
            await asyncio.sleep(0)
        lone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lone
    for _ in range(15):  # more than a pool's worth of connections
        async with db.transaction() as tx:
            await tx.execute(EVENT, ("B",))
    rows = await db.fetchall("SELECT charger_id, count(*) AS n FROM charger_events GROUP BY 1")
    counts = {r["charger_id"]: r["n"] for r in rows}
    assert counts["B"] == 15
    assert counts.get("A", 0) % 2 == 0, "a cancelled transaction committed half its rows"


async def test_transaction_ids_are_never_reused_across_restarts(store_url: str) -> None:
    db = await Database.open(store_url)
    repo = TransactionRepo(db)
    async with db.transaction() as tx:
        first, _ = await repo.insert_start(tx, start(100))
        second, _ = await repo.insert_start(tx, start(200))
        await tx.execute("DELETE FROM transactions WHERE id = ?", (second.id,))
    await db.close()
    db = await Database.open(store_url)
    async with db.transaction() as tx:
        third, created = await TransactionRepo(db).insert_start(tx, start(300))
    await db.close()
    assert created and first.id < second.id < third.id


async def test_a_start_retried_on_another_node_gets_the_same_id(store_url: str) -> None:
    """Two stores on one database (two nodes): the same start sent to both at once is one
    transaction, decided by the database's unique key, not by a node's memory."""
    node_a = await Database.open(store_url)
    node_b = await Database.open(store_url)
    try:

        async def on(node: Database) -> tuple[int, bool]:
            async with node.transaction() as tx:
                record, created = await TransactionRepo(node).insert_start(tx, start())
                return record.id, created

        (id_a, created_a), (id_b, created_b) = await asyncio.gather(on(node_a), on(node_b))
        assert id_a == id_b and sorted([created_a, created_b]) == [False, True]
        rows = await node_a.fetchall("SELECT id FROM transactions")
        assert [r["id"] for r in rows] == [id_a]
    finally:
        await node_a.close()
        await node_b.close()


async def test_a_stop_is_always_kept(db: Database) -> None:
    repo = TransactionRepo(db)
    async with db.transaction() as tx:
        running, _ = await repo.insert_start(tx, start())
        stop = TransactionStop(running.id, 900, "2026-01-01T11:00:00Z", "Local", None, None)
        stopped = await TransactionRepo.stop(tx, stop, "2026-01-01T11:00:01.000Z")
        orphan = replace(stop, transaction_id=987654)
        await TransactionRepo.add_stop_record(tx, "CP1", "orphan", orphan, "t")
        await TransactionRepo.add_stop_record(tx, "CP1", "duplicate", stop, "t")
    assert stopped.meter_stop == 900 and not stopped.active
    rows = await db.fetchall("SELECT transaction_id, kind FROM stop_records ORDER BY id")
    assert [tuple(r) for r in rows] == [(987654, "orphan"), (running.id, "duplicate")]


async def test_chargers_register_boot_and_heartbeat(db: Database) -> None:
    repo = ChargerRepo(db)
    added = await repo.add("CP1", password="s3cret-pass-word", registration_status="Pending")
    assert added.has_password and added.registration_status == "Pending"
    with pytest.raises(ChargerExists):
        await repo.add("CP1")
    assert await repo.set_registration_status("CP1", "Accepted")
    writes = ChargerWrites(db, heartbeat_linger_s=0.01)
    boot = BootInfo("ACME", "Fast-1", "SN1", None, "1.0", None, None, None, None, {"x": 1})
    await writes.connected("CP1", "2026-01-01T10:00:00.000Z")
    assert await writes.boot("CP1", boot, "2026-01-01T10:00:01.000Z") == "Accepted"
    await asyncio.gather(
        *(writes.heartbeat("CP1", f"2026-01-01T10:0{i}:02.000Z") for i in range(5))
    )
    assert await writes.boot("CP9", boot, "2026-01-01T10:00:01.000Z") == "Rejected"
    await writes.close()
    got = await repo.get("CP1")
    assert got is not None and (got.vendor, got.model, got.firmware_version) == (
        "ACME",
        "Fast-1",
        "1.0",
    )
    assert got.last_heartbeat_at == "2026-01-01T10:04:02.000Z"
    assert got.last_connected_at == "2026-01-01T10:00:00.000Z"
    facts = await repo.auth_facts("CP1")
    assert facts is not None and facts[0] == "Accepted" and facts[1]
    await repo.auto_register("CP2", "Pending")
    assert [c.id for c in await repo.list()] == ["CP1", "CP2"]
    assert await repo.remove("CP2") and not await repo.remove("CP2")


async def test_own_cards_are_case_insensitive_and_replaced_in_place(db: Database) -> None:
    repo = IdTagRepo(db)
    await repo.add("tag-b")
    first = await repo.add("Tag-A", expiry_date="2030-01-01T00:00:00Z", parent_id_tag="P1")
    again = await repo.add("TAG-A", status="Blocked")
    assert again.id_tag == "TAG-A" and again.status == "Blocked"
    assert again.created_at == first.created_at and again.expiry_date is None
    assert [t.id_tag for t in await repo.list()] == ["TAG-A", "tag-b"]
    assert await repo.set_status("tag-a", "Accepted")
    assert (await repo.get("tag-A")).status == "Accepted"  # type: ignore[union-attr]
    assert await repo.block("TAG-B") and (await repo.get("tag-b")).status == "Blocked"  # type: ignore[union-attr]
    assert await repo.remove("tag-a") and await repo.get("TAG-A") is None


def decision(i: int, charger: str = "CP1", status: str = "Accepted") -> DecisionRecord:
    return DecisionRecord(
        request=AuthRequest(charger, f"04a1b2{i:04d}", "Authorize", 1),
        decision=Decision(
            AuthStatus(status),
            Source.REMOTE,
            reason="eMSP answered",
            partner_id="NL-EMS",
            token_type="RFID",
            allowed=Allowed.ALLOWED,
            authorization_reference=f"ref-{i}",
        ),
        decided_at=datetime(2026, 5, 3, 12, 0, i % 60, tzinfo=UTC),
        latency_ms=1.25,
    )


async def test_the_decision_log_keeps_every_decision(db: Database) -> None:
    log = AuthorizationLog(db, flush_interval_s=10, batch_size=50, emit_log=False)
    for i in range(120):
        log.record(decision(i, charger="CP2" if i % 3 == 0 else "CP1"))
    log.record(decision(500, status="Invalid"))
    await wait_until(lambda: log.pending < 50, timeout=5, what="the full batches written")
    await log.close()
    rows = await authorizations.latest(db, limit=1000)
    assert len(rows) == 121 and rows[0]["authorization_reference"] == "ref-500"
    assert rows[0]["latency_ms"] == 1.25 and rows[0]["uid_norm"] == "04A1B20500"
    assert len(await authorizations.latest(db, limit=1000, charger_id="CP2")) == 40
    assert [r["status"] for r in await authorizations.latest(db, status="Invalid")] == ["Invalid"]
    assert len(await authorizations.latest(db, uid="04a1b20007")) == 1


async def test_db_migrate_and_status_from_the_cli(store_url: str, tmp_path, capsys) -> None:
    from csms.cli import main

    config = tmp_path / "csms.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    argv = ["db", "status", "--config", str(config)]
    assert await asyncio.to_thread(main, argv) == 0
    assert "pending  0001_ocpp_core" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["db", "migrate", "--config", str(config)]) == 0
    assert "applied 0008_ocpi_outbox_in_flight" in capsys.readouterr().out
    assert await asyncio.to_thread(main, argv) == 0
    assert "pending" not in capsys.readouterr().out

    db = await Database.open(store_url, migrate=False)
    await db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('9000_next', 't')")
    await db.close()
    assert await asyncio.to_thread(main, ["db", "migrate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "newer than this release" in err and "9000_next" in err and "Traceback" not in err


async def test_the_sqlite_functions_the_queries_use_answer_alike(db: Database) -> None:
    await roaming_schema.migrate(db)  # julianday is roaming's (the token sync's)
    await db.execute("CREATE TABLE docs (id INTEGER, body TEXT)")
    docs = [(1, '{"a": {"b": true}, "n": 5, "s": "x", "z": null}'), (2, '{"a": {"b": false}}')]
    await db.executemany("INSERT INTO docs (id, body) VALUES (?, ?)", docs)
    row = await db.fetchone(
        "SELECT CAST(json_extract(body, '$.a.b') AS INTEGER),"
        " CAST(json_extract(body, '$.n') AS INTEGER), json_extract(body, '$.s'),"
        " json_extract(body, '$.z'), json_extract(body, '$.missing')"
        " FROM docs WHERE id = 1"
    )
    assert tuple(row) == (1, 5, "x", None, None)
    row = await db.fetchone(
        "SELECT group_concat(s, ',') FROM (SELECT CAST(json_extract(body, '$.a.b') AS TEXT) AS s"
        " FROM docs ORDER BY id) AS bs"
    )
    assert row[0] == "1,0"
    row = await db.fetchone(
        "SELECT julianday('2026-01-02T00:00:00Z') - julianday('2026-01-01T12:00:00.000Z'),"
        " julianday('not a time')"
    )
    assert abs(row[0] - 0.5) < 1e-9 and row[1] is None


async def test_an_unreachable_postgresql_is_one_clear_error(postgres_url: str) -> None:
    from csms.store.pg import StoreUnavailable
    from tests.support.postgres import free_port, with_database

    missing = with_database(postgres_url, "no_such_database_here")
    with pytest.raises(StoreUnavailable, match="no_such_database_here") as caught:
        await Database.open(missing)
    assert isinstance(caught.value, OSError)  # csms serve: "cannot start: ..." (exit 1)
    refused = f"postgresql://csms:hunter2@127.0.0.1:{free_port()}/csms"
    with pytest.raises(StoreUnavailable, match=r"csms:\*\*\*@127\.0\.0\.1") as caught:
        await Database.open(refused)
    assert "hunter2" not in str(caught.value)
