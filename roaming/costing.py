"""Pure costing: a Tariff and the meter history of one session in, periods and prices out.

Why pure: the CDR is the only billing-relevant OCPI object and it is immutable once sent,
so the arithmetic must be checkable in isolation (table tests, no clock, no store). The
caller hands in the session's start/end, its meter register readings and the tariff; this
module answers with the charging periods and a :class:`CostBreakdown`.

Decisions the spec leaves open (documented in docs/ocpi-modules.md):

* Money is computed in :class:`~decimal.Decimal`; each ``total_*_cost`` part is rounded
  half-up to 2 decimals and ``total_cost`` is the sum of the rounded parts, so an eMSP
  adding up the parts gets exactly our total.
* ``vat`` absent means "no VAT applies" (incl = excl); ``vat = 0`` is the same number.
* ``step_size`` is applied once to the session totals (ENERGY in Wh; TIME/PARKING_TIME in
  seconds, to the parking duration when both exist), never per period.
* A stretch of time between two meter readings in which the register did not grow counts
  as parking (not charging); everything else counts as charging time.
* Tariff restrictions are not evaluated: the tariffs we publish have none, and for each
  dimension the first element carrying it is used (spec: first match per dimension).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

CENT = Decimal("0.01")
HOURS_DECIMALS = 4


class TariffDimension(enum.StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


def _dec(value: float | int | str | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _num(value: Decimal) -> float | int:
    """JSON number for a Decimal (OCPI numbers are JSON numbers, not strings)."""
    f = float(value)
    return int(f) if f.is_integer() else f


@dataclass(frozen=True, slots=True)
class PriceComponent:
    type: TariffDimension
    price: Decimal  # per unit, excl. VAT
    vat: Decimal | None = None  # percent; None = no VAT applies
    step_size: int = 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type.value,
            "price": _num(self.price),
            "step_size": self.step_size,
        }
        if self.vat is not None:
            out["vat"] = _num(self.vat)
        return out


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]

    def to_json(self) -> dict[str, Any]:
        return {"price_components": [c.to_json() for c in self.price_components]}


@dataclass(frozen=True, slots=True)
class Tariff:
    country_code: str
    party_id: str
    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    last_updated: str = "1970-01-01T00:00:00Z"

    @classmethod
    def simple(
        cls,
        *,
        country_code: str,
        party_id: str,
        id: str,
        currency: str,
        energy_price: float | Decimal = 0,
        time_price: float | Decimal = 0,
        parking_price: float | Decimal = 0,
        flat_price: float | Decimal = 0,
        vat: float | Decimal | None = None,
        last_updated: str = "1970-01-01T00:00:00Z",
    ) -> Tariff:
        """One element holding every non-zero part; an all-zero tariff is a free FLAT 0."""
        v = _dec(vat) if vat is not None else None
        parts = [
            (TariffDimension.FLAT, flat_price),
            (TariffDimension.ENERGY, energy_price),
            (TariffDimension.TIME, time_price),
            (TariffDimension.PARKING_TIME, parking_price),
        ]
        comps = tuple(PriceComponent(t, _dec(p), v) for t, p in parts if _dec(p) != 0)
        if not comps:
            comps = (PriceComponent(TariffDimension.FLAT, Decimal(0), v),)
        return cls(
            country_code=country_code,
            party_id=party_id,
            id=id,
            currency=currency,
            elements=(TariffElement(comps),),
            last_updated=last_updated,
        )

    def component(self, dim: TariffDimension) -> PriceComponent | None:
        for element in self.elements:
            for comp in element.price_components:
                if comp.type is dim:
                    return comp
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "id": self.id,
            "currency": self.currency,
            "elements": [e.to_json() for e in self.elements],
            "last_updated": self.last_updated,
        }


@dataclass(frozen=True, slots=True)
class Price:
    excl_vat: Decimal
    incl_vat: Decimal

    @classmethod
    def zero(cls) -> Price:
        return cls(Decimal("0.00"), Decimal("0.00"))

    def __add__(self, other: Price) -> Price:
        return Price(self.excl_vat + other.excl_vat, self.incl_vat + other.incl_vat)

    def to_json(self) -> dict[str, Any]:
        return {"excl_vat": _num(self.excl_vat), "incl_vat": _num(self.incl_vat)}


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    total: Price
    fixed: Price | None
    energy: Price | None
    time: Price | None
    parking: Price | None

    def to_cdr_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"total_cost": self.total.to_json()}
        for name, part in (
            ("total_fixed_cost", self.fixed),
            ("total_energy_cost", self.energy),
            ("total_time_cost", self.time),
            ("total_parking_cost", self.parking),
        ):
            if part is not None:
                out[name] = part.to_json()
        return out


def _priced(comp: PriceComponent, quantity: Decimal) -> Price:
    excl = (comp.price * quantity).quantize(CENT, ROUND_HALF_UP)
    if comp.vat is None:
        return Price(excl, excl)
    incl = (comp.price * quantity * (1 + comp.vat / 100)).quantize(CENT, ROUND_HALF_UP)
    return Price(excl, incl)


def _stepped(quantity: Decimal, step: int) -> Decimal:
    """Round a quantity in base units (Wh or s) up to a multiple of ``step``."""
    if step <= 1:
        return quantity
    return Decimal(math.ceil(quantity / step) * step)


def cost(
    tariff: Tariff,
    *,
    energy_kwh: float | Decimal,
    charging_hours: float | Decimal,
    parking_hours: float | Decimal,
) -> CostBreakdown:
    """Price one session's totals under ``tariff``."""
    energy = _dec(energy_kwh)
    charging = _dec(charging_hours)
    parking = _dec(parking_hours)
    flat_c = tariff.component(TariffDimension.FLAT)
    energy_c = tariff.component(TariffDimension.ENERGY)
    time_c = tariff.component(TariffDimension.TIME)
    park_c = tariff.component(TariffDimension.PARKING_TIME)

    fixed = _priced(flat_c, Decimal(1)) if flat_c else None
    energy_p = None
    if energy_c:
        wh = _stepped(energy * 1000, energy_c.step_size)
        energy_p = _priced(energy_c, wh / 1000)
    time_p = None
    parking_p = None
    if time_c and park_c:
        # Both present: the step is applied to the parking duration only (spec 6.4).
        time_p = _priced(time_c, charging)
        parking_p = _priced(park_c, _stepped(parking * 3600, park_c.step_size) / 3600)
    elif time_c:
        time_p = _priced(time_c, _stepped(charging * 3600, time_c.step_size) / 3600)
    elif park_c:
        parking_p = _priced(park_c, _stepped(parking * 3600, park_c.step_size) / 3600)

    total = Price.zero()
    for part in (fixed, energy_p, time_p, parking_p):
        if part is not None:
            total = total + part
    return CostBreakdown(total=total, fixed=fixed, energy=energy_p, time=time_p, parking=parking_p)


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True)
class Reading:
    """One energy register reading (Wh, cumulative) at a charger-reported time."""

    timestamp: datetime
    energy_wh: float


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    start: datetime
    energy_kwh: Decimal
    hours: Decimal
    charging: bool  # False: the register did not grow, the time is parking time

    def to_json(self, tariff_id: str | None, fmt: Callable[[datetime], str]) -> dict[str, Any]:
        dims: list[dict[str, Any]] = [{"type": "ENERGY", "volume": _num(self.energy_kwh)}]
        dims.append(
            {"type": "TIME" if self.charging else "PARKING_TIME", "volume": _num(self.hours)}
        )
        out: dict[str, Any] = {"start_date_time": fmt(self.start), "dimensions": dims}
        if tariff_id:
            out["tariff_id"] = tariff_id
        return out


