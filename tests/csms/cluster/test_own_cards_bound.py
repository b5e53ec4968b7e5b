"""The held own cards never answer from a copy checked longer ago than their bound: on
both engines, a write the copy did not hear of (another node's) shows in the table's
fingerprint, and a copy past its bound is reloaded (once, however many ask) before it
answers. A fake clock stands for the passing of time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from csms.authz.model import NEED_IO
from csms.authz.own_cards import HeldOwnCards
from csms.store.db import Database
from csms.store.id_tags import IdTagRepo


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def repo(store_url: str) -> AsyncIterator[IdTagRepo]:
    db = await Database.open(store_url)
    try:
        yield IdTagRepo(db)
    finally:
        await db.close()


async def test_a_write_elsewhere_changes_the_fingerprint(repo: IdTagRepo):
    await repo.add("CARD-1")
    cards = HeldOwnCards(repo, max_age_s=5.0)
    await cards.reload()
    assert not await cards.changed()
    await repo.add("CARD-2")  # written behind the copy's back
    assert await cards.changed()
    await cards.reload()
    assert not await cards.changed()
    await repo.set_status("CARD-2", "Blocked")
    assert await cards.changed()
    await cards.reload()
    await repo.remove("CARD-1")
    assert await cards.changed()


async def test_a_copy_past_its_bound_is_reloaded_once_before_it_answers(repo: IdTagRepo):
    clock = Clock()
    await repo.add("CARD-1")
    cards = HeldOwnCards(repo, max_age_s=5.0, monotonic=clock)
    await cards.reload()
    assert cards.held("CARD-1") is not None
    await repo.set_status("CARD-1", "Blocked")  # another node's write, never announced
    clock.now += 4.9
    held = cards.held("CARD-1")
    assert held is not None and held is not NEED_IO and held.status.value == "Accepted"
    clock.now += 0.2  # past the bound: memory no longer answers
    assert cards.held("CARD-1") is NEED_IO
    reloads = cards.reloads
    answers = await asyncio.gather(*(cards.get("CARD-1") for _ in range(10)))
    assert cards.reloads == reloads + 1
    assert {a.status.value for a in answers if a is not None} == {"Blocked"}
    assert cards.held("CARD-1") is not NEED_IO  # checked again just now


async def test_alone_on_its_database_the_copy_has_no_bound(repo: IdTagRepo):
    clock = Clock()
    await repo.add("CARD-1")
    cards = HeldOwnCards(repo, monotonic=clock)
    await cards.reload()
    clock.now += 86_400
    assert cards.held("CARD-1") is not NEED_IO
