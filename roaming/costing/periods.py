"""Charging periods and their price: a new period at every moment that matters for cost.

Why evaluate restrictions in small segments: OCPI asks for a new ChargingPeriod whenever
the applicable price changes (17:00 price switch, a kWh or duration threshold, a power
band, charging ↔ parking). The session is cut at every such instant (local time-of-day
and midnight crossings in the Location's time zone, the instants the energy reaches
``min_kwh``/``max_kwh``, ``start + min_duration``/``max_duration``, and every change of
the facts); each segment is judged at its midpoint, so an instant exactly on a boundary
never decides a whole segment; neighbours that agree are merged back into one period.

Volumes are rounded on the running totals (4 decimals of kWh and hours), so the periods
add up exactly to ``total_energy`` / ``total_time`` / ``total_parking_time`` and the eMSP
can reprice the CDR from its own dimensions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from roaming.costing.model import (
    CENT,
    CostBreakdown,
    Moment,
    Price,
    PriceComponent,
    Tariff,
    TariffDimension,
    num,
)
from roaming.costing.timeline import SessionFacts, Timeline

HOURS = Decimal("0.0001")
KWH = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    start: datetime
    energy_kwh: Decimal
    hours: Decimal
    charging: bool  # False: the EV was connected and not drawing energy (parking)
    energy_price: PriceComponent | None = None  # the component pricing this period's kWh
    time_price: PriceComponent | None = None  # TIME when charging, PARKING_TIME when parked
    # MIN/MAX_POWER (kW) and MIN/MAX_CURRENT (A) when the tariff's restrictions use them,
    # so the eMSP can see why the period is priced as it is.
    extremes: tuple[tuple[str, Decimal], ...] = ()

    def to_json(self, tariff_id: str | None, fmt: Callable[[datetime], str]) -> dict[str, Any]:
        dims: list[dict[str, Any]] = [{"type": "ENERGY", "volume": num(self.energy_kwh)}]
        dims.append(
            {"type": "TIME" if self.charging else "PARKING_TIME", "volume": num(self.hours)}
        )
        dims.extend({"type": kind, "volume": num(v)} for kind, v in self.extremes)
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
    charging_hours: Decimal
    flat_price: PriceComponent | None = None


@dataclass(slots=True)
class _Segment:
    start: datetime
    seconds: float
    wh: float
    charging: bool
    key: tuple[Any, ...]
    energy_price: PriceComponent | None
    time_price: PriceComponent | None
    power: list[float]  # kW at each piece's midpoint
    current: list[float]  # A, where the charger reported current


def _local_instants(t: Tariff, start: datetime, end: datetime, tz: tzinfo) -> set[datetime]:
    """Time-of-day and midnight crossings (local wall clock) inside the session."""
    clocks: set[time] = set()
    for r in t.restrictions():
        clocks.update(c for c in (r.start_time, r.end_time) if c is not None)
        if r.day_of_week or r.start_date or r.end_date:
            clocks.add(time(0, 0))
    out: set[datetime] = set()
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last and clocks:
        for c in clocks:
            out.add(datetime.combine(day, c, tzinfo=tz).astimezone(UTC))
        day += timedelta(days=1)
    return out


def _cuts(line: Timeline, tariff: Tariff | None, tz: tzinfo) -> list[datetime]:
    points = line.breakpoints()
    if tariff is not None:
        points |= _local_instants(tariff, line.start, line.end, tz)
        for r in tariff.restrictions():
            for kwh in (r.min_kwh, r.max_kwh):
                at = line.when_energy(float(kwh) * 1000) if kwh is not None else None
                if at is not None:
                    points.add(at)
            for s in (r.min_duration, r.max_duration):
                if s is not None:
                    points.add(line.duration_point(s))
    return sorted(p for p in points if line.start <= p <= line.end)


def _segment(
    line: Timeline, a: datetime, b: datetime, tariff: Tariff | None, tz: tzinfo
) -> _Segment:
    mid = a + (b - a) / 2
    charging = not line.is_parking(mid)
    wh = line.energy_at(b) - line.energy_at(a)
    energy_p = time_p = None
    power = line.power_kw(mid, a, b)
    current = line.held(line.current, mid) if charging else 0.0
    if tariff is not None:
        m = Moment(
            local=mid.astimezone(tz),
            kwh=line.energy_at(mid) / 1000,
            seconds=(mid - line.start).total_seconds(),
            power_kw=power,
            current_a=current,
        )
        energy_p = tariff.component_at(TariffDimension.ENERGY, m)
        dim = TariffDimension.TIME if charging else TariffDimension.PARKING_TIME
        time_p = tariff.component_at(dim, m)
    key = (charging, energy_p, time_p)
    return _Segment(
        a,
        (b - a).total_seconds(),
        wh,
        charging,
        key,
        energy_p,
        time_p,
        [power],
        [current] if current is not None else [],
    )


def _extremes(seg: _Segment, tariff: Tariff | None) -> tuple[tuple[str, Decimal], ...]:
    rules = tariff.restrictions() if tariff is not None else []
    out: list[tuple[str, Decimal]] = []
    if any(r.min_power is not None or r.max_power is not None for r in rules):
        out += [("MIN_POWER", _q(min(seg.power), KWH)), ("MAX_POWER", _q(max(seg.power), KWH))]
    if seg.current and any(r.min_current is not None or r.max_current is not None for r in rules):
        out += [
            ("MIN_CURRENT", _q(min(seg.current), KWH)),
            ("MAX_CURRENT", _q(max(seg.current), KWH)),
        ]
    return tuple(out)


def _flat(
    line: Timeline, tariff: Tariff, cuts: list[datetime], tz: tzinfo
) -> PriceComponent | None:
    """FLAT is billed once: from the first element pricing it that holds, in time order."""
    pairs = list(itertools.pairwise(cuts)) or [(line.start, line.end)]
    for a, b in pairs:
        mid = a + (b - a) / 2
        m = Moment(
            mid.astimezone(tz),
            line.energy_at(mid) / 1000,
            (mid - line.start).total_seconds(),
            line.power_kw(mid, a, b),
            line.held(line.current, mid),
        )
        comp = tariff.component_at(TariffDimension.FLAT, m)
        if comp is not None:
            return comp
    return None


def _q(value: float, unit: Decimal) -> Decimal:
    return Decimal(str(value)).quantize(unit, ROUND_HALF_UP)


def build(facts: SessionFacts, tariff: Tariff | None = None, tz: tzinfo = UTC) -> SessionTotals:
    """The session's charging periods (priced per element when ``tariff`` is given)."""
    line = Timeline(facts)
    cuts = _cuts(line, tariff, tz)
    merged: list[_Segment] = []
    for a, b in itertools.pairwise(cuts):
        if b <= a:
            continue
        seg = _segment(line, a, b, tariff, tz)
        if merged and merged[-1].key == seg.key:
            merged[-1].seconds += seg.seconds
            merged[-1].wh += seg.wh
            merged[-1].power += seg.power
            merged[-1].current += seg.current
        else:
            merged.append(seg)
    if not merged:  # a session of zero length: one period holding whatever was reported
        seg = _segment(line, line.start, line.start + timedelta(microseconds=1), tariff, tz)
        seg.seconds, seg.wh = 0.0, line.total_wh
        merged.append(seg)
    periods: list[ChargingPeriod] = []
    wh_so_far = s_so_far = 0.0
    kwh_prev = h_prev = Decimal(0)
    total_kwh = _q(line.total_wh / 1000, KWH)
    total_h = _q((line.end - line.start).total_seconds() / 3600, HOURS)
    for i, seg in enumerate(merged):
        wh_so_far += seg.wh
        s_so_far += seg.seconds
        kwh_now, h_now = _q(wh_so_far / 1000, KWH), _q(s_so_far / 3600, HOURS)
        if i == len(merged) - 1:  # the float sums end exactly on the totals
            kwh_now, h_now = total_kwh, total_h
        periods.append(
            ChargingPeriod(
                seg.start,
                kwh_now - kwh_prev,
                h_now - h_prev,
                seg.charging,
                seg.energy_price,
                seg.time_price,
                _extremes(seg, tariff),
            )
        )
        kwh_prev, h_prev = kwh_now, h_now
    parking = sum((p.hours for p in periods if not p.charging), Decimal(0))
    return SessionTotals(
        periods=tuple(periods),
        total_energy_kwh=total_kwh,
        total_hours=total_h,
        parking_hours=parking,
        charging_hours=total_h - parking,
        flat_price=_flat(line, tariff, cuts, tz) if tariff is not None else None,
    )


