"""OCPI Tariffs, CPO as Sender: simple operator tariffs from the locations file, and GET.

Why "simple": operators price per kWh, per hour charging, per hour parking and per session,
plus VAT; that is one TariffElement without restrictions, which is also what
:mod:`roaming.costing` prices exactly. Anything richer belongs in a future format.

File shape (``[[tariffs]]`` in ``locations.toml``)::

    [[tariffs]]
    id = "AC-STD"
    currency = "EUR"
    energy_price = 0.35   # per kWh, excl. VAT
    time_price = 0.0      # per hour charging
    parking_price = 0.0   # per hour connected but not charging
    flat_price = 0.0      # per session
    vat = 21.0            # percent; omit when no VAT applies
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from aiohttp import web

from roaming.context import OcpiModule
from roaming.costing import Tariff
from roaming.envelope import NotFound, ok
from roaming.models import InterfaceRole, ModuleID, ValidationError, norm
from roaming.pagination import PageParams, add_sender_list

TARIFFS_PATH = "/ocpi/cpo/2.2.1/tariffs"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_KEYS = {"id", "currency", "energy_price", "time_price", "parking_price", "flat_price", "vat"}


def _number(table: dict[str, Any], key: str, path: str) -> float:
    v = table.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ValidationError(f"{path}.{key}", f"must be a number >= 0, got {v!r}")
    return float(v)


def parse_tariffs(raw: Any, *, country_code: str, party_id: str) -> tuple[Tariff, ...]:
    if not isinstance(raw, list):
        raise ValidationError("tariffs", "must be an array of tables ([[tariffs]])")
    out: list[Tariff] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        path = f"tariffs[{i}]"
        if not isinstance(t, dict):
            raise ValidationError(path, "must be a table")
        for key in t:
            if key not in _KEYS:
                raise ValidationError(f"{path}.{key}", "unknown key")
        tid = t.get("id")
        if not isinstance(tid, str) or not tid or len(tid) > 36 or not tid.isascii():
            raise ValidationError(f"{path}.id", "must be 1-36 ASCII characters")
        if norm(tid) in seen:
            raise ValidationError(f"{path}.id", f"duplicate tariff id {tid!r}")
        seen.add(norm(tid))
        currency = t.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise ValidationError(f"{path}.currency", "must be an ISO 4217 code like EUR")
        vat = t.get("vat")
        if vat is not None and (
            isinstance(vat, bool) or not isinstance(vat, int | float) or vat < 0
        ):
            raise ValidationError(f"{path}.vat", f"must be a percentage >= 0, got {vat!r}")
        out.append(
            Tariff.simple(
                country_code=country_code,
                party_id=party_id,
                id=tid,
                currency=currency,
                energy_price=_number(t, "energy_price", path),
                time_price=_number(t, "time_price", path),
                parking_price=_number(t, "parking_price", path),
                flat_price=_number(t, "flat_price", path),
                vat=float(vat) if vat is not None else None,
            )
        )
    return tuple(out)


def tariff_from_json(obj: dict[str, Any]) -> Tariff:
    """Rebuild a costing Tariff from the stored OCPI JSON (our own simple shape)."""
    from decimal import Decimal

    from roaming.costing import PriceComponent, TariffDimension, TariffElement

    elements = tuple(
        TariffElement(
            tuple(
                PriceComponent(
                    TariffDimension(c["type"]),
                    Decimal(str(c["price"])),
                    Decimal(str(c["vat"])) if c.get("vat") is not None else None,
                    int(c.get("step_size", 1)),
                )
                for c in e["price_components"]
            )
        )
        for e in obj["elements"]
        # Elements restricted to reservations price an unused reservation
        # (roaming.reservations), never a charge.
        if not (e.get("restrictions") or {}).get("reservation")
    )
    return Tariff(
        country_code=obj["country_code"],
        party_id=obj["party_id"],
        id=obj["id"],
        currency=obj["currency"],
        elements=elements,
        last_updated=obj.get("last_updated", "1970-01-01T00:00:00Z"),
    )


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
