"""Reservations as OCPI Sessions (Sessions and Commands modules, CPO side).

Why a Session per reservation: OCPI 2.2.1 says a successful RESERVE_NOW creates a Session
with status ``RESERVATION``; it becomes ``ACTIVE`` when the reserved EV starts charging,
otherwise it ends ``COMPLETED``, and an unused reservation may cost (a CDR for the
reservation only). The lifecycle, all writes on the caller's transaction, all pushes
through the outbox (object key ``session:<id>``, so they stay in order):

* the charger accepted ReserveNow → PUT Session ``RESERVATION`` (start = now, kWh 0,
  ``auth_method`` COMMAND, the eMSP's token as ``cdr_token``); the same reservation
  requested again (the eMSP's "replace") → PUT of the same Session, moved;
* a StartTransaction carrying our reservation id, or the reserved token on the reserved
  connector, continues that Session: PATCH ``ACTIVE`` with the charge's start; from then
  on it is an ordinary Session (meter PATCHes, COMPLETED and the CDR of the charge). No
  second Session;
* the reservation expires (``expiry_date`` passed, found by a periodic check) or is
  cancelled (CANCEL_RESERVATION accepted by the charger) without a charge → PATCH
  ``COMPLETED`` with ``end_date_time``; when the connector's tariff prices reservations
  a CDR for the reservation fee follows (:func:`reservation_fee`).

Fee rule (documented in docs/ocpi-modules.md): tariff elements whose restrictions carry
``reservation`` price a reservation that ends without a charge: for an expired one, per
dimension the first ``RESERVATION_EXPIRES`` element, else the first ``RESERVATION``
element; for a cancelled one, the first ``RESERVATION`` element. FLAT is a fixed fee,
TIME is priced on the hours reserved (start to cancellation or expiry); other dimensions
do not apply to a reservation. No such element, or no tariff → no fee: the Session ends
without ``total_cost`` and no CDR is made up (a zero-cost CDR would claim "free"). A
reservation used by a charge is not charged separately: the charge's tariff applies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import structlog

from roaming import cdrs, outbox
from roaming.costing import (
    CostBreakdown,
    PriceComponent,
    SessionTotals,
    Tariff,
    TariffDimension,
    TariffElement,
    cost,
)
from roaming.models import ModuleID, format_datetime, parse_datetime
from roaming.ports import SqlDatabase, SqlExecutor
from roaming.sessions import SessionService, SessionStart
from roaming.store import cdrs as cdr_rows
from roaming.store import reservations as rows
from roaming.store.locations import EvseRef

log = structlog.get_logger("roaming.reservations")

RESERVATION = "RESERVATION"
RESERVATION_EXPIRES = "RESERVATION_EXPIRES"
_FEE_DIMENSIONS = (TariffDimension.FLAT, TariffDimension.TIME)


def reservation_fee(
    tariff: dict[str, Any] | None, *, hours: Decimal, expired: bool
) -> CostBreakdown | None:
    """What a reservation that ended without a charge costs under ``tariff`` (OCPI JSON),
    or None when the tariff does not price reservations (rule in the module doc)."""
    if not tariff:
        return None
    kinds = (RESERVATION_EXPIRES, RESERVATION) if expired else (RESERVATION,)
    chosen: list[PriceComponent] = []
    for dim in _FEE_DIMENSIONS:
        for kind in kinds:
            comp = _first_component(tariff, dim, kind)
            if comp is not None:
                chosen.append(comp)
                break
    if not chosen:
        return None
    priced = Tariff(
        country_code=tariff["country_code"],
        party_id=tariff["party_id"],
        id=tariff["id"],
        currency=tariff["currency"],
        elements=(TariffElement(tuple(chosen)),),
    )
    return cost(priced, energy_kwh=0, charging_hours=max(hours, Decimal(0)), parking_hours=0)


def _first_component(
    tariff: dict[str, Any], dim: TariffDimension, kind: str
) -> PriceComponent | None:
    for element in tariff.get("elements", []):
        if (element.get("restrictions") or {}).get("reservation") != kind:
            continue
        for c in element.get("price_components", []):
            if c.get("type") == dim.value:
                vat = c.get("vat")
                return PriceComponent(
                    dim,
                    Decimal(str(c["price"])),
                    Decimal(str(vat)) if vat is not None else None,
                    int(c.get("step_size", 1)),
                )
    return None


@dataclass(frozen=True, slots=True)
class ReservationAccepted:
    """A ReserveNow the charger accepted: our id, the eMSP's token and expiry."""

    reservation_id: int
    partner_key: str
    token: dict[str, Any]  # the eMSP's Token (OCPI JSON)
    authorization_reference: str | None
    expiry_date: datetime
    charger_id: str
    connector_id: int


def _cdr_token(token: dict[str, Any]) -> dict[str, Any]:
    return {k: token[k] for k in ("country_code", "party_id", "uid", "type", "contract_id")}


