"""The OpenAPI 3.1 description of the admin API, served at ``GET /api/openapi.json``.

Why a table of operations here and not docstrings scattered over handlers: the admin API
is mounted from several packages (this one, roaming's partner routes, the OCPI admin
routes), and one table is what keeps every route described. ``tests/csms/admin/
test_openapi.py`` compares :data:`OPERATIONS` with the router of a running app (OCPI
on), both ways: a new route without an entry here fails that test with the route
named, and so does an entry for a route that no longer exists.
``tests/csms/admin/test_openapi_fuzz.py`` runs schemathesis against a real ``csms serve``
with this document: no 5xx, and every answer's status, content type and (where given)
schema as described.

Adding a route: add ``("METHOD", "/api/path/{param}"): op(...)`` to :data:`OPERATIONS`
(path parameters are taken from the path; say the query parameters and the body).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from csms.admin.http import json_response

VERSION = "1.0.0"

Json = dict[str, Any]

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable snake_case code"},
        "message": {"type": "string"},
    },
}
_OBJECT: Json = {"type": "object"}
_STR: Json = {"type": "string"}
_INT: Json = {"type": "integer"}
_BOOL: Json = {"type": "boolean"}
# server.charge_point_id_max_length is 48 unless configured otherwise.
_CHARGER_ID: Json = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,48}$"}
_ID_TAG: Json = {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "\\S"}
_PASSWORD: Json = _STR


def op(
    summary: str,
    tag: str,
    *,
    query: Mapping[str, tuple[Json, str]] | None = None,
    body: Json | None = None,
    body_required: bool = True,
    ok: int = 200,
    errors: tuple[int, ...] = (),
    public: bool = False,
    response: Json | None = None,
    text: bool = False,
    optional_auth: bool = False,
    also: tuple[int, ...] = (),
) -> Json:
    """One operation: ``query`` maps a name to (schema, description); ``ok`` and ``also``
    are the success statuses."""
    doc: Json = {"summary": summary, "tags": [tag]}
    if query:
        doc["parameters"] = [
            {"name": n, "in": "query", "required": False, "schema": s, "description": d}
            for n, (s, d) in query.items()
        ]
    if body is not None:
        doc["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    content = (
        {"text/plain": {"schema": _STR}}
        if text
        else {"application/json": {"schema": response or _OBJECT}}
    )
    responses: Json = {
        str(status): {"description": "success", "content": content} for status in (ok, *also)
    }
    for status in sorted({*errors, *(() if public else (401,))}):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    doc["responses"] = responses
    if public:
        doc["security"] = []
    elif optional_auth:
        doc["security"] = [{}, {"bearer": []}]
    return doc


_STATUS_TEXT = {
    400: "bad input; the message names the field",
    401: "missing or wrong bearer token",
    404: "not found",
    409: "conflict (exists, not connected, not applicable)",
    502: "the charger or partner answered with an error",
    503: "not ready",
    504: "the charger did not answer in time",
}


def _obj(required: tuple[str, ...] = (), **props: Json) -> Json:
    doc: Json = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        doc["required"] = list(required)
    return doc


def _list_of(key: str, item: Json) -> Json:
    """``{key: [item, ...]}``; more fields may come (additions never break clients)."""
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": item}},
    }


def _record(*required: str, **props: Json) -> Json:
    return {"type": "object", "required": list(required), "properties": props}


_NULLABLE_STR: Json = {"type": ["string", "null"]}
_AUDIT_ENTRY = _record(
    "id", "at", "actor", "method", "action", "path", "status",
    id=_INT, at=_STR, actor=_STR, method=_STR, action=_STR, path=_STR,
    target=_NULLABLE_STR, status=_INT, remote=_NULLABLE_STR,
)  # fmt: skip
_CHARGER = _record(
    "id", "registration_status", "connected",
    id=_STR, registration_status=_STR, connected=_BOOL, connectors={"type": "array"},
)  # fmt: skip
_TRANSACTION = _record("id", "charger_id", "active", id=_INT, charger_id=_STR, active=_BOOL)


def _limit(default: int) -> tuple[Json, str]:
    return {"type": "integer", "minimum": 1, "maximum": 1000}, f"1..1000, default {default}"


# Path parameters that are numbers; every other one is a string.
_INT_PATH_PARAMS = frozenset({"transaction_id", "message_id"})

OPERATIONS: dict[tuple[str, str], Json] = {
    # --- operating
    ("GET", "/api/health"): op(
        "Liveness: the process answers",
        "operations",
        public=True,
        response=_record("status", status={"const": "ok"}),
    ),
    ("GET", "/api/ready"): op(
        "Readiness: store reachable, OCPP listener up, OCPI listener up when enabled",
        "operations",
        public=True,
        errors=(503,),
        response=_record(
            "status",
            "checks",
            status={"enum": ["ready", "not_ready"]},
            checks={"type": "object", "additionalProperties": _BOOL},
        ),
    ),
    ("GET", "/metrics"): op(
        "Prometheus metrics (text format); auth per [metrics]: open on a loopback admin "
        "address without metrics.token, else a bearer token (see docs/admin.md)",
        "operations",
        text=True,
        optional_auth=True,
    ),
    ("GET", "/api/openapi.json"): op("This description", "operations"),
    ("GET", "/api/audit"): op(
        "The audit trail of admin writes, newest first",
        "operations",
        query={
            "limit": _limit(100),
            "actor": (_STR, "only this actor (token:<id> or a dashboard session)"),
            "before": (_INT, "entries with a smaller id (paging back)"),
        },
        errors=(400,),
        response=_list_of("entries", _AUDIT_ENTRY),
    ),
    # --- chargers
    ("GET", "/api/chargers"): op(
        "Registered chargers with connection and connector status",
        "chargers",
        response=_list_of("chargers", _CHARGER),
    ),
    ("POST", "/api/chargers"): op(
        "Register a charger (password: security profile 1; omit for none); with site "
        "(roaming) also its Location and EVSEs",
        "chargers",
        body=_obj(("id",), id=_CHARGER_ID, password=_PASSWORD, site=_OBJECT),
        ok=201,
        errors=(400, 409),
    ),
    ("GET", "/api/chargers/{charger_id}"): op(
        "One charger with connectors and active transactions", "chargers", errors=(404,)
    ),
    ("DELETE", "/api/chargers/{charger_id}"): op(
        "Remove a charger (its open connection is closed)", "chargers", errors=(404,)
    ),
    ("POST", "/api/chargers/{charger_id}/registration"): op(
        "Set the registration status (Accepted, Pending, Rejected)",
        "chargers",
        body=_obj(("status",), status={"enum": ["Accepted", "Pending", "Rejected"]}),
        errors=(400, 404),
    ),
    ("POST", "/api/chargers/{charger_id}/calls/{action}"): op(
        "Send a CSMS-initiated OCPP call; the body is the OCPP payload (camelCase)",
        "calls",
        query={"timeout": ({"type": "number"}, "seconds to wait for the charger")},
        body=_OBJECT,
        body_required=False,
        errors=(400, 404, 409, 502, 504),
    ),
    ("GET", "/api/actions"): op("The OCPP actions the calls route accepts", "calls"),
    # --- tokens (own cards)
    ("GET", "/api/tokens"): op("The operator's own cards (id_tags)", "tokens"),
    ("POST", "/api/tokens"): op(
        "Add or update an own card",
        "tokens",
        body=_obj(
            ("id_tag",),
            id_tag=_ID_TAG,
            status={"enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
            expiry_date={"type": "string", "format": "date-time"},
            parent_id_tag=_ID_TAG,
        ),
        ok=201,
        also=(200,),  # 200: an existing card updated
        errors=(400,),
    ),
    ("GET", "/api/tokens/{id_tag}"): op("One own card", "tokens", errors=(404,)),
    ("POST", "/api/tokens/{id_tag}/block"): op("Block an own card", "tokens", errors=(404,)),
    # --- transactions and decisions
    ("GET", "/api/transactions"): op(
        "Transactions, newest first",
        "transactions",
        query={
            "limit": _limit(100),
            "active": (_BOOL, "only running (true) or finished (false)"),
            "charger_id": (_STR, "only at this charger"),
        },
        errors=(400,),
        response=_list_of("transactions", _TRANSACTION),
    ),
    ("GET", "/api/transactions/{transaction_id}"): op(
        "One transaction with its meter value summary", "transactions", errors=(400, 404)
    ),
    ("GET", "/api/authorizations"): op(
        "The authorization decision log, newest first",
        "authorizations",
        query={
            "limit": _limit(50),
            "charger_id": (_STR, "only at this charger"),
            "uid": (_STR, "only this token uid"),
            "source": (_STR, "cache, remote, fallback, local, reused, command"),
            "status": (_STR, "idTagInfo status"),
        },
        errors=(400,),
        response=_list_of("authorizations", _OBJECT),
    ),
    # --- roaming (mounted with ocpi.enabled)
    ("GET", "/api/partners"): op(
        "OCPI partners with their last token sync",
        "roaming",
        response={"type": "array", "items": _OBJECT},
    ),
    ("POST", "/api/partners/invite"): op(
        "Invite an eMSP: returns a TOKEN_A and our versions URL",
        "roaming",
        body=_obj(
            ("country_code", "party_id"),
            country_code={"type": "string", "pattern": "^[A-Za-z]{2}$"},
            party_id={"type": "string", "pattern": "^[A-Za-z0-9]{3}$"},
        ),
        ok=201,
        errors=(400, 409),
    ),
    ("POST", "/api/partners/register"): op(
        "Register with an eMSP from its versions URL and TOKEN_A",
        "roaming",
        body=_obj(("versions_url", "token_a"), versions_url=_STR, token_a=_STR),
        ok=201,
        errors=(400, 502),
    ),
    ("GET", "/api/partners/{key}"): op(
        "One partner: endpoints, token counts, sync runs", "roaming", errors=(404,)
    ),
    ("POST", "/api/partners/{key}/rotate"): op(
        "Rotate our credentials token with the partner", "roaming", errors=(404, 502)
    ),
    ("POST", "/api/partners/{key}/unregister"): op(
        "Unregister a partner", "roaming", errors=(404,)
    ),
    ("POST", "/api/tokens/sync"): op(
        "Run a token sync (all partners, or one); wait for the result or not",
        "roaming",
        body=_obj(partner=_STR, incremental=_BOOL, wait=_BOOL),
        body_required=False,
        ok=202,  # started; with wait: true, 200 and the runs
        also=(200,),
        errors=(400, 404, 409),
    ),
    ("GET", "/api/locations"): op("Published OCPI locations", "locations"),
    ("GET", "/api/locations/unmapped"): op(
        "Connectors chargers reported that no EVSE maps", "locations"
    ),
    ("GET", "/api/locations/{location_id}"): op("One location", "locations", errors=(404,)),
    ("POST", "/api/locations/reload"): op(
        "Reload the locations file (ocpi_cpo.locations_file)", "locations", errors=(400,)
    ),
    ("GET", "/api/tariffs"): op("Published tariffs", "locations"),
    ("POST", "/api/locations"): op(
        "Create a Location (optionally with evses)",
        "locations",
        body=_OBJECT,
        ok=201,
        errors=(400, 409),
    ),
    ("PATCH", "/api/locations/{location_id}"): op(
        "Change a Location's fields (publish, address, ...; null clears one)",
        "locations",
        body=_OBJECT,
        errors=(400, 404),
    ),
    ("POST", "/api/locations/{location_id}/evses"): op(
        "Add an EVSE to a Location", "locations", body=_OBJECT, ok=201, errors=(400, 404, 409)
    ),
    ("PATCH", "/api/locations/{location_id}/evses/{evse_uid}"): op(
        "Change an EVSE: map (charger_id + connector_id), unmap (both null), tariff_ids, ...",
        "locations",
        body=_OBJECT,
        errors=(400, 404, 409),
    ),
    ("DELETE", "/api/locations/{location_id}/evses/{evse_uid}"): op(
        "Mark an EVSE REMOVED", "locations", errors=(404,)
    ),
    ("POST", "/api/tariffs"): op(
        "Create a tariff (simple shape)",
        "locations",
        body=_record("id", id={"type": "string", "minLength": 1}),
        ok=201,
        errors=(400, 409),
    ),
    ("PUT", "/api/tariffs/{tariff_id}"): op(
        "Create or replace a tariff (simple shape)", "locations", body=_OBJECT, errors=(400,)
    ),
    ("POST", "/api/locations/import"): op(
        "Upsert the Locations and tariffs of a locations file's text (retires nothing)",
        "locations",
        body=_record("toml", toml=_STR),
        errors=(400,),
    ),
    ("GET", "/api/locations/export"): op(
        "Every Location and tariff as a locations file's text",
        "locations",
        response=_record("toml", toml=_STR),
    ),
    ("GET", "/api/outbox"): op(
        "OCPI pushes waiting (or all with all=true) and counts by status",
        "outbox",
        query={"all": (_BOOL, "include delivered and finished messages")},
        errors=(400,),
    ),
    ("POST", "/api/outbox/{message_id}/retry"): op(
        "Retry a dead or rejected push", "outbox", errors=(400, 409)
    ),
    ("POST", "/api/outbox/{message_id}/drop"): op("Give up on a push", "outbox", errors=(400, 409)),
}


def _path_params(path: str) -> list[Json]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": _INT if n in _INT_PATH_PARAMS else _STR,
        }
        for n in names
    ]


def document(operations: Mapping[tuple[str, str], Json] = OPERATIONS) -> Json:
    """The whole OpenAPI 3.1 document."""
    paths: Json = {}
    for (method, path), operation in sorted(operations.items()):
        item = paths.setdefault(path, {})
        params = _path_params(path)
        if params:
            item["parameters"] = params
        op_id = method.lower() + "".join(
            p.strip("{}").replace("_", " ").title().replace(" ", "").replace(".", "")
            for p in path.split("/")
            if p
        )
        item[method.lower()] = {"operationId": op_id, **operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "csms admin API",
            "version": VERSION,
            "description": "Administer a running CSMS; reference: docs/admin.md. Every "
            "route but /api/health and /api/ready needs Authorization: Bearer <admin.token>; "
            "/metrics follows [metrics].",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())
