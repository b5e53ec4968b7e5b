"""Tariff input: the TOML ``[[tariffs]]`` with restricted elements, and full OCPI Tariff
JSON, validated with errors that name the field."""

import tomllib
from datetime import time
from decimal import Decimal

import pytest

from roaming.catalog import parse_catalog
from roaming.costing import Restrictions, TariffDimension
from roaming.models import ValidationError
from roaming.tariffs import parse_tariff_json, parse_tariffs, tariff_from_json, toml_table
from tests.e2e.roaming.conftest import LOCATIONS_TOML

TOU = """
[[tariffs]]
id = "AC-TOU"
currency = "EUR"
vat = 21.0

[[tariffs.elements]]
energy_price = 0.45
parking_price = 0
start_time = "18:00"
end_time = "07:00"
day_of_week = ["MONDAY", "FRIDAY"]

[[tariffs.elements]]
energy_price = 0.25
max_kwh = 10
min_power = 0
max_power = 22.5
max_duration = 3600
start_date = 2026-01-01
end_date = "2027-01-01"
vat = 9

[[tariffs.elements]]
energy_price = 0.30
"""


def parse(text: str):
    return parse_tariffs(tomllib.loads(text)["tariffs"], country_code="NL", party_id="CPO")


def test_elements_with_restrictions_from_toml():
    [t] = parse(TOU)
    first, second, last = t.elements
    assert [c.type for c in first.price_components] == [
        TariffDimension.ENERGY,
        TariffDimension.PARKING_TIME,  # present with 0: a real free component
    ]
    assert first.restrictions == Restrictions(
        start_time=time(18), end_time=time(7), day_of_week=("MONDAY", "FRIDAY")
    )
    assert second.price_components[0].vat == Decimal(9)  # the element's own VAT
    assert second.restrictions is not None
    assert second.restrictions.max_kwh == Decimal(10)
    assert str(second.restrictions.start_date) == "2026-01-01"
    assert last.restrictions is None and last.price_components[0].vat == Decimal(21)
    js = t.to_json()
    assert js["elements"][0]["restrictions"] == {
        "start_time": "18:00",
        "end_time": "07:00",
        "day_of_week": ["MONDAY", "FRIDAY"],
    }
    assert js["elements"][1]["restrictions"] == {
        "start_date": "2026-01-01",
        "end_date": "2027-01-01",
        "max_kwh": 10,
        "min_power": 0,
        "max_power": 22.5,
        "max_duration": 3600,
    }
    assert tariff_from_json(js) == t  # what the store keeps prices the same


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("energy_price = 1\n[[tariffs.elements]]\nenergy_price = 1", "tariffs[0].energy_price",
         "inside"),
        ('[[tariffs.elements]]\nenergy_price = 1\nstart_time = "25:00"',
         "tariffs[0].elements[0].start_time", "HH:MM"),
        ('[[tariffs.elements]]\nenergy_price = 1\nstart_time = "08:00"\nend_time = "08:00"',
         "tariffs[0].elements[0].end_time", "equals start_time"),
        ('[[tariffs.elements]]\nenergy_price = 1\nday_of_week = ["FUNDAY"]',
         "tariffs[0].elements[0].day_of_week", "MONDAY"),
        ("[[tariffs.elements]]\nenergy_price = 1\nmin_kwh = 10\nmax_kwh = 5",
         "tariffs[0].elements[0].max_kwh", "greater than min_kwh"),
        ("[[tariffs.elements]]\nmin_kwh = 10", "tariffs[0].elements[0]", "has no price"),
        ("[[tariffs.elements]]\nenergy_price = -1", "tariffs[0].elements[0].energy_price",
         ">= 0"),
        ('[[tariffs.elements]]\nenergy_price = 1\nreservation = "RESERVATION"',
         "tariffs[0].elements[0].reservation", "unknown key"),
        ("[[tariffs.elements]]\nenergy_price = 1\nmax_duration = 1.5",
         "tariffs[0].elements[0].max_duration", "whole seconds"),
        ("elements = []", "tariffs[0].elements", "non-empty"),
        ('energy_price = 1\nstart_time = "18:00"', "tariffs[0].start_time", "inside"),
    ],
)  # fmt: skip
def test_bad_toml_tariffs_name_the_key(body, field, message):
    with pytest.raises(ValidationError) as err:
        parse(f'[[tariffs]]\nid = "T"\ncurrency = "EUR"\n{body}\n')
    assert err.value.field == field
    assert message in err.value.message


