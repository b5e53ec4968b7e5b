"""Costing is pure: tariff totals, VAT, step sizes and charging/parking periods."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from roaming.costing import (
    PriceComponent,
    Reading,
    Tariff,
    TariffDimension,
    TariffElement,
    build_periods,
    cost,
    cost_session,
)
from roaming.models.datetimes import format_datetime

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


def test_periods_split_charging_and_parking():
    readings = [
        Reading(T0 + timedelta(minutes=10), 1000),  # nothing charged yet: parking 0-10
        Reading(T0 + timedelta(minutes=40), 6000),  # charging 10-40
        Reading(T0 + timedelta(minutes=70), 11000),  # charging 40-70
        Reading(T0 + timedelta(minutes=90), 11000),  # idle 70-90
    ]
    totals = build_periods(T0, T0 + timedelta(minutes=100), 1000, 11000, readings)
    kinds = [(p.charging, p.start, p.energy_kwh, p.hours) for p in totals.periods]
    assert kinds == [
        (False, T0, Decimal("0.0"), Decimal("0.1667")),
        (True, T0 + timedelta(minutes=10), Decimal("10.0"), Decimal("1.0")),
        (False, T0 + timedelta(minutes=70), Decimal("0.0"), Decimal("0.5")),
    ]
    assert totals.total_energy_kwh == Decimal("10.0")
    assert totals.total_hours == Decimal("1.6667")
    assert totals.parking_hours == Decimal("0.6667")
    js = totals.periods[1].to_json("T1", format_datetime)
    assert js == {
        "start_date_time": "2024-05-03T12:10:00Z",
        "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 1}],
        "tariff_id": "T1",
    }
    b = cost_session(tariff(energy_price=0.3, parking_price=3.0), totals)
    assert b.energy is not None and b.parking is not None
    assert b.energy.excl_vat == Decimal("3.00")
    assert b.parking.excl_vat == Decimal("2.00")


def test_backward_and_out_of_range_readings_are_ignored():
    readings = [
        Reading(T0 - timedelta(minutes=5), 0),
        Reading(T0 + timedelta(minutes=30), 3000),
        Reading(T0 + timedelta(minutes=40), 100),  # register went backwards
        Reading(T0 + timedelta(hours=5), 99999),
    ]
    totals = build_periods(T0, T0 + timedelta(hours=1), 0, 5000, readings)
    assert len(totals.periods) == 1
    assert totals.periods[0].charging
    assert totals.total_energy_kwh == Decimal("5.0")
    assert totals.parking_hours == 0


def test_no_readings_and_no_energy_is_one_parking_period():
    totals = build_periods(T0, T0 + timedelta(minutes=30), 500, 500, [])
    assert [p.charging for p in totals.periods] == [False]
    assert totals.total_energy_kwh == 0
    assert totals.parking_hours == Decimal("0.5")
