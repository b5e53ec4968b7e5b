"""Pure costing: a Tariff and what one session did in, charging periods and prices out.

Why pure: the CDR is the only billing-relevant OCPI object and it is immutable once sent,
so the arithmetic must be checkable in isolation (table tests, no clock, no store). The
caller hands in :class:`SessionFacts` (start/end with sub-second precision, register,
power and current readings, the intervals the charger's status said the EV was not
drawing energy), the tariff and the Location's time zone; :func:`build_periods` answers
with the periods, :func:`cost_session` with a :class:`CostBreakdown`.

Decisions the spec leaves open (documented in docs/ocpi-modules.md):

* Money is computed in :class:`~decimal.Decimal`; each ``total_*_cost`` part is rounded
  half-up to 2 decimals and ``total_cost`` is the sum of the rounded parts, so an eMSP
  adding up the parts gets exactly our total.
* ``vat`` absent means "no VAT applies" (incl = excl); ``vat = 0`` is the same number.
* ``step_size`` is applied once to the session totals (ENERGY in Wh; TIME/PARKING_TIME in
  seconds, to the parking duration when the tariff has both), never per period.
* PARKING_TIME is time the EV is connected and not drawing energy per the charger's own
  status or power readings (:mod:`roaming.costing.timeline`), never "the register did
  not move".
* Per dimension, the first element that prices it and whose restrictions hold applies
  (:mod:`roaming.costing.periods`); FLAT is billed once per session.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from roaming.costing.model import (
    WEEKDAYS,
    CostBreakdown,
    Moment,
    Price,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffDimension,
    TariffElement,
    dec,
)
from roaming.costing.periods import ChargingPeriod, SessionTotals, build, price
from roaming.costing.timeline import IDLE_POWER_W, Reading, Sample, SessionFacts

__all__ = [
    "IDLE_POWER_W",
    "WEEKDAYS",
    "ChargingPeriod",
    "CostBreakdown",
    "Moment",
    "Price",
    "PriceComponent",
    "Reading",
    "Restrictions",
    "Sample",
    "SessionFacts",
    "SessionTotals",
    "Tariff",
    "TariffDimension",
    "TariffElement",
    "build_periods",
    "cost",
    "cost_session",
]


def build_periods(
    facts: SessionFacts, tariff: Tariff | None = None, tz: tzinfo = UTC
) -> SessionTotals:
    """The session's charging periods, cut wherever the price (under ``tariff``, with
    time-of-day restrictions read in ``tz``, the Location's time zone) or parking changes."""
    return build(facts, tariff, tz)


def cost_session(tariff: Tariff, totals: SessionTotals) -> CostBreakdown:
    """The price of periods built by :func:`build_periods` with the same ``tariff``."""
    return price(tariff, totals)


def cost(
    tariff: Tariff,
    *,
    energy_kwh: float | Decimal,
    charging_hours: float | Decimal,
    parking_hours: float | Decimal,
) -> CostBreakdown:
    """Price plain totals: a session charging first, then parked (unrestricted elements)."""
    start = datetime(2000, 1, 1, tzinfo=UTC)
    charged = start + timedelta(hours=float(dec(charging_hours)))
    end = charged + timedelta(hours=float(dec(parking_hours)))
    facts = SessionFacts(start, end, 0.0, float(dec(energy_kwh)) * 1000, suspended=[(charged, end)])
    return price(tariff, build(facts, tariff))
