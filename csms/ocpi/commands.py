"""OCPI commands → OCPP calls through the charger gateway, and the CommandResult back to the eMSP.

Why the OCPP call runs in a background task: the eMSP gets its CommandResponse at once
(OCPI is asynchronous by design) and the charger may take up to ``command_timeout_s`` to
answer; the task POSTs the CommandResult to ``response_url`` when the charger answers or
sends ``TIMEOUT`` just before the timeout we promised.

START_SESSION / RESERVE_NOW tokens are pre-authorized with the roaming authorization
service (``preauthorize``): the charger's Authorize / StartTransaction for that idTag at that
charger is answered from the command for 15 minutes, without a real-time call, and the
transaction (hence Session and CDR) carries the command's authorization_reference with
auth_method COMMAND.

eMSP reservation ids are never sent to a charger: each (partner, reservation_id) maps to
our own AUTOINCREMENT id, so one eMSP cannot replace or cancel another's reservation.

Reservations become Sessions (:mod:`roaming.reservations`): when the charger accepts a
ReserveNow, the Session (status RESERVATION) is written with its PUT before the
CommandResult goes out; an accepted CancelReservation closes it. The token stays
pre-authorized until the reservation expires (at least 15 minutes, at most a day), so
the driver who arrives later is let in without a real-time call. Expiry is a periodic
check over the store (:meth:`CommandService.start`): restart-safe, since a reservation
that expired while we were down is found on the first check, and bounded (a batch of
at most ``EXPIRY_BATCH`` per check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from csms import logs
from csms.authz.model import AuthMethod, AuthStatus, Decision, Source
from csms.authz.ports import Preauthorizer
from csms.domain.commands import CommandOutcome, ReceivedCommand, ReservationRequest
from csms.ocpp16 import errors
from csms.ocpp16.gateway import ChargerGateway
from csms.store.commands import CommandRepo
from csms.store.db import Database
from roaming.client import OcpiClient
from roaming.commands import (
    CancelReservation,
    Command,
    CommandResponse,
    ReserveNow,
    ResponseType,
    ResultType,
    StartSession,
    StopSession,
    UnknownLocation,
    UnlockConnector,
)
from roaming.errors import RoamingError
from roaming.models import Token, format_datetime, norm, parse_datetime
from roaming.partners import Partner
from roaming.reservations import ReservationAccepted, ReservationService
from roaming.store import reservations as reservation_rows
from roaming.store.locations import EvseRef, LocationStore

log = logs.get("csms.ocpi.commands")

PREAUTH_TTL_S = 900.0
RESERVATION_PREAUTH_MAX_S = 86400.0
OCPP_ID_TAG_MAX = 20
EXPIRY_BATCH = 100
EXPIRY_JOB = "reservation_expiry"  # the job lock of the expiry check (one node runs it)

OnResult = Callable[[ResultType], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Job:
    """The charger call an accepted command makes, and what follows its result."""

    charger_id: str
    action: str
    payload: dict[str, Any]
    on_result: OnResult | None = None


def _result_of(action: str, status: str) -> ResultType:
    """The charger's answer → CommandResult (ONE table for every command)."""
    table = {
        ("RemoteStartTransaction", "Accepted"): ResultType.ACCEPTED,
        ("RemoteStopTransaction", "Accepted"): ResultType.ACCEPTED,
        ("UnlockConnector", "Unlocked"): ResultType.ACCEPTED,
        ("UnlockConnector", "UnlockFailed"): ResultType.FAILED,
        ("UnlockConnector", "NotSupported"): ResultType.NOT_SUPPORTED,
        ("ReserveNow", "Accepted"): ResultType.ACCEPTED,
        ("ReserveNow", "Occupied"): ResultType.EVSE_OCCUPIED,
        ("ReserveNow", "Faulted"): ResultType.EVSE_INOPERATIVE,
        ("ReserveNow", "Unavailable"): ResultType.EVSE_INOPERATIVE,
        ("CancelReservation", "Accepted"): ResultType.ACCEPTED,
        ("CancelReservation", "Rejected"): ResultType.UNKNOWN_RESERVATION,
    }
    return table.get((action, status), ResultType.REJECTED)


def _result_of_error(exc: errors.GatewayError) -> ResultType:
    if isinstance(exc, errors.CallTimeout):
        return ResultType.TIMEOUT
    if isinstance(exc, errors.CallErrorReceived) and exc.code in ("NotSupported", "NotImplemented"):
        return ResultType.NOT_SUPPORTED
    return ResultType.FAILED


