"""The suite's fallback when no PostgreSQL is reachable: a throwaway server from the
machine's PostgreSQL binaries, started, used as a store and removed again."""

from __future__ import annotations

import asyncio

from csms.store.db import Database
from csms.store.transactions import TransactionRepo
from tests.csms.store.test_backends import start
from tests.support.postgres import ThrowawayPostgres, with_database


async def test_a_throwaway_server_serves_a_store_and_leaves_nothing_behind() -> None:
    server = await asyncio.to_thread(ThrowawayPostgres.start)
    try:
        db = await Database.open(server.url)
        try:
            async with db.transaction() as tx:
                record, created = await TransactionRepo(db).insert_start(tx, start())
            assert created and record.id >= 1
            locale = await db.fetchone(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()"
            )
            assert locale[0] == "C"
        finally:
            await db.close()
        assert with_database(server.url, "x", search_path="s").endswith("/x?search_path=s")
    finally:
        await asyncio.to_thread(server.stop)
    assert not server.datadir.parent.exists()
