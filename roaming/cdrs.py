"""OCPI CDRs, CPO as Sender: building the immutable CDR, and the GET list.

Why the CDR id is fixed when the row is written: the POST to the eMSP may be retried
after an ambiguous failure, and the eMSP must be able to recognise the same CDR (the
outbox GETs it back or treats "already exists" as delivered). The row is written (by
:mod:`roaming.store.cdrs`) in the same transaction as the StopTransaction, so GET
``/cdrs`` serves it even while the push is still waiting in the outbox.

Periods and prices come from :mod:`roaming.costing`: a period starts at the real start
instant, PARKING_TIME is only time the EV was connected and not drawing energy, and a new
period begins wherever a tariff restriction changes the price.

CdrLocation is the location as it was at session start (the Session keeps a snapshot of
its EVSE, :mod:`roaming.sessions`), with ``address``/``city`` cut to the 45 characters
CdrLocation allows (Location allows 255). Nothing is made up: a CDR is only built once
its EVSE is known (a Session on an unmapped connector waits for one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from roaming.context import OcpiModule, partner_of
from roaming.costing import CostBreakdown, SessionTotals
from roaming.models import InterfaceRole, ModuleID, format_datetime
from roaming.pagination import PageParams, add_sender_list
from roaming.store.cdrs import CdrStore
from roaming.store.locations import EvseRef

CDRS_PATH = "/ocpi/cpo/2.2.1/cdrs"
NA = "#NA"


def _cdr_location(ref: EvseRef) -> dict[str, Any]:
    """The CdrLocation of the EVSE the Session charged at (its snapshot from the start)."""
    loc = ref.location
    out: dict[str, Any] = {"id": ref.location_id}
    if loc.get("name"):
        out["name"] = loc["name"]
    out["address"] = loc["address"][:45]
    out["city"] = loc["city"][:45]
    if loc.get("postal_code"):
        out["postal_code"] = loc["postal_code"]
    if loc.get("state"):
        out["state"] = loc["state"][:20]
    out.update(
        {
            "country": loc["country"],
            "coordinates": loc["coordinates"],
            "evse_uid": ref.evse_uid,
            "evse_id": ref.evse_id or NA,  # the EVSE has no eMI3 id: nothing real to send
            "connector_id": ref.connector["id"],
            "connector_standard": ref.connector["standard"],
            "connector_format": ref.connector["format"],
            "connector_power_type": ref.connector["power_type"],
        }
    )
    return out


def build_cdr(
    *,
    cdr_id: str,
    session: dict[str, Any],
    ref: EvseRef,
    totals: SessionTotals,
    breakdown: CostBreakdown | None,
    tariff: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The final CDR of a completed Session (``session`` is its OCPI JSON)."""
    tariff_id = tariff["id"] if tariff else None
    cdr: dict[str, Any] = {
        "country_code": session["country_code"],
        "party_id": session["party_id"],
        "id": cdr_id,
        "start_date_time": session["start_date_time"],
        "end_date_time": session["end_date_time"],
        "session_id": session["id"],
        "cdr_token": session["cdr_token"],
        "auth_method": session["auth_method"],
    }
    if session.get("authorization_reference"):
        cdr["authorization_reference"] = session["authorization_reference"]
    cdr["cdr_location"] = _cdr_location(ref)
    cdr["currency"] = session["currency"]
    if tariff:
        cdr["tariffs"] = [tariff]
    cdr["charging_periods"] = [p.to_json(tariff_id, format_datetime) for p in totals.periods]
    if breakdown is not None:
        cdr.update(breakdown.to_cdr_fields())
    # else: no tariff applies, so no total_cost: OCPI requires one, but 0 would say "free"
    # and any other number would be made up (docs/ocpi-modules.md, "CDRs without a tariff").
    cdr["total_energy"] = float(totals.total_energy_kwh)
    cdr["total_time"] = float(totals.total_hours)
    cdr["total_parking_time"] = float(totals.parking_hours)
    cdr["last_updated"] = format_datetime(now)
    return cdr


def _add_routes(app: web.Application, store: CdrStore) -> None:
    async def cdr_page(request: web.Request, page: PageParams) -> tuple[int, list[Any]]:
        return await store.page(
            partner_of(request).key, page.date_from, page.date_to, page.offset, page.limit
        )

    add_sender_list(app, CDRS_PATH, cdr_page)


def module(store: CdrStore) -> OcpiModule:
    """CDRs SENDER over ``store``."""
    return OcpiModule(
        ModuleID.CDRS, InterfaceRole.SENDER, CDRS_PATH, lambda app, _ctx: _add_routes(app, store)
    )
