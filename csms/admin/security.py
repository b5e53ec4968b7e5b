"""Security profiles and the OCPP 1.6 security extensions in the admin API.

Routes:

- ``GET /api/security-events?charger_id=&critical=true&limit=``: SecurityEventNotifications,
  newest first.
- ``GET /api/chargers/{id}/security``: the registered profile, whether a CA certificate
  install succeeded, the certificates we signed, the latest security calls and the
  status notifications (signed firmware, log uploads) in order.
- ``POST /api/chargers/{id}/security-profile`` ``{"profile": N}``: raise the charger's
  profile with ``ChangeConfiguration SecurityProfile``, in the documented upgrade order
  (see :func:`upgrade_refusal`); ``{"profile": N, "registry_only": true}`` only records
  what the charger was configured to locally (also the only way down).

The security calls themselves (InstallCertificate, GetLog...) go through the generic
``POST /api/chargers/{id}/calls/{Action}``, which stores them
(:func:`csms.admin.calls.forward_recorded`).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from csms.admin.calls import forward_recorded
from csms.admin.context import context_of
from csms.admin.http import ApiError, field, json_response, read_object
from csms.config import Config
from csms.domain.chargers import Charger
from csms.store.chargers import SECURITY_PROFILES, ChargerRepo, security_profile_problem
from csms.store.security import SecurityRepo

routes = web.RouteTableDef()

_TRUE = ("1", "true", "yes")


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_query", "limit must be 1..1000")
    return limit


@routes.get("/api/security-events")
async def list_security_events(request: web.Request) -> web.Response:
    events = await SecurityRepo(context_of(request).db).events(
        request.query.get("charger_id"),
        request.query.get("critical", "").lower() in _TRUE,
        _limit(request),
    )
    return json_response({"security_events": events})


async def _charger(request: web.Request) -> Charger:
    charger_id = request.match_info["charger_id"]
    charger = await ChargerRepo(context_of(request).db).get(charger_id)
    if charger is None:
        raise ApiError(404, "unknown_charger", f"no charger {charger_id!r} in the registry")
    return charger


def _decoded(call: dict[str, Any]) -> dict[str, Any]:
    return {
        **call,
        "request": orjson.loads(call["request"]),
        "response": None if call["response"] is None else orjson.loads(call["response"]),
    }


@routes.get("/api/chargers/{charger_id}/security")
async def charger_security(request: web.Request) -> web.Response:
    charger = await _charger(request)
    repo = SecurityRepo(context_of(request).db)
    return json_response(
        {
            "id": charger.id,
            "security_profile": charger.security_profile,
            "has_password": charger.has_password,
            "ca_installed": await repo.ca_installed(charger.id),
            "signed_certificates": await repo.signed(charger.id),
            "calls": [_decoded(c) for c in await repo.calls(charger.id, limit=_limit(request))],
            "notifications": await repo.notifications(charger.id, limit=_limit(request)),
        }
    )


def effective_profile(charger: Charger) -> int:
    """The profile a charger runs today: registered, else 1 with a password, else 0."""
    if charger.security_profile is not None:
        return charger.security_profile
    return 1 if charger.has_password else 0


def upgrade_refusal(
    charger: Charger, target: int, config: Config, ca_installed: bool
) -> str | None:
    """Why ``target`` may not be set over OCPP now, or None. The order, from the OCPP 1.6
    security whitepaper: (1) for profiles 2 and 3 the charger holds our CA certificate
    (InstallCertificate CentralSystemRootCertificate, Accepted); (2) the listener offers
    what the profile needs; (3) ChangeConfiguration SecurityProfile. Never downwards."""
    current = effective_profile(charger)
    if target <= current:
        return (
            f"the charger runs profile {current}; a profile is only ever raised over OCPP "
            "(reconfigure the charger locally, then record it with registry_only)"
        )
    if target >= 2 and not config.server.tls_cert:
        return f"profile {target} needs TLS on the OCPP listener (server.tls_cert)"
    if target == 3 and not config.security_profile.client_ca_file:
        return "profile 3 needs security_profile.client_ca_file (charger certificates' CA)"
    if target in (1, 2) and not charger.has_password:
        return f"profile {target} authenticates with HTTP Basic: register a password first"
    if target >= 2 and not ca_installed:
        return (
            "install the CA certificate first: InstallCertificate CentralSystemRootCertificate "
            "must have been Accepted by this charger"
        )
    return None


@routes.post("/api/chargers/{charger_id}/security-profile")
async def set_security_profile(request: web.Request) -> web.Response:
    charger = await _charger(request)
    ctx = context_of(request)
    doc = await read_object(request)
    unknown = sorted(set(doc) - {"profile", "registry_only"})
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
    target = field(doc, "profile", int, required=True)
    registry_only = bool(field(doc, "registry_only", bool))
    if target not in SECURITY_PROFILES:
        raise ApiError(400, "invalid_body", "field 'profile' must be 0, 1, 2 or 3")
    repo = ChargerRepo(ctx.db)
    if registry_only:
        problem = security_profile_problem(target, charger.has_password)
        if problem:
            raise ApiError(409, "profile_refused", problem)
        await repo.set_security_profile(charger.id, target)
        return json_response({"id": charger.id, "security_profile": target, "status": None})
    refusal = upgrade_refusal(
        charger, target, ctx.config, await SecurityRepo(ctx.db).ca_installed(charger.id)
    )
    if refusal:
        raise ApiError(409, "profile_refused", refusal)
    payload = {"key": "SecurityProfile", "value": str(target)}
    answer = await forward_recorded(request, charger.id, "ChangeConfiguration", payload, None)
    status = answer["status"]
    if status == "Accepted":
        await repo.set_security_profile(charger.id, target)
    return json_response(
        {
            "id": charger.id,
            "security_profile": target if status == "Accepted" else effective_profile(charger),
            "status": status,
        }
    )
