"""A release frees every waiting Session whose connector is mapped now, in order, even
when there are more of them than one release transaction takes (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from csms.ocpi.locations import load_catalog, sync_catalog
from csms.store.db import Database
from roaming import outbox
from roaming.session_waiting import RELEASE_CHUNK
from roaming.sessions import SessionService
from roaming.store.locations import LocationStore
from roaming.store.sessions import SessionStore
from tests.roaming.test_outbox_claims import LOCATIONS

COUNT = 2 * RELEASE_CHUNK + 7


async def test_more_waiting_sessions_than_one_chunk_are_all_released_in_order(
    db: Database, tmp_path: Path
) -> None:
    service = SessionService(db, LocationStore(db, "NL", "CPO"), country_code="NL", party_id="CPO")
    reason = "waiting for location: CP9 connector 1 has no EVSE"
    puts = []
    async with db.transaction() as tx:
        for n in range(COUNT):
            sid = f"S-{n:04d}"
            body = {
                "id": sid,
                "status": "ACTIVE",
                "kwh": 0.0,
                "last_updated": "2026-01-01T00:00:00Z",
            }
            meta = {"charger_id": "CP9", "connector_id": 1, "meter_start_wh": 0}
            await SessionStore(db).insert(
                tx,
                session_id=sid,
                transaction_id=n + 1,
                partner_key="NL-EMS",
                body={**body, "_meta": meta},
                now=outbox.utcnow(),
                waiting_for=reason,
            )
            puts.append(
                await outbox.enqueue(
                    tx,
                    partner_key="NL-EMS",
                    module="sessions",
                    method="PUT",
                    path=["NL", "CPO", sid],
                    body=body,
                    object_key=f"session:{sid}",
                    held_reason=reason,
                )
            )
    assert await service.release_waiting(outbox.utcnow()) == 0  # not mapped yet
    file = tmp_path / "locations.toml"
    file.write_text(LOCATIONS)
    await sync_catalog(
        db, service.locations, load_catalog(str(file), country_code="NL", party_id="CPO")
    )

    assert await service.release_waiting(outbox.utcnow()) == COUNT
    rows = await db.fetchall(
        "SELECT id, held_reason, body FROM ocpi_outbox WHERE module = 'sessions' ORDER BY id"
    )
    assert [r["id"] for r in rows] == puts
    assert all(r["held_reason"] is None and '"location_id":"LOC-1"' in r["body"] for r in rows)
    waiting = await db.fetchone(
        "SELECT count(*) AS n FROM ocpi_sessions WHERE waiting_for IS NOT NULL"
    )
    assert waiting["n"] == 0
    assert await service.release_waiting(outbox.utcnow()) == 0
