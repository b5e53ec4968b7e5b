"""What every OCPI handler of the sandbox shares: its state, the request as the middleware
read it, and the strict checks that answer 2001.

Why strict where a real eMSP might be lenient: the sandbox is the reference peer for the
CPO's end-to-end tests, so a missing required field, a ``+00:00`` timestamp or a PATCH
without ``last_updated`` is answered 2001 *and* recorded in ``violations``; tests can
assert that a whole scenario produced none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator.emsp.client import OcpiClient
from simulator.emsp.state import SandboxState
from simulator.emsp.wire import INVALID_PARAMS, parse_time


@dataclass(frozen=True)
class Inbound:
    """The request as the middleware read it: parsed body and the credentials it carried."""

    body: Any  # parsed JSON, None if empty
    token: str | None
    kind: str | None  # "token_in", "token_a" or None (unknown)


STATE: web.AppKey[SandboxState] = web.AppKey("emsp_state", SandboxState)
CLIENT: web.AppKey[OcpiClient] = web.AppKey("emsp_client", OcpiClient)
INBOUND: web.RequestKey[Inbound] = web.RequestKey("emsp_inbound", Inbound)

REQUIRED: dict[str, tuple[str, ...]] = {
    "session": (
        "country_code", "party_id", "id", "start_date_time", "kwh", "cdr_token", "auth_method",
        "location_id", "evse_uid", "connector_id", "currency", "status", "last_updated",
    ),
    "cdr": (
        "country_code", "party_id", "id", "start_date_time", "end_date_time", "cdr_token",
        "auth_method", "cdr_location", "currency", "charging_periods", "total_cost",
        "total_energy", "total_time", "last_updated",
    ),
    "location": (
        "country_code", "party_id", "id", "publish", "address", "city", "country",
        "coordinates", "time_zone", "last_updated",
    ),
    "evse": ("uid", "status", "connectors", "last_updated"),
    "connector": (
        "id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated",
    ),
    "tariff": ("country_code", "party_id", "id", "currency", "elements", "last_updated"),
}  # fmt: skip
TIME_FIELDS = ("last_updated", "start_date_time", "end_date_time")


class OcpiError(Exception):
    """Answer with an envelope carrying ``status_code`` and HTTP ``http_status``."""

    def __init__(self, status_code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status


def state_of(request: web.Request) -> SandboxState:
    return request.app[STATE]


def body_of(request: web.Request) -> Any:
    return request[INBOUND].body


def require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OcpiError(INVALID_PARAMS, f"{what} body must be a JSON object")
    return body


def check_object(state: SandboxState, kind: str, obj: dict[str, Any]) -> None:
    """Required fields present and DateTimes well-formed (only when the sandbox is strict)."""
    if not state.strict:
        return
    missing = [f for f in REQUIRED[kind] if f not in obj or obj[f] is None]
    if missing:
        raise OcpiError(INVALID_PARAMS, f"{kind} is missing required fields: {', '.join(missing)}")
    _check_times(obj, kind)


def _check_times(obj: dict[str, Any], kind: str) -> None:
    for name in TIME_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OcpiError(INVALID_PARAMS, f"{kind}.{name} must be a DateTime string")
        try:
            parse_time(value)
        except ValueError as exc:
            raise OcpiError(INVALID_PARAMS, f"{kind}.{name}: {exc}") from None


def check_owner(request: web.Request, obj: dict[str, Any], id_field: str, url_id: str) -> None:
    """The party and id in the URL are those in the body (both must agree)."""
    cc, pid = request.match_info["cc"], request.match_info["pid"]
    if str(obj.get("country_code", "")).upper() != cc.upper() or (
        str(obj.get("party_id", "")).upper() != pid.upper()
    ):
        raise OcpiError(INVALID_PARAMS, "country_code/party_id in URL do not match the body")
    if str(obj.get(id_field, "")).upper() != url_id.upper():
        raise OcpiError(INVALID_PARAMS, f"{id_field} in URL does not match the body")


def patch_body(state: SandboxState, body: Any, kind: str) -> dict[str, Any]:
    """A PATCH body: an object with ``last_updated`` (OCPI requires it), DateTimes checked."""
    obj = require_object(body, kind)
    if "last_updated" not in obj:
        raise OcpiError(INVALID_PARAMS, f"PATCH of {kind} without last_updated")
    if state.strict:
        _check_times(obj, kind)
    return obj
