"""StatusNotifications committed together: each report is stored (history and current
row), each caller gets its connector's previous status, reports of one connector keep
their order within a batch, the hook runs in the batch's transaction, and a report the
hook refuses fails alone. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from csms.domain.chargers import StatusReport
from csms.store.chargers import ConnectorRepo
from csms.store.db import Database, Executor
from csms.store.status_writes import StatusWrites


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[Database]:
    database = await Database.open(store_url)
    yield database
    await database.close()


def report(connector_id: int, status: str) -> StatusReport:
    return StatusReport(
        connector_id=connector_id,
        status=status,
        error_code="NoError",
        info=None,
        vendor_id=None,
        vendor_error_code=None,
        status_timestamp=None,
    )


async def test_concurrent_reports_share_commits_and_each_gets_its_previous_status(db: Database):
    seen: list[tuple[str, int, str]] = []

    calls: list[int] = []

    async def hook(tx: Executor, reports: Sequence[tuple[str, StatusReport]]) -> None:
        calls.append(len(reports))  # once per batch, with all of its reports
        for charger_id, r in reports:
            # Runs inside the batch: the report's own rows are already there.
            assert await ConnectorRepo.current_status(tx, charger_id, r.connector_id) is not None
            seen.append((charger_id, r.connector_id, r.status))

    writes = StatusWrites(db, hook, linger_s=0.05)
    first = [writes.record(f"CP{i}", report(1, "Available"), "t1") for i in range(40)]
    assert await asyncio.gather(*first) == [None] * 40
    # Two reports of one connector in the same batch: the second's previous is the first.
    again = await asyncio.gather(
        writes.record("CP0", report(1, "Preparing"), "t2"),
        writes.record("CP0", report(1, "Charging"), "t3"),
        writes.record("CP1", report(1, "Unavailable"), "t2"),
    )
    assert again == ["Available", "Preparing", "Available"]
    assert writes.batches <= 3  # 43 reports, not 43 transactions
    assert len(calls) == writes.batches and sum(calls) == 43
    assert len(seen) == 43 and seen[-3:] == [
        ("CP0", 1, "Preparing"),
        ("CP0", 1, "Charging"),
        ("CP1", 1, "Unavailable"),
    ]
    assert await ConnectorRepo.current_status(db, "CP0", 1) == "Charging"
    history = await db.fetchall(
        "SELECT status FROM status_notifications WHERE charger_id = 'CP0' ORDER BY id"
    )
    assert [r["status"] for r in history] == ["Available", "Preparing", "Charging"]
    await writes.close()


async def test_a_report_the_hook_refuses_fails_alone(db: Database):
    async def hook(tx: Executor, reports: Sequence[tuple[str, StatusReport]]) -> None:
        if any(charger_id == "BAD" for charger_id, _ in reports):
            raise ValueError("refused")

    writes = StatusWrites(db, hook, linger_s=0.05)
    results = await asyncio.gather(
        writes.record("OK1", report(1, "Available"), "t"),
        writes.record("BAD", report(1, "Available"), "t"),
        writes.record("OK2", report(2, "Faulted"), "t"),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert await ConnectorRepo.current_status(db, "OK2", 2) == "Faulted"
    assert await ConnectorRepo.current_status(db, "BAD", 1) is None  # rolled back
    await writes.close()


async def test_close_writes_what_was_submitted(db: Database):
    async def hook(tx: Executor, reports: Sequence[tuple[str, StatusReport]]) -> None:
        return None

    writes = StatusWrites(db, hook, linger_s=5.0)  # would linger far longer than the test
    pending = asyncio.ensure_future(writes.record("CP9", report(1, "Available"), "t"))
    await asyncio.sleep(0)  # submitted, lingering
    async with asyncio.timeout(2):  # close cuts the linger short
        await writes.close()
        assert await pending is None
    assert await ConnectorRepo.current_status(db, "CP9", 1) == "Available"
