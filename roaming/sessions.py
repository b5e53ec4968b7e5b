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

Where: the EVSE mapped to the charger's connector at start, kept as a snapshot with the
Session so the CDR shows the place as it was at start even if the EVSE is removed or
remapped before the stop (OCPI: CDR data is frozen at session start). Locations with
``publish = false`` are places like any other here: their Sessions and CDRs are sent.
A connector no EVSE maps: the Session waits for a location (:mod:`roaming.session_waiting`).

``authorization_reference`` is copied exactly as the eMSP issued it (original case).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog
from aiohttp import web

from roaming import cdrs, outbox
from roaming.context import OcpiModule, partner_of
from roaming.costing import Reading, Sample, SessionFacts, build_periods, cost_session
from roaming.models import InterfaceRole, ModuleID, format_datetime, parse_datetime
from roaming.pagination import PageParams, add_sender_list
from roaming.ports import SqlDatabase, SqlExecutor
from roaming.pricing_inputs import tariff_of, zone_of
from roaming.session_waiting import WaitingSessions, tariff_reason, waiting_reason
from roaming.store import cdrs as cdr_rows
from roaming.store.locations import EvseRef, LocationStore
from roaming.store.outbox import parse_stamp
from roaming.store.sessions import SessionStore

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

    def to_json(self) -> dict[str, Any]:
        """Kept with a Session that waits for a location, to build its CDR later (every
        costing fact, so the late CDR is priced exactly as a timely one)."""
        return {
            "transaction_id": self.transaction_id,
            "end": self.end.isoformat(),
            "meter_stop_wh": self.meter_stop_wh,
            "readings": [[r.timestamp.isoformat(), r.energy_wh] for r in self.readings],
            "start": self.start.isoformat() if self.start is not None else None,
            "power": [[p.timestamp.isoformat(), p.value] for p in self.power],
            "current": [[c.timestamp.isoformat(), c.value] for c in self.current],
            "suspended": [[a.isoformat(), b.isoformat()] for a, b in self.suspended],
            "status_reports": [t.isoformat() for t in self.status_reports],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SessionStop:
        at = datetime.fromisoformat
        start = d.get("start")
        return cls(
            transaction_id=int(d["transaction_id"]),
            end=at(d["end"]),
            meter_stop_wh=float(d["meter_stop_wh"]),
            readings=[Reading(at(t), float(wh)) for t, wh in d["readings"]],
            start=at(start) if start else None,
            power=[Sample(at(t), float(v)) for t, v in d.get("power", [])],
            current=[Sample(at(t), float(v)) for t, v in d.get("current", [])],
            suspended=[(at(a), at(b)) for a, b in d.get("suspended", [])],
            status_reports=[at(t) for t in d.get("status_reports", [])],
        )


class SessionService(WaitingSessions):
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

    async def _where(self, tx: SqlExecutor, ref: EvseRef) -> dict[str, Any]:
        """The Session fields that name where it charges, and its currency."""
        currency, _ = await self._currency_and_tariff(tx, ref)
        return {
            "location_id": ref.location_id,
            "evse_uid": ref.evse_uid,
            "connector_id": ref.connector["id"],
            "currency": currency,
        }

    async def start(self, tx: SqlExecutor, s: SessionStart, now: datetime) -> str:
        """Create the Session and queue its PUT; returns its id.

        On a connector no EVSE maps, the Session is kept waiting for a location: its PUT is
        held in the outbox (listed with the reason) until the connector is mapped.
        """
        existing = await self.store.id_for_transaction(tx, s.transaction_id)
        if existing is not None:
            return existing
        ref = await self.locations.evse_for(tx, s.charger_id, s.connector_id)
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
        meta: dict[str, Any] = {
            "meter_start_wh": s.meter_start_wh,
            "charger_id": s.charger_id,
            "connector_id": s.connector_id,
        }
        waiting = None
        if ref is None:
            waiting = waiting_reason(s.charger_id, s.connector_id)
        else:
            body.update(await self._where(tx, ref))
            meta["evse"] = ref.snapshot()
        body.update({"status": "ACTIVE", "last_updated": ts})
        await self.store.insert(
            tx,
            session_id=session_id,
            transaction_id=s.transaction_id,
            partner_key=s.partner_key,
            body={**body, "_meta": meta},
            now=now,
            waiting_for=waiting,
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
            held_reason=waiting,
        )
        fields = {
            "session_id": session_id,
            "transaction_id": s.transaction_id,
            "partner": s.partner_key,
            "authorization_reference": s.authorization_reference,
        }
        if waiting is not None:
            self._maybe_waiting = True
            log.warning(
                "ocpi.session_waiting_for_location",
                charge_point_id=s.charger_id,
                connector_id=s.connector_id,
                reason=waiting,
                hint="map this connector to an EVSE; the Session and its CDR are sent then",
                **fields,
            )
        else:
            log.info("ocpi.session_started", **fields)
        return session_id

    async def keep_tariff(self, tx: SqlExecutor, transaction_id: int) -> None:
        """Keep the tariff in force at the start with the Session: its CDR is priced with
        the tariff the driver accepted, even if the operator changes it while the car
        charges (OCPI: CDR data is frozen at session start). A Session waiting for a
        location gets its tariff when it is priced."""
        row = await self.store.by_transaction(tx, transaction_id)
        if row is None or row["status"] == "COMPLETED":
            return
        body = orjson.loads(row["body"])
        meta = body["_meta"]
        if "tariff" in meta or not meta.get("evse"):
            return
        _, tariff = await self._currency_and_tariff(tx, EvseRef.from_snapshot(meta["evse"]))
        if tariff is not None:
            meta["tariff"] = tariff
            await self.store.save_body(tx, row["id"], body)

    async def _queue_patch(
        self,
        tx: SqlExecutor,
        row: Any,
        patch: dict[str, Any],
        now: datetime,
        held_reason: str | None = None,
    ) -> int:
        return await outbox.enqueue(
            tx,
            partner_key=row["partner_key"],
            module=ModuleID.SESSIONS.value,
            method="PATCH",
            path=self._path(row["id"]),
            body=patch,
            object_key=f"session:{row['id']}",
            now=now,
            held_reason=held_reason or row["waiting_for"],
        )

    async def progress(
        self, tx: SqlExecutor, transaction_id: int, register_wh: float, now: datetime
    ) -> bool:
        """A new energy reading; returns True when a PATCH was queued (rate-limited)."""
        row = await self.store.by_transaction(tx, transaction_id)
        if row is None or row["status"] != "ACTIVE":
            return False
        body = orjson.loads(row["body"])
        if "kept_stop" in body["_meta"]:  # stopped, waiting for a location: nothing more to add
            return False
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

    async def _evse_of(
        self, tx: SqlExecutor, body: dict[str, Any], meta: dict[str, Any]
    ) -> EvseRef | None:
        """Where the Session charged, as it was at its start (its snapshot; for Sessions
        started before snapshots were kept, the EVSE row as recorded, even if REMOVED)."""
        snap = meta.get("evse")
        if snap:
            return EvseRef.from_snapshot(snap)
        if body.get("location_id") and body.get("evse_uid"):
            return await self.locations.evse_as_recorded(tx, body["location_id"], body["evse_uid"])
        return None

    async def stop(self, tx: SqlExecutor, s: SessionStop, now: datetime) -> str | None:
        """Complete the Session and create its CDR; returns the CDR id.

        None when there is no Session, or when it still waits for a location: then the
        stop is kept with the Session and its CDR is made when the connector is mapped.
        """
        row = await self.store.by_transaction(tx, s.transaction_id)
        if row is None:
            return None
        if row["status"] == "COMPLETED":
            return await cdr_rows.id_for_transaction(tx, s.transaction_id)
        if "kept_stop" in orjson.loads(row["body"])["_meta"]:
            return None  # already stopped, waiting for a location
        if row["waiting_for"] is not None and await self._release(tx, row, now):
            row = await self.store.by_transaction(tx, s.transaction_id)  # mapped meanwhile
        body = orjson.loads(row["body"])
        meta = body.pop("_meta")
        ref = None if row["waiting_for"] is not None else await self._evse_of(tx, body, meta)
        if ref is None:
            await self._hold_stop(tx, row, body, meta, s.to_json(), str(uuid.uuid4()), now)
            return None
        tariff = await self._tariff_now(tx, meta, ref)
        if tariff is None:  # a CDR must say what it costs: it waits for the operator's tariff
            # The eMSP learns at once that the charge ended (no total_cost: not priced);
            # the priced PATCH and the CDR follow when a tariff is attached.
            start = parse_datetime(body["start_date_time"])
            ended = {
                "status": "COMPLETED",
                "end_date_time": format_datetime(max(s.end, start)),
                "kwh": round(max(0.0, s.meter_stop_wh - meta["meter_start_wh"]) / 1000, 4),
                "last_updated": format_datetime(now),
            }
            body.update(ended)
            await self._queue_patch(tx, row, ended, now)
            await self._hold_stop(
                tx, row, body, meta, s.to_json(), str(uuid.uuid4()), now, tariff_reason(ref)
            )
            return None
        meta["tariff"] = tariff
        body["currency"] = tariff["currency"]
        patch, cdr = await self._complete(tx, row, body, meta, ref, s, now)
        await self._queue_patch(tx, row, patch, now)
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
        return str(cdr["id"])

    async def _complete(
        self,
        tx: SqlExecutor,
        row: Any,
        body: dict[str, Any],
        meta: dict[str, Any],
        ref: EvseRef,
        s: SessionStop,
        now: datetime,
        cdr_id: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Price and complete the Session, write its CDR row; returns (PATCH body, CDR)."""
        start = parse_datetime(body["start_date_time"])
        if s.start is not None and format_datetime(s.start) == body["start_date_time"]:
            start = s.start  # the same instant, with the fraction the stored form dropped
        end = max(s.end, start)
        tariff_json = meta.get("tariff")  # as it was at the start
        if tariff_json is None:
            _, tariff_json = await self._currency_and_tariff(tx, ref)
        tariff = tariff_of(tariff_json, s.transaction_id)
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
        place: EvseRef | None = ref  # the CDR shows the snapshot; an old one lacks the zone
        if "time_zone" not in ref.location:
            place = await self.locations.evse_as_recorded(tx, ref.location_id, ref.evse_uid)
        totals = build_periods(facts, tariff, zone_of(place or ref, s.transaction_id))
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
        cdr = cdrs.build_cdr(
            cdr_id=cdr_id or str(uuid.uuid4()),
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
        log.info(
            "ocpi.session_completed",
            session_id=row["id"],
            cdr_id=cdr["id"],
            transaction_id=s.transaction_id,
            partner=row["partner_key"],
            kwh=body["kwh"],
            total_cost=body.get("total_cost"),
        )
        return patch, cdr

    async def _complete_kept(
        self,
        tx: SqlExecutor,
        row: Any,
        body: dict[str, Any],
        meta: dict[str, Any],
        ref: EvseRef,
        stop: dict[str, Any],
        now: datetime,
        cdr_id: str,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The completion of a stop kept while the Session waited for its location."""
        return await self._complete(
            tx, row, body, meta, ref, SessionStop.from_json(stop), now, cdr_id
        )


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