class ReservationService:
    """Reservation Sessions on top of :class:`SessionService` (same store, same pushes)."""

    def __init__(self, db: SqlDatabase, sessions: SessionService) -> None:
        self.db = db
        self.sessions = sessions

    def _path(self, session_id: str) -> list[str]:
        return [self.sessions.country_code, self.sessions.party_id, session_id]

    async def _push(
        self, tx: SqlExecutor, partner_key: str, method: str, sid: str, body: dict[str, Any]
    ) -> None:
        await outbox.enqueue(
            tx,
            partner_key=partner_key,
            module=ModuleID.SESSIONS.value,
            method=method,
            path=self._path(sid),
            body=body,
            object_key=f"session:{sid}",
        )

    async def _tariff(self, tx: SqlExecutor, ref: EvseRef | None) -> dict[str, Any] | None:
        for tid in ref.connector.get("tariff_ids", []) if ref is not None else []:
            t = await self.sessions.locations.tariff_json(tid, tx)
            if t is not None:
                return t
        return None

    def _where(self, ref: EvseRef, currency: str) -> dict[str, Any]:
        return {
            "location_id": ref.location_id,
            "evse_uid": ref.evse_uid,
            "connector_id": ref.connector["id"],
            "currency": currency,
        }

    # ------------------------------------------------------------------ accepted

    async def accepted(self, tx: SqlExecutor, r: ReservationAccepted, now: datetime) -> str | None:
        """The Session of a reservation the charger accepted (PUT); None when the
        connector is not published (nothing to put in ``location_id``)."""
        await rows.mark_reserved(
            tx,
            r.reservation_id,
            expiry_date=format_datetime(r.expiry_date),
            token=r.token,
            authorization_reference=r.authorization_reference,
        )
        ref = await self.sessions.locations.evse_for(tx, r.charger_id, r.connector_id)
        if ref is None:
            log.error(
                "ocpi.reservation_unpublished_connector",
                charge_point_id=r.charger_id,
                connector_id=r.connector_id,
                reservation_id=r.reservation_id,
            )
            return None
        tariff = await self._tariff(tx, ref)
        currency = tariff["currency"] if tariff else self.sessions.currency
        ts = format_datetime(now)
        existing = await rows.session_of(tx, r.reservation_id)
        meta = {
            "meter_start_wh": 0.0,
            "charger_id": r.charger_id,
            "connector_id": r.connector_id,
            "reservation_id": r.reservation_id,
            "evse": ref.snapshot(),  # the place as reserved (CDR data frozen at the start)
        }
        if existing is not None:
            body = orjson.loads(existing["body"])
            body.pop("_meta", None)
            body.update(self._where(ref, currency))
            body["last_updated"] = ts
            await rows.replace_session(tx, existing["id"], {**body, "_meta": meta}, now)
            await self._push(tx, r.partner_key, "PUT", existing["id"], body)
            return str(existing["id"])
        sid = str(uuid.uuid4())
        body = {
            "country_code": self.sessions.country_code,
            "party_id": self.sessions.party_id,
            "id": sid,
            "start_date_time": ts,
            "kwh": 0.0,
            "cdr_token": _cdr_token(r.token),
            "auth_method": "COMMAND",
        }
        if r.authorization_reference:
            body["authorization_reference"] = r.authorization_reference
        body.update(self._where(ref, currency))
        body.update({"status": RESERVATION, "last_updated": ts})
        await rows.insert_session(
            tx,
            session_id=sid,
            reservation_id=r.reservation_id,
            partner_key=r.partner_key,
            body={**body, "_meta": meta},
            now=now,
        )
        await rows.set_session(tx, r.reservation_id, sid)
        await self._push(tx, r.partner_key, "PUT", sid, body)
        log.info(
            "ocpi.reservation_session",
            session_id=sid,
            reservation_id=r.reservation_id,
            partner=r.partner_key,
        )
        return sid

    # ------------------------------------------------------------------ used

    async def use(
        self, tx: SqlExecutor, s: SessionStart, reservation_id: int | None, now: datetime
    ) -> str | None:
        """Continue the reservation's Session with this charge (PATCH ACTIVE); None when
        the charge uses no live reservation of its partner (a new Session is due)."""
        existing = await self.sessions.store.id_for_transaction(tx, s.transaction_id)
        if existing is not None:
            return existing
        res = None
        if reservation_id is not None:
            res = await rows.reservation(tx, reservation_id)
        if res is None or res["status"] != "reserved":
            res = await rows.reserved_at(tx, s.charger_id, s.connector_id, s.token.uid)
        if res is None or res["status"] != "reserved":
            return None
        if res["partner_key"].upper() != s.partner_key.upper():
            return None  # another eMSP's token: the reservation is not this charge's
        row = await rows.session_of(tx, int(res["id"]))
        if row is None:
            return None
        body = orjson.loads(row["body"])
        meta = body.pop("_meta")
        ts = format_datetime(now)
        patch: dict[str, Any] = {
            "status": "ACTIVE",
            "start_date_time": format_datetime(s.start),
            "auth_method": s.auth_method,
        }
        if s.authorization_reference:
            patch["authorization_reference"] = s.authorization_reference
        ref = await self.sessions.locations.evse_for(tx, s.charger_id, s.connector_id)
        if ref is not None:
            meta["evse"] = ref.snapshot()  # where the charge is, as it is at its start
            if (s.charger_id, s.connector_id) != (meta["charger_id"], meta["connector_id"]):
                tariff = await self._tariff(tx, ref)
                currency = tariff["currency"] if tariff else self.sessions.currency
                patch.update(self._where(ref, currency))
        meta.pop("tariff", None)  # the charge's tariff is kept at its start (keep_tariff)
        patch["last_updated"] = ts
        body.update(patch)
        meta.update(
            meter_start_wh=s.meter_start_wh, charger_id=s.charger_id, connector_id=s.connector_id
        )
        await rows.activate_session(tx, row["id"], s.transaction_id, {**body, "_meta": meta}, now)
        await rows.finish(tx, int(res["id"]), "used", now)
        await self._push(tx, row["partner_key"], "PATCH", row["id"], patch)
        log.info(
            "ocpi.reservation_used",
            session_id=row["id"],
            reservation_id=int(res["id"]),
            transaction_id=s.transaction_id,
        )
        return str(row["id"])

    # ------------------------------------------------------------------ ended

    async def end(
        self, tx: SqlExecutor, reservation_id: int, *, expired: bool, now: datetime
    ) -> str | None:
        """Close an unused reservation (expired or cancelled): PATCH COMPLETED, then the
        fee's CDR when the tariff prices it. Returns the CDR id (None: no fee, or the
        reservation was not live any more)."""
        res = await rows.reservation(tx, reservation_id)
        if res is None or res["status"] not in ("reserved", "requested"):
            return None
        await rows.finish(tx, reservation_id, "expired" if expired else "cancelled", now)
        row = await rows.session_of(tx, reservation_id)
        if row is None:
            return None
        body = orjson.loads(row["body"])
        meta = body.pop("_meta")
        start = parse_datetime(body["start_date_time"])
        end = now
        if expired and res["expiry_date"]:
            end = min(now, max(start, parse_datetime(res["expiry_date"])))
        snap = meta.get("evse")
        ref = (
            EvseRef.from_snapshot(snap)
            if snap
            else await self.sessions.locations.evse_for(
                tx, meta["charger_id"], meta["connector_id"]
            )
        )
        tariff = await self._tariff(tx, ref)
        hours = Decimal(str(round((end - start).total_seconds() / 3600, 4)))
        fee = reservation_fee(tariff, hours=hours, expired=expired)
        ts = format_datetime(now)
        patch: dict[str, Any] = {"status": "COMPLETED", "end_date_time": format_datetime(end)}
        if fee is not None:
            patch["total_cost"] = fee.total.to_json()
        patch["last_updated"] = ts
        body.update(patch)
        await self.sessions.store.complete(tx, row["id"], {**body, "_meta": meta}, now)
        await self._push(tx, row["partner_key"], "PATCH", row["id"], patch)
        log.info(
            "ocpi.reservation_ended",
            session_id=row["id"],
            reservation_id=reservation_id,
            expired=expired,
            fee=patch.get("total_cost"),
        )
        if fee is None or tariff is None:
            return None
        if ref is None:  # cannot happen for a Session made by accepted(); never invent a place
            log.error("ocpi.reservation_fee_without_place", reservation_id=reservation_id)
            return None
        cdr = self._fee_cdr(body, ref, tariff, fee, hours, now)
        await cdr_rows.insert(
            tx, cdr, transaction_id=-reservation_id, partner_key=row["partner_key"]
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
        return str(cdr["id"])

    def _fee_cdr(
        self,
        session: dict[str, Any],
        ref: EvseRef,
        tariff: dict[str, Any],
        fee: CostBreakdown,
        hours: Decimal,
        now: datetime,
    ) -> dict[str, Any]:
        """The CDR of a reservation without a charge: one RESERVATION_TIME period, no
        energy, the fee as ``total_reservation_cost`` (and ``total_cost``)."""
        none = SessionTotals((), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
        cdr = cdrs.build_cdr(
            cdr_id=str(uuid.uuid4()),
            session=session,
            ref=ref,
            totals=none,
            breakdown=None,
            tariff=tariff,
            now=now,
        )
        cdr["charging_periods"] = [
            {
                "start_date_time": session["start_date_time"],
                "dimensions": [{"type": "RESERVATION_TIME", "volume": float(hours)}],
                "tariff_id": tariff["id"],
            }
        ]
        cdr["total_cost"] = fee.total.to_json()
        cdr["total_reservation_cost"] = fee.total.to_json()
        return cdr

    # ------------------------------------------------------------------ expiry

    async def due(self, now: datetime, limit: int = 100) -> list[int]:
        """Reservations past expiry that are still live (bounded batch, oldest first)."""
        return await rows.due(self.db, format_datetime(now), limit)

    async def status(self, reservation_id: int) -> str | None:
        return await rows.status_of(self.db, reservation_id)
