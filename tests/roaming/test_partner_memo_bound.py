"""Two processes on one database (two PartnerStores over one store): a partner write in
one reaches the other's memo only through its write listeners (the CSMS announces them
to the other nodes); when that announcement is lost, ``max_age_s`` bounds how long the
other still accepts a revoked credentials token. A fake clock stands for time."""

from __future__ import annotations

from csms.store.db import Database
from roaming import auth
from roaming.partners import TokenKind
from roaming.store.partners import PartnerStore

TOKEN = auth.hash_token("the-credentials-token")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_write_is_told_to_the_write_listeners(db: Database) -> None:
    writer = PartnerStore(db)
    heard: list[None] = []
    writer.write_listeners.append(lambda: heard.append(None))
    invited = await writer.create_invited(
        "NL-EMS", "NL", "EMS", TOKEN, kind=TokenKind.C, initiated_by="us"
    )
    await writer.unregister(invited.id)
    assert len(heard) == 2
    reader = PartnerStore(db)
    assert await reader.partner_by_token_hash(TOKEN) is None
    reader.forget()  # what a listener does on the other node; it announces nothing
    assert len(heard) == 2


async def test_a_lost_announcement_is_bounded_by_max_age_s(db: Database) -> None:
    clock = Clock()
    writer = PartnerStore(db)
    reader = PartnerStore(db, max_age_s=5.0, monotonic=clock)
    invited = await writer.create_invited(
        "NL-EMS", "NL", "EMS", TOKEN, kind=TokenKind.C, initiated_by="us"
    )
    assert (await reader.partner_by_token_hash(TOKEN)) is not None
    await writer.unregister(invited.id)  # the token is revoked; the reader hears nothing
    clock.now += 4.9
    assert (await reader.partner_by_token_hash(TOKEN)) is not None  # memoised, in bound
    clock.now += 0.2
    assert await reader.partner_by_token_hash(TOKEN) is None
    partner = await reader.partner_by_key("NL-EMS")
    assert partner is not None and not partner.registered


async def test_alone_on_its_database_the_memo_has_no_age_bound(db: Database) -> None:
    clock = Clock()
    store = PartnerStore(db, monotonic=clock)
    await store.create_invited("NL-EMS", "NL", "EMS", TOKEN, kind=TokenKind.C, initiated_by="us")
    first = await store.partner_by_key("NL-EMS")
    clock.now += 86_400
    assert await store.partner_by_key("NL-EMS") is first
