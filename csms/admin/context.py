"""What the admin API's handlers may use of the running system, handed over explicitly.

Why a small typed record and not the whole system: the handlers need the store, the
charger gateway, the config, the decision log and the own-card set, nothing else; the
composition root (:mod:`csms.system`) builds this record once and the admin app keeps it
under :data:`ADMIN`, so a handler's dependencies are visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from csms.admin.dashboard.ports import RoamingView
from csms.cluster.node import Cluster
from csms.config import Config
from csms.ocpp16.gateway import ChargerGateway
from csms.store.authorizations import AuthorizationLog
from csms.store.db import Database


class OwnCardsHolder(Protocol):
    """What holds the own cards: told after every write to ``id_tags``."""

    async def own_cards_changed(self) -> None: ...


class ChargerSites(Protocol):
    """Where a charger added with its site gets its Location and EVSEs (present only with
    roaming: the site is an OCPI Location). Both raise ``ApiError`` for bad input."""

    async def check_site(self, charger_id: str, site: dict[str, Any]) -> None: ...

    async def attach_site(self, charger_id: str, site: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AdminContext:
    config: Config
    db: Database
    gateway: ChargerGateway
    decisions: AuthorizationLog
    own_cards: OwnCardsHolder | None = None
    sites: ChargerSites | None = None
    # What the dashboard shows of roaming; None when OCPI is off ("roaming off").
    roaming_view: RoamingView | None = None
    # This node among the others (on SQLite: alone); None only in tests of the API alone.
    cluster: Cluster | None = None

    async def placed(self) -> dict[str, str]:
        """Connected chargers, on whichever node, with the node's id."""
        if self.cluster is None:
            return dict.fromkeys(self.gateway.connections(), "")
        return await self.cluster.presence.placed()

    async def own_cards_changed(self) -> None:
        """After a write to ``id_tags``: the in-memory own-card set follows."""
        if self.own_cards is not None:
            await self.own_cards.own_cards_changed()


ADMIN: web.AppKey[AdminContext] = web.AppKey("csms_admin", AdminContext)

# Who made a request, set by the admin app's auth for every authenticated request:
# ``token`` (the bearer admin token) or ``session:<short id>`` (a dashboard login).
# What the audit trail records as "who".
ACTOR: web.RequestKey[str] = web.RequestKey("actor", str)


def context_of(request: web.Request) -> AdminContext:
    return request.app[ADMIN]


def actor_of(request: web.Request) -> str | None:
    """The :data:`ACTOR` of an authenticated request (None on public routes)."""
    return request.get(ACTOR)
