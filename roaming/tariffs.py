"""OCPI Tariffs, CPO as Sender: operator tariffs (TOML or OCPI JSON), validated, and GET.

Two ways to write a tariff in ``[[tariffs]]`` of ``locations.toml``. The simple one is
one element without restrictions::

    [[tariffs]]
    id = "AC-STD"
    currency = "EUR"
    energy_price = 0.35   # per kWh, excl. VAT
    time_price = 0.0      # per hour charging
    parking_price = 0.0   # per hour connected but not drawing energy
    flat_price = 0.0      # per session
    vat = 21.0            # percent; omit when no VAT applies

The other lists elements, each with its prices and OCPI TariffRestrictions as plain keys
(AND-combined; per dimension the first element whose restrictions hold applies, so end
with an unrestricted fallback)::

    [[tariffs]]
    id = "AC-TOU"
    currency = "EUR"
    vat = 21.0                       # default for every element

    [[tariffs.elements]]             # evenings, local time of the Location
    energy_price = 0.45
    start_time = "18:00"
    end_time = "07:00"               # before start_time: wraps past midnight

    [[tariffs.elements]]
    energy_price = 0.30              # any other time

Restriction keys: ``start_time``/``end_time`` ("HH:MM"), ``start_date``/``end_date``
("YYYY-MM-DD", end exclusive), ``day_of_week`` (["SATURDAY", "SUNDAY"]),
``min_kwh``/``max_kwh``, ``min_current``/``max_current`` (A), ``min_power``/``max_power``
(kW), ``min_duration``/``max_duration`` (seconds); ``min_*`` inclusive, ``max_*`` exclusive.
A price key present with 0 is a real (free) component; an absent key is no component.

:func:`parse_tariff_json` validates a full OCPI Tariff object (for an admin API or a
stored body). ``min_price``/``max_price`` must give both ``excl_vat`` and ``incl_vat``:
OCPI bounds each total on its own, and we will not guess the one that is missing.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from typing import Any, Protocol

from aiohttp import web

from roaming.context import OcpiModule
from roaming.costing import (
    WEEKDAYS,
    Price,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffDimension,
    TariffElement,
)
from roaming.costing.model import num
from roaming.envelope import NotFound, ok
from roaming.models import InterfaceRole, ModuleID, ValidationError, datetime_str, norm
from roaming.pagination import PageParams, add_sender_list

TARIFFS_PATH = "/ocpi/cpo/2.2.1/tariffs"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_HHMM = re.compile(r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")
_PRICES = {
    "flat_price": TariffDimension.FLAT,
    "energy_price": TariffDimension.ENERGY,
    "time_price": TariffDimension.TIME,
    "parking_price": TariffDimension.PARKING_TIME,
}
_DECIMAL_BOUNDS = ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power")
_RESTRICTION_KEYS = {
    "start_time", "end_time", "start_date", "end_date", "day_of_week", "min_duration",
    "max_duration", *_DECIMAL_BOUNDS,
}  # fmt: skip
_SIMPLE_KEYS = {"id", "currency", "vat", *_PRICES}
_ELEMENT_KEYS = {"vat", *_PRICES, *_RESTRICTION_KEYS}
_TARIFF_TYPES = {"AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR"}
_JSON_KEYS = {
    "country_code", "party_id", "id", "currency", "type", "tariff_alt_text", "tariff_alt_url",
    "min_price", "max_price", "elements", "start_date_time", "end_date_time", "energy_mix",
    "last_updated",
}  # fmt: skip


def _number(v: Any, name: str, *, what: str = "a number >= 0") -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ValidationError(name, f"must be {what}, got {v!r}")
    return Decimal(str(v))


def _text_id(v: Any, name: str, n: int) -> str:
    if not isinstance(v, str) or not v or len(v) > n or not v.isascii():
        raise ValidationError(name, f"must be 1-{n} ASCII characters")
    return v


def _clock(v: Any, name: str) -> time:
    if isinstance(v, time) and not v.second and not v.microsecond and v.tzinfo is None:
        return v  # a TOML local time (18:00:00)
    if not isinstance(v, str) or not _HHMM.match(v):
        raise ValidationError(name, f'must be a time of day "HH:MM" (24 h), got {v!r}')
    return time(int(v[:2]), int(v[3:]))


def _day(v: Any, name: str) -> date:
    if isinstance(v, date) and not hasattr(v, "hour"):
        return v  # a TOML local date
    try:
        if isinstance(v, str) and len(v) == 10:
            return date.fromisoformat(v)
    except ValueError:
        pass
    raise ValidationError(name, f'must be a date "YYYY-MM-DD", got {v!r}')


def parse_restrictions(obj: Any, path: str, *, allow_reservation: bool = True) -> Restrictions:
    """OCPI TariffRestrictions from ``obj`` (JSON or the restriction keys of a TOML element)."""
    if not isinstance(obj, dict):
        raise ValidationError(path, "must be an object")
    keys = _RESTRICTION_KEYS | ({"reservation"} if allow_reservation else set())
    values: dict[str, Any] = {}
    for key, v in obj.items():
        name = f"{path}.{key}"
        if key not in keys:
            raise ValidationError(name, "unknown key")
        if key in ("start_time", "end_time"):
            values[key] = _clock(v, name)
        elif key in ("start_date", "end_date"):
            values[key] = _day(v, name)
        elif key in ("min_duration", "max_duration"):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValidationError(name, f"must be whole seconds >= 0, got {v!r}")
            values[key] = v
        elif key == "day_of_week":
            if not isinstance(v, list) or not v or not all(d in WEEKDAYS for d in v):
                raise ValidationError(name, f"must be a list of {', '.join(WEEKDAYS)}")
            if len(set(v)) != len(v):
                raise ValidationError(name, "lists a day twice")
            values[key] = tuple(v)
        elif key == "reservation":
            if v not in ("RESERVATION", "RESERVATION_EXPIRES"):
                raise ValidationError(name, "must be RESERVATION or RESERVATION_EXPIRES")
            values[key] = v
        else:
            values[key] = _number(v, name)
    r = Restrictions(**values)
    if r.start_time is not None and r.start_time == r.end_time:
        raise ValidationError(f"{path}.end_time", "equals start_time (an empty or full day?)")
    for low, high in (
        ("start_date", "end_date"), ("min_kwh", "max_kwh"), ("min_current", "max_current"),
        ("min_power", "max_power"), ("min_duration", "max_duration"),
    ):  # fmt: skip
        a, b = getattr(r, low), getattr(r, high)
        if a is not None and b is not None and not a < b:
            raise ValidationError(f"{path}.{high}", f"must be greater than {low}")
    return r


def _toml_element(t: Any, path: str, vat: Decimal | None) -> TariffElement:
    if not isinstance(t, dict):
        raise ValidationError(path, "must be a table")
    for key in t:
        if key not in _ELEMENT_KEYS:
            raise ValidationError(f"{path}.{key}", "unknown key")
    if "vat" in t:
        vat = _number(t["vat"], f"{path}.vat", what="a percentage >= 0")
    comps = tuple(
        PriceComponent(dim, _number(t[key], f"{path}.{key}"), vat)
        for key, dim in _PRICES.items()
        if key in t
    )
    if not comps:
        raise ValidationError(path, f"has no price (one of {', '.join(_PRICES)})")
    found = {k: v for k, v in t.items() if k in _RESTRICTION_KEYS}
    restrictions = parse_restrictions(found, path, allow_reservation=False) if found else None
    return TariffElement(comps, restrictions)


def parse_tariffs(raw: Any, *, country_code: str, party_id: str) -> tuple[Tariff, ...]:
    """The ``[[tariffs]]`` of a locations file; errors name the key (tariffs[1].elements[0])."""
    if not isinstance(raw, list):
        raise ValidationError("tariffs", "must be an array of tables ([[tariffs]])")
    out: list[Tariff] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        path = f"tariffs[{i}]"
        if not isinstance(t, dict):
            raise ValidationError(path, "must be a table")
        for key in t:
            if key in _RESTRICTION_KEYS:
                raise ValidationError(
                    f"{path}.{key}", "restrictions go inside [[tariffs.elements]]"
                )
            if key not in _SIMPLE_KEYS and key != "elements":
                raise ValidationError(f"{path}.{key}", "unknown key")
        tid = _text_id(t.get("id"), f"{path}.id", 36)
        if norm(tid) in seen:
            raise ValidationError(f"{path}.id", f"duplicate tariff id {tid!r}")
        seen.add(norm(tid))
        currency = t.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise ValidationError(f"{path}.currency", "must be an ISO 4217 code like EUR")
        vat = t.get("vat")
        vat_d = _number(vat, f"{path}.vat", what="a percentage >= 0") if vat is not None else None
        if "elements" not in t:
            out.append(
                Tariff.simple(
                    country_code=country_code,
                    party_id=party_id,
                    id=tid,
                    currency=currency,
                    vat=vat_d,
                    energy_price=_number(t.get("energy_price", 0), f"{path}.energy_price"),
                    time_price=_number(t.get("time_price", 0), f"{path}.time_price"),
                    parking_price=_number(t.get("parking_price", 0), f"{path}.parking_price"),
                    flat_price=_number(t.get("flat_price", 0), f"{path}.flat_price"),
                )
            )
            continue
        mixed = sorted(k for k in t if k in _PRICES)
        if mixed:
            raise ValidationError(f"{path}.{mixed[0]}", "prices go inside [[tariffs.elements]]")
        elements = t["elements"]
        if not isinstance(elements, list) or not elements:
            raise ValidationError(f"{path}.elements", "must be a non-empty [[tariffs.elements]]")
        parsed = tuple(
            _toml_element(e, f"{path}.elements[{j}]", vat_d) for j, e in enumerate(elements)
        )
        out.append(Tariff(country_code, party_id, tid, currency, parsed))
    return tuple(out)


def _json_element(e: Any, path: str) -> TariffElement:
    if not isinstance(e, dict):
        raise ValidationError(path, "must be an object")
    for key in e:
        if key not in ("price_components", "restrictions"):
            raise ValidationError(f"{path}.{key}", "unknown key")
    raw = e.get("price_components")
    if not isinstance(raw, list) or not raw:
        raise ValidationError(f"{path}.price_components", "must be a non-empty list")
    comps = []
    for k, c in enumerate(raw):
        p = f"{path}.price_components[{k}]"
        if not isinstance(c, dict):
            raise ValidationError(p, "must be an object")
        for key in c:
            if key not in ("type", "price", "vat", "step_size"):
                raise ValidationError(f"{p}.{key}", "unknown key")
        if c.get("type") not in TariffDimension.__members__:
            raise ValidationError(f"{p}.type", f"must be one of {', '.join(TariffDimension)}")
        step = c.get("step_size")
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValidationError(f"{p}.step_size", f"must be an integer >= 1, got {step!r}")
        vat = c.get("vat")
        comps.append(
            PriceComponent(
                TariffDimension(c["type"]),
                _number(c.get("price"), f"{p}.price"),
                _number(vat, f"{p}.vat", what="a percentage >= 0") if vat is not None else None,
                step,
            )
        )
    r = e.get("restrictions")
    return TariffElement(tuple(comps), parse_restrictions(r, f"{path}.restrictions") if r else None)


def _bound(v: Any, name: str) -> Price:
    """A min/max price: both excl and incl VAT, because OCPI bounds each on its own and a
    total including VAT cannot be bounded by a number we were not given."""
    if not isinstance(v, dict) or set(v) != {"excl_vat", "incl_vat"}:
        raise ValidationError(name, "must be {excl_vat, incl_vat} (both, to bound both totals)")
    excl = _number(v["excl_vat"], f"{name}.excl_vat")
    incl = _number(v["incl_vat"], f"{name}.incl_vat")
    if incl < excl:
        raise ValidationError(f"{name}.incl_vat", "must not be below excl_vat")
    return Price(excl, incl)


def _alt_text(v: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(v, list) or not all(
        isinstance(x, dict)
        and set(x) == {"language", "text"}
        and isinstance(x["language"], str)
        and len(x["language"]) == 2
        and isinstance(x["text"], str)
        and 0 < len(x["text"]) <= 512
        for x in v
    ):
        raise ValidationError(name, "must be a list of {language (2 letters), text (<= 512)}")
    return v


def parse_tariff_json(
    obj: Any, *, country_code: str | None = None, party_id: str | None = None
) -> Tariff:
    """A full OCPI 2.2.1 Tariff, validated; ``country_code``/``party_id`` (ours) are filled
    in when absent and must match when present. Errors name the field."""
    if not isinstance(obj, dict):
        raise ValidationError("tariff", "must be an object")
    for key in obj:
        if key not in _JSON_KEYS:
            raise ValidationError(key, "unknown field")
    bounds = {key: _bound(obj[key], key) for key in ("min_price", "max_price") if key in obj}
    low, high = bounds.get("min_price"), bounds.get("max_price")
    if low and high and (low.excl_vat > high.excl_vat or low.incl_vat > high.incl_vat):
        raise ValidationError("max_price", "must not be below min_price")
    owner = {}
    for key, ours, n in (("country_code", country_code, 2), ("party_id", party_id, 3)):
        v = obj.get(key, ours)
        if not isinstance(v, str) or len(v) != n or not v.isascii():
            raise ValidationError(key, f"must be {n} ASCII characters")
        if ours is not None and norm(v) != norm(ours):
            raise ValidationError(key, f"must be ours ({ours})")
        owner[key] = v
    tid = _text_id(obj.get("id"), "id", 36)
    currency = obj.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValidationError("currency", "must be an ISO 4217 code like EUR")
    elements = obj.get("elements")
    if not isinstance(elements, list) or not elements:
        raise ValidationError("elements", "must be a non-empty list")
    parsed = tuple(_json_element(e, f"elements[{i}]") for i, e in enumerate(elements))
    extra: list[tuple[str, Any]] = []
    if "type" in obj:
        if obj["type"] not in _TARIFF_TYPES:
            raise ValidationError("type", f"must be one of {', '.join(sorted(_TARIFF_TYPES))}")
        extra.append(("type", obj["type"]))
    if "tariff_alt_text" in obj:
        extra.append(("tariff_alt_text", _alt_text(obj["tariff_alt_text"], "tariff_alt_text")))
    if "tariff_alt_url" in obj:
        url = obj["tariff_alt_url"]
        if not isinstance(url, str) or not url or len(url) > 255:
            raise ValidationError("tariff_alt_url", "must be a URL of at most 255 characters")
        extra.append(("tariff_alt_url", url))
    for key in ("start_date_time", "end_date_time"):
        if key in obj:
            extra.append((key, datetime_str(obj[key], key)))
    if "energy_mix" in obj:
        if not isinstance(obj["energy_mix"], dict):
            raise ValidationError("energy_mix", "must be an object")
        extra.append(("energy_mix", obj["energy_mix"]))
    last = obj.get("last_updated")
    return Tariff(
        owner["country_code"],
        owner["party_id"],
        tid,
        currency,
        parsed,
        last_updated=datetime_str(last, "last_updated") if last else "1970-01-01T00:00:00Z",
        extra=tuple(extra),
        min_price=low,
        max_price=high,
    )


def toml_table(tariff: Tariff) -> dict[str, Any]:
    """The ``[[tariffs]]`` table that :func:`parse_tariffs` reads back as ``tariff`` (for an
    export): the simple shape when it is one, else ``elements``. ValidationError when the
    tariff uses what the file cannot say (step sizes, reservation prices, price bounds,
    alternative texts and other OCPI-only fields)."""
    path = f"tariffs.{tariff.id}"
    if tariff.extra or tariff.min_price or tariff.max_price:
        raise ValidationError(path, "has OCPI fields a locations file cannot hold")
    keys = {dim: key for key, dim in _PRICES.items()}
    vats = {c.vat for e in tariff.elements for c in e.price_components}
    out: dict[str, Any] = {"id": tariff.id, "currency": tariff.currency}
    common = vats.pop() if len(vats) == 1 else None
    if common is not None:
        out["vat"] = num(common)
    elements: list[dict[str, Any]] = []
    for i, e in enumerate(tariff.elements):
        table: dict[str, Any] = {}
        for c in e.price_components:
            if c.step_size != 1 or keys[c.type] in table:
                raise ValidationError(f"{path}.elements[{i}]", "step sizes are OCPI JSON only")
            table[keys[c.type]] = num(c.price)
            if (
                c.vat != common
                and c.vat is not None
                and table.setdefault("vat", num(c.vat)) != num(c.vat)
            ):
                raise ValidationError(f"{path}.elements[{i}]", "has two VAT rates")
        if e.restrictions is not None:
            if e.restrictions.reservation is not None:
                raise ValidationError(f"{path}.elements[{i}]", "reservation prices are JSON only")
            table.update(e.restrictions.to_json())
        elements.append(table)
    first = elements[0]
    simple = Tariff.simple(
        country_code=tariff.country_code,
        party_id=tariff.party_id,
        id=tariff.id,
        currency=tariff.currency,
        vat=common,
        energy_price=Decimal(str(first.get("energy_price", 0))),
        time_price=Decimal(str(first.get("time_price", 0))),
        parking_price=Decimal(str(first.get("parking_price", 0))),
        flat_price=Decimal(str(first.get("flat_price", 0))),
    )
    if len(elements) == 1 and simple.elements == tariff.elements:
        out.update({k: v for k, v in elements[0].items() if k != "vat"})
    else:
        out["elements"] = elements
    return out


def tariff_from_json(obj: dict[str, Any]) -> Tariff:
    """Rebuild a costing Tariff from a stored OCPI Tariff body (validated like any other)."""
    return parse_tariff_json(obj)


class TariffSource(Protocol):
    """Where the published tariffs are read: the location store (a protocol, because the
    store parses its catalogue with this module's tariff parser)."""

    async def tariff_page(
        self, date_from: str | None, date_to: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]: ...

    async def tariff_json(self, tariff_id: str) -> dict[str, Any] | None: ...


def _add_routes(app: web.Application, source: TariffSource) -> None:
    async def tariff_page(_: web.Request, page: PageParams) -> tuple[int, list[Any]]:
        total, items = await source.tariff_page(
            page.date_from, page.date_to, page.offset, page.limit
        )
        return total, items

    async def get_tariff(request: web.Request) -> web.Response:
        t = await source.tariff_json(request.match_info["tariff_id"])
        if t is None:
            raise NotFound("unknown tariff")
        return ok(t)

    add_sender_list(app, TARIFFS_PATH, tariff_page)
    app.router.add_get(TARIFFS_PATH + "/{tariff_id}", get_tariff)


def module(source: TariffSource) -> OcpiModule:
    """Tariffs SENDER over ``source`` (the location store)."""
    return OcpiModule(
        ModuleID.TARIFFS,
        InterfaceRole.SENDER,
        TARIFFS_PATH,
        lambda app, _ctx: _add_routes(app, source),
    )
