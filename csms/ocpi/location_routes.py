"""Admin API writes for Locations, EVSEs and Tariffs, and the file import/export.

Why a module of its own: the reads (``GET /api/locations``, ``/api/tariffs``) and the
outbox live in :mod:`csms.ocpi.admin_routes`; these routes only translate HTTP to
:class:`~csms.ocpi.catalog_admin.CatalogAdmin`, which holds the rules.

Routes (all JSON, behind the admin bearer token):

- ``POST /api/locations`` create a Location (optionally with ``evses``)
- ``PATCH /api/locations/{id}`` change fields (``publish``, address, ...; ``null`` clears)
- ``POST /api/locations/{id}/evses`` add an EVSE
- ``PATCH /api/locations/{id}/evses/{uid}`` change an EVSE: map/remap (``charger_id`` +
  ``connector_id``), unmap (both ``null``), ``tariff_ids``, connector data
- ``DELETE /api/locations/{id}/evses/{uid}`` mark it REMOVED
- ``POST /api/tariffs`` create, ``PUT /api/tariffs/{id}`` create or replace (simple shape)
- ``POST /api/locations/import`` (``{"toml": "<file text>"}``: upsert, nothing retired)
  and ``GET /api/locations/export`` (``{"toml": ...}``, a file that imports back to the
  same objects)
"""

from __future__ import annotations

from aiohttp import web

from csms.admin.http import ApiError, json_response, read_object
from csms.ocpi.catalog_admin import CatalogAdmin


def location_routes(admin: CatalogAdmin) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.post("/api/locations")
    async def create_location(request: web.Request) -> web.Response:
        table = await read_object(request)
        return json_response(await admin.create_location(table), status=201)

    @routes.patch("/api/locations/{location_id}")
    async def update_location(request: web.Request) -> web.Response:
        patch = await read_object(request)
        return json_response(await admin.update_location(request.match_info["location_id"], patch))

    @routes.post("/api/locations/{location_id}/evses")
    async def add_evse(request: web.Request) -> web.Response:
        table = await read_object(request)
        loc = await admin.add_evse(request.match_info["location_id"], table)
        return json_response(loc, status=201)

    @routes.patch("/api/locations/{location_id}/evses/{evse_uid}")
    async def update_evse(request: web.Request) -> web.Response:
        patch = await read_object(request)
        m = request.match_info
        return json_response(await admin.update_evse(m["location_id"], m["evse_uid"], patch))

    @routes.delete("/api/locations/{location_id}/evses/{evse_uid}")
    async def remove_evse(request: web.Request) -> web.Response:
        m = request.match_info
        return json_response(await admin.remove_evse(m["location_id"], m["evse_uid"]))

    @routes.post("/api/tariffs")
    async def create_tariff(request: web.Request) -> web.Response:
        table = await read_object(request)
        tid = table.get("id")
        if not isinstance(tid, str) or not tid:
            raise ApiError(400, "invalid_field", "id: required", {"field": "id"})
        return json_response(await admin.put_tariff(tid, table, create_only=True), status=201)

    @routes.put("/api/tariffs/{tariff_id}")
    async def put_tariff(request: web.Request) -> web.Response:
        table = await read_object(request)
        return json_response(await admin.put_tariff(request.match_info["tariff_id"], table))

    @routes.post("/api/locations/import")
    async def import_file(request: web.Request) -> web.Response:
        doc = await read_object(request)
        text = doc.get("toml")
        if not isinstance(text, str):
            raise ApiError(400, "invalid_field", "toml: the locations file's text is required",
                           {"field": "toml"})  # fmt: skip
        report = await admin.import_text(text)
        return json_response(
            {
                "changed_locations": report.changed_locations,
                "removed_evses": report.removed_evses,
                "changed_tariffs": report.changed_tariffs,
            }
        )

    @routes.get("/api/locations/export")
    async def export_file(request: web.Request) -> web.Response:
        return json_response({"toml": await admin.export_text()})

    return routes
