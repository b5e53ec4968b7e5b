"""Every decision is stored (write-behind, nothing lost on close) and logged once with
the uid masked; ``/api/authorizations`` and ``csms authorizations list`` show the latest."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from structlog.testing import capture_logs

from csms.authz.model import (
    Allowed,
    AuthRequest,
    AuthStatus,
    Decision,
    DecisionRecord,
    Source,
)
from csms.cli import main as cli_main
from csms.store import authorizations
from csms.store.authorizations import AuthorizationLog, row_of
from csms.store.db import Database
from tests.support.csms import ADMIN_TOKEN, admin_session, admin_url, running_csms
from tests.support.waiting import wait_until


def entry(i: int, charger: str = "CP1", uid: str = "04a1b2c3d4e5", status: str = "Accepted"):
    return DecisionRecord(
        request=AuthRequest(charger, uid, "Authorize", 1),
        decision=Decision(
            AuthStatus(status),
            Source.REMOTE,
            reason="eMSP answered ALLOWED",
            partner_id="NL-EMS",
            token_type="RFID",
            allowed=Allowed.ALLOWED,
            authorization_reference=f"AuTh-{i}",
        ),
        decided_at=datetime(2024, 5, 3, 12, 0, i % 60, tzinfo=UTC),
        latency_ms=1.5,
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 21, 15, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 21, 15, 0, 0, 999_999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 1_000, tzinfo=UTC),
        datetime(2026, 11, 21, 16, 30, 5, 123_456, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_decided_at_is_stored_as_isoformat_milliseconds(moment: datetime) -> None:
    expected = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = entry(0)._replace(decided_at=moment)
    assert row_of(record)[0] == expected
    assert row_of(record)[0] == expected  # the cached second gives the same text


def test_row_maps_the_record_in_column_order() -> None:
    row = dict(zip(authorizations.COLUMNS, row_of(entry(7)), strict=True))
    assert row == {
        "decided_at": "2024-05-03T12:00:07.000Z",
        "charger_id": "CP1",
        "connector_id": 1,
        "trigger": "Authorize",
        "uid": "04a1b2c3d4e5",
        "uid_norm": "04A1B2C3D4E5",
        "partner_id": "NL-EMS",
        "token_type": "RFID",
        "source": "remote",
        "allowed": "ALLOWED",
        "status": "Accepted",
        "authorization_reference": "AuTh-7",
        "display_text": None,
        "latency_ms": 1.5,
        "reason": "eMSP answered ALLOWED",
    }


async def test_every_record_is_stored_by_close_and_logged_masked(tmp_path):
    db = await Database.open(str(tmp_path / "a.sqlite3"))
    log = AuthorizationLog(db, flush_interval_s=10, batch_size=100)
    with capture_logs() as events:
        for i in range(250):
            log.record(entry(i))
        # two full batches were due: the writer takes them without waiting its interval
        await wait_until(lambda: log.pending < 100, timeout=3, what="the full batches written")
        await log.close()
    rows = await authorizations.latest(db, limit=1000)
    assert len(rows) == 250
    assert rows[0]["authorization_reference"] == "AuTh-249"
    assert rows[0]["uid"] == "04a1b2c3d4e5" and rows[0]["uid_norm"] == "04A1B2C3D4E5"
    decided = [e for e in events if e["event"] == "authorization_decided"]
    assert len(decided) == 250
    assert decided[0]["uid"] == "04a1…e5"
    assert "04a1b2c3d4e5" not in json.dumps(decided, default=str)
    assert {
        "source",
        "status",
        "latency_ms",
        "authorization_reference",
        "charger_id",
        "partner",
    } <= set(decided[0])
    await db.close()


async def test_writer_flushes_on_its_interval_and_filters_work(tmp_path):
    db = await Database.open(str(tmp_path / "a.sqlite3"))
    log = AuthorizationLog(db, flush_interval_s=0.02, emit_log=False)
    log.record(entry(1, charger="CP1"))
    log.record(entry(2, charger="CP2", uid="FFEE", status="Invalid"))
    await wait_until(lambda: log.written == 2, what="the interval flush")
    assert [r["charger_id"] for r in await authorizations.latest(db, charger_id="CP2")] == ["CP2"]
    assert len(await authorizations.latest(db, uid="ffee")) == 1
    assert len(await authorizations.latest(db, status="Accepted")) == 1
    await log.close()
    await db.close()


async def test_failed_flush_keeps_rows_for_the_next_try(tmp_path):
    db = await Database.open(str(tmp_path / "a.sqlite3"))
    log = AuthorizationLog(db, flush_interval_s=10, emit_log=False)
    log.record(entry(1))
    await db.execute("ALTER TABLE authorizations RENAME TO authorizations_x")
    try:
        await log.flush()
    except Exception:
        pass
    assert log.pending == 1
    await db.execute("ALTER TABLE authorizations_x RENAME TO authorizations")
    await log.close()
    assert len(await authorizations.latest(db)) == 1
    await db.close()


async def test_admin_route_and_cli_show_latest(tmp_path):
    async with running_csms(tmp_path) as app:
        for i in range(3):
            app.authorization.decisions.record(entry(i, charger=f"CP{i}"))
        async with admin_session(app) as http:
            resp = await http.get("/api/authorizations", params={"limit": "2"})
            assert resp.status == 200
            body = await resp.json()
            assert [r["charger_id"] for r in body["authorizations"]] == ["CP2", "CP1"]
            resp = await http.get("/api/authorizations", params={"limit": "0"})
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid_query"
        argv = [
            "authorizations",
            "list",
            "--charger",
            "CP1",
            "--admin-url",
            admin_url(app),
            "--admin-token",
            ADMIN_TOKEN,
            "--json",
        ]
        code, out = await asyncio.to_thread(_run_cli, argv)
        assert code == 0
        rows = json.loads(out)["authorizations"]
        assert [(r["charger_id"], r["authorization_reference"]) for r in rows] == [
            ("CP1", "AuTh-1")
        ]
        code, out = await asyncio.to_thread(_run_cli, argv[:-1])
        assert code == 0 and "AuTh-1" in out and "AUTHORIZATION_REFERENCE" in out


def _run_cli(argv):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli_main(argv)
    return code, buf.getvalue()
