"""The token memo with several nodes: no entry is served longer than its TTL (the
cluster's bound) after the read that filled it began, yet a uid presented again and
again never misses, since it is re-read in the background in the last half of its
life. A fake clock stands for the passing of time; the store is real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from csms.ocpi.authorization import StoreTokenCache
from csms.store.db import Database
from roaming.store import RoamingStore
from roaming.store import schema as roaming_schema

UID = "04HOT0001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RoamingStore]:
    db = await Database.open(store_url)
    try:
        await roaming_schema.migrate(db)
        yield RoamingStore(db)
    finally:
        await db.close()


async def settled(memo: StoreTokenCache) -> None:
    async with asyncio.timeout(5):
        while memo._refreshing:
            await asyncio.gather(*memo._refreshing.values())


async def test_a_hot_uid_is_refreshed_ahead_and_never_misses(store: RoamingStore):
    clock = Clock()
    memo = StoreTokenCache(store, ttl_s=5.0, monotonic=clock, refresh_ahead=True)
    await memo.lookup(UID, "RFID")
    for _ in range(10):  # 30 s of presentations, 3 s apart: always served from memory
        clock.now += 3.0
        assert memo.peek(UID, "RFID") is not None
        await settled(memo)
    assert memo.misses == 1


async def test_without_refresh_an_entry_runs_out_at_its_ttl(store: RoamingStore):
    clock = Clock()
    memo = StoreTokenCache(store, ttl_s=5.0, monotonic=clock)
    await memo.lookup(UID, "RFID")
    clock.now += 4.9
    assert memo.peek(UID, "RFID") is not None
    clock.now += 0.2
    assert memo.peek(UID, "RFID") is None


async def test_an_entry_is_aged_from_the_start_of_its_read(store: RoamingStore):
    clock = Clock()
    memo = StoreTokenCache(store, ttl_s=5.0, monotonic=clock)
    real = store.tokens.get_token

    async def slow_read(uid: str, token_type: str | None) -> list:
        clock.now += 4.0  # the read took 4 s (a slow database)
        return await real(uid, token_type)

    store.tokens.get_token = slow_read  # type: ignore[method-assign]
    await memo.lookup(UID, "RFID")
    clock.now += 1.1  # 5.1 s after the read began
    assert memo.peek(UID, "RFID") is None
