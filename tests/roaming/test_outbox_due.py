"""When the outbox worker next has something to do: only heads of their object count.

A message waiting behind a dead (or held) one of the same object is not deliverable, so
it must not make the worker wake at once; counting it made the idle loop spin.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.store.db import Database
from roaming import outbox
from roaming.store import schema as roaming_schema
from roaming.store.outbox import OutboxStore, parse_stamp

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def _store(store_url: str) -> tuple[Database, OutboxStore]:
    db = await Database.open(store_url)
    await roaming_schema.migrate(db)
    return db, OutboxStore(db)


async def _push(db: Database, object_key: str, method: str = "PATCH") -> int:
    async with db.transaction() as tx:
        return await outbox.enqueue(
            tx,
            partner_key="NL-EMS",
            module="sessions",
            method=method,
            path=["NL", "CPO", "s1"],
            body={"kwh": 1.0},
            object_key=object_key,
            now=NOW,
        )


async def test_a_message_behind_a_dead_one_is_not_due(store_url: str) -> None:
    db, store = await _store(store_url)
    try:
        first = await _push(db, "session:s1", "PUT")
        await _push(db, "session:s1")
        assert await store.next_due() is not None
        later = NOW + timedelta(seconds=30)
        await store.reschedule(first, 100, later, "gone", ambiguous=False, dead=True)
        # The PATCH behind the dead PUT waits for the operator; nothing else is queued.
        assert await store.next_due() is None
        assert await store.heads(NOW + timedelta(hours=1), 10) == []
        other = await _push(db, "session:s2", "PUT")
        due = await store.next_due()
        assert due is not None and parse_stamp(due) == NOW
        assert [m.id for m in await store.heads(NOW, 10)] == [other]
    finally:
        await db.close()