OCPI = {
    "country_code": "NL",
    "party_id": "CPO",
    "id": "T-1",
    "currency": "EUR",
    "type": "REGULAR",
    "tariff_alt_text": [{"language": "en", "text": "0.25/kWh, 0.35 after 10 kWh"}],
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21, "step_size": 1}],
            "restrictions": {"max_kwh": 10, "reservation": "RESERVATION_EXPIRES"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.35, "step_size": 1}]},
    ],
    "start_date_time": "2026-01-01T00:00:00Z",
    "min_price": {"excl_vat": 1.5, "incl_vat": 1.8},
    "last_updated": "2026-12-01T10:00:00Z",
}


def test_full_ocpi_tariff_round_trips():
    t = parse_tariff_json(OCPI, country_code="NL", party_id="CPO")
    assert t.to_json() == OCPI
    assert t.elements[0].restrictions is not None
    assert t.elements[0].restrictions.reservation == "RESERVATION_EXPIRES"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"elements": []}, "elements", "non-empty"),
        ({"currency": "euro"}, "currency", "ISO 4217"),
        ({"party_id": "XYZ"}, "party_id", "ours"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"min_price": {"excl_vat": 1}}, "min_price", "both"),
        (
            {
                "min_price": {"excl_vat": 5, "incl_vat": 6},
                "max_price": {"excl_vat": 4, "incl_vat": 5},
            },
            "max_price",
            "below min_price",
        ),
        ({"type": "CHEAP"}, "type", "REGULAR"),
        ({"last_updated": "2026-12-01T10:00:00+00:00"}, "last_updated", "OCPI DateTime"),
        (
            {"elements": [{"price_components": [{"type": "ENERGY", "price": 1}]}]},
            "elements[0].price_components[0].step_size",
            "integer >= 1",
        ),
        (
            {"elements": [{"price_components": [{"type": "KWH", "price": 1, "step_size": 1}]}]},
            "elements[0].price_components[0].type",
            "ENERGY",
        ),
        (
            {
                "elements": [
                    {
                        "price_components": [{"type": "TIME", "price": 1, "step_size": 1}],
                        "restrictions": {"min_duration": 600, "max_duration": 60},
                    }
                ]
            },
            "elements[0].restrictions.max_duration",
            "greater than min_duration",
        ),
    ],
)
def test_bad_ocpi_tariffs_name_the_field(change, field, message):
    with pytest.raises(ValidationError) as err:
        parse_tariff_json({**OCPI, **change}, country_code="NL", party_id="CPO")
    assert err.value.field == field
    assert message in err.value.message


def test_a_location_using_a_local_time_tariff_needs_a_real_time_zone():
    tou = '[[tariffs]]\nid = "TOU"\ncurrency = "EUR"\n[[tariffs.elements]]\nenergy_price = 1\nstart_time = "18:00"\n'
    text = tou + LOCATIONS_TOML.replace('tariff_ids = ["AC-STD"]', 'tariff_ids = ["TOU"]', 1)
    assert parse_catalog(text, country_code="NL", party_id="CPO").tariffs[0].id == "TOU"
    with pytest.raises(ValidationError) as err:
        parse_catalog(
            text.replace("Europe/Amsterdam", "Mars/Olympus"), country_code="NL", party_id="CPO"
        )
    assert err.value.field == "locations[0].time_zone"
    # A tariff without local-time restrictions does not care.
    plain = LOCATIONS_TOML.replace("Europe/Amsterdam", "Mars/Olympus")
    assert parse_catalog(plain, country_code="NL", party_id="CPO").locations


@pytest.mark.parametrize(
    "text",
    [
        TOU,
        '[[tariffs]]\nid = "S"\ncurrency = "EUR"\nenergy_price = 0.4\nflat_price = 1\nvat = 21\n',
        '[[tariffs]]\nid = "F"\ncurrency = "EUR"\n',  # free: FLAT 0
        '[[tariffs]]\nid = "Z"\ncurrency = "EUR"\n[[tariffs.elements]]\nenergy_price = 0\n',
    ],
)
def test_a_tariff_exports_to_the_table_it_was_read_from(text):
    """``toml_table`` is the inverse of the file format (for ``locations export``)."""
    for t in parse(text):
        again = parse_tariffs([toml_table(t)], country_code="NL", party_id="CPO")
        assert again == (t,)


def test_ocpi_only_tariffs_do_not_export_to_the_file():
    with pytest.raises(ValidationError, match="OCPI fields"):
        toml_table(parse_tariff_json(OCPI))
    stepped = {
        **OCPI,
        "elements": [{"price_components": [{"type": "TIME", "price": 2, "step_size": 900}]}],
    }
    del stepped["type"], stepped["tariff_alt_text"], stepped["start_date_time"]
    del stepped["min_price"]
    with pytest.raises(ValidationError, match="step sizes"):
        toml_table(parse_tariff_json(stepped))
