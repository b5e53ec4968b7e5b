"""The building blocks of the admin API's OpenAPI description: one operation, JSON
Schema shorthands, the error body. Pure data; the operations live in
:mod:`csms.admin.openapi.core` and :mod:`csms.admin.openapi.roaming`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable snake_case code"},
        "message": {"type": "string"},
    },
}
OBJECT: Json = {"type": "object"}
STR: Json = {"type": "string"}
INT: Json = {"type": "integer"}
BOOL: Json = {"type": "boolean"}
# server.charge_point_id_max_length is 48 unless configured otherwise.
CHARGER_ID: Json = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,48}$"}
ID_TAG: Json = {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "\\S"}
PASSWORD: Json = STR


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
        {"text/plain": {"schema": STR}}
        if text
        else {"application/json": {"schema": response or OBJECT}}
    )
    responses: Json = {
        str(status): {"description": "success", "content": content} for status in (ok, *also)
    }
    for status in sorted({*errors, *(() if public else (401,))}):
        responses[str(status)] = {
            "description": STATUS_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    doc["responses"] = responses
    if public:
        doc["security"] = []
    elif optional_auth:
        doc["security"] = [{}, {"bearer": []}]
    return doc


STATUS_TEXT = {
    400: "bad input; the message names the field",
    401: "missing or wrong bearer token",
    404: "not found",
    409: "conflict (exists, not connected, not applicable)",
    502: "the charger or partner answered with an error",
    503: "not ready",
    504: "the charger did not answer in time",
}


def obj(required: tuple[str, ...] = (), **props: Json) -> Json:
    doc: Json = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        doc["required"] = list(required)
    return doc


def list_of(key: str, item: Json) -> Json:
    """``{key: [item, ...]}``; more fields may come (additions never break clients)."""
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": item}},
    }


def record(*required: str, **props: Json) -> Json:
    return {"type": "object", "required": list(required), "properties": props}


_NULLABLESTR: Json = {"type": ["string", "null"]}
AUDIT_ENTRY = record(
    "id", "at", "actor", "method", "action", "path", "status",
    id=INT, at=STR, actor=STR, method=STR, action=STR, path=STR,
    target=_NULLABLESTR, status=INT, remote=_NULLABLESTR,
)  # fmt: skip
CHARGER = record(
    "id", "registration_status", "connected",
    id=STR, registration_status=STR, connected=BOOL, connectors={"type": "array"},
    node=_NULLABLESTR,
)  # fmt: skip
NODE = record(
    "node_id", "version", "started_at", "heartbeat_at", "lease_until", "alive", "this",
    "chargers",
    node_id=STR, version=STR, started_at=STR, heartbeat_at=STR, lease_until=STR,
    stopped_at=_NULLABLESTR, alive=BOOL, this=BOOL, chargers=INT,
    charger_ids={"type": "array", "items": STR},
)  # fmt: skip
TRANSACTION = record("id", "charger_id", "active", id=INT, charger_id=STR, active=BOOL)


def limit(default: int) -> tuple[Json, str]:
    return {"type": "integer", "minimum": 1, "maximum": 1000}, f"1..1000, default {default}"


# Path parameters that are numbers; every other one is a string.
INT_PATH_PARAMS = frozenset({"transaction_id", "message_id"})
