"""``/api/authorizations``: the latest authorization decisions, newest first.

Why the handler flushes the decision log first: decisions are written behind the
answer in batches, and an operator looking at a card that was just refused must see
that refusal, not the one before it.
"""

from __future__ import annotations

from aiohttp import web

from csms.admin.context import context_of
from csms.admin.http import ApiError, json_response, query_int
from csms.store import authorizations

routes = web.RouteTableDef()

MAX_LIMIT = 1000


@routes.get("/api/authorizations")
async def list_authorizations(request: web.Request) -> web.Response:
    app = context_of(request)
    limit = query_int(request, "limit", 50)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"query 'limit' must be 1..{MAX_LIMIT}, got {limit}")
    await app.decisions.flush()
    rows = await authorizations.latest(
        app.db,
        limit=limit,
        charger_id=request.query.get("charger_id") or None,
        uid=request.query.get("uid") or None,
        source=request.query.get("source") or None,
        status=request.query.get("status") or None,
    )
    return json_response({"authorizations": rows})
