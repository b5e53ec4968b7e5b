"""Answers to every charge-point-initiated OCPP 1.6 message, each persisted before answering.

Payloads arrive schema-valid (camelCase, as on the wire); what the store keeps is handed
to it as :mod:`csms.domain` records (:mod:`csms.ocpp16.payloads` converts), and an
Authorize is answered from the payload directly. Facts that others care about
(transactions, meter values, connector status) are written in one store transaction
together with the :class:`~csms.ocpp16.events.ChargerEvents` callback.

Before a charger is Accepted (registration Pending or Rejected) it may only send
:data:`~csms.ocpp16.actions.ALLOWED_BEFORE_ACCEPTED`; anything else is answered
``SecurityError``. The registration is re-read from the store before refusing, so an
operator's accept takes effect without waiting for the next boot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from csms import datetimes, logs
from csms.authz import policy
from csms.authz.model import NEED_IO, AuthRequest, Decision, normalise
from csms.authz.ports import Authorizer
from csms.config import Config
from csms.datetimes import now_millis
from csms.domain.chargers import ChargerEvent
from csms.domain.transactions import MeterReport, TransactionStart
from csms.lifecycle import transition_problem
from csms.logs import mask
from csms.ocpp16 import errors, schemas
from csms.ocpp16.actions import ALLOWED_BEFORE_ACCEPTED
from csms.ocpp16.connection import RECEIVED_AT
from csms.ocpp16.datatransfer import VendorRegistry
from csms.ocpp16.events import ChargerEvents
from csms.ocpp16.framing import Prepared
from csms.ocpp16.payloads import (
    boot_info,
    samples_of,
    status_report,
    transaction_stop,
    unstorable_integers,
)
from csms.store.charger_writes import ChargerWrites
from csms.store.chargers import ChargerRepo
from csms.store.db import Database
from csms.store.events import ChargerEventRepo
from csms.store.meter_values import MeterValueRepo
from csms.store.status_writes import StatusWrites
from csms.store.transactions import TransactionRepo

if TYPE_CHECKING:
    from csms.ocpp16.connection import ChargerConnection

log = structlog.get_logger("csms.ocpp")
_booted = logs.HotEvent("csms.ocpp", "ocpp.boot")  # one per boot: cheap in connection storms

_ANSWERS_LIMIT = 10_000  # prepared Authorize answers kept before the memo starts over

# What an Authorize.conf depends on: status, parentIdTag, expiryDate (plain strings).
AnswerKey = tuple[str, str | None, str | None]

Handler = Callable[["ChargerConnection", dict[str, Any]], Awaitable[dict[str, Any]]]


def id_tag_info(
    status: str, parent_id_tag: str | None = None, expiry: str | None = None
) -> dict[str, Any]:
    info: dict[str, Any] = {"status": status}
    if expiry:
        info["expiryDate"] = expiry
    if parent_id_tag:
        info["parentIdTag"] = parent_id_tag
    return info


def _decision_info(d: Decision) -> dict[str, Any]:
    return id_tag_info(d.status.value, d.parent_id_tag, d.expiry_date if d.accepted else None)


class Handlers:
    def __init__(
        self,
        config: Config,
        db: Database,
        authorizer: Authorizer,
        events: ChargerEvents,
        vendors: VendorRegistry,
        writes: ChargerWrites | None = None,
    ) -> None:
        self.config = config
        self.writes = writes or ChargerWrites(db)
        self.statuses = StatusWrites(
            db,
            lambda tx, reports: self.events.statuses_changed(tx, reports),
            linger_s=config.server.status_linger_s,
        )
        self.db = db
        self.authorizer = authorizer
        self.events = events
        self.vendors = vendors
        self.chargers = ChargerRepo(db)
        self.transactions = TransactionRepo(db)
        self._answers: dict[AnswerKey, Prepared] = {}
        self._table: dict[str, Handler] = {
            "BootNotification": self.boot_notification,
            "Heartbeat": self.heartbeat,
            "StatusNotification": self.status_notification,
            "Authorize": self.authorize,
            "StartTransaction": self.start_transaction,
            "StopTransaction": self.stop_transaction,
            "MeterValues": self.meter_values,
            "DataTransfer": self.data_transfer,
            "FirmwareStatusNotification": self.firmware_status,
            "DiagnosticsStatusNotification": self.diagnostics_status,
        }

    def register(self, action: str, handler: Handler) -> None:
        """Answer ``action`` with ``handler`` (the security extensions join this way)."""
        self._table[action] = handler

    async def handle(self, conn: ChargerConnection, action: str, payload: dict[str, Any]) -> Any:
        if conn.registration_status != "Accepted" and action not in ALLOWED_BEFORE_ACCEPTED:
            status = await self.chargers.registration_status(conn.charger_id)
            conn.registration_status = status or "Rejected"
            if conn.registration_status != "Accepted":
                raise errors.OcppError(
                    errors.SECURITY_ERROR,
                    f"registration is {conn.registration_status}: {action} is refused until the "
                    "central system accepts this charge point",
                )
        return await self._table[action](conn, payload)

    def answer_now(
        self, conn: ChargerConnection, action: str, payload: dict[str, Any]
    ) -> Prepared | None:
        """:meth:`Dispatcher.answer_now`: an Authorize the authorizer decides from memory
        (``try_now``), answered without a task; None leaves it to :meth:`handle`. A charger
        that is not Accepted takes that path too, which re-reads its registration."""
        if action != "Authorize" or conn.registration_status != "Accepted":
            return None
        request = AuthRequest(
            conn.charger_id, payload["idTag"], action, received_at=RECEIVED_AT.get()
        )
        try:
            decision = self.authorizer.try_now(request)
        except Exception:  # as in _authorize: a failing authorizer means Invalid, logged
            log.exception("ocpp.authorizer_failed", id_tag=mask(request.uid), trigger=action)
            decision = policy.AUTHORIZER_FAILED
        if decision is NEED_IO:
            return None
        return self._authorize_answer(decision)

    def _authorize_answer(self, decision: Decision) -> Prepared:
        """The Authorize.conf of ``decision``, validated and encoded once per distinct
        answer (status, parentIdTag, expiryDate): a card presented again and again, by
        any charger, is answered from the same bytes. The expiry date changes once a
        second, so the memo holds few entries and is bounded anyway."""
        # An expiry date on a decision that is not Accepted (never built so) would only
        # split the memo, not change an answer: it is not masked here, to save the test.
        key = (decision.status._value_, decision.parent_id_tag, decision.expiry_date)
        prepared = self._answers.get(key)
        if prepared is not None:
            return prepared
        prepared = schemas.prepare_response("Authorize", {"idTagInfo": _decision_info(decision)})
        if len(self._answers) >= _ANSWERS_LIMIT:
            self._answers.clear()
        self._answers[key] = prepared
        return prepared

    async def _authorize(self, request: AuthRequest) -> Decision:
        """The Authorizer must not raise; if it does anyway, the token is Invalid (logged) so
        the message is still answered and a transaction still stored."""
        try:
            return await self.authorizer.decide(request)
        except Exception:
            log.exception(
                "ocpp.authorizer_failed", id_tag=mask(request.uid), trigger=request.trigger
            )
            return policy.AUTHORIZER_FAILED

    async def boot_notification(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        now = now_millis()
        status = await self.writes.boot(conn.charger_id, boot_info(p), now)
        conn.registration_status = status
        server = self.config.server
        interval = (
            server.heartbeat_interval_s if status == "Accepted" else server.pending_retry_interval_s
        )
        _booted(status=status, vendor=p["chargePointVendor"], model=p["chargePointModel"])
        return {"status": status, "currentTime": now, "interval": interval}

    async def heartbeat(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        now = now_millis()
        await self.writes.heartbeat(conn.charger_id, now)
        return {"currentTime": now}

    async def status_notification(
        self, conn: ChargerConnection, p: dict[str, Any]
    ) -> dict[str, Any]:
        now, report = now_millis(), status_report(p)
        previous = await self.statuses.record(conn.charger_id, report, now)
        problem = transition_problem(previous, report.status, report.connector_id)
        if problem:
            log.warning("ocpp.unexpected_status", connector_id=p["connectorId"], problem=problem)
        return {}

    async def authorize(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        decision = await self._authorize(
            AuthRequest(conn.charger_id, p["idTag"], "Authorize", received_at=RECEIVED_AT.get())
        )
        return {"idTagInfo": _decision_info(decision)}

    async def start_transaction(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        cid, connector, id_tag = conn.charger_id, int(p["connectorId"]), p["idTag"]
        norm, ts, meter_start = normalise(id_tag), p["timestamp"], int(p["meterStart"])
        earlier = await self.transactions.find_start(self.db, cid, connector, norm, ts, meter_start)
        if earlier is not None:
            log.info("ocpp.start_retry", transaction_id=earlier.id)
            return {
                "transactionId": earlier.id,
                "idTagInfo": id_tag_info(earlier.start_status, earlier.parent_id_tag),
            }
        d = await self._authorize(
            AuthRequest(
                cid,
                id_tag,
                "StartTransaction",
                connector,
                received_at=RECEIVED_AT.get(),
                started_offline=_started_before(ts, conn.info.connected_at),
            )
        )
        start = TransactionStart(
            charger_id=cid,
            connector_id=connector,
            id_tag=id_tag,
            id_tag_norm=norm,
            meter_start=meter_start,
            start_timestamp=ts,
            start_received_at=now_millis(),
            reservation_id=p.get("reservationId"),
            start_status=d.status.value,
            parent_id_tag=d.parent_id_tag,
            authorization_reference=d.authorization_reference,
            partner_id=d.partner_id,
            token_type=d.token_type,
            token_country_code=d.token_country_code,
            token_party_id=d.token_party_id,
            contract_id=d.contract_id,
            auth_method=d.auth_method.value if d.auth_method else None,
            token_uid=d.token_uid,
        )
        async with self.db.transaction() as tx:
            txn, created = await self.transactions.insert_start(tx, start)
            if created:
                await self.events.transaction_started(tx, txn)
        log.info(
            "ocpp.transaction_started",
            transaction_id=txn.id,
            connector_id=connector,
            id_tag=mask(id_tag),
            status=txn.start_status,
        )
        if not created:
            return {
                "transactionId": txn.id,
                "idTagInfo": id_tag_info(txn.start_status, txn.parent_id_tag),
            }
        return {"transactionId": txn.id, "idTagInfo": _decision_info(d)}

    async def stop_transaction(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        cid, now = conn.charger_id, now_millis()
        stop, raw = transaction_stop(p), unstorable_integers(p)
        tid = stop.transaction_id
        samples = samples_of(stop.transaction_data or [])
        kind: str | None = None
        async with self.db.transaction() as tx:
            txn = (
                None
                if "transactionId" in raw
                else await TransactionRepo.get_in(tx, tid, for_update=True)
            )
            if txn is None or txn.charger_id != cid:
                kind = "orphan"
            elif not txn.active:
                kind = "duplicate"
            if kind is not None:
                await TransactionRepo.add_stop_record(tx, cid, kind, stop, now, raw)
            else:
                assert txn is not None
                if samples:
                    await MeterValueRepo.add(
                        tx, cid, txn.connector_id, tid, "StopTransaction", samples, now
                    )
                    await self.events.meter_values(
                        tx, cid, MeterReport(txn.connector_id, tid, samples)
                    )
                txn = await TransactionRepo.stop(tx, stop, now, raw.get("meterStop"))
                await self.events.transaction_stopped(tx, txn)
        if kind is not None:
            log.warning(
                "ocpp.stop_unmatched", transaction_id=raw.get("transactionId", tid), kind=kind
            )
        else:
            log.info("ocpp.transaction_stopped", transaction_id=tid, reason=p.get("reason"))
        stop_tag = p.get("idTag")
        if stop_tag is None:
            return {}
        if txn is not None and kind is None and policy.stop_reuses_start(stop_tag, txn.id_tag_norm):
            # The token that started it: its start decision stands, no second lookup.
            return {"idTagInfo": id_tag_info(txn.start_status, txn.parent_id_tag)}
        d = await self._authorize(
            AuthRequest(cid, stop_tag, "StopTransaction", received_at=RECEIVED_AT.get())
        )
        return {"idTagInfo": _decision_info(d)}

    async def meter_values(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        raw_tid = p.get("transactionId")
        cid, connector = conn.charger_id, int(p["connectorId"])
        tid = int(raw_tid) if raw_tid is not None else None  # JSON 1.0 is a valid integer
        samples = samples_of(p["meterValue"])
        async with self.db.transaction() as tx:
            await MeterValueRepo.add(tx, cid, connector, tid, "MeterValues", samples, now_millis())
            await self.events.meter_values(tx, cid, MeterReport(connector, tid, samples))
        return {}

    async def data_transfer(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        async with self.db.transaction() as tx:
            await ChargerEventRepo.add(tx, _event(conn, "DataTransfer", p))
        return await self.vendors.dispatch(
            conn.charger_id, p["vendorId"], p.get("messageId"), p.get("data")
        )

    async def firmware_status(self, conn: ChargerConnection, p: dict[str, Any]) -> dict[str, Any]:
        async with self.db.transaction() as tx:
            await ChargerRepo.set_firmware_status(tx, conn.charger_id, p["status"])
            await ChargerEventRepo.add(tx, _event(conn, "FirmwareStatusNotification", p))
        return {}

    async def diagnostics_status(
        self, conn: ChargerConnection, p: dict[str, Any]
    ) -> dict[str, Any]:
        async with self.db.transaction() as tx:
            await ChargerRepo.set_diagnostics_status(tx, conn.charger_id, p["status"])
            await ChargerEventRepo.add(tx, _event(conn, "DiagnosticsStatusNotification", p))
        return {}


def _started_before(timestamp: str, connected_at: str) -> bool:
    """A transaction timestamped before this connection opened was started offline."""
    started, since = datetimes.parse(timestamp), datetimes.parse(connected_at)
    return started is not None and since is not None and started < since


def _event(conn: ChargerConnection, action: str, p: dict[str, Any]) -> ChargerEvent:
    """The message kept verbatim in the charger's event log, stamped now."""
    return ChargerEvent(conn.charger_id, action, p, now_millis())
