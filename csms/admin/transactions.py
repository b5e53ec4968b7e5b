"""``/api/transactions``: charging sessions as the chargers reported them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csms.admin.context import context_of
from csms.admin.http import ApiError, json_response, query_bool, query_int

routes = web.RouteTableDef()

MAX_LIMIT = 1000


def _app(request: web.Request) -> Any:
    return context_of(request)


def _view(row: Any) -> dict[str, Any]:
    doc = dict(row)
    doc["active"] = doc["stop_received_at"] is None
    stop = doc.get("meter_stop")
    doc["energy_wh"] = None if stop is None else stop - doc["meter_start"]
    return doc


@routes.get("/api/transactions")
async def list_transactions(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 100)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"query 'limit' must be 1..{MAX_LIMIT}, got {limit}")
    active = query_bool(request, "active")
    where, params = [], []
    charger_id = request.query.get("charger_id")
    if charger_id:
        where.append("charger_id = ?")
        params.append(charger_id)
    if active is True:
        where.append("stop_received_at IS NULL")
    elif active is False:
        where.append("stop_received_at IS NOT NULL")
    sql = "SELECT * FROM transactions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = await _app(request).db.fetchall(sql, (*params, limit))
    return json_response({"transactions": [_view(r) for r in rows]})


@routes.get("/api/transactions/{transaction_id}")
async def get_transaction(request: web.Request) -> web.Response:
    raw = request.match_info["transaction_id"]
    try:
        tx_id = int(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_path", f"transaction id must be an integer, got {raw!r}"
        ) from None
    db = _app(request).db
    row = await db.fetchone("SELECT * FROM transactions WHERE id = ?", (tx_id,))
    if row is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {tx_id}")
    doc = _view(row)
    meter = await db.fetchone(
        "SELECT count(*) AS n, max(timestamp) AS last FROM meter_values WHERE transaction_id = ?",
        (tx_id,),
    )
    doc["meter_values"] = {"count": meter["n"], "last_timestamp": meter["last"]}
    return json_response(doc)
