"""``/api/locations``, ``/api/tariffs`` and ``/api/outbox`` on the admin API, for
``csms locations``, ``csms tariffs`` and ``csms outbox``.

Why in csms.ocpi: the routes read the roaming location store and the outbox; the admin
app mounts them behind its bearer auth as routes handed over by the composition root.
"""

from __future__ import annotations

from aiohttp import web

from csms.config import Config, ConfigError
from csms.ocpi.locations import load_catalog, sync_catalog, unmapped_connectors
from csms.store.db import Database
from roaming import outbox
from roaming.store.locations import LocationStore


def admin_routes(
    locations: LocationStore,
    outbox_store: outbox.OutboxStore,
    worker: outbox.OutboxWorker,
    config: Config,
    db: Database,
) -> web.RouteTableDef:
    """``/api/locations`` and ``/api/outbox`` for ``csms locations`` / ``csms outbox``."""
    from csms.admin.http import ApiError, json_response, query_bool

    routes = web.RouteTableDef()

    @routes.get("/api/locations")
    async def list_locations(request: web.Request) -> web.Response:
        total, items = await locations.page(None, None, 0, 100000)
        return json_response({"total": total, "locations": items})

    @routes.get("/api/locations/unmapped")
    async def list_unmapped(request: web.Request) -> web.Response:
        found = await unmapped_connectors(db)
        return json_response({"unmapped": [u.to_json() for u in found]})

    @routes.get("/api/locations/{location_id}")
    async def show_location(request: web.Request) -> web.Response:
        loc = await locations.location(request.match_info["location_id"])
        if loc is None:
            raise ApiError(404, "unknown_location", "no such location")
        return json_response(loc)

    @routes.post("/api/locations/reload")
    async def reload(request: web.Request) -> web.Response:
        cfg = config
        if not cfg.ocpi_cpo.locations_file:
            raise ApiError(400, "no_locations_file", "ocpi_cpo.locations_file is not set")
        try:
            catalog = load_catalog(
                cfg.ocpi_cpo.locations_file,
                country_code=cfg.ocpi.country_code,
                party_id=cfg.ocpi.party_id,
            )
        except ConfigError as exc:
            raise ApiError(400, "invalid_locations_file", str(exc)) from None
        report = await sync_catalog(db, locations, catalog)
        worker.notify()
        return json_response(
            {
                "changed_locations": report.changed_locations,
                "removed_evses": report.removed_evses,
                "changed_tariffs": report.changed_tariffs,
            }
        )

    @routes.get("/api/tariffs")
    async def list_tariffs(request: web.Request) -> web.Response:
        return json_response({"tariffs": await locations.all_tariffs()})

    @routes.get("/api/outbox")
    async def outbox_list(request: web.Request) -> web.Response:
        every = bool(query_bool(request, "all"))
        msgs = await outbox_store.waiting(include_finished=every)
        return json_response(
            {"counts": await outbox_store.counts(), "messages": [m.summary() for m in msgs]}
        )

    async def _act(request: web.Request, action: str) -> web.Response:
        try:
            msg_id = int(request.match_info["message_id"])
        except ValueError:
            raise ApiError(400, "invalid_id", "message id must be an integer") from None
        act = outbox_store.retry if action == "retry" else outbox_store.drop
        done = await act(msg_id)
        if not done:
            raise ApiError(
                409, "not_applicable", f"message {msg_id} does not exist or cannot be {action}ed"
            )
        worker.notify()
        return json_response({"id": msg_id, "action": action})

    @routes.post("/api/outbox/{message_id}/retry")
    async def outbox_retry(request: web.Request) -> web.Response:
        return await _act(request, "retry")

    @routes.post("/api/outbox/{message_id}/drop")
    async def outbox_drop(request: web.Request) -> web.Response:
        return await _act(request, "drop")

    return routes
