"""The context every OCPI handler shares, and the keys it is kept under.

Why its own module: the handlers of every OCPI module (versions, credentials, tokens,
locations, sessions...) need these few types, and the application factory
(:mod:`roaming.app`) needs the handlers; keeping the shared types here lets both import
them without importing each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from roaming import auth
from roaming.client import OcpiClient
from roaming.models import InterfaceRole, ModuleID
from roaming.partners import Partner
from roaming.settings import RoamingSettings
from roaming.store import RoamingStore

log = structlog.get_logger("roaming.app")

RegisteredHook = Callable[[Partner], Awaitable[None] | None]


@dataclass
class RoamingContext:
    """What every OCPI handler may use: our settings, the partner and token stores, the
    client, and the after-registration hooks. A module's own service (locations,
    sessions, CDRs, commands) is not here: its :class:`OcpiModule` is built with it."""

    settings: RoamingSettings
    store: RoamingStore
    client: OcpiClient
    on_registered: list[RegisteredHook] = field(default_factory=list)

    async def registered(self, partner: Partner) -> None:
        """Run the after-registration hooks (e.g. the first token sync); never raises."""
        for hook in self.on_registered:
            try:
                result = hook(partner)
                if result is not None:
                    await result
            except Exception:
                log.exception("ocpi.registered_hook_failed", partner=partner.key)


@dataclass(frozen=True)
class OcpiModule:
    """One OCPI module interface we serve: advertised in version details and routed."""

    identifier: ModuleID | str
    role: InterfaceRole
    path: str
    add_routes: Callable[[web.Application, RoamingContext], None]


CTX_KEY: web.AppKey[RoamingContext] = web.AppKey("ocpi_ctx", RoamingContext)
MODULES_KEY: web.AppKey[tuple[OcpiModule, ...]] = web.AppKey("ocpi_modules", tuple)
PARTNER: web.RequestKey[Partner] = web.RequestKey("ocpi_partner", Partner)
PRESENTED: web.RequestKey[auth.PresentedToken] = web.RequestKey(
    "ocpi_presented_token", auth.PresentedToken
)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("ocpi_request_id", str)
CORRELATION_ID: web.RequestKey[str] = web.RequestKey("ocpi_correlation_id", str)


def ctx_of(request: web.Request) -> RoamingContext:
    return request.app[CTX_KEY]


def partner_of(request: web.Request) -> Partner:
    """The authenticated caller (set by the middleware for every routed request)."""
    return request[PARTNER]
