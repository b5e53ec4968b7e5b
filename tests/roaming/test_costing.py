"""Costing is pure: tariff totals, VAT, step sizes, charging/parking periods and tariff
restrictions splitting a session into correctly priced periods."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from roaming.costing import (
    PriceComponent,
    Reading,
    Sample,
    SessionFacts,
    Tariff,
    TariffDimension,
    TariffElement,
    build_periods,
    cost,
    cost_session,
)
from roaming.models.datetimes import format_datetime
from roaming.tariffs import parse_tariff_json

T0 = datetime(2024, 5, 3, 12, 0, 0, tzinfo=UTC)


def tariff(**kw):
    return Tariff.simple(country_code="NL", party_id="CPO", id="T1", currency="EUR", **kw)


@pytest.mark.parametrize(
    ("kw", "energy", "charging", "parking", "excl", "incl"),
    [
        ({"energy_price": 0.35, "vat": 21}, 10, 1, 0, "3.50", "4.24"),
        ({"energy_price": 0.35}, 10, 1, 0, "3.50", "3.50"),  # no VAT: incl == excl
        ({"energy_price": 0.30, "flat_price": 1.0, "vat": 20}, 5, 1, 0, "2.50", "3.00"),
        ({"time_price": 2.0, "vat": 0}, 0, 1.5, 0, "3.00", "3.00"),
        ({"energy_price": 0.25, "parking_price": 6.0}, 4, 1, 0.5, "4.00", "4.00"),
        (
            {"energy_price": 0.25, "time_price": 1.0, "parking_price": 6.0},
            4,
            2,
            0.25,
            "4.50",
            "4.50",
        ),
        ({}, 12, 1, 1, "0.00", "0.00"),  # free tariff
    ],
)
def test_cost_totals(kw, energy, charging, parking, excl, incl):
    b = cost(tariff(**kw), energy_kwh=energy, charging_hours=charging, parking_hours=parking)
    assert b.total.excl_vat == Decimal(excl)
    assert b.total.incl_vat == Decimal(incl)


def test_total_is_sum_of_rounded_parts():
    t = tariff(energy_price=0.333, flat_price=0.333, vat=19)
    b = cost(t, energy_kwh=1, charging_hours=0, parking_hours=0)
    assert b.energy is not None and b.fixed is not None
    assert b.total.excl_vat == b.energy.excl_vat + b.fixed.excl_vat
    assert b.total.incl_vat == b.energy.incl_vat + b.fixed.incl_vat
    fields = b.to_cdr_fields()
    assert set(fields) == {"total_cost", "total_fixed_cost", "total_energy_cost"}


def test_energy_step_size_applies_to_total_in_wh():
    comp = PriceComponent(TariffDimension.ENERGY, Decimal(1), None, step_size=500)
    t = Tariff("NL", "CPO", "T", "EUR", (TariffElement((comp,)),))
    b = cost(t, energy_kwh=Decimal("1.2"), charging_hours=0, parking_hours=0)
    assert b.total.excl_vat == Decimal("1.50")  # 1200 Wh rounds up to 1500 Wh


def test_free_tariff_is_a_flat_zero_component():
    js = tariff().to_json()
    assert js["elements"] == [{"price_components": [{"type": "FLAT", "price": 0, "step_size": 1}]}]


# --------------------------------------------------------------------------- periods

AMS = ZoneInfo("Europe/Amsterdam")
FRI = datetime(2024, 5, 3, 15, 30, tzinfo=UTC)  # Friday 17:30 in Amsterdam (CEST, UTC+2)


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ocpi(*elements: dict[str, Any]) -> Tariff:
    return parse_tariff_json(
        {
            "country_code": "NL",
            "party_id": "CPO",
            "id": "T",
            "currency": "EUR",
            "elements": list(elements),
        }
    )


def energy(price: float, step: int = 1, **restrictions: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "price_components": [{"type": "ENERGY", "price": price, "step_size": step}]
    }
    if restrictions:
        e["restrictions"] = restrictions
    return e


def steady(start: datetime, minutes: float, kw: float, every: float = 5) -> list[Reading]:
    """Register readings of a charge at constant power, every ``every`` minutes."""
    out, t = [], 0.0
    while t <= minutes:
        out.append(Reading(start + timedelta(minutes=t), kw * 1000 * t / 60))
        t += every
    return out


@dataclass
class Case:
    facts: SessionFacts
    tariff: Tariff | None
    # (start, "TIME"|"PARKING_TIME", kWh, hours, energy price per kWh or None)
    periods: list[tuple[datetime, str, str, str, str | None]]
    parking_hours: str
    total_excl: str | None = None
    tz: Any = field(default=UTC)


CASES = {
    # A whole-kWh register stands still for many minutes while a car charges at 1.4 kW:
    # that is charging, not parking (no status or power says otherwise).
    "slow whole-kWh register": Case(
        SessionFacts(
            m(0),
            m(75),
            0,
            1750,
            [Reading(m(t), 1000 * (t // 43)) for t in range(0, 76, 15)],
        ),
        tariff(energy_price=0.30, parking_price=6.0),
        [(m(0), "TIME", "1.75", "1.25", "0.30")],
        "0",
        "0.53",
    ),
    # The charger said SuspendedEV from 30 to 50 min: exactly that is parking.
    "real SuspendedEV interval": Case(
        SessionFacts(
            m(0),
            m(90),
            0,
            7000,
            [Reading(m(30), 5000), Reading(m(50), 5000)],
            suspended=[(m(30), m(50))],
        ),
        tariff(energy_price=0.30, parking_price=6.0),
        [
            (m(0), "TIME", "5", "0.5", "0.30"),
            (m(30), "PARKING_TIME", "0", "0.3333", "0.30"),
            (m(50), "TIME", "2", "0.6667", "0.30"),
        ],
        "0.3333",
        "4.10",  # 7 kWh x 0.30 + 0.3333 h x 6.00
    ),
    # Power.Active.Import 0 from 20 to 35 min (held until the next power reading).
    "power readings at zero": Case(
        SessionFacts(
            m(0),
            m(60),
            0,
            9000,
            power=[Sample(m(1), 11000), Sample(m(20), 0.0), Sample(m(35), 11000)],
        ),
        None,
        [
            (m(0), "TIME", "4", "0.3333", None),  # 9 kWh spread over 45 min charging
            (m(20), "PARKING_TIME", "0", "0.25", None),
            (m(35), "TIME", "5", "0.4167", None),
        ],
        "0.25",
    ),
    # SuspendedEV 20-40 min; the power reading of 0 at 30 min is not held past the
    # Charging status at 40 min (the newer report), though the next power reading is at 50.
    "status ends a zero-power hold": Case(
        SessionFacts(
            m(0),
            m(60),
            0,
            8000,
            power=[Sample(m(15), 11000), Sample(m(30), 0.0), Sample(m(50), 11000)],
            suspended=[(m(20), m(40))],
            status_reports=[m(20), m(40)],
        ),
        None,
        [
            (m(0), "TIME", "4", "0.3333", None),
            (m(20), "PARKING_TIME", "0", "0.3334", None),  # rounded on the running total
            (m(40), "TIME", "4", "0.3333", None),
        ],
        "0.3334",
    ),
    # A start at 12:00:00.700 opens with charging, not with 0.7 s of parking.
    "fractional-second start": Case(
        SessionFacts(
            T0 + timedelta(milliseconds=700),
            m(30),
            100,
            2100,
            [Reading(T0 + timedelta(seconds=1), 100), Reading(m(15), 1100)],
        ),
        tariff(energy_price=0.30, parking_price=6.0),
        [(T0 + timedelta(milliseconds=700), "TIME", "2", "0.4998", "0.30")],
        "0",
        "0.60",
    ),
    # 0.30/kWh until 18:00 local, 0.45 after; 10 kW from 17:30 to 18:30 Amsterdam.
    "time of day": Case(
        SessionFacts(FRI, FRI + timedelta(hours=1), 0, 10000, steady(FRI, 60, 10)),
        ocpi(energy(0.45, start_time="18:00", end_time="07:00"), energy(0.30)),
        [
            (FRI, "TIME", "5", "0.5", "0.30"),
            (FRI + timedelta(minutes=30), "TIME", "5", "0.5", "0.45"),
        ],
        "0",
        "3.75",
        AMS,
    ),
    # Saturday price from local midnight (Friday 23:30 to Saturday 00:30 Amsterdam).
    "day of week": Case(
        SessionFacts(
            FRI + timedelta(hours=6),
            FRI + timedelta(hours=7),
            0,
            6000,
            steady(FRI + timedelta(hours=6), 60, 6),
        ),
        ocpi(energy(0.50, day_of_week=["SATURDAY", "SUNDAY"]), energy(0.30)),
        [
            (FRI + timedelta(hours=6), "TIME", "3", "0.5", "0.30"),
            (FRI + timedelta(hours=6, minutes=30), "TIME", "3", "0.5", "0.50"),
        ],
        "0",
        "2.40",
        AMS,
    ),
    # First 10 kWh at 0.25, then 0.35: the period splits where the energy reaches 10 kWh.
    "kWh threshold": Case(
        SessionFacts(m(0), m(90), 0, 15000, steady(m(0), 90, 10, every=10)),
        ocpi(energy(0.25, max_kwh=10), energy(0.35, min_kwh=10)),
        [(m(0), "TIME", "10", "1", "0.25"), (m(60), "TIME", "5", "0.5", "0.35")],
        "0",
        "4.25",
    ),
    # OCPI's max_duration example: 30 min free, 0.25 until 60 min, 0.40 after; 40 minutes,
    # 5 kWh in the first 30 and 1.2 kWh in the last 10: 0.30.
    "duration thresholds": Case(
        SessionFacts(m(0), m(40), 0, 6200, [Reading(m(30), 5000)]),
        ocpi(energy(0.0, max_duration=1800), energy(0.25, max_duration=3600), energy(0.40)),
        [(m(0), "TIME", "5", "0.5", "0"), (m(30), "TIME", "1.2", "0.1667", "0.25")],
        "0",
        "0.30",
    ),
    # OCPI's max_power example: 0.20 below 16 kW, 0.35 from 16 to 32 kW, 0.50 above;
    # 1 kWh at 6 kW, 40 kWh at 48 kW, 0.5 kWh at 4 kW: 20.30.
    "power bands": Case(
        SessionFacts(m(0), m(67.5), 0, 41500, [Reading(m(10), 1000), Reading(m(60), 41000)]),
        ocpi(
            energy(0.20, max_power=16),
            energy(0.35, min_power=16, max_power=32),
            energy(0.50),
        ),
        [
            (m(0), "TIME", "1", "0.1667", "0.20"),
            (m(10), "TIME", "40", "0.8333", "0.50"),
            (m(60), "TIME", "0.5", "0.125", "0.20"),
        ],
        "0",
        "20.30",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_periods_table(case: Case) -> None:
    totals = build_periods(case.facts, case.tariff, case.tz)
    got = [
        (
            p.start,
            "TIME" if p.charging else "PARKING_TIME",
            p.energy_kwh,
            p.hours,
            p.energy_price.price if p.energy_price else None,
        )
        for p in totals.periods
    ]
    want = [
        (t, kind, Decimal(kwh), Decimal(h), Decimal(price) if price else None)
        for t, kind, kwh, h, price in case.periods
    ]
    assert got == want
    assert totals.parking_hours == Decimal(case.parking_hours)
    # The periods add up to the totals (the eMSP can reprice from the dimensions).
    assert sum(p.energy_kwh for p in totals.periods) == totals.total_energy_kwh
    assert sum(p.hours for p in totals.periods) == totals.total_hours
    if case.total_excl is not None:
        assert case.tariff is not None
        assert cost_session(case.tariff, totals).total.excl_vat == Decimal(case.total_excl)


def test_time_step_of_the_last_element_rounds_the_total_once():
    """OCPI's step_size example: 0.024/min before 20:00, 15-minute steps after; charging
    19:55-20:05 bills 5 min before and 10 min after 20:00 (total rounded to 15 min)."""
    start = datetime(2024, 5, 3, 17, 55, tzinfo=UTC)  # 19:55 Amsterdam
    t = ocpi(
        {
            "price_components": [{"type": "TIME", "price": 2.40, "step_size": 60}],
            "restrictions": {"end_time": "20:00"},
        },
        {"price_components": [{"type": "TIME", "price": 2.40, "step_size": 900}]},
    )
    facts = SessionFacts(start, start + timedelta(minutes=10), 0, 1000)
    totals = build_periods(facts, t, AMS)
    # Rounded on the running total: 0.0833 + 0.0834 = 0.1667 h, the session's 10 minutes.
    assert [p.hours for p in totals.periods] == [Decimal("0.0833"), Decimal("0.0834")]
    b = cost_session(t, totals)
    assert b.time is not None and b.time.excl_vat == Decimal("0.60")  # 15 min x 2.40/h
    # The same charge under 1-minute steps is 10 minutes, not 11 (no rounding artefact).
    per_minute = ocpi({"price_components": [{"type": "TIME", "price": 2.40, "step_size": 60}]})
    b = cost_session(per_minute, build_periods(facts, per_minute, AMS))
    assert b.time is not None and b.time.excl_vat == Decimal("0.40")


def test_local_time_restrictions_follow_the_time_zone():
    """The same UTC session is split at 18:00 Amsterdam, not at 18:00 UTC."""
    t = ocpi(energy(0.45, start_time="18:00"), energy(0.30))
    facts = SessionFacts(FRI, FRI + timedelta(hours=1), 0, 10000, steady(FRI, 60, 10))
    utc = build_periods(facts, t, UTC)
    assert [p.energy_price.price for p in utc.periods if p.energy_price] == [Decimal("0.30")]


def test_periods_to_json_and_no_tariff():
    facts = SessionFacts(m(0), m(60), 0, 10000, suspended=[(m(40), m(60))])
    totals = build_periods(facts)
    js = totals.periods[0].to_json("T1", format_datetime)
    assert js == {
        "start_date_time": "2024-05-03T12:00:00Z",
        "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 0.6667}],
        "tariff_id": "T1",
    }
    assert totals.periods[1].to_json(None, format_datetime)["dimensions"][1] == {
        "type": "PARKING_TIME",
        "volume": 0.3333,
    }


def test_backward_and_out_of_range_readings_are_ignored():
    readings = [
        Reading(m(-5), 0),
        Reading(m(30), 3000),
        Reading(m(40), 100),  # register went backwards
        Reading(m(300), 99999),
    ]
    totals = build_periods(SessionFacts(m(0), m(60), 0, 5000, readings))
    assert len(totals.periods) == 1 and totals.periods[0].charging
    assert totals.total_energy_kwh == Decimal("5.0")
    assert totals.parking_hours == 0


def test_a_session_without_energy_and_without_status_is_not_parking():
    """Nothing said the EV stopped drawing: no PARKING_TIME is billed on a guess."""
    totals = build_periods(SessionFacts(m(0), m(30), 500, 500))
    assert [p.charging for p in totals.periods] == [True]
    assert totals.total_energy_kwh == 0 and totals.parking_hours == 0


def test_short_status_blips_are_not_parking():
    """A Finishing reported a moment before the stop is not a parking period."""
    facts = SessionFacts(m(0), m(30), 0, 3000, suspended=[(m(30) - timedelta(seconds=0.3), m(30))])
    totals = build_periods(facts)
    assert [p.charging for p in totals.periods] == [True]


@pytest.mark.parametrize(
    ("kwh", "excl", "incl"),
    [
        (1, "2.00", "2.40"),  # 0.25 / 0.30 is below the floor: both totals raised
        (10, "2.50", "3.00"),  # between the bounds: as priced
        (40, "8.00", "9.00"),  # 10.00 / 12.00 above the cap: both capped
    ],
)
def test_min_and_max_price_bound_the_total(kwh, excl, incl):
    t = parse_tariff_json(
        {
            "country_code": "NL",
            "party_id": "CPO",
            "id": "T",
            "currency": "EUR",
            "min_price": {"excl_vat": 2, "incl_vat": 2.40},
            "max_price": {"excl_vat": 8, "incl_vat": 9},
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 20, "step_size": 1}]}
            ],
        }
    )
    b = cost(t, energy_kwh=kwh, charging_hours=1, parking_hours=0)
    assert (b.total.excl_vat, b.total.incl_vat) == (Decimal(excl), Decimal(incl))
    assert b.energy is not None and b.energy.excl_vat == Decimal("0.25") * kwh  # parts as used


def test_power_restricted_periods_show_their_power():
    """With power bands in the tariff each period carries MIN/MAX_POWER, so the eMSP can
    see which band priced it; a tariff without them adds no such dimensions."""
    facts = SessionFacts(m(0), m(67.5), 0, 41500, [Reading(m(10), 1000), Reading(m(60), 41000)])
    t = ocpi(energy(0.20, max_power=16), energy(0.50))
    totals = build_periods(facts, t)
    dims = [p.to_json("T", format_datetime)["dimensions"][2:] for p in totals.periods]
    assert dims == [
        [{"type": "MIN_POWER", "volume": 6}, {"type": "MAX_POWER", "volume": 6}],
        [{"type": "MIN_POWER", "volume": 48}, {"type": "MAX_POWER", "volume": 48}],
        [{"type": "MIN_POWER", "volume": 4}, {"type": "MAX_POWER", "volume": 4}],
    ]
    plain = build_periods(facts, ocpi(energy(0.30)))
    assert all(len(p.to_json(None, format_datetime)["dimensions"]) == 2 for p in plain.periods)


def test_a_stop_kept_while_waiting_for_a_location_keeps_every_costing_fact():
    """A charge on an unmapped connector is priced when mapped, from the stop it kept:
    the fractional start, power, current, status intervals and reports survive."""
    from roaming.sessions import SessionStop

    stop = SessionStop(
        transaction_id=7,
        end=m(60),
        meter_stop_wh=5000.0,
        readings=[Reading(m(30), 2500.0)],
        start=T0 + timedelta(milliseconds=250),
        power=[Sample(m(10), 11000.0)],
        current=[Sample(m(10), 16.0)],
        suspended=[(m(20), m(40))],
        status_reports=[m(20), m(40)],
    )
    assert SessionStop.from_json(stop.to_json()) == stop


def test_a_session_of_zero_length_is_one_period_with_its_energy():
    totals = build_periods(SessionFacts(m(0), m(0), 100, 600), tariff(energy_price=0.5))
    [p] = totals.periods
    assert (p.start, p.energy_kwh, p.hours, p.charging) == (m(0), Decimal("0.5"), 0, True)
    assert cost_session(tariff(energy_price=0.5), totals).total.excl_vat == Decimal("0.25")
    # An end before the start (a charger clock jump) is read as the start.
    assert build_periods(SessionFacts(m(0), m(-5), 100, 600)).total_hours == 0


def test_invariants_over_random_sessions():
    """Seeded random sessions (readings, power, suspended intervals, restricted tariffs):
    periods are in order from the start, add up to the totals, parking is what the charger
    reported inside the session (to the volumes' 4 decimals), and no price is negative."""
    import random

    rng = random.Random(20261207)
    t = ocpi(
        energy(0.45, start_time="18:00", end_time="07:00"),
        energy(0.25, max_kwh=5),
        energy(0.35, min_power=20),
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "step_size": 100},
                {"type": "PARKING_TIME", "price": 3, "step_size": 60},
                {"type": "TIME", "price": 1, "step_size": 1},
                {"type": "FLAT", "price": 0.5, "step_size": 1},
            ]
        },
    )
    for _ in range(200):
        start = FRI + timedelta(minutes=rng.uniform(0, 24 * 60), microseconds=rng.randrange(10**6))
        minutes = rng.uniform(0, 600)
        end = start + timedelta(minutes=minutes)
        at = sorted(start + timedelta(minutes=rng.uniform(-5, minutes + 5)) for _ in range(20))
        wh, readings = 0.0, []
        for when in at:
            wh += rng.choice([0, 0, rng.uniform(0, 3000)])
            readings.append(Reading(when, wh))
        with_power = rng.random() < 0.5
        power = [Sample(when, rng.choice([0.0, 7400.0, 50000.0])) for when in at[::3]]
        power = power if with_power else []
        suspended = []
        for _ in range(rng.randrange(3)):
            a = start + timedelta(minutes=rng.uniform(-10, minutes))
            suspended.append((a, a + timedelta(minutes=rng.uniform(0, 60))))
        facts = SessionFacts(
            start, end, 0.0, wh + rng.uniform(0, 500), readings, power, (), suspended
        )
        totals = build_periods(facts, t, AMS)
        starts = [p.start for p in totals.periods]
        assert starts[0] == start and starts == sorted(starts)
        assert sum(p.energy_kwh for p in totals.periods) == totals.total_energy_kwh
        assert sum(p.hours for p in totals.periods) == totals.total_hours
        assert totals.parking_hours + totals.charging_hours == totals.total_hours
        assert all(p.energy_kwh >= 0 and p.hours >= 0 for p in totals.periods)
        b = cost_session(t, totals)
        assert b.total.excl_vat >= 0 and b.total.incl_vat >= b.total.excl_vat
        if not with_power:  # parking is the reported intervals inside the session, merged
            spans: list[list[datetime]] = []
            for a, z in sorted((max(a, start), min(z, end)) for a, z in suspended):
                if spans and a <= spans[-1][1]:
                    spans[-1][1] = max(spans[-1][1], z)
                elif a < z:
                    spans.append([a, z])
            seconds = sum((z - a).total_seconds() for a, z in spans if (z - a).total_seconds() >= 1)
            assert abs(float(totals.parking_hours) - seconds / 3600) <= 0.0001 * len(totals.periods)