# --------------------------------------------------------------------------- prices


@dataclass(slots=True)
class _Sum:
    excl: Decimal = Decimal(0)
    incl: Decimal = Decimal(0)
    quantity: Decimal = Decimal(0)
    last: PriceComponent | None = None

    def add(self, comp: PriceComponent, quantity: Decimal) -> None:
        self.excl += comp.price * quantity
        self.incl += comp.price * quantity * (1 + (comp.vat or Decimal(0)) / 100)
        self.quantity += quantity
        self.last = comp

    def price(self) -> Price:
        return Price(
            self.excl.quantize(CENT, ROUND_HALF_UP), self.incl.quantize(CENT, ROUND_HALF_UP)
        )


def _step(total: _Sum, unit: int) -> None:
    """OCPI step_size: once per session on the total quantity (base units: Wh or s), with
    the step of the last component used, the extra priced at that component."""
    comp = total.last
    if comp is None or comp.step_size <= 1:
        return
    # Volumes carry 4 decimals (0.36 s, 0.1 Wh): whole base units first, so 10 minutes
    # shown as 0.0833 + 0.0834 h is not stepped up to 11 minutes.
    base = (total.quantity * unit).quantize(Decimal(1), ROUND_HALF_UP)
    extra = Decimal(math.ceil(base / comp.step_size) * comp.step_size) - base
    if extra > 0:
        total.add(comp, extra / unit)


