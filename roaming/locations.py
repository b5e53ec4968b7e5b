"""OCPI Locations, CPO as Sender: the GET interface over the published catalogue.

What is published comes from the operator's catalogue file (:mod:`roaming.catalog`),
kept with its run-time state by :class:`roaming.store.locations.LocationStore`; GETs of
unknown objects are HTTP 404.

``publish = false``: the Location is not listed and its objects answer 404 as if unknown
(OCPI: unpublished means shown only to tokens in ``publish_allowed_to``, which we do not
configure; the digest recommends not sending private sites at all). Sessions and CDRs at
it are still sent, with the real location in ``cdr_location`` (:mod:`roaming.sessions`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from roaming.context import OcpiModule
from roaming.envelope import NotFound, ok
from roaming.models import InterfaceRole, ModuleID, norm
from roaming.pagination import PageParams, add_sender_list
from roaming.store.locations import LocationStore

LOCATIONS_PATH = "/ocpi/cpo/2.2.1/locations"


def _add_routes(app: web.Application, store: LocationStore) -> None:
    async def location_page(_: web.Request, page: PageParams) -> tuple[int, list[Any]]:
        return await store.page(
            page.date_from, page.date_to, page.offset, page.limit, published_only=True
        )

    async def get_location(request: web.Request) -> web.Response:
        loc = await store.location(request.match_info["location_id"])
        if loc is None or not loc.get("publish", True):
            raise NotFound("unknown location", status_code=2003)
        return ok(loc)

    async def evse_of(request: web.Request) -> dict[str, Any] | None:
        location_id = request.match_info["location_id"]
        if not await store.is_published(location_id):
            return None
        return await store.evse(location_id, request.match_info["evse_uid"])

    async def get_evse(request: web.Request) -> web.Response:
        evse = await evse_of(request)
        if evse is None:
            raise NotFound("unknown EVSE", status_code=2003)
        return ok(evse)

    async def get_connector(request: web.Request) -> web.Response:
        evse = await evse_of(request)
        cid = norm(request.match_info["connector_id"])
        for conn in (evse or {}).get("connectors", []):
            if norm(conn["id"]) == cid:
                return ok(conn)
        raise NotFound("unknown connector", status_code=2003)

    add_sender_list(app, LOCATIONS_PATH, location_page)
    app.router.add_get(LOCATIONS_PATH + "/{location_id}", get_location)
    app.router.add_get(LOCATIONS_PATH + "/{location_id}/{evse_uid}", get_evse)
    app.router.add_get(LOCATIONS_PATH + "/{location_id}/{evse_uid}/{connector_id}", get_connector)


def module(store: LocationStore) -> OcpiModule:
    """Our Locations SENDER interface over ``store``."""
    return OcpiModule(
        ModuleID.LOCATIONS,
        InterfaceRole.SENDER,
        LOCATIONS_PATH,
        lambda app, _ctx: _add_routes(app, store),
    )
