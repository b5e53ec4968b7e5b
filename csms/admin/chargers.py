"""``/api/chargers``: the registry joined with live connection state and connector status.

Reads and writes go through the store's repositories (one query per list rather than
one per charger), so password hashing and id rules live in one place.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csms.admin.context import context_of
from csms.admin.http import ApiError, field, json_response, read_object
from csms.domain.chargers import Charger
from csms.store.chargers import ChargerRepo, ConnectorRepo
from csms.store.db import Database
from csms.store.transactions import TransactionRepo

routes = web.RouteTableDef()

CHARGER_COLUMNS = (
    "id",
    "registration_status",
    "vendor",
    "model",
    "serial_number",
    "charge_box_serial",
    "firmware_version",
    "iccid",
    "imsi",
    "meter_type",
    "meter_serial",
    "created_at",
    "last_boot_at",
    "last_heartbeat_at",
    "last_connected_at",
    "last_disconnected_at",
    "firmware_status",
    "diagnostics_status",
    "security_profile",
)
CONNECTOR_COLUMNS = (
    "connector_id",
    "status",
    "error_code",
    "info",
    "vendor_id",
    "vendor_error_code",
    "status_timestamp",
    "received_at",
)
ACTIVE_TRANSACTION_COLUMNS = ("id", "connector_id", "id_tag", "start_timestamp", "meter_start")


async def load_charger_row(db: Database, charger_id: str) -> Charger | None:
    """The registered charger, or None."""
    return await ChargerRepo(db).get(charger_id)


async def _connectors(
    db: Database, charger_id: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in await ConnectorRepo(db).list(charger_id):
        out.setdefault(c.charger_id, []).append(_columns(c, CONNECTOR_COLUMNS))
    return out


def _columns(record: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _view(
    charger: Charger, connectors: list[dict[str, Any]], gateway: Any, node: str | None
) -> dict[str, Any]:
    """``node``: the node holding the charger's socket (None: connected nowhere); the
    socket's details are known only on that node."""
    doc = _columns(charger, CHARGER_COLUMNS)
    doc["has_password"] = charger.has_password
    conn = gateway.connection(charger.id)
    doc["connected"] = conn is not None or node is not None
    doc["node"] = node or None
    doc["connection"] = (
        None
        if conn is None
        else {
            "connected_at": conn.info.connected_at,
            "remote_address": conn.info.remote_address,
            "subprotocol": conn.info.subprotocol,
        }
    )
    doc["connectors"] = connectors
    return doc


def _app(request: web.Request) -> Any:
    return context_of(request)


def _repo(csms_app: Any) -> ChargerRepo:
    return ChargerRepo(csms_app.db)


@routes.get("/api/chargers")
async def list_chargers(request: web.Request) -> web.Response:
    csms_app = _app(request)
    gateway = csms_app.gateway
    chargers = await _repo(csms_app).list()
    conns = await _connectors(csms_app.db)
    placed = await csms_app.placed()
    return json_response(
        {"chargers": [_view(c, conns.get(c.id, []), gateway, placed.get(c.id)) for c in chargers]}
    )


@routes.get("/api/chargers/{charger_id}")
async def get_charger(request: web.Request) -> web.Response:
    csms_app = _app(request)
    charger_id = request.match_info["charger_id"]
    row = await load_charger_row(csms_app.db, charger_id)
    if row is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r} in the registry")
    conns = await _connectors(csms_app.db, charger_id)
    placed = await csms_app.placed()
    doc = _view(row, conns.get(charger_id, []), csms_app.gateway, placed.get(charger_id))
    active = await TransactionRepo(csms_app.db).running_at(charger_id)
    doc["active_transactions"] = [_columns(t, ACTIVE_TRANSACTION_COLUMNS) for t in active]
    return json_response(doc)


def validate_charger_id(charger_id: Any, max_length: int) -> str:
    from csms.store.chargers import charger_id_problem

    if not isinstance(charger_id, str):
        raise ApiError(400, "invalid_body", "field 'id' is required and must be a string")
    problem = charger_id_problem(charger_id, max_length)
    if problem:
        raise ApiError(400, "invalid_body", f"field 'id': {problem}")
    return charger_id


@routes.post("/api/chargers")
async def add_charger(request: web.Request) -> web.Response:
    """Register a charger; with ``site`` (roaming only) also its Location and EVSEs.

    The site is checked in full before the charger is added and attached after; if that
    fails after all (a concurrent write), the charger is removed again, so a refused
    request leaves nothing behind.
    """
    csms_app = _app(request)
    doc = await read_object(request)
    unknown = sorted(set(doc) - {"id", "password", "site", "security_profile"})
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
    charger_id = validate_charger_id(
        doc.get("id"), csms_app.config.server.charge_point_id_max_length
    )
    password = field(doc, "password", str)
    security_profile = field(doc, "security_profile", int)
    site = field(doc, "site", dict)
    if site is not None:
        if csms_app.sites is None:
            raise ApiError(
                400, "invalid_field", "site: needs roaming (ocpi.enabled = true)", {"field": "site"}
            )
        await csms_app.sites.check_site(charger_id, site)
    from csms.store.chargers import ChargerExists

    try:
        await _repo(csms_app).add(charger_id, password, security_profile=security_profile)
    except ChargerExists:
        raise ApiError(
            409, "already_exists", f"charger {charger_id!r} is already registered"
        ) from None
    except ValueError as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    row = await load_charger_row(csms_app.db, charger_id)
    assert row is not None
    out = _view(row, [], csms_app.gateway, None)
    if site is not None and csms_app.sites is not None:
        try:
            out["site"] = await csms_app.sites.attach_site(charger_id, site)
        except BaseException:
            await _repo(csms_app).remove(charger_id)
            raise
    return json_response(out, status=201)


@routes.delete("/api/chargers/{charger_id}")
async def remove_charger(request: web.Request) -> web.Response:
    csms_app = _app(request)
    charger_id = request.match_info["charger_id"]
    if await load_charger_row(csms_app.db, charger_id) is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r} in the registry")
    await _repo(csms_app).remove(charger_id)
    # A removed charger must not keep the session it was admitted with (on any node).
    disconnected = await csms_app.gateway.disconnect(charger_id, "removed from registry")
    return json_response({"id": charger_id, "removed": True, "disconnected": disconnected})


@routes.post("/api/chargers/{charger_id}/registration")
async def set_registration(request: web.Request) -> web.Response:
    """Accept a Pending charger, or put one back to Pending / Rejected.

    Accepting takes effect at the charger's next message (the server re-reads the status
    of a charger that is not yet Accepted). Demoting a connected charger closes its
    session, so it reconnects and is told its new status by BootNotification.
    """
    from csms.store.chargers import REGISTRATION_STATUSES

    csms_app = _app(request)
    charger_id = request.match_info["charger_id"]
    doc = await read_object(request)
    unknown = sorted(set(doc) - {"status"})
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
    status = field(doc, "status", str, required=True)
    if status not in REGISTRATION_STATUSES:
        raise ApiError(
            400, "invalid_body", f"field 'status' must be one of {', '.join(REGISTRATION_STATUSES)}"
        )
    if not await _repo(csms_app).set_registration_status(charger_id, status):
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r} in the registry")
    disconnected = status != "Accepted" and await csms_app.gateway.disconnect(
        charger_id, f"registration set to {status}", if_accepted=True
    )
    return json_response(
        {"id": charger_id, "registration_status": status, "disconnected": disconnected}
    )
