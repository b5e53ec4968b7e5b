"""Group commit of connect/boot/heartbeat writes: shared transactions, per-caller results."""

from __future__ import annotations

import asyncio

import pytest

from csms.domain.chargers import BootInfo
from csms.ocpp16.payloads import boot_info
from csms.store.charger_writes import AuthFactsReader, ChargerWrites
from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from tests.support.waiting import stays_false

BOOT = boot_info({"chargePointVendor": "ACME", "chargePointModel": "X1", "firmwareVersion": "1.2"})
# The event log cannot encode this message (orjson wants string keys), so its write fails.
UNSTORABLE = BootInfo("ACME", "X1", None, None, None, None, None, None, None, {1: "not json"})


async def test_concurrent_boots_share_transactions_and_all_are_stored(db: Database) -> None:
    repo = ChargerRepo(db)
    for n in range(200):
        await repo.add(f"CP{n}", registration_status="Pending" if n == 7 else "Accepted")
    writes = ChargerWrites(db)
    statuses = await asyncio.gather(
        *(writes.boot(f"CP{n}", BOOT, f"2024-05-01T10:00:{n % 60:02d}Z") for n in range(200)),
        writes.boot("NOT-REGISTERED", BOOT, "2024-05-01T10:00:00Z"),
        *(writes.connected(f"CP{n}", "2024-05-01T09:59:00Z") for n in range(200)),
    )
    assert statuses[7] == "Pending" and statuses[200] == "Rejected"
    assert statuses[:7] + statuses[8:200] == ["Accepted"] * 199
    assert 1 <= writes.batches < 50  # 401 writes, far fewer transactions
    row = await db.fetchone(
        "SELECT vendor, firmware_version, last_boot_at, last_connected_at FROM chargers "
        "WHERE id = 'CP5'"
    )
    assert tuple(row) == ("ACME", "1.2", "2024-05-01T10:00:05Z", "2024-05-01T09:59:00Z")
    events = await db.fetchone(
        "SELECT count(*) FROM charger_events WHERE action = 'BootNotification'"
    )
    assert events[0] == 201  # the unregistered charger's boot is kept as an event too


async def test_one_bad_write_fails_alone(db: Database) -> None:
    await ChargerRepo(db).add("CP1")
    await ChargerRepo(db).add("CP2")
    writes = ChargerWrites(db)
    good, bad, beat = await asyncio.gather(
        writes.boot("CP1", BOOT, "2024-05-01T10:00:00Z"),
        writes.boot("CP2", UNSTORABLE, "2024-05-01T10:00:00Z"),
        writes.heartbeat("CP2", "2024-05-01T10:00:09Z"),
        return_exceptions=True,
    )
    assert good == "Accepted" and beat is None
    assert isinstance(bad, TypeError)
    row = await db.fetchone("SELECT vendor, last_heartbeat_at FROM chargers WHERE id = 'CP2'")
    assert tuple(row) == (None, "2024-05-01T10:00:09Z")
    # the writer recovers: later writes still go through
    assert await writes.boot("CP2", BOOT, "2024-05-01T10:01:00Z") == "Accepted"


async def test_close_waits_for_submitted_writes(db: Database) -> None:
    await ChargerRepo(db).add("CP1")
    writes = ChargerWrites(db)
    pending = asyncio.ensure_future(writes.heartbeat("CP1", "2024-05-01T10:00:00Z"))
    await asyncio.sleep(0)
    await writes.close()
    assert pending.done()
    row = await db.fetchone("SELECT last_heartbeat_at FROM chargers WHERE id = 'CP1'")
    assert row[0] == "2024-05-01T10:00:00Z"


@pytest.mark.parametrize("kind", ["connected", "heartbeat"])
async def test_touch_of_unknown_charger_is_a_no_op(db: Database, kind: str) -> None:
    writes = ChargerWrites(db)
    assert await getattr(writes, kind)("GHOST", "2024-05-01T10:00:00Z") is None
    assert (await db.fetchone("SELECT count(*) FROM chargers"))[0] == 0


async def test_auth_facts_reads_are_batched_and_exact(db: Database) -> None:
    repo = ChargerRepo(db)
    for n in range(600):  # more than one IN (...) chunk
        await repo.add(f"CP{n}", password="pw-long-enough" if n == 3 else None)
    await repo.set_registration_status("CP9", "Rejected")
    reader = AuthFactsReader(db)
    got = await asyncio.gather(
        *(reader.get(f"CP{n}") for n in range(600)), reader.get("cp1"), reader.get("CP1")
    )
    assert got[0] == ("Accepted", None, None) and got[9] == ("Rejected", None, None)
    assert got[3][0] == "Accepted" and got[3][1] is not None and got[3][1].startswith("scrypt$")
    assert got[600] is None  # ids are case-sensitive, as the handshake always was
    assert got[601] == got[1] == await repo.auth_facts("CP1")


async def test_heartbeats_linger_together_but_a_boot_does_not_wait(db: Database) -> None:
    for n in range(3):
        await ChargerRepo(db).add(f"CP{n}")
    writes = ChargerWrites(db, heartbeat_linger_s=30.0)
    beats = [
        asyncio.ensure_future(writes.heartbeat(f"CP{n}", "2024-05-01T10:00:00Z")) for n in (0, 1)
    ]
    # lingering, waiting for company
    await stays_false(lambda: any(b.done() for b in beats), period=0.05, what="a heartbeat answer")
    status = await asyncio.wait_for(writes.boot("CP2", BOOT, "2024-05-01T10:00:01Z"), 5)
    assert status == "Accepted"
    await asyncio.wait_for(asyncio.gather(*beats), 5)  # went with the boot's batch
    assert writes.batches == 1
