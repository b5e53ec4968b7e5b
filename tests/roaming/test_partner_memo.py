"""RoamingStore memoises partners by key (read on every remote Authorize); every partner
write must be visible to the very next read. Real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from csms.store.db import Database
from roaming import auth
from roaming.partners import TokenKind
from roaming.store import RoamingStore
from roaming.store import schema as roaming_schema


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RoamingStore]:
    db = await Database.open(store_url)
    await roaming_schema.migrate(db)
    try:
        yield RoamingStore(db)
    finally:
        await db.close()


async def test_partner_by_key_is_memoised_and_every_write_is_seen(store: RoamingStore) -> None:
    assert await store.partners.partner_by_key("nl-ems") is None  # unknown, and memoised as such
    invited = await store.partners.create_invited(
        "NL-EMS", "NL", "EMS", auth.hash_token("t"), kind=TokenKind.C, initiated_by="us"
    )
    first = await store.partners.partner_by_key("nl-ems")
    assert first is not None and first.id == invited.id  # the write dropped the "unknown"
    assert await store.partners.partner_by_key("NL-EMS") is first  # served from memory

    await store.partners.set_auth_encoding(invited.id, auth.RAW)
    after = await store.partners.partner_by_key("NL-EMS")
    assert after is not None and after.auth_encoding == auth.RAW

    await store.partners.unregister(invited.id)
    gone = await store.partners.partner_by_key("NL-EMS")
    assert gone is not None and not gone.registered
    assert await store.partners.registered_partners_with_tokens_sender() == []
