"""``/api/transactions``: charging sessions as the chargers reported them."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from csms.admin.context import context_of
from csms.admin.http import ApiError, json_response, query_bool, query_int
from csms.domain.transactions import TransactionRecord
from csms.store.meter_values import MeterValueRepo
from csms.store.transactions import TransactionRepo

routes = web.RouteTableDef()

MAX_LIMIT = 1000


def _app(request: web.Request) -> Any:
    return context_of(request)


def _view(txn: TransactionRecord) -> dict[str, Any]:
    doc = {"id": txn.id} | dataclasses.asdict(txn)  # the table's column order
    doc["active"] = txn.active
    stop = txn.meter_stop
    doc["energy_wh"] = None if stop is None else stop - txn.meter_start
    return doc


@routes.get("/api/transactions")
async def list_transactions(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 100)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"query 'limit' must be 1..{MAX_LIMIT}, got {limit}")
    active = query_bool(request, "active")
    charger_id = request.query.get("charger_id") or None
    txns = await TransactionRepo(_app(request).db).list(limit, charger_id, active)
    return json_response({"transactions": [_view(t) for t in txns]})


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
    txn = await TransactionRepo(db).get(tx_id)
    if txn is None:
        raise ApiError(404, "unknown_transaction", f"no transaction {tx_id}")
    doc = _view(txn)
    meter = await MeterValueRepo(db).summary(tx_id)
    doc["meter_values"] = {"count": meter.count, "last_timestamp": meter.last_timestamp}
    return json_response(doc)
