"""``/api/local-lists``: each charger's Local Authorization List for ``csms local-list``.

Why its own module: the routes read the list state and steer the manager (a Full list
now, a per-charger mode); the composition root hands them to the admin app, which mounts
them behind its bearer auth.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csms.admin.http import ApiError, field, json_response, read_object
from csms.domain.local_lists import ListState
from csms.locallist.manager import LocalListManager
from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from csms.store.local_lists import MODES, LocalListRepo


def local_list_routes(db: Database, manager: LocalListManager) -> web.RouteTableDef:
    repo = LocalListRepo(db)
    chargers = ChargerRepo(db)
    routes = web.RouteTableDef()

    def view(state: ListState) -> dict[str, Any]:
        pending = manager.pending(state.charger_id)
        return {**state.to_json(), "connected": pending is not None, "sync_pending": bool(pending)}

    async def known(request: web.Request) -> str:
        charger_id = request.match_info["charger_id"]
        if await chargers.get(charger_id) is None:
            raise ApiError(404, "unknown_charger", f"no charger {charger_id!r}")
        return charger_id

    @routes.get("/api/local-lists")
    async def list_states(request: web.Request) -> web.Response:
        stored = {s.charger_id: s for s in await repo.states()}
        for c in await chargers.list():
            stored.setdefault(c.id, ListState(c.id))
        return json_response({"chargers": [view(s) for _, s in sorted(stored.items())]})

    @routes.get("/api/local-lists/{charger_id}")
    async def show(request: web.Request) -> web.Response:
        charger_id = await known(request)
        entries = await repo.entries(charger_id)
        return json_response(
            {
                **view(await repo.state(charger_id)),
                "entries": [
                    {
                        "id_tag": e.id_tag,
                        "status": e.status,
                        "expiry_date": e.expiry_date,
                        "parent_id_tag": e.parent_id_tag,
                        "partner": e.partner_key,
                    }
                    for _, e in sorted(entries.items())
                ],
            }
        )

    @routes.post("/api/local-lists/{charger_id}/sync")
    async def sync(request: web.Request) -> web.Response:
        charger_id = await known(request)
        if not manager.request_full(charger_id):
            raise ApiError(409, "charger_offline", f"{charger_id} is not connected")
        return json_response({"charger_id": charger_id, "queued": "Full"}, status=202)

    @routes.post("/api/local-lists/{charger_id}/mode")
    async def set_mode(request: web.Request) -> web.Response:
        charger_id = await known(request)
        mode = field(await read_object(request), "mode", str, required=True)
        if mode not in MODES:
            raise ApiError(400, "invalid_body", f"mode must be one of {', '.join(MODES)}")
        await repo.set_mode(charger_id, mode)
        manager.request_check(charger_id)
        return json_response(view(await repo.state(charger_id)))

    return routes