def price(tariff: Tariff, totals: SessionTotals) -> CostBreakdown:
    """What the session costs under ``tariff`` (the one ``totals`` was built with)."""
    energy, time_, parking = _Sum(), _Sum(), _Sum()
    for p in totals.periods:
        if p.energy_price is not None:
            energy.add(p.energy_price, p.energy_kwh)
        if p.time_price is not None:
            (time_ if p.charging else parking).add(p.time_price, p.hours)
    _step(energy, 1000)
    if tariff.has(TariffDimension.PARKING_TIME):
        _step(parking, 3600)  # with both TIME and PARKING_TIME, the step rounds the parking
    else:
        _step(time_, 3600)
    fixed = None
    if totals.flat_price is not None:
        flat = _Sum()
        flat.add(totals.flat_price, Decimal(1))
        fixed = flat.price()
    elif tariff.has(TariffDimension.FLAT):
        fixed = Price.zero()
    parts = {
        TariffDimension.ENERGY: energy.price(),
        TariffDimension.TIME: time_.price(),
        TariffDimension.PARKING_TIME: parking.price(),
    }
    present = {d: (v if tariff.has(d) else None) for d, v in parts.items()}
    total = Price.zero()
    for part in (fixed, *present.values()):
        if part is not None:
            total = total + part
    # min_price / max_price bound the total only: the parts stay what the session used.
    total = total.at_least(tariff.min_price).at_most(tariff.max_price)
    return CostBreakdown(
        total=total,
        fixed=fixed,
        energy=present[TariffDimension.ENERGY],
        time=present[TariffDimension.TIME],
        parking=present[TariffDimension.PARKING_TIME],
    )