class CommandService:
    """Implements ``roaming.commands.CommandHandler``."""

    def __init__(
        self,
        db: Database,
        locations: LocationStore,
        client: OcpiClient,
        *,
        gateway: ChargerGateway,
        preauthorizer: Preauthorizer | None,
        timeout_s: int = 60,
        reservations: ReservationService | None = None,
        notify: Callable[[], None] | None = None,
        expiry_check_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        exclusive: Callable[[str], AbstractAsyncContextManager[bool]] | None = None,
    ) -> None:
        self.exclusive = exclusive  # several nodes: one runs the expiry check at a time
        self.db = db
        self.store = CommandRepo(db)
        self.locations = locations
        self.client = client
        self.gateway = gateway
        self.preauthorizer = preauthorizer
        self.timeout_s = timeout_s
        self.reservations = reservations
        self.notify = notify or (lambda: None)
        self.expiry_check_s = expiry_check_s
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiry_task: asyncio.Task[None] | None = None

    @property
    def call_timeout_s(self) -> float:
        """Leave room to POST the result before the eMSP stops waiting."""
        return max(1.0, self.timeout_s * 0.8)

    # ---------------------------------------------------------------- entry

    async def handle(
        self, partner: Partner, command: Command, correlation_id: str | None
    ) -> CommandResponse:
        if isinstance(command, StartSession):
            response, job = await self._start(partner, command)
        elif isinstance(command, StopSession):
            response, job = await self._stop(partner, command)
        elif isinstance(command, UnlockConnector):
            response, job = await self._unlock(command)
        elif isinstance(command, ReserveNow):
            response, job = await self._reserve(partner, command)
        else:
            response, job = await self._cancel(partner, command)
        cmd_id = await self.store.add(
            ReceivedCommand(
                partner_key=partner.key,
                command=type(command).__name__,
                request=orjson.dumps(command, default=_plain).decode(),
                response=orjson.dumps(response.to_json()).decode(),
                created_at=format_datetime(datetime.now(UTC)),
            )
        )
        log.info(
            "ocpi.command",
            command=type(command).__name__,
            partner=partner.key,
            result=response.result.value,
            message=response.message,
            command_id=cmd_id,
        )
        if job is not None and response.result is ResponseType.ACCEPTED:
            task = asyncio.create_task(
                self._run(cmd_id, partner, command.response_url, job, correlation_id)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return response

    def _answer(self, result: ResponseType, message: str | None = None) -> CommandResponse:
        return CommandResponse(result, self.timeout_s, message)

    # ---------------------------------------------------------------- commands

    async def _target(
        self, location_id: str, evse_uid: str | None, connector_id: str | None = None
    ) -> EvseRef | str:
        """The EVSE addressed, or a reason to reject; UnknownLocation for a bad location."""
        if not await self.locations.location_exists(location_id):
            raise UnknownLocation(f"unknown location {location_id!r}")
        refs = await self.locations.evse_by_uid(location_id, evse_uid)
        if not refs:
            return f"unknown EVSE {evse_uid!r} at location {location_id!r}"
        if connector_id is not None and norm(refs[0].connector["id"]) != norm(connector_id):
            return f"unknown connector {connector_id!r} at EVSE {evse_uid!r}"
        if evse_uid is None:
            free = [r for r in refs if r.status == "AVAILABLE"]
            return (free or refs)[0]
        return refs[0]

    def _own_token(self, partner: Partner, token: Token) -> str | None:
        if not partner.owns(token.country_code, token.party_id):
            return "token is not issued by the calling party"
        if len(token.uid) > OCPP_ID_TAG_MAX:
            return f"token uid longer than {OCPP_ID_TAG_MAX} characters cannot be an OCPP 1.6 idTag"
        return None

    def _preauthorize(
        self,
        partner: Partner,
        ref: EvseRef,
        token: Token,
        reference: str | None,
        ttl_s: float = PREAUTH_TTL_S,
    ) -> None:
        service = self.preauthorizer
        if service is None:
            log.warning("ocpi.command_no_authorization_service", charge_point_id=ref.charger_id)
            return
        decision = Decision(
            status=AuthStatus.ACCEPTED,
            source=Source.COMMAND,
            reason="pre-authorized by OCPI command",
            partner_id=partner.key,
            token_type=token.type.value,
            token_country_code=token.country_code,
            token_party_id=token.party_id,
            contract_id=token.contract_id,
            token_uid=token.uid,
            authorization_reference=reference,
            auth_method=AuthMethod.COMMAND,
        )
        service.preauthorize(ref.charger_id, token.uid, decision, ttl_s=ttl_s)

    async def _connected(self, charger_id: str) -> bool:
        """Connected to this node or, with several nodes, to another live one."""
        return await self.gateway.reachable(charger_id)

    async def _start(self, partner: Partner, cmd: StartSession) -> tuple[CommandResponse, Any]:
        reason = self._own_token(partner, cmd.token)
        if reason:
            return self._answer(ResponseType.REJECTED, reason), None
        target = await self._target(cmd.location_id, cmd.evse_uid, cmd.connector_id)
        if isinstance(target, str):
            return self._answer(ResponseType.REJECTED, target), None
        if not await self._connected(target.charger_id):
            return self._answer(ResponseType.REJECTED, "charge point is offline"), None
        self._preauthorize(partner, target, cmd.token, cmd.authorization_reference)
        payload = {"connectorId": target.connector_id, "idTag": cmd.token.uid}
        return self._answer(ResponseType.ACCEPTED), _Job(
            target.charger_id, "RemoteStartTransaction", payload
        )

    async def _stop(self, partner: Partner, cmd: StopSession) -> tuple[CommandResponse, Any]:
        target = await self.store.session_target(cmd.session_id)
        if target is None:
            return self._answer(ResponseType.UNKNOWN_SESSION, "unknown session"), None
        if norm(target.partner_key) != norm(partner.key):
            return self._answer(ResponseType.REJECTED, "session is not of the calling party"), None
        if target.status != "ACTIVE":
            return self._answer(ResponseType.REJECTED, "session is already completed"), None
        payload = {"transactionId": target.transaction_id}
        return self._answer(ResponseType.ACCEPTED), _Job(
            target.charger_id, "RemoteStopTransaction", payload
        )

    async def _unlock(self, cmd: UnlockConnector) -> tuple[CommandResponse, Any]:
        target = await self._target(cmd.location_id, cmd.evse_uid, cmd.connector_id)
        if isinstance(target, str):
            return self._answer(ResponseType.REJECTED, target), None
        if not await self._connected(target.charger_id):
            return self._answer(ResponseType.REJECTED, "charge point is offline"), None
        return self._answer(ResponseType.ACCEPTED), _Job(
            target.charger_id, "UnlockConnector", {"connectorId": target.connector_id}
        )

    async def _reserve(self, partner: Partner, cmd: ReserveNow) -> tuple[CommandResponse, Any]:
        reason = self._own_token(partner, cmd.token)
        if reason:
            return self._answer(ResponseType.REJECTED, reason), None
        target = await self._target(cmd.location_id, cmd.evse_uid)
        if isinstance(target, str):
            return self._answer(ResponseType.REJECTED, target), None
        if not await self._connected(target.charger_id):
            return self._answer(ResponseType.REJECTED, "charge point is offline"), None
        expiry = parse_datetime(cmd.expiry_date)
        now = self.clock()
        if expiry <= now:
            return self._answer(ResponseType.REJECTED, "expiry_date is in the past"), None
        our_id = await self._reservation_id(partner, cmd.reservation_id, target, cmd.location_id)
        ttl = min(max(PREAUTH_TTL_S, (expiry - now).total_seconds()), RESERVATION_PREAUTH_MAX_S)
        self._preauthorize(partner, target, cmd.token, cmd.authorization_reference, ttl)
        payload = {
            "connectorId": target.connector_id,
            "expiryDate": format_datetime(expiry),
            "idTag": cmd.token.uid,
            "reservationId": our_id,
        }
        accepted = ReservationAccepted(
            reservation_id=our_id,
            partner_key=partner.key,
            token=cmd.token.to_json(),
            authorization_reference=cmd.authorization_reference,
            expiry_date=expiry,
            charger_id=target.charger_id,
            connector_id=target.connector_id,
        )

        async def on_result(result: ResultType) -> None:
            await self._reserve_answered(accepted, result)

        return self._answer(ResponseType.ACCEPTED), _Job(
            target.charger_id, "ReserveNow", payload, on_result
        )

    async def _reserve_answered(self, r: ReservationAccepted, result: ResultType) -> None:
        """The Session a reservation is (RESERVATION, PUT) once the charger accepted it."""
        if self.reservations is None:
            return
        async with self.db.transaction() as tx:
            if result is ResultType.ACCEPTED:
                await self.reservations.accepted(tx, r, self.clock())
            else:
                await reservation_rows.refused(tx, r.reservation_id)
        self.notify()

    async def _reservation_id(
        self, partner: Partner, reservation_id: str, ref: EvseRef, location_id: str
    ) -> int:
        return await self.store.reserve(
            ReservationRequest(
                partner_key=partner.key,
                reservation_id=reservation_id,
                reservation_id_norm=norm(reservation_id),
                charger_id=ref.charger_id,
                connector_id=ref.connector_id,
                location_id=location_id,
                created_at=format_datetime(datetime.now(UTC)),
            )
        )

    async def _cancel(
        self, partner: Partner, cmd: CancelReservation
    ) -> tuple[CommandResponse, Any]:
        reservation = await self.store.reservation(partner.key, norm(cmd.reservation_id))
        if reservation is None:
            return self._answer(ResponseType.REJECTED, "unknown reservation"), None
        if self.reservations is not None:
            status = await self.reservations.status(reservation.id)
            if status == "used":
                return self._answer(
                    ResponseType.REJECTED, "reservation is in use by a charge"
                ), None
            if status in ("cancelled", "expired", "rejected"):
                return self._answer(ResponseType.REJECTED, f"reservation is {status}"), None
        if not await self._connected(reservation.charger_id):
            return self._answer(ResponseType.REJECTED, "charge point is offline"), None
        our_id = reservation.id

        async def on_result(result: ResultType) -> None:
            if result is ResultType.ACCEPTED and self.reservations is not None:
                async with self.db.transaction() as tx:
                    await self.reservations.end(tx, our_id, expired=False, now=self.clock())
                self.notify()

        return self._answer(ResponseType.ACCEPTED), _Job(
            reservation.charger_id, "CancelReservation", {"reservationId": our_id}, on_result
        )

    # ---------------------------------------------------------------- background

    async def _run(
        self,
        cmd_id: int,
        partner: Partner,
        response_url: str,
        job: _Job,
        correlation_id: str | None,
    ) -> None:
        charger_id, action, payload = job.charger_id, job.action, job.payload
        error: str | None = None
        try:
            answer = await self.gateway.call(
                charger_id, action, payload, timeout=self.call_timeout_s
            )
            result = _result_of(action, str(answer.get("status", "")))
        except errors.GatewayError as exc:
            result = _result_of_error(exc)
            error = str(exc)
        except Exception as exc:  # a bug must still end in a CommandResult
            log.exception("ocpi.command_call_crashed", command_id=cmd_id)
            result, error = ResultType.FAILED, repr(exc)
        if job.on_result is not None:
            try:
                await job.on_result(result)
            except Exception:  # the eMSP still gets its CommandResult
                log.exception("ocpi.command_followup_failed", command_id=cmd_id, action=action)
        body: dict[str, Any] = {"result": result.value}
        if error:
            body["message"] = [{"language": "en", "text": error[:512]}]
        delivered = await self._post_result(partner, response_url, body, correlation_id)
        await self.store.finish(
            cmd_id,
            CommandOutcome(result.value, delivered, error, format_datetime(datetime.now(UTC))),
        )
        log.info(
            "ocpi.command_result",
            command_id=cmd_id,
            action=action,
            charge_point_id=charger_id,
            result=result.value,
            delivered=delivered,
            error=error,
        )

    async def _post_result(
        self, partner: Partner, url: str, body: dict[str, Any], correlation_id: str | None
    ) -> bool:
        """One retry on an unreachable eMSP: OCPI has no retries, the eMSP relies on timeout."""
        for attempt in (1, 2):
            try:
                await self.client.request(
                    "POST", partner, url, json=body, correlation_id=correlation_id
                )
                return True
            except RoamingError as exc:
                log.warning(
                    "ocpi.command_result_failed", attempt=attempt, error=exc.message, url=url
                )
                if attempt == 1:
                    await asyncio.sleep(0.5)
        return False

    # ---------------------------------------------------------------- expiry

    def start(self) -> None:
        """Run the periodic expiry check (the first one at once: restart-safe)."""
        if self.reservations is not None and self._expiry_task is None:
            self._expiry_task = asyncio.create_task(self._expiry_loop())

    async def _expiry_loop(self) -> None:
        while True:
            try:
                if self.exclusive is None:
                    await self.expire_due()
                else:
                    async with self.exclusive(EXPIRY_JOB) as mine:
                        if mine:
                            await self.expire_due()
            except Exception:
                log.exception("ocpi.reservation_expiry_failed")
            await asyncio.sleep(self.expiry_check_s)

    async def expire_due(self) -> int:
        """Close every reservation past its expiry (in batches); returns how many."""
        service = self.reservations
        if service is None:
            return 0
        closed = 0
        while True:
            now = self.clock()
            due = await service.due(now, EXPIRY_BATCH)
            for reservation_id in due:
                async with self.db.transaction() as tx:
                    await service.end(tx, reservation_id, expired=True, now=now)
                closed += 1
            if due:
                self.notify()
                log.info("ocpi.reservations_expired", count=len(due))
            if len(due) < EXPIRY_BATCH:
                return closed

    async def close(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            await asyncio.gather(self._expiry_task, return_exceptions=True)
            self._expiry_task = None
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if hasattr(obj, "__slots__"):
        return {k: getattr(obj, k) for k in obj.__slots__}
    raise TypeError(type(obj).__name__)
