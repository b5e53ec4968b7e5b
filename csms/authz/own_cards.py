"""The operator's own cards (:class:`csms.authz.ports.OwnCards`) over the ``id_tags`` table.

Two ways to serve them, one per deployment:

* :class:`StoredOwnCards` reads the table for every request. Without roaming every uid
  may be an own card, and tools and tests write the table directly: each decision sees
  the committed row.
* :class:`HeldOwnCards` holds every card in memory, so with roaming both own cards and
  roaming cache hits are decided without awaiting (the own-card path is a benchmarked
  path too). :meth:`HeldOwnCards.reload` follows every write the admin API makes
  (``csms tokens`` goes through it). With several nodes on one database another node
  may write: its announcement reloads the cards here, and because an announcement can
  be lost, the copy is verified against the table's fingerprint every half
  ``max_age_s`` and never answers from a copy verified longer ago than ``max_age_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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
    """Every card in memory, by normalised uid; build with :meth:`load`.

    ``max_age_s`` (None: alone on the database, the copy follows every write itself):
    how long ago the copy may last have been checked against the table before
    :meth:`held` says NEED_IO and :meth:`get` reloads first.
    """

    def __init__(
        self,
        repo: IdTagRepo,
        cards: dict[str, OwnCard] | None = None,
        *,
        max_age_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.cards: dict[str, OwnCard] = cards or {}
        self.max_age_s = max_age_s
        self._now = monotonic
        self.verified_at = monotonic()  # when the table last matched the copy (read start)
        self._fingerprint: object = None
        self._pending: asyncio.Future[None] | None = None
        self.reloads = 0

    @classmethod
    async def load(cls, repo: IdTagRepo, *, max_age_s: float | None = None) -> HeldOwnCards:
        made = cls(repo, max_age_s=max_age_s)
        await made.reload()
        return made

    def fresh(self) -> bool:
        return self.max_age_s is None or self._now() - self.verified_at <= self.max_age_s

    def held(self, uid_norm: str) -> OwnCard | Literal[NeedIO.NEED_IO] | None:
        if self.max_age_s is not None and self._now() - self.verified_at > self.max_age_s:
            return NEED_IO
        return self.cards.get(uid_norm)

    async def get(self, uid_norm: str) -> OwnCard | None:
        if not self.fresh():
            await self._reload_shared()
        return self.cards.get(uid_norm)

    async def _reload_shared(self) -> None:
        """One reload for every request that found the copy too old at the same time."""
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.ensure_future(self.reload())
            pending.add_done_callback(lambda _done: setattr(self, "_pending", None))
        await asyncio.shield(pending)

    async def reload(self) -> None:
        started = self._now()
        # Fingerprint first: a write landing between the two reads makes the next
        # verification reload once more, never miss it.
        fingerprint = await self.repo.fingerprint() if self.max_age_s is not None else None
        self.cards = {normalise(row.id_tag): card_of(row) for row in await self.repo.list()}
        self._fingerprint = fingerprint
        self.verified_at = started
        self.reloads += 1

    async def changed(self) -> bool:
        """Whether the table differs from the copy (then the caller reloads, so that the
        local lists follow too); when it does not, the copy counts as verified now."""
        started = self._now()
        if await self.repo.fingerprint() != self._fingerprint:
            return True
        self.verified_at = started
        return False


def own_cards_authorizer(
    db: Database, id_tag_expiry_s: int, sink: DecisionSink | None = None
) -> AuthorizationService:
    """The authorizer of a CSMS without roaming: the ``id_tags`` table decides every uid."""
    return AuthorizationService(
        own_cards=StoredOwnCards(IdTagRepo(db)),
        settings=AuthzSettings(id_tag_expiry_s=id_tag_expiry_s),
        sink=sink,
    )
