"""The roaming token store as :class:`csms.locallist.ports.RoamingCards`.

Why here: :mod:`csms.ocpi` is the one csms package that reads roaming's stores. The
per-partner agreement (``[partners.CC-PID] local_list``, default true) is applied here,
so the manager only ever sees tokens it may put into lists.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from csms.authz.model import CachedToken
from csms.config import Config
from csms.locallist.ports import RoamingCard
from csms.ocpi.authorization import cached_from_stored
from roaming.store import RoamingStore
from roaming.store import whitelist as listable


class StoreRoamingCards:
    def __init__(self, store: RoamingStore, config: Config) -> None:
        self.store = store
        self.excluded = frozenset(k for k, p in config.partners.items() if not p.local_list)

    async def recently_updated(self, limit: int) -> Sequence[RoamingCard]:
        found = await listable.recently_updated(self.store.tokens.db, limit, self.excluded)
        return [RoamingCard(t.partner_key, t.uid, t.group_id, t.last_updated) for t in found]

    async def by_uids(self, uids: Collection[str]) -> Sequence[RoamingCard]:
        if not uids:
            return []
        found = await listable.by_uids(self.store.tokens.db, uids, self.excluded)
        return [RoamingCard(t.partner_key, t.uid, t.group_id, t.last_updated) for t in found]

    async def token(self, uid_norm: str, partner_key: str) -> CachedToken | None:
        for stored in await self.store.tokens.get_token(uid_norm, "RFID"):
            if stored.partner_key == partner_key and not stored.removed:
                return cached_from_stored(stored)
        return None

    def listen(self, changed: Callable[[], None]) -> Callable[[], None]:
        return self.store.tokens.add_token_listener(lambda _uids: changed())
