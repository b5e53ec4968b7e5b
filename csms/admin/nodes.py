"""``GET /api/nodes``: the nodes sharing this store, for ``csms nodes list`` and the
dashboard.

Why the lease is shown and not just "up": an operator reading that a node's lease ran
out knows its chargers and outbox claims have moved on even though the process may
still be running (a database outage, a paused VM), which "down" would hide.
"""

from __future__ import annotations

from aiohttp import web

from csms.admin.context import context_of
from csms.admin.http import json_response, query_bool

routes = web.RouteTableDef()


@routes.get("/api/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    if ctx.cluster is None:  # an admin app built without a system (API-only tests)
        return json_response({"nodes": []})
    with_chargers = bool(query_bool(request, "chargers"))
    out = []
    for view in await ctx.cluster.nodes():
        doc = view.to_json()
        if with_chargers:
            doc["charger_ids"] = await ctx.cluster.presence.chargers_of(view.node_id)
        out.append(doc)
    return json_response({"nodes": out})
