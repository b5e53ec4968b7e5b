"""OCPI Sessions, CPO as Sender: the Session lifecycle, its pushes, and the GET list.

Why the lifecycle lives here and not in the CSMS: what a Session looks like, when a PATCH
is due and what the CDR holds is OCPI knowledge; the CSMS wiring only translates OCPP
facts (a StartTransaction, meter readings, a StopTransaction) into calls of
:class:`SessionService`, inside the store transaction that persisted the fact, so every
push is in the outbox the moment the fact is committed.

Pushes (all through :mod:`roaming.outbox`, object key ``session:<id>``, in order):
start → PUT (status ACTIVE) · meter readings → PATCH ``kwh`` + ``last_updated``, at most
one per ``update_interval_s`` · stop → PATCH COMPLETED with ``end_date_time``, final
``kwh`` and ``total_cost`` · then the CDR POST (object key ``cdr:<id>``).

``authorization_reference`` is copied exactly as the eMSP issued it (original case).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import structlog
from aiohttp import web

from roaming import cdrs, outbox
from roaming.context import OcpiModule, partner_of
from roaming.costing import (
    Reading,
    Sample,
    SessionFacts,
    Tariff,
    build_periods,
    cost_session,
)
from roaming.models import (
    InterfaceRole,
    ModuleID,
    ValidationError,
    format_datetime,
    parse_datetime,
)
from roaming.pagination import PageParams, add_sender_list
from roaming.ports import SqlDatabase, SqlExecutor
from roaming.store import cdrs as cdr_rows
from roaming.store.locations import EvseRef, LocationStore
from roaming.store.outbox import parse_stamp
from roaming.store.sessions import SessionStore
from roaming.tariffs import tariff_from_json

log = structlog.get_logger("roaming.sessions")

SESSIONS_PATH = "/ocpi/cpo/2.2.1/sessions"


@dataclass(frozen=True, slots=True)
class CdrToken:
    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": self.uid,
            "type": self.type,
            "contract_id": self.contract_id,
        }


@dataclass(frozen=True, slots=True)
class SessionStart:
    """What the CSMS knows at StartTransaction about a roaming charge."""

    transaction_id: int
    partner_key: str
    start: datetime
    meter_start_wh: float
    token: CdrToken
    auth_method: str
    authorization_reference: str | None
    charger_id: str
    connector_id: int


@dataclass(frozen=True, slots=True)
class SessionStop:
    """What the charger reported about a finished charge (charger timestamps, aware UTC,
    sub-second precision kept). ``start``: the charger's start instant when known (the
    stored Session start is whole seconds); ``suspended``: intervals its status said the
    EV was connected and not drawing energy; ``power`` in W, ``current`` in A."""

    transaction_id: int
    end: datetime
    meter_stop_wh: float
    readings: Sequence[Reading]
    start: datetime | None = None
    power: Sequence[Sample] = ()
    current: Sequence[Sample] = ()
    suspended: Sequence[tuple[datetime, datetime]] = ()
    status_reports: Sequence[datetime] = ()


class SessionService:
    """Session rows, their pushes, and the CDR at the end; all writes on the caller's ``tx``."""

    def __init__(
        self,
        db: SqlDatabase,
        locations: LocationStore,
        *,
        country_code: str,
        party_id: str,
        currency: str = "EUR",
        update_interval_s: float = 60.0,
    ) -> None:
        self.store = SessionStore(db)
        self.locations = locations
        self.country_code = country_code
        self.party_id = party_id
        self.currency = currency
        self.update_interval_s = update_interval_s

    def _path(self, session_id: str) -> list[str]:
        return [self.country_code, self.party_id, session_id]

    async def _currency_and_tariff(
        self, tx: SqlExecutor, ref: EvseRef
    ) -> tuple[str, dict[str, Any] | None]:
        for tid in ref.connector.get("tariff_ids", []):
            t = await self.locations.tariff_json(tid, tx)
            if t is not None:
                return t["currency"], t
        return self.currency, None

    async def start(self, tx: SqlExecutor, s: SessionStart, now: datetime) -> str | None:
        """Create the Session and queue its PUT; None when the connector is not published."""
        existing = await self.store.id_for_transaction(tx, s.transaction_id)
        if existing is not None:
            return existing
        ref = await self.locations.evse_for(tx, s.charger_id, s.connector_id)
        if ref is None:
            log.error(
                "ocpi.session_unpublished_connector",
                charge_point_id=s.charger_id,
                connector_id=s.connector_id,
                transaction_id=s.transaction_id,
                partner=s.partner_key,
                hint="map this connector to an EVSE in the locations file",
            )
            return None
        currency, _ = await self._currency_and_tariff(tx, ref)
        session_id = str(uuid.uuid4())
        ts = format_datetime(now)
        body: dict[str, Any] = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "id": session_id,
            "start_date_time": format_datetime(s.start),
            "kwh": 0.0,
            "cdr_token": s.token.to_json(),
            "auth_method": s.auth_method,
        }
        if s.authorization_reference:
            body["authorization_reference"] = s.authorization_reference
        body.update(
            {
                "location_id": ref.location_id,
                "evse_uid": ref.evse_uid,
                "connector_id": ref.connector["id"],
                "currency": currency,
                "status": "ACTIVE",
                "last_updated": ts,
            }
        )
        meta = {
            "meter_start_wh": s.meter_start_wh,
            "charger_id": s.charger_id,
            "connector_id": s.connector_id,
        }
        await self.store.insert(
            tx,
            session_id=session_id,
            transaction_id=s.transaction_id,
            partner_key=s.partner_key,
            body={**body, "_meta": meta},
            now=now,
        )
        await outbox.enqueue(
            tx,
            partner_key=s.partner_key,
            module=ModuleID.SESSIONS.value,
            method="PUT",
            path=self._path(session_id),
            body=body,
            object_key=f"session:{session_id}",
            now=now,
        )
        log.info(
            "ocpi.session_started",
            session_id=session_id,
            transaction_id=s.transaction_id,
            partner=s.partner_key,
            authorization_reference=s.authorization_reference,
        )
        return session_id

    async def _queue_patch(
        self, tx: SqlExecutor, row: Any, patch: dict[str, Any], now: datetime
    ) -> None:
        await outbox.enqueue(
            tx,
            partner_key=row["partner_key"],
            module=ModuleID.SESSIONS.value,
            method="PATCH",
            path=self._path(row["id"]),
            body=patch,
            object_key=f"session:{row['id']}",
            now=now,
        )

    async def progress(
        self, tx: SqlExecutor, transaction_id: int, register_wh: float, now: datetime
    ) -> bool:
        """A new energy reading; returns True when a PATCH was queued (rate-limited)."""
        row = await self.store.by_transaction(tx, transaction_id)
        if row is None or row["status"] != "ACTIVE":
            return False
        body = orjson.loads(row["body"])
        kwh = round(max(0.0, register_wh - body["_meta"]["meter_start_wh"]) / 1000, 4)
        if kwh <= body["kwh"]:
            return False
        ts = format_datetime(now)
        body["kwh"] = kwh
        body["last_updated"] = ts
        due = True
        if row["last_patch_at"]:
            elapsed = (now - parse_stamp(row["last_patch_at"])).total_seconds()
            due = elapsed >= self.update_interval_s
        await self.store.save_progress(tx, row["id"], body, patched=due, now=now)
        if due:
            await self._queue_patch(tx, row, {"kwh": kwh, "last_updated": ts}, now)
        return due

    async def stop(self, tx: SqlExecutor, s: SessionStop, now: datetime) -> str | None:
        """Complete the Session and create its CDR; returns the CDR id (None if no session)."""
        row = await self.store.by_transaction(tx, s.transaction_id)
        if row is None:
            return None
        if row["status"] == "COMPLETED":
            return await cdr_rows.id_for_transaction(tx, s.transaction_id)
        body = orjson.loads(row["body"])
        meta = body.pop("_meta")
        ref = await self.locations.evse_for(tx, meta["charger_id"], meta["connector_id"])
        start = parse_datetime(body["start_date_time"])
        if s.start is not None and format_datetime(s.start) == body["start_date_time"]:
            start = s.start  # the same instant, with the fraction the stored form dropped
        end = max(s.end, start)
        tariff_json = None
        if ref is not None:
            _, tariff_json = await self._currency_and_tariff(tx, ref)
        tariff = _tariff(tariff_json, s.transaction_id)
        if tariff is None:
            tariff_json = None
        facts = SessionFacts(
            start,
            end,
            meta["meter_start_wh"],
            s.meter_stop_wh,
            s.readings,
            s.power,
            s.current,
            s.suspended,
            s.status_reports,
        )
        totals = build_periods(facts, tariff, _zone(ref, s.transaction_id))
        breakdown = cost_session(tariff, totals) if tariff else None
        ts = format_datetime(now)
        body.update(
            {
                "end_date_time": format_datetime(end),
                "kwh": float(totals.total_energy_kwh),
                "status": "COMPLETED",
                "last_updated": ts,
            }
        )
        patch: dict[str, Any] = {
            "status": "COMPLETED",
            "end_date_time": body["end_date_time"],
            "kwh": body["kwh"],
        }
        if breakdown is not None:  # absent is "not priced"; 0 would say "free"
            body["total_cost"] = patch["total_cost"] = breakdown.total.to_json()
        else:
            log.warning(
                "ocpi.session_without_tariff",
                session_id=row["id"],
                transaction_id=s.transaction_id,
                hint="attach a tariff to this connector (a free one is FLAT 0)",
            )
        patch["last_updated"] = ts
        await self.store.complete(tx, row["id"], {**body, "_meta": meta}, now)
        await self._queue_patch(tx, row, patch, now)
        cdr = cdrs.build_cdr(
            cdr_id=str(uuid.uuid4()),
            session=body,
            ref=ref,
            totals=totals,
            breakdown=breakdown,
            tariff=tariff_json,
            now=now,
        )
        await cdr_rows.insert(
            tx, cdr, transaction_id=s.transaction_id, partner_key=row["partner_key"]
        )
        await outbox.enqueue(
            tx,
            partner_key=row["partner_key"],
            module=ModuleID.CDRS.value,
            method="POST",
            path=[],
            body=cdr,
            object_key=f"cdr:{cdr['id']}",
            now=now,
        )
        log.info(
            "ocpi.session_completed",
            session_id=row["id"],
            cdr_id=cdr["id"],
            transaction_id=s.transaction_id,
            partner=row["partner_key"],
            kwh=body["kwh"],
            total_cost=body.get("total_cost"),
        )
        return str(cdr["id"])


