"""The OCPI Tariff as the costing core sees it: elements, price components, restrictions.

Why its own small model (and not the JSON dict): pricing needs exact decimals, parsed
times of day and a single place that says when an element's restrictions hold. Parsing
and validating operator input (TOML, OCPI JSON) is :mod:`roaming.tariffs`; this module
only holds what was validated and writes it back as OCPI JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


class TariffDimension(enum.StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


def dec(value: float | int | str | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def num(value: Decimal) -> float | int:
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
            "price": num(self.price),
            "step_size": self.step_size,
        }
        if self.vat is not None:
            out["vat"] = num(self.vat)
        return out


@dataclass(frozen=True, slots=True)
class Moment:
    """What a restriction can ask about one instant of a session (``local``: wall clock of
    the Location's time zone; ``kwh``: energy so far; ``seconds``: since the start;
    ``power_kw`` / ``current_a``: the charging power / current then, None if unknown)."""

    local: datetime
    kwh: float
    seconds: float
    power_kw: float | None
    current_a: float | None


def _within(value: float | None, low: Decimal | None, high: Decimal | None) -> bool:
    """``low`` inclusive, ``high`` exclusive (OCPI min_*/max_*); unknown values never match
    a bound, so an element priced on a quantity we did not measure is not applied."""
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


@dataclass(frozen=True, slots=True)
class Restrictions:
    """OCPI TariffRestrictions, all AND-combined; None / empty = not restricted."""

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple[str, ...] = ()
    reservation: str | None = None

    def holds(self, m: Moment) -> bool:
        if self.reservation is not None:
            return False  # priced only for reservations, never for a charge
        clock = m.local.time().replace(tzinfo=None)
        if self.start_time is not None and self.end_time is not None:
            if self.start_time <= self.end_time:
                if not self.start_time <= clock < self.end_time:
                    return False
            elif self.end_time <= clock < self.start_time:  # wraps past midnight
                return False
        elif (self.start_time is not None and clock < self.start_time) or (
            self.end_time is not None and clock >= self.end_time
        ):
            return False
        day = m.local.date()
        if self.start_date is not None and day < self.start_date:
            return False
        if self.end_date is not None and day >= self.end_date:
            return False
        if self.day_of_week and WEEKDAYS[day.weekday()] not in self.day_of_week:
            return False
        low, high = self.min_duration, self.max_duration
        return (
            _within(m.kwh, self.min_kwh, self.max_kwh)
            and _within(m.power_kw, self.min_power, self.max_power)
            and _within(m.current_a, self.min_current, self.max_current)
            and _within(
                m.seconds,
                Decimal(low) if low is not None else None,
                Decimal(high) if high is not None else None,
            )
        )

    @property
    def empty(self) -> bool:
        return self == Restrictions()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("start_time", "end_time"):
            t = getattr(self, key)
            if t is not None:
                out[key] = t.strftime("%H:%M")
        for key in ("start_date", "end_date"):
            d = getattr(self, key)
            if d is not None:
                out[key] = d.isoformat()
        for key in (
            "min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power",
        ):  # fmt: skip
            v = getattr(self, key)
            if v is not None:
                out[key] = num(v)
        for key in ("min_duration", "max_duration"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v
        if self.day_of_week:
            out["day_of_week"] = list(self.day_of_week)
        if self.reservation is not None:
            out["reservation"] = self.reservation
        return out


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: Restrictions | None = None

    def component(self, dim: TariffDimension) -> PriceComponent | None:
        return next((c for c in self.price_components if c.type is dim), None)

    def applies(self, m: Moment) -> bool:
        return self.restrictions is None or self.restrictions.holds(m)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"price_components": [c.to_json() for c in self.price_components]}
        if self.restrictions is not None and not self.restrictions.empty:
            out["restrictions"] = self.restrictions.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Tariff:
    country_code: str
    party_id: str
    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    last_updated: str = "1970-01-01T00:00:00Z"
    # Validated OCPI fields that do not change the price (type, alt texts, validity, mix).
    extra: tuple[tuple[str, Any], ...] = ()
    min_price: Price | None = None  # the session costs at least this (excl and incl VAT)
    max_price: Price | None = None  # and at most this

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
        v = dec(vat) if vat is not None else None
        parts = [
            (TariffDimension.FLAT, flat_price),
            (TariffDimension.ENERGY, energy_price),
            (TariffDimension.TIME, time_price),
            (TariffDimension.PARKING_TIME, parking_price),
        ]
        comps = tuple(PriceComponent(t, dec(p), v) for t, p in parts if dec(p) != 0)
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

    def has(self, dim: TariffDimension) -> bool:
        return any(e.component(dim) is not None for e in self.elements)

    def component_at(self, dim: TariffDimension, m: Moment) -> PriceComponent | None:
        """Per dimension, the first element (list order) that prices it and whose
        restrictions hold at ``m`` (OCPI TariffElement)."""
        for element in self.elements:
            comp = element.component(dim)
            if comp is not None and element.applies(m):
                return comp
        return None

    def restrictions(self) -> list[Restrictions]:
        return [e.restrictions for e in self.elements if e.restrictions is not None]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "id": self.id,
            "currency": self.currency,
        }
        out.update(dict(self.extra))
        for key, bound in (("min_price", self.min_price), ("max_price", self.max_price)):
            if bound is not None:
                out[key] = bound.to_json()
        out["elements"] = [e.to_json() for e in self.elements]
        out["last_updated"] = self.last_updated
        return out


@dataclass(frozen=True, slots=True)
class Price:
    excl_vat: Decimal
    incl_vat: Decimal

    @classmethod
    def zero(cls) -> Price:
        return cls(Decimal("0.00"), Decimal("0.00"))

    def __add__(self, other: Price) -> Price:
        return Price(self.excl_vat + other.excl_vat, self.incl_vat + other.incl_vat)

    def at_least(self, floor: Price | None) -> Price:
        """OCPI ``min_price``: excl and incl VAT each bounded on their own."""
        if floor is None:
            return self
        return Price(max(self.excl_vat, floor.excl_vat), max(self.incl_vat, floor.incl_vat))

    def at_most(self, cap: Price | None) -> Price:
        if cap is None:
            return self
        return Price(min(self.excl_vat, cap.excl_vat), min(self.incl_vat, cap.incl_vat))

    def to_json(self) -> dict[str, Any]:
        return {"excl_vat": num(self.excl_vat), "incl_vat": num(self.incl_vat)}


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
