"""``POST /api/chargers/{id}/calls/{Action}``: forward a CSMS-initiated OCPP call.

The body is the OCPP request payload exactly as on the wire (camelCase); the answer is
the charger's response payload. The security extensions' calls
(:data:`~csms.ocpp16.actions.SECURITY_CALLS`) are also stored with their outcome
(:func:`forward_recorded`). The payload is checked against the OCPP 1.6 schema
*here*, before the charger is even looked up, so a typo is a 400 whether or not the
charger is online.

Error table (the one place gateway errors become HTTP statuses):

=====================  ======  ==================
gateway error          status  ``error`` code
=====================  ======  ==================
ChargerNotConnected    409     ``not_connected``
CallErrorReceived      502     ``call_error`` (+ ``ocpp_error``: code, description, details)
InvalidCallResult      502     ``invalid_result``
CallTimeout            504     ``call_timeout``
InvalidCallPayload     400     ``invalid_payload``
=====================  ======  ==================
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from csms.admin.context import context_of
from csms.admin.http import ApiError, json_response, query_float, read_object
from csms.datetimes import now_millis
from csms.domain.security import SecurityCall
from csms.ocpp16 import errors as ocpp_errors
from csms.ocpp16 import schemas
from csms.ocpp16.actions import CSMS_INITIATED, SECURITY_CALLS
from csms.store.security import SecurityRepo

routes = web.RouteTableDef()

ACTIONS: tuple[str, ...] = tuple(sorted(CSMS_INITIATED))
_BY_LOWER = {a.lower(): a for a in ACTIONS}


def resolve_action(name: str) -> str:
    """The canonical action name (case-insensitive match); unknown is a 404 listing all."""
    action = _BY_LOWER.get(name.lower())
    if action is None:
        raise ApiError(
            404,
            "unknown_action",
            f"unknown or unsupported action {name!r}; supported: {', '.join(ACTIONS)}",
            {"supported": list(ACTIONS)},
        )
    return action


def validate_payload(action: str, payload: dict[str, Any]) -> None:
    try:
        schemas.validate_request(action, payload)
    except schemas.SchemaViolation as exc:
        raise ApiError(
            400,
            "invalid_payload",
            f"{action} payload does not match the OCPP 1.6 schema: {exc.message}",
        ) from None


async def ensure_charger_known(request: web.Request, charger_id: str) -> None:
    from csms.admin.chargers import load_charger_row

    csms_app = context_of(request)
    if csms_app.gateway.is_connected(charger_id):
        return
    if await load_charger_row(csms_app.db, charger_id) is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r} in the registry")


@routes.post("/api/chargers/{charger_id}/calls/{action}")
async def call(request: web.Request) -> web.Response:
    charger_id = request.match_info["charger_id"]
    action = resolve_action(request.match_info["action"])
    payload = await read_object(request, empty_ok=True)
    validate_payload(action, payload)
    timeout = query_float(request, "timeout")
    await ensure_charger_known(request, charger_id)
    _refuse_profile_change(action, payload)
    if action in SECURITY_CALLS:
        return json_response(await forward_recorded(request, charger_id, action, payload, timeout))
    return json_response(await forward(request, charger_id, action, payload, timeout))


def _refuse_profile_change(action: str, payload: dict[str, Any]) -> None:
    """``ChangeConfiguration SecurityProfile`` only through the security-profile action,
    which keeps the upgrade order (CA certificate first) and the registry in step."""
    if action == "ChangeConfiguration" and str(payload.get("key", "")).lower() == "securityprofile":
        raise ApiError(
            409,
            "profile_refused",
            "the security profile changes through POST /api/chargers/{id}/security-profile "
            "(csms security set-profile), which checks the upgrade order and updates the registry",
        )


async def forward(
    request: web.Request,
    charger_id: str,
    action: str,
    payload: dict[str, Any],
    timeout: float | None,
) -> dict[str, Any]:
    """Send the call through the gateway; every gateway error becomes its ApiError."""
    gateway = context_of(request).gateway
    try:
        return await gateway.call(charger_id, action, payload, timeout=timeout)
    except ocpp_errors.ChargerNotConnected:
        raise ApiError(409, "not_connected", f"charger {charger_id!r} is not connected") from None
    except ocpp_errors.CallTimeout:
        raise ApiError(
            504, "call_timeout", f"charger {charger_id!r} did not answer {action} in time"
        ) from None
    except ocpp_errors.CallErrorReceived as exc:
        raise ApiError(
            502,
            "call_error",
            f"charger {charger_id!r} answered {action} with CALLERROR {exc.code}: {exc.description}",
            {
                "ocpp_error": {
                    "code": exc.code,
                    "description": exc.description,
                    "details": exc.details,
                }
            },
        ) from None
    except ocpp_errors.InvalidCallResult as exc:
        raise ApiError(
            502, "invalid_result", f"charger {charger_id!r} answered {action} invalidly: {exc}"
        ) from None
    except ocpp_errors.InvalidCallPayload as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None


async def forward_recorded(
    request: web.Request,
    charger_id: str,
    action: str,
    payload: dict[str, Any],
    timeout: float | None,
) -> dict[str, Any]:
    """:func:`csms.admin.calls.forward`, storing the outcome (answer or error) either way."""
    repo = SecurityRepo(context_of(request).db)
    request_json = orjson.dumps(payload).decode()
    try:
        result = await forward(request, charger_id, action, payload, timeout)
    except ApiError as exc:
        await repo.add_call(
            SecurityCall(charger_id, action, request_json, None, exc.message, now_millis())
        )
        raise
    await repo.add_call(
        SecurityCall(
            charger_id,
            action,
            request_json,
            orjson.dumps(result).decode(),
            None,
            now_millis(),
        )
    )
    return result


@routes.get("/api/actions")
async def list_actions(request: web.Request) -> web.Response:
    return json_response({"actions": list(ACTIONS)})
