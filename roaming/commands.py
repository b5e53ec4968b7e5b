"""OCPI Commands, CPO as Receiver: parse, answer at once, report the charger's result later.

Why two halves: OCPI commands are asynchronous. The HTTP handler validates the body and
asks a :class:`CommandHandler` for the immediate :class:`CommandResponse` (did *we*
accept it?); the handler starts the charger call in a background task and POSTs the
CommandResult to ``response_url`` when the charger answers or the timeout passes. The
HTTP response never waits for the charger.

Errors: a bad body is OCPI 2001 naming the field; an unknown ``location_id`` is OCPI 2003
with ``data`` = CommandResponse REJECTED (spec diagram); an unknown command name is 2001.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from roaming.context import OcpiModule, partner_of
from roaming.envelope import (
    InvalidParameters,
    StatusCode,
    envelope,
    json_response,
    read_json_object,
)
from roaming.models import (
    InterfaceRole,
    ModuleID,
    Token,
    ValidationError,
    cistring,
    datetime_str,
    required,
    required_ci,
    url_str,
)
from roaming.partners import Partner

COMMANDS_PATH = "/ocpi/cpo/2.2.1/commands"


class CommandType(enum.StrEnum):
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class ResponseType(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ResultType(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


@dataclass(frozen=True, slots=True)
class StartSession:
    response_url: str
    token: Token
    location_id: str
    evse_uid: str | None = None
    connector_id: str | None = None
    authorization_reference: str | None = None


@dataclass(frozen=True, slots=True)
class StopSession:
    response_url: str
    session_id: str


@dataclass(frozen=True, slots=True)
class ReserveNow:
    response_url: str
    token: Token
    expiry_date: str
    reservation_id: str
    location_id: str
    evse_uid: str | None = None
    authorization_reference: str | None = None


@dataclass(frozen=True, slots=True)
class CancelReservation:
    response_url: str
    reservation_id: str


@dataclass(frozen=True, slots=True)
class UnlockConnector:
    response_url: str
    location_id: str
    evse_uid: str
    connector_id: str


Command = StartSession | StopSession | ReserveNow | CancelReservation | UnlockConnector


@dataclass(frozen=True, slots=True)
class CommandResponse:
    result: ResponseType
    timeout: int
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result.value, "timeout": self.timeout}
        if self.message:
            out["message"] = [{"language": "en", "text": self.message[:512]}]
        return out


class UnknownLocation(Exception):
    """The command names a location we do not publish: OCPI 2003 + REJECTED."""


def _opt_ci(o: dict[str, Any], key: str, n: int = 36) -> str | None:
    v = o.get(key)
    return cistring(v, key, n) if v is not None else None


def parse_command(command: str, body: dict[str, Any]) -> Command:
    """The typed command; ValidationError names the field of any problem."""
    try:
        kind = CommandType(command)
    except ValueError:
        allowed = ", ".join(c.value for c in CommandType)
        raise InvalidParameters(f"unknown command {command!r} (one of {allowed})") from None
    url = url_str(required(body, "response_url", ""), "response_url")
    if kind is CommandType.START_SESSION:
        connector_id = _opt_ci(body, "connector_id")
        evse_uid = _opt_ci(body, "evse_uid")
        if connector_id is not None and evse_uid is None:
            raise ValidationError("evse_uid", "required when connector_id is given")
        return StartSession(
            response_url=url,
            token=Token.from_json(required(body, "token", ""), "token."),
            location_id=required_ci(body, "location_id", "", 36),
            evse_uid=evse_uid,
            connector_id=connector_id,
            authorization_reference=_opt_ci(body, "authorization_reference"),
        )
    if kind is CommandType.STOP_SESSION:
        return StopSession(url, required_ci(body, "session_id", "", 36))
    if kind is CommandType.RESERVE_NOW:
        return ReserveNow(
            response_url=url,
            token=Token.from_json(required(body, "token", ""), "token."),
            expiry_date=datetime_str(required(body, "expiry_date", ""), "expiry_date"),
            reservation_id=required_ci(body, "reservation_id", "", 36),
            location_id=required_ci(body, "location_id", "", 36),
            evse_uid=_opt_ci(body, "evse_uid"),
            authorization_reference=_opt_ci(body, "authorization_reference"),
        )
    if kind is CommandType.CANCEL_RESERVATION:
        return CancelReservation(url, required_ci(body, "reservation_id", "", 36))
    return UnlockConnector(
        response_url=url,
        location_id=required_ci(body, "location_id", "", 36),
        evse_uid=required_ci(body, "evse_uid", "", 36),
        connector_id=required_ci(body, "connector_id", "", 36),
    )


class CommandHandler(Protocol):
    """The CPO side: decide at once, run the charger call in the background."""

    @property
    def timeout_s(self) -> int:
        """The CommandResponse timeout we promise (also on a rejection)."""
        ...

    async def handle(
        self, partner: Partner, command: Command, correlation_id: str | None
    ) -> CommandResponse:
        """May raise :class:`UnknownLocation`; must not wait for the charger."""
        ...


def _add_routes(app: web.Application, handler: CommandHandler) -> None:
    async def post_command(request: web.Request) -> web.Response:
        body = await read_json_object(request)
        command = parse_command(request.match_info["command"], body)
        try:
            response = await handler.handle(
                partner_of(request), command, request.get("correlation_id")
            )
        except UnknownLocation as exc:
            data = CommandResponse(ResponseType.REJECTED, handler.timeout_s, str(exc)).to_json()
            return json_response(envelope(data, StatusCode.UNKNOWN_LOCATION, str(exc)))
        return json_response(envelope(response.to_json(), StatusCode.SUCCESS))

    app.router.add_post(COMMANDS_PATH + "/{command}", post_command)


def module(handler: CommandHandler) -> OcpiModule:
    """Commands RECEIVER, answered by ``handler``."""
    return OcpiModule(
        ModuleID.COMMANDS,
        InterfaceRole.RECEIVER,
        COMMANDS_PATH,
        lambda app, _ctx: _add_routes(app, handler),
    )
