"""What the dashboard shows, decided without a server: energy, masking, the eMSP error
rate, the outbox backlog; and the store queries behind the overview (a real SQLite file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from csms.admin.dashboard import views
from csms.admin.dashboard.ports import Delivery
from csms.domain.transactions import TransactionRecord
from csms.store import dashboard as queries
from csms.store.dashboard import DecisionCount
from csms.store.db import Database


def _txn(**over: object) -> TransactionRecord:
    base: dict[str, object] = {
        "charger_id": "CP1",
        "connector_id": 1,
        "id_tag": "04A1B2C3D4E5F6",
        "id_tag_norm": "04A1B2C3D4E5F6",
        "meter_start": 1000,
        "start_timestamp": "2026-12-07T10:00:00Z",
        "start_received_at": "2026-12-07T10:00:00.100Z",
        "reservation_id": None,
        "start_status": "Accepted",
        "parent_id_tag": None,
        "authorization_reference": "Ref-1",
        "partner_id": "NL-EMS",
        "token_type": "RFID",
        "token_country_code": "NL",
        "token_party_id": "EMS",
        "contract_id": None,
        "auth_method": "AUTH_REQUEST",
        "token_uid": None,
        "id": 7,
        "meter_stop": None,
        "stop_timestamp": None,
        "stop_received_at": None,
        "stop_reason": None,
        "stop_id_tag": None,
    }
    base.update(over)
    return TransactionRecord(**base)  # type: ignore[arg-type]


def test_energy_is_the_stop_reading_or_the_newest_register_reading() -> None:
    assert views.energy_wh(_txn(meter_stop=3500, stop_received_at="x"), ("9999", "Wh")) == 2500
    assert views.energy_wh(_txn(), ("4000", "Wh")) == 3000
    assert views.energy_wh(_txn(), ("4.5", "kWh")) == 3500
    assert views.energy_wh(_txn(), None) is None
    assert views.energy_wh(_txn(), ("garbage", "Wh")) is None
    assert views.kwh(2278.0) == "2.278 kWh" and views.kwh(None) == "–"


def test_a_transaction_row_masks_the_token_and_shows_delivery() -> None:
    row = views.transaction_row(
        _txn(),
        ("2000", None),
        Delivery(session_id="S1", session_status="ACTIVE", session_delivery="pending"),
    )
    assert row["id_tag"] == "04A1…F6"
    assert "04A1B2C3D4E5F6" not in repr(row)
    assert row["energy"] == "1.000 kWh"
    assert row["session"] == "ACTIVE · pending"
    assert row["cdr"] is None
    assert views.transaction_row(_txn(), None, None)["session"] is None


def test_emsp_error_rate_is_fallbacks_over_real_time_queries() -> None:
    summary = views.summarize_decisions(
        [
            DecisionCount("cache", "Accepted", 50),
            DecisionCount("remote", "Accepted", 6),
            DecisionCount("remote", "Invalid", 1),
            DecisionCount("fallback", "Accepted", 3),
        ]
    )
    assert summary.total == 60
    assert summary.emsp_queries == 10 and summary.emsp_failures == 3
    assert views.percent(summary.emsp_error_rate) == "30.0 %"
    assert summary.by_source["remote"] == {"Accepted": 6, "Invalid": 1}
    assert views.summarize_decisions([]).emsp_error_rate is None


def test_backlog_counts_every_status_that_is_not_finished() -> None:
    counts = {"delivered": 100, "expanded": 4, "pending": 2, "dead": 1, "waiting_location": 3}
    assert views.backlog(counts) == 6  # a status added later counts without a change here


def test_decision_rows_mask_the_uid() -> None:
    row = views.decision_row(
        {
            "id": 1,
            "decided_at": "t",
            "charger_id": "CP1",
            "connector_id": 1,
            "trigger": "Authorize",
            "uid": "04A1B2C3D4E5F6",
            "partner_id": None,
            "source": "local",
            "status": "Accepted",
            "authorization_reference": None,
            "latency_ms": 0.1234,
            "reason": None,
        }
    )
    assert row["uid"] == "04A1…F6" and row["latency_ms"] == "0.1"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "csms.sqlite3"))
    try:
        yield database
    finally:
        await database.close()


async def _decide(db: Database, row_id: int, at: str, source: str = "cache") -> None:
    await db.execute(
        "INSERT INTO authorizations (id, decided_at, trigger, uid, uid_norm, source, status,"
        " latency_ms) VALUES (?, ?, 'Authorize', 'T', 'T', ?, 'Accepted', 1.0)",
        (row_id, at, source),
    )


async def test_decisions_of_the_last_hour_are_found_by_id_despite_gaps(db: Database) -> None:
    assert await queries.decisions_since(db, "2026-12-07T10:00:00.000Z") == []
    # ids with gaps; decided_at grows with the id
    for i, row_id in enumerate((1, 2, 5, 9, 10, 40, 41, 100)):
        await _decide(db, row_id, f"2026-12-07T09:{50 + i:02d}:00.000Z", "remote" if i else "cache")
    since = "2026-12-07T09:53:00.000Z"  # the 4th row (id 9) on
    assert await queries.first_id_since(db, since) == 9
    assert await queries.decisions_since(db, since) == [DecisionCount("remote", "Accepted", 5)]
    assert await queries.first_id_since(db, "2026-12-07T09:00:00.000Z") == 1
    assert await queries.first_id_since(db, "2026-12-07T09:57:00.000Z") == 100
    assert await queries.first_id_since(db, "2026-12-07T11:00:00.000Z") is None


async def test_the_newest_register_reading_of_each_transaction(db: Database) -> None:
    rows = [
        (1, "Energy.Active.Import.Register", None, "1500", "Wh"),
        (1, None, None, "1700", "Wh"),  # no measurand: the register by default
        (1, "Energy.Active.Import.Register", "L1", "900", "Wh"),  # a phase: not the total
        (1, "Power.Active.Import", None, "11000", "W"),
        (2, "Energy.Active.Import.Register", None, "2.5", "kWh"),
    ]
    for tx, measurand, phase, value, unit in rows:
        await db.execute(
            "INSERT INTO meter_values (charger_id, connector_id, transaction_id, source,"
            " timestamp, received_at, value, measurand, phase, unit)"
            " VALUES ('CP1', 1, ?, 'MeterValues', 't', 't', ?, ?, ?, ?)",
            (tx, value, measurand, phase, unit),
        )
    got = await queries.latest_energy_readings(db, [1, 2, 3])
    assert got == {1: ("1700", "Wh"), 2: ("2.5", "kWh")}
    assert await queries.latest_energy_readings(db, []) == {}
