"""Decision log retention: old rows go, newer rows stay, and serving goes on meanwhile."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms import datetimes
from csms.config import ConfigError, RetentionConfig
from csms.retention import Retention
from csms.store.authorizations import COLUMNS
from csms.store.db import Database
from tests.support.csms import make_config, ocpp_url, running_csms
from tests.support.raw_cp import RawChargePoint, Result
from tests.support.waiting import scaled, wait_until

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
_INSERT = (
    f"INSERT INTO authorizations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


def decision_row(at: datetime, uid: str) -> tuple[object, ...]:
    values = {
        "decided_at": datetimes.millis(at),
        "charger_id": "CP1",
        "connector_id": 1,
        "trigger": "authorize",
        "uid": uid,
        "uid_norm": uid,
        "partner_id": None,
        "token_type": "RFID",
        "source": "own_card",
        "allowed": None,
        "status": "Accepted",
        "authorization_reference": None,
        "display_text": None,
        "latency_ms": 0.1,
        "reason": None,
    }
    return tuple(values[c] for c in COLUMNS)


async def insert(db: Database, rows: list[tuple[object, ...]]) -> None:
    async with db.transaction() as tx:
        await tx.executemany(_INSERT, rows)


async def uids(db: Database) -> set[str]:
    return {r["uid"] for r in await db.fetchall("SELECT uid FROM authorizations")}


async def test_rows_older_than_the_horizon_go_newer_rows_stay(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "csms.sqlite3"))
    try:
        old = [decision_row(NOW - timedelta(days=91, seconds=i), f"OLD{i}") for i in range(2500)]
        old.reverse()  # oldest first, as the log writes them
        edge = decision_row(NOW - timedelta(days=90) + timedelta(seconds=1), "EDGE")
        new = [decision_row(NOW - timedelta(days=1, seconds=-i), f"NEW{i}") for i in range(300)]
        await insert(db, [*old, edge, *new])
        config = RetentionConfig(decisions_days=90, batch_rows=400, pause_s=0)
        result = await Retention(db, config, now=lambda: NOW).purge_round()
        assert result.deleted == 2500
        assert not result.backlog
        assert await uids(db) == {"EDGE", *(f"NEW{i}" for i in range(300))}
        again = await Retention(db, config, now=lambda: NOW).purge_round()
        assert again.deleted == 0
    finally:
        await db.close()


async def test_a_round_is_bounded_and_the_next_one_goes_on(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "csms.sqlite3"))
    try:
        await insert(db, [decision_row(NOW - timedelta(days=100), f"OLD{i}") for i in range(1000)])
        await insert(db, [decision_row(NOW, "TODAY")])
        config = RetentionConfig(
            decisions_days=90, batch_rows=150, pause_s=0, max_rows_per_round=600
        )
        retention = Retention(db, config, now=lambda: NOW)
        first = await retention.purge_round()
        assert (first.deleted, first.backlog) == (600, True)
        assert len(await uids(db)) == 401
        second = await retention.purge_round()
        assert (second.deleted, second.backlog) == (400, False)
        assert await uids(db) == {"TODAY"}
    finally:
        await db.close()


async def test_zero_days_keeps_everything(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "csms.sqlite3"))
    try:
        await insert(db, [decision_row(NOW - timedelta(days=3000), "ANCIENT")])
        retention = Retention(db, RetentionConfig(decisions_days=0), now=lambda: NOW)
        assert (await retention.purge_round()).deleted == 0
        retention.start()  # nothing to run
        await retention.close()
        assert await uids(db) == {"ANCIENT"}
    finally:
        await db.close()


def test_config_keys_are_checked(tmp_path: Path) -> None:
    assert make_config(tmp_path).retention.decisions_days == 90
    with pytest.raises(ConfigError, match=r"^retention\.decisions_days"):
        make_config(tmp_path, retention={"decisions_days": -1})
    with pytest.raises(ConfigError, match=r"^retention\.batch_rows"):
        make_config(tmp_path, retention={"batch_rows": 0})


async def test_heartbeats_are_answered_while_a_large_purge_runs(tmp_path: Path) -> None:
    """The server's own background purge of 300,000 expired decisions, with a charger
    sending Heartbeats the whole time: every one is answered promptly.

    Why this many: one DELETE of them all holds the store's writer ~1 s (measured
    ~330,000 rows/s), which a Heartbeat (its write is awaited before the answer) would
    wait out; batches hold it a few milliseconds each."""
    store = tmp_path / "csms.sqlite3"
    total = 300_000
    db = await Database.open(str(store))
    old = datetime.now(UTC) - timedelta(days=200)
    row = decision_row(old, "OLD")
    for _ in range(total // 50_000):
        await insert(db, [row] * 50_000)
    await insert(db, [decision_row(datetime.now(UTC), "TODAY")])
    await db.close()

    async with running_csms(
        tmp_path,
        server={"unknown_chargers": "accept"},
        retention={
            "decisions_days": 90,
            "batch_rows": 1000,
            "pause_s": 0.005,
            "interval_s": 1.0,  # the first round after one interval
        },
    ) as app:
        retention = app.retention
        assert retention is not None
        cp = await RawChargePoint.connect(ocpp_url(app), "CP-PURGE", lambda a, p: Result())
        try:
            await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
            await wait_until(lambda: retention.deleted > 0, timeout=10, what="the purge to start")
            latencies: list[float] = []
            during = 0
            for _ in range(2000):  # bounded: the purge takes a few seconds
                if retention.deleted >= total:
                    break
                sent = time.perf_counter()
                answer = await cp.call("Heartbeat", {})
                latencies.append(time.perf_counter() - sent)
                assert answer[0] == 3 and "currentTime" in answer[2]
                if retention.deleted < total:
                    during += 1
                await asyncio.sleep(0.01)
            await wait_until(
                lambda: retention.deleted >= total, timeout=60, what="the purge to finish"
            )
        finally:
            await cp.close()
        left = await app.db.fetchall("SELECT uid FROM authorizations")
    assert [r["uid"] for r in left] == ["TODAY"]
    assert during >= 5, f"only {during} heartbeats overlapped the purge"
    # A Heartbeat's write lingers 50 ms by design (charger_writes batches them); the
    # bounds are generous beyond that: a paused loop would show the whole purge (seconds).
    assert max(latencies) < scaled(0.5), f"slowest heartbeat {max(latencies) * 1000:.1f} ms"
    assert statistics.median(latencies) < scaled(0.15)
