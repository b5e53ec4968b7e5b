"""The operator's own cards (:class:`csms.authz.ports.OwnCards`) over the ``id_tags`` table.

Two ways to serve them, one per deployment:

* :class:`StoredOwnCards` reads the table for every request. Without roaming every uid
  may be an own card, and tools and tests write the table directly: each decision sees
  the committed row.
* :class:`HeldOwnCards` holds every card in memory, so with roaming both own cards and
  roaming cache hits are decided without awaiting (the own-card path is a benchmarked
  path too). :meth:`HeldOwnCards.reload` follows every write the admin API makes (the
  only writer while the server runs; ``csms tokens`` goes through it).
"""

from __future__ import annotations

from typing import Literal

from csms import datetimes
from csms.authz.model import NEED_IO, AuthStatus, NeedIO, OwnCard, normalise
from csms.authz.ports import DecisionSink
from csms.authz.service import AuthorizationService
from csms.authz.settings import AuthzSettings
from csms.domain.tokens import IdTag
from csms.store.db import Database
from csms.store.id_tags import IdTagRepo


def card_of(row: IdTag) -> OwnCard:
    return OwnCard(
        id_tag=row.id_tag,
        status=AuthStatus(row.status),
        expiry=datetimes.parse(row.expiry_date),
        parent_id_tag=row.parent_id_tag,
    )


class StoredOwnCards:
    """Every lookup from the table (``held`` always says NEED_IO)."""

    def __init__(self, repo: IdTagRepo) -> None:
        self.repo = repo

    def held(self, uid_norm: str) -> OwnCard | Literal[NeedIO.NEED_IO] | None:
        return NEED_IO

    async def get(self, uid_norm: str) -> OwnCard | None:
        row = await self.repo.get(uid_norm)
        return None if row is None else card_of(row)

    async def reload(self) -> None:
        """Nothing is held."""


class HeldOwnCards:
    """Every card in memory, by normalised uid; build with :meth:`load`."""

    def __init__(self, repo: IdTagRepo, cards: dict[str, OwnCard] | None = None) -> None:
        self.repo = repo
        self.cards: dict[str, OwnCard] = cards or {}

    @classmethod
    async def load(cls, repo: IdTagRepo) -> HeldOwnCards:
        made = cls(repo)
        await made.reload()
        return made

    def held(self, uid_norm: str) -> OwnCard | Literal[NeedIO.NEED_IO] | None:
        return self.cards.get(uid_norm)

    async def get(self, uid_norm: str) -> OwnCard | None:
        return self.cards.get(uid_norm)

    async def reload(self) -> None:
        self.cards = {normalise(row.id_tag): card_of(row) for row in await self.repo.list()}


def own_cards_authorizer(
    db: Database, id_tag_expiry_s: int, sink: DecisionSink | None = None
) -> AuthorizationService:
    """The authorizer of a CSMS without roaming: the ``id_tags`` table decides every uid."""
    return AuthorizationService(
        own_cards=StoredOwnCards(IdTagRepo(db)),
        settings=AuthzSettings(id_tag_expiry_s=id_tag_expiry_s),
        sink=sink,
    )
