"""What the local list manager reads from outside csms: the roaming tokens that qualify.

Why a port: the roaming token store lives in :mod:`roaming`; only :mod:`csms.ocpi`
crosses into it (:class:`csms.ocpi.local_list_tokens.StoreRoamingCards` implements this).
Without roaming there is no adapter and lists hold the own cards only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from csms.authz.model import CachedToken


@dataclass(frozen=True, slots=True)
class RoamingCard:
    """A token an eMSP allows us to decide on ourselves (whitelist ALWAYS, ALLOWED or
    ALLOWED_OFFLINE, valid, of a partner whose agreement includes local lists)."""

    partner_key: str
    uid: str
    group_id: str | None
    last_updated: str


class RoamingCards(Protocol):
    async def recently_updated(self, limit: int) -> Sequence[RoamingCard]:
        """The ``limit`` most recently updated qualifying tokens."""
        ...

    async def by_uids(self, uids: Collection[str]) -> Sequence[RoamingCard]:
        """The qualifying tokens among these normalised uids."""
        ...

    async def token(self, uid_norm: str, partner_key: str) -> CachedToken | None:
        """The partner's stored token (any whitelist, removed ones excluded), to attribute
        a transaction started from a list."""
        ...

    def listen(self, changed: Callable[[], None]) -> Callable[[], None]:
        """Call ``changed`` after every committed token write; returns the remover."""
        ...