@dataclass(frozen=True, slots=True)
class SessionTotals:
    periods: tuple[ChargingPeriod, ...]
    total_energy_kwh: Decimal
    total_hours: Decimal
    parking_hours: Decimal
    charging_hours: Decimal = field(default=Decimal(0))


@dataclass(slots=True)
class _Stretch:
    """Neighbouring meter intervals in the same state, merged while walking the readings."""

    start: datetime
    wh: float
    seconds: float
    charging: bool


def _hours(seconds: float) -> Decimal:
    return Decimal(str(round(seconds / 3600, HOURS_DECIMALS)))


def _kwh(wh: float) -> Decimal:
    return Decimal(str(round(wh / 1000, 4)))


def build_periods(
    start: datetime,
    end: datetime,
    meter_start_wh: float,
    meter_stop_wh: float,
    readings: Iterable[Reading],
) -> SessionTotals:
    """Split the session into charging / parking stretches between register readings.

    Readings outside [start, end] and readings that go backwards (a meter that reset or a
    sample from another register) are ignored rather than producing negative energy.
    """
    if end < start:
        end = start
    points: list[tuple[datetime, float]] = [(start, meter_start_wh)]
    last = meter_start_wh
    for r in sorted(readings, key=lambda r: r.timestamp):
        if r.timestamp <= start or r.timestamp >= end:
            continue
        if r.energy_wh < last or r.energy_wh > max(meter_stop_wh, last):
            continue
        points.append((r.timestamp, r.energy_wh))
        last = r.energy_wh
    points.append((end, max(meter_stop_wh, last)))

    # Intervals, then merge neighbours in the same state.
    merged: list[_Stretch] = []
    for (t0, e0), (t1, e1) in pairwise(points):
        seconds = (t1 - t0).total_seconds()
        delta = e1 - e0
        charging = delta > 0
        if seconds <= 0 and delta <= 0:
            continue
        if merged and merged[-1].charging == charging:
            merged[-1].wh += delta
            merged[-1].seconds += seconds
        else:
            merged.append(_Stretch(t0, delta, seconds, charging))
    if not merged:
        merged.append(_Stretch(start, 0.0, 0.0, False))
    periods = tuple(
        ChargingPeriod(m.start, _kwh(m.wh), _hours(m.seconds), m.charging) for m in merged
    )
    total_seconds = (end - start).total_seconds()
    parking_seconds = sum(m.seconds for m in merged if not m.charging)
    total_wh = max(meter_stop_wh - meter_start_wh, 0.0)
    return SessionTotals(
        periods=periods,
        total_energy_kwh=_kwh(total_wh),
        total_hours=_hours(total_seconds),
        parking_hours=_hours(parking_seconds),
        charging_hours=_hours(total_seconds - parking_seconds),
    )


def cost_session(tariff: Tariff, totals: SessionTotals) -> CostBreakdown:
    return cost(
        tariff,
        energy_kwh=totals.total_energy_kwh,
        charging_hours=totals.charging_hours,
        parking_hours=totals.parking_hours,
    )
