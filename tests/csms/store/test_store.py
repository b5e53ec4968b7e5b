"""Store: migrations apply once, transactions roll back, sequence survives reopen."""

import pytest

from csms.store import schema
from csms.store.db import Database


async def test_migrations_apply_once_and_wal_is_on(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    db = await Database.open(path)
    mode = await db.fetchone("PRAGMA journal_mode")
    assert mode[0] == "wal"
    names = [
        r["name"] for r in await db.fetchall("SELECT name FROM schema_migrations ORDER BY name")
    ]
    assert names == [n for n, _ in schema.MIGRATIONS]
    await db.close()
    db = await Database.open(path)
    async with db.transaction() as tx:
        assert await schema.migrate(tx) == []
    await db.close()


async def test_decision_log_is_append_only_without_a_secondary_index(tmp_path):
    """A secondary index made each decision row a random-page write (see migration 0005);
    a database created before it loses the index on upgrade."""
    path = str(tmp_path / "s.sqlite3")
    db = await Database.open(path)
    await db.execute(
        "CREATE INDEX authorizations_recent ON authorizations (charger_id, uid_norm, decided_at)"
    )
    await db.execute("DELETE FROM schema_migrations WHERE name = '0005_authorizations_append_only'")
    await db.close()
    db = await Database.open(path)
    assert await db.fetchall("PRAGMA index_list(authorizations)") == []
    await db.close()


async def test_none_is_stored_as_null_with_the_cheap_adapter(tmp_path):
    """db.py registers an adapter for None (a speed-up); a NULL must stay a NULL."""
    import sqlite3

    db = await Database.open(str(tmp_path / "s.sqlite3"))
    await db.execute("CREATE TABLE t (a, b)")
    await db.execute("INSERT INTO t VALUES (?, ?)", (None, 1))
    row = await db.fetchone("SELECT typeof(a), a IS NULL, b FROM t")
    assert tuple(row) == ("null", 1, 1)
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    await db.close()


async def test_transaction_rolls_back_on_error(tmp_path):
    db = await Database.open(str(tmp_path / "s.sqlite3"))
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO charger_events (charger_id, action, payload, received_at) VALUES ('A','x','{}','t')"
            )
            raise RuntimeError("boom")
    row = await db.fetchone("SELECT count(*) AS n FROM charger_events")
    assert row["n"] == 0
    await db.close()


async def test_cancelled_while_beginning_leaves_no_open_transaction(tmp_path):
    """A caller cancelled while its BEGIN runs in the worker thread (a charger's socket
    closing mid-write) must not leave the shared connection inside a transaction."""
    import asyncio

    db = await Database.open(str(tmp_path / "s.sqlite3"))

    async def writer():
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO charger_events (charger_id, action, payload, received_at) VALUES ('A','x','{}','t')"
            )

    for _ in range(20):  # cancel at several points of BEGIN's round trip
        task = asyncio.create_task(writer())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not db.conn.in_transaction
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO charger_events (charger_id, action, payload, received_at) VALUES ('B','y','{}','t')"
        )
    row = await db.fetchone("SELECT count(*) AS n FROM charger_events WHERE charger_id = 'B'")
    assert row["n"] == 1
    await db.close()
