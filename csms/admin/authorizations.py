"""``/api/authorizations``: the latest authorization decisions, newest first.

Why the handler flushes the decision log first: decisions are written behind the
answer in batches, and an operator looking at a card that was just refused must see
that refusal, not the one before it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csms.admin.http import ApiError, json_response, query_int
from csms.store import authorizations

routes = web.RouteTableDef()

MAX_LIMIT = 1000
LOG_EXTENSION = "authorization_log"  # key of the AuthorizationLog in CsmsApp.extensions


@routes.get("/api/authorizations")
async def list_authorizations(request: web.Request) -> web.Response:
    from csms.admin.app import CSMS_APP

    app: Any = request.app[CSMS_APP]
    limit = query_int(request, "limit", 50)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"query 'limit' must be 1..{MAX_LIMIT}, got {limit}")
    sink = app.extensions.get(LOG_EXTENSION)
    if sink is not None:
        await sink.flush()
    rows = await authorizations.latest(
        app.db,
        limit=limit,
        charger_id=request.query.get("charger_id") or None,
        uid=request.query.get("uid") or None,
        source=request.query.get("source") or None,
        status=request.query.get("status") or None,
    )
    return json_response({"authorizations": rows})
