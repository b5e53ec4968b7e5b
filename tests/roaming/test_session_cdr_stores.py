"""The Session and CDR stores on both engines (``store_url``: a SQLite file, then
PostgreSQL): a partner's pages by last_updated, waiting Sessions held back and released
once an EVSE maps their connector, CDRs by transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.store.db import Database
from roaming.store import cdrs
from roaming.store.cdrs import CdrStore
from roaming.store.sessions import SessionStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def session(n: int, updated: str, charger: str = "CP1", connector: int = 1) -> dict[str, object]:
    return {
        "id": f"s-{n}",
        "status": "ACTIVE",
        "kwh": 0.0,
        "last_updated": updated,
        "_meta": {"charger_id": charger, "connector_id": connector, "meter_start_wh": 0},
    }


async def test_a_partner_pages_its_sessions_by_last_updated(db: Database) -> None:
    store = SessionStore(db)
    async with db.transaction() as tx:
        for n, (partner, updated) in enumerate(
            [
                ("NL-EMS", "2026-03-01T10:00:00Z"),
                ("NL-EMS", "2026-03-01T11:00:00Z"),
                ("DE-ABC", "2026-03-01T11:30:00Z"),
                ("NL-EMS", "2026-03-01T12:00:00Z"),
            ]
        ):
            await store.insert(
                tx,
                session_id=f"s-{n}",
                transaction_id=100 + n,
                partner_key=partner,
                body=session(n, updated),
                now=NOW,
            )
        await store.insert(
            tx,
            session_id="s-9",
            transaction_id=109,
            partner_key="NL-EMS",
            body=session(9, "2026-03-01T11:45:00Z", charger="CP9"),
            now=NOW,
            waiting_for="no EVSE maps CP9 connector 1",
        )
    total, page = await store.page("nl-ems", None, None, 0, 2)
    assert total == 3 and [s["id"] for s in page] == ["s-0", "s-1"]
    assert all("_meta" not in s for s in page)
    total, page = await store.page("NL-EMS", "2026-03-01T10:30:00Z", "2026-03-01T12:00:00Z", 0, 10)
    assert total == 1 and [s["id"] for s in page] == ["s-1"]
    assert await store.id_for_transaction(db, 103) == "s-3"

    async with db.transaction() as tx:
        assert await store.any_waiting(tx)
        assert await store.releasable(tx) == []
        await tx.execute(
            "INSERT INTO ocpi_evses (uid_norm, uid, location_id_norm, charger_id, connector_id,"
            " body, content_hash, status, last_updated, seq)"
            " VALUES ('E9', 'e9', 'LOC', 'CP9', 1, '{}', 'h', 'AVAILABLE', 't', 1)"
        )
        [row] = await store.releasable(tx)
        assert row["id"] == "s-9"


async def test_cdrs_page_in_creation_order_and_are_found_by_transaction(db: Database) -> None:
    async with db.transaction() as tx:
        for txn, cdr_id, at in [
            (7, "c-b", "2026-03-01T10:00:00Z"),
            (5, "c-a", "2026-03-01T10:00:00Z"),  # same second: the transaction decides
            (9, "c-c", "2026-03-01T09:00:00Z"),
        ]:
            cdr = {"id": cdr_id, "session_id": f"s-{txn}", "last_updated": at}
            await cdrs.insert(tx, cdr, transaction_id=txn, partner_key="NL-EMS")
        await cdrs.set_emsp_location(tx, "c-a", "https://emsp.example/cdrs/c-a")
    store = CdrStore(db)
    total, page = await store.page("NL-EMS", None, None, 0, 10)
    assert total == 3 and [c["id"] for c in page] == ["c-c", "c-a", "c-b"]
    found = await store.by_transaction(5)
    assert found is not None and found["emsp_location"].endswith("/c-a")
    assert await store.by_transaction(6) is None
