"""Group commit of token pushes and the token listeners, on a real SQLite file.

The batch is formed by concurrency alone (``asyncio.gather``), as under load.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Collection

import pytest

from csms.store.db import Database
from roaming import auth
from roaming.models import Token
from roaming.partners import TokenKind
from roaming.store import RoamingStore
from roaming.store import schema as roaming_schema
from tests.roaming.test_tokens import token_body


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RoamingStore]:
    db = await Database.open(store_url)
    await roaming_schema.migrate(db)
    try:
        yield RoamingStore(db)
    finally:
        await db.close()


async def partner_id(store: RoamingStore) -> int:
    p = await store.partners.create_invited(
        "NL-EMS", "NL", "EMS", auth.hash_token("t"), kind=TokenKind.C, initiated_by="us"
    )
    return p.id


def tok(uid: str, **over: object) -> Token:
    return Token.from_json(token_body(uid, **over))


async def test_concurrent_pushes_share_a_commit_and_each_gets_its_own_created_flag(
    store: RoamingStore,
):
    pid = await partner_id(store)
    await store.tokens.upsert_token(pid, tok("OLD-1"))
    seen: list[Collection[str] | None] = []
    store.tokens.add_token_listener(seen.append)
    created = await asyncio.gather(
        store.tokens.upsert_token(pid, tok("OLD-1", valid=False)),
        store.tokens.upsert_token(pid, tok("new-2")),
        store.tokens.upsert_token(pid, tok("NEW-2", whitelist="NEVER")),  # same token, same batch
        store.tokens.upsert_token(pid, tok("NEW-3")),
    )
    assert created == [False, True, False, True]
    assert len(seen) == 1, "one batch, one commit, one notification"
    assert seen[0] == {"OLD-1", "NEW-2", "NEW-3"}
    [new2] = await store.tokens.get_token("NEW-2", "RFID")
    assert new2.token.whitelist.value == "NEVER" and new2.token.uid == "NEW-2"
    [old1] = await store.tokens.get_token("OLD-1", "RFID")
    assert old1.token.valid is False


async def test_one_bad_push_in_a_batch_fails_alone(store: RoamingStore):
    pid = await partner_id(store)
    seen: list[Collection[str] | None] = []
    store.tokens.add_token_listener(seen.append)
    results = await asyncio.gather(
        store.tokens.upsert_token(pid, tok("GOOD-1")),
        # Validation keeps this out of the HTTP path; here it stands for any row the
        # database refuses (NOT NULL constraint).
        store.tokens.upsert_token(pid, dataclasses.replace(tok("BROKEN"), contract_id=None)),  # type: ignore[arg-type]
        store.tokens.upsert_token(pid, tok("GOOD-2")),
        return_exceptions=True,
    )
    assert results[0] is True and results[2] is True
    # SQLite: "NOT NULL constraint failed"; PostgreSQL: "violates not-null constraint".
    assert (
        isinstance(results[1], Exception)
        and "not null" in str(results[1]).replace("-", " ").lower()
    )
    assert await store.tokens.count_tokens(pid) == 2
    assert await store.tokens.get_token("BROKEN", "RFID") == []
    assert {u for batch in seen if batch for u in batch} == {"GOOD-1", "GOOD-2"}
    # The queue is not stuck: a later push goes through.
    assert await store.tokens.upsert_token(pid, tok("GOOD-3")) is True


async def test_a_failing_listener_does_not_fail_the_write(store: RoamingStore):
    pid = await partner_id(store)

    def broken(uids: Collection[str] | None) -> None:
        raise RuntimeError("reader bug")

    store.tokens.add_token_listener(broken)
    later: list[Collection[str] | None] = []
    remove = store.tokens.add_token_listener(later.append)
    assert await store.tokens.upsert_token(pid, tok("X-1")) is True
    assert later == [{"X-1"}]  # listeners after the broken one still hear about it
    remove()
    await store.tokens.upsert_token(pid, tok("X-2"))
    assert later == [{"X-1"}]
