"""JSON-schema validation of every OCPP 1.6 payload, both directions, with ONE error table.

The schemas are the ones shipped inside the installed ``ocpp`` package, compiled once at
import with fastjsonschema (which enforces ``format: date-time``). A failing rule maps to
the OCPP-J 1.6 error code in :data:`RULE_TO_CODE`; anything unlisted is a
FormationViolation (the payload does not have the shape the action defines).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from typing import Any

import fastjsonschema
import orjson

from csms.ocpp16 import errors, framing
from csms.ocpp16.actions import ALL_OCPP16

Validator = Callable[[Any], Any]

# The one table: fastjsonschema's failing rule -> OCPP-J 1.6 CallError code.
RULE_TO_CODE: dict[str, str] = {
    "required": errors.PROTOCOL_ERROR,  # payload incomplete
    "additionalProperties": errors.FORMATION_VIOLATION,  # a property the action does not define
    "type": errors.TYPE_CONSTRAINT_VIOLATION,
    "enum": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "format": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": errors.PROPERTY_CONSTRAINT_VIOLATION,
    "minItems": errors.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": errors.OCCURENCE_CONSTRAINT_VIOLATION,
    "uniqueItems": errors.OCCURENCE_CONSTRAINT_VIOLATION,
}


class SchemaViolation(Exception):
    """A payload failed its schema; ``code`` is the OCPP-J error code from the table."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def _has_integer(schema: Any) -> bool:
    """Whether a JSON schema (or any part of it) admits an integer."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
            return True
        return any(_has_integer(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_integer(v) for v in schema)
    return False


def _load() -> tuple[dict[str, Validator], dict[str, Validator], frozenset[str]]:
    base = importlib.resources.files("ocpp") / "v16" / "schemas"
    requests: dict[str, Validator] = {}
    responses: dict[str, Validator] = {}
    with_integers = set()
    for action in sorted(ALL_OCPP16):
        request = orjson.loads((base / f"{action}.json").read_bytes())
        requests[action] = fastjsonschema.compile(request)
        responses[action] = fastjsonschema.compile(
            orjson.loads((base / f"{action}Response.json").read_bytes())
        )
        if _has_integer(request):
            with_integers.add(action)
    return requests, responses, frozenset(with_integers)


_REQUESTS, _RESPONSES, INTEGER_ACTIONS = _load()
# INTEGER_ACTIONS: the actions whose request schema admits an integer somewhere (the 1.6
# schemas bound none); only their payloads are searched for integers the store cannot
# hold (csms.ocpp16.payloads.unstorable_integers), so an Authorize costs nothing for it.


def _check(table: dict[str, Validator], action: str, payload: Any) -> None:
    try:
        table[action](payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = RULE_TO_CODE.get(exc.rule or "", errors.FORMATION_VIOLATION)
        # fastjsonschema names the root "data"; say "payload" to the charger instead.
        name = exc.name or "data"
        path = "payload" + name[4:] if name.startswith("data") else name
        message = exc.message.replace(name, path, 1) if exc.message else path
        raise SchemaViolation(code, message, path) from None


def validate_request(action: str, payload: Any) -> None:
    """Raise :class:`SchemaViolation` unless ``payload`` is a valid ``action`` request."""
    _check(_REQUESTS, action, payload)


def validate_response(action: str, payload: Any) -> None:
    """Raise :class:`SchemaViolation` unless ``payload`` is a valid ``action`` response."""
    _check(_RESPONSES, action, payload)


def prepare_response(action: str, payload: Any) -> framing.Prepared:
    """Validate ``payload`` as an ``action`` response once and keep its JSON, for an
    answer that will be sent many times over; raises :class:`SchemaViolation`."""
    _check(_RESPONSES, action, payload)
    return framing.Prepared(orjson.dumps(payload))