def _tariff(body: dict[str, Any] | None, transaction_id: int) -> Tariff | None:
    """The stored tariff as costing input; a body that no longer validates prices nothing
    (and says so) rather than failing the charger's StopTransaction."""
    if body is None:
        return None
    try:
        return tariff_from_json(body)
    except ValidationError as exc:
        log.error(
            "ocpi.tariff_invalid",
            tariff_id=body.get("id"),
            transaction_id=transaction_id,
            error=str(exc),
        )
        return None


def _zone(ref: EvseRef | None, transaction_id: int) -> tzinfo:
    """The Location's time zone (tariff times of day are local); UTC, loudly, if unknown."""
    name = ref.location.get("time_zone") if ref is not None else None
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if ref is not None:
        log.error(
            "ocpi.location_time_zone_unknown",
            location_id=ref.location_id,
            time_zone=name,
            transaction_id=transaction_id,
            hint="set an IANA time_zone like Europe/Amsterdam on the location",
        )
    return UTC


def _add_routes(app: web.Application, service: SessionService) -> None:
    async def session_page(request: web.Request, page: PageParams) -> tuple[int, list[Any]]:
        return await service.store.page(
            partner_of(request).key, page.date_from, page.date_to, page.offset, page.limit
        )

    # date_from is REQUIRED on the Sessions Sender list (OCPI 2.2.1 Sessions, Sender GET).
    add_sender_list(app, SESSIONS_PATH, session_page, require_date_from=True)


def module(service: SessionService) -> OcpiModule:
    """Sessions SENDER over ``service``."""
    return OcpiModule(
        ModuleID.SESSIONS,
        InterfaceRole.SENDER,
        SESSIONS_PATH,
        lambda app, _ctx: _add_routes(app, service),
    )
