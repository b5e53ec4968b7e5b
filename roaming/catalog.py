"""The operator's catalogue file (``locations.toml``): Locations, EVSEs and Tariffs.

Why a reviewed text file: operators describe their sites once and review changes like
code; EVSE status and ``last_updated`` change at run time and live in the store
(:class:`roaming.store.locations.LocationStore`), which loads this catalogue and bumps
``last_updated`` only for objects whose content changed.

One EVSE per OCPP connector (the OCA application note for OCPP 1.x): every EVSE names the
``(charger_id, connector_id)`` it stands for, and has exactly one OCPI connector.

Errors: :class:`~roaming.models.ValidationError` with the dotted key
(``locations[0].evses[1].standard``) of the problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from roaming.costing import Tariff
from roaming.models import ValidationError, norm
from roaming.tariffs import parse_tariffs

CONNECTOR_TYPES = frozenset(
    [
        "CHADEMO", "CHAOJI", "GBT_AC", "GBT_DC",
        "IEC_60309_2_single_16", "IEC_60309_2_three_16", "IEC_60309_2_three_32",
        "IEC_60309_2_three_64", "IEC_62196_T1", "IEC_62196_T1_COMBO", "IEC_62196_T2",
        "IEC_62196_T2_COMBO", "IEC_62196_T3A", "IEC_62196_T3C", "NEMA_5_20", "NEMA_6_30",
        "NEMA_6_50", "NEMA_10_30", "NEMA_10_50", "NEMA_14_30", "NEMA_14_50",
        "PANTOGRAPH_BOTTOM_UP", "PANTOGRAPH_TOP_DOWN", "TESLA_R", "TESLA_S",
        *(f"DOMESTIC_{c}" for c in "ABCDEFGHIJKLMNO"),
    ]
)  # fmt: skip
CONNECTOR_FORMATS = frozenset(["SOCKET", "CABLE"])
POWER_TYPES = frozenset(["AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"])
CAPABILITIES = frozenset(
    [
        "CHARGING_PROFILE_CAPABLE", "CHARGING_PREFERENCES_CAPABLE", "CHIP_CARD_SUPPORT",
        "CONTACTLESS_CARD_SUPPORT", "CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE", "PED_TERMINAL",
        "REMOTE_START_STOP_CAPABLE", "RESERVABLE", "RFID_READER",
        "START_SESSION_CONNECTOR_REQUIRED", "TOKEN_GROUP_CAPABLE", "UNLOCK_CAPABLE",
    ]
)  # fmt: skip
PARKING_TYPES = frozenset(
    [
        "ALONG_MOTORWAY",
        "PARKING_GARAGE",
        "PARKING_LOT",
        "ON_DRIVEWAY",
        "ON_STREET",
        "UNDERGROUND_GARAGE",
    ]
)
EVSE_STATUSES = frozenset(
    ["AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "PLANNED", "REMOVED",
     "RESERVED", "UNKNOWN"]
)  # fmt: skip
_LAT = re.compile(r"^-?[0-9]{1,2}\.[0-9]{5,7}$")
_LON = re.compile(r"^-?[0-9]{1,3}\.[0-9]{5,7}$")


@dataclass(frozen=True, slots=True)
class EvseSpec:
    uid: str
    # The OCPP connector this EVSE stands for; ``None`` for an EVSE not (yet) mapped to
    # one (a site being built, or a charger taken away): it is published but never
    # carries a session.
    charger_id: str | None
    connector_id: int | None
    body: dict[str, Any]  # OCPI EVSE without status / last_updated (connectors inside)

    @property
    def mapping(self) -> tuple[str, int] | None:
        if self.charger_id is None or self.connector_id is None:
            return None
        return self.charger_id, self.connector_id


@dataclass(frozen=True, slots=True)
class LocationSpec:
    id: str
    body: dict[str, Any]  # OCPI Location without evses / last_updated
    evses: tuple[EvseSpec, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    locations: tuple[LocationSpec, ...] = ()
    tariffs: tuple[Tariff, ...] = ()


class _Fields:
    """Typed reads from one TOML table, every error naming ``path.key``."""

    def __init__(self, table: Any, path: str, allowed: set[str]) -> None:
        if not isinstance(table, dict):
            raise ValidationError(path or "body", "must be a table (an object)")
        self.t = table
        self.path = path
        for key in table:
            if key not in allowed:
                raise ValidationError(self.name(key), "unknown key")

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def text(self, key: str, max_len: int, *, required: bool = True) -> str | None:
        v = self.t.get(key)
        if v is None:
            if required:
                raise ValidationError(self.name(key), "required")
            return None
        if not isinstance(v, str) or not v:
            raise ValidationError(self.name(key), "must be a non-empty string")
        if len(v) > max_len:
            raise ValidationError(self.name(key), f"longer than {max_len} characters")
        return v

    def integer(self, key: str, *, required: bool = True, minimum: int = 0) -> int | None:
        v = self.t.get(key)
        if v is None:
            if required:
                raise ValidationError(self.name(key), "required")
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValidationError(self.name(key), f"must be an integer >= {minimum}")
        return v

    def choice(self, key: str, allowed: frozenset[str], *, required: bool = True) -> str | None:
        v = self.t.get(key)
        if v is None and not required:
            return None
        if v not in allowed:
            raise ValidationError(self.name(key), f"must be one of {', '.join(sorted(allowed))}")
        return str(v)

    def str_list(self, key: str, allowed: frozenset[str] | None = None) -> list[str]:
        v = self.t.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValidationError(self.name(key), "must be a list of strings")
        if allowed is not None:
            for x in v:
                if x not in allowed:
                    raise ValidationError(self.name(key), f"unknown value {x!r}")
        return list(v)

    def flag(self, key: str, default: bool) -> bool:
        v = self.t.get(key, default)
        if not isinstance(v, bool):
            raise ValidationError(self.name(key), "must be true or false")
        return v


_LOCATION_KEYS = {
    "id", "name", "address", "city", "postal_code", "state", "country", "latitude",
    "longitude", "time_zone", "publish", "parking_type", "facilities", "evses",
    "charging_when_closed",
}  # fmt: skip
_EVSE_KEYS = {
    "uid", "evse_id", "charger_id", "connector_id", "ocpi_connector_id", "capabilities",
    "standard", "format", "power_type", "max_voltage", "max_amperage", "max_electric_power",
    "tariff_ids", "floor_level", "physical_reference", "terms_and_conditions",
}  # fmt: skip


def parse_evse(table: Any, path: str, tariff_ids: set[str]) -> EvseSpec:
    """One ``[[locations.evses]]`` table (also the admin API's EVSE object).

    ``tariff_ids`` are the normalised ids of the tariffs the EVSE may name;
    ``charger_id`` and ``connector_id`` come together or not at all (unmapped EVSE).
    """
    f = _Fields(table, path, _EVSE_KEYS)
    uid = f.text("uid", 36)
    assert uid
    charger_id = f.text("charger_id", 48, required="connector_id" in table)
    connector_id = f.integer("connector_id", minimum=1, required=charger_id is not None)
    connector: dict[str, Any] = {
        "id": f.text("ocpi_connector_id", 36, required=False) or "1",
        "standard": f.choice("standard", CONNECTOR_TYPES),
        "format": f.choice("format", CONNECTOR_FORMATS),
        "power_type": f.choice("power_type", POWER_TYPES),
        "max_voltage": f.integer("max_voltage", minimum=1),
        "max_amperage": f.integer("max_amperage", minimum=1),
    }
    power = f.integer("max_electric_power", required=False, minimum=1)
    if power is not None:
        connector["max_electric_power"] = power
    tids = f.str_list("tariff_ids")
    for t in tids:
        if t.upper() not in tariff_ids:
            raise ValidationError(f.name("tariff_ids"), f"no tariff with id {t!r}")
    if tids:
        connector["tariff_ids"] = tids
    terms = f.text("terms_and_conditions", 255, required=False)
    if terms:
        connector["terms_and_conditions"] = terms
    body: dict[str, Any] = {"uid": uid}
    evse_id = f.text("evse_id", 48, required=False)
    if evse_id:
        body["evse_id"] = evse_id
    caps = f.str_list("capabilities", CAPABILITIES)
    if caps:
        body["capabilities"] = caps
    for key, n in (("floor_level", 4), ("physical_reference", 16)):
        v = f.text(key, n, required=False)
        if v:
            body[key] = v
    body["connectors"] = [connector]
    return EvseSpec(uid=uid, charger_id=charger_id, connector_id=connector_id, body=body)


def parse_location(table: Any, path: str, tariff_ids: set[str]) -> LocationSpec:
    """One ``[[locations]]`` table with its EVSEs (also the admin API's Location object)."""
    f = _Fields(table, path, _LOCATION_KEYS)
    loc_id = f.text("id", 36)
    assert loc_id
    body: dict[str, Any] = {"id": loc_id, "publish": f.flag("publish", True)}
    name = f.text("name", 255, required=False)
    if name:
        body["name"] = name
    body["address"] = f.text("address", 255)
    body["city"] = f.text("city", 45)
    for key, n in (("postal_code", 10), ("state", 45)):
        v = f.text(key, n, required=False)
        if v:
            body[key] = v
    country = f.text("country", 3)
    if country is None or len(country) != 3 or not country.isalpha():
        raise ValidationError(f.name("country"), "must be an ISO 3166-1 alpha-3 code like NLD")
    body["country"] = country.upper()
    lat, lon = f.text("latitude", 10), f.text("longitude", 11)
    if not _LAT.match(lat or ""):
        raise ValidationError(f.name("latitude"), "must look like 52.37403 (5-7 decimals)")
    if not _LON.match(lon or ""):
        raise ValidationError(f.name("longitude"), "must look like 4.88969 (5-7 decimals)")
    body["coordinates"] = {"latitude": lat, "longitude": lon}
    parking = f.choice("parking_type", PARKING_TYPES, required=False)
    if parking:
        body["parking_type"] = parking
    facilities = f.str_list("facilities")
    if facilities:
        body["facilities"] = facilities
    body["time_zone"] = f.text("time_zone", 255)
    if "charging_when_closed" in table:
        body["charging_when_closed"] = f.flag("charging_when_closed", True)
    raw_evses = table.get("evses", [])
    if not isinstance(raw_evses, list):
        raise ValidationError(f.name("evses"), "must be an array of tables ([[locations.evses]])")
    evses = tuple(parse_evse(e, f.name(f"evses[{i}]"), tariff_ids) for i, e in enumerate(raw_evses))
    return LocationSpec(id=loc_id, body=body, evses=evses)


def parse_catalog(
    text: str, *, country_code: str, party_id: str, known_tariff_ids: Iterable[str] = ()
) -> Catalog:
    """Parse a ``locations.toml``; raises ValidationError naming the key of any problem.

    ``known_tariff_ids``: tariffs that exist outside the file (the store, on an import)
    and that EVSEs may name besides the file's own ``[[tariffs]]``.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("locations file", f"not valid TOML: {exc}") from None
    for key in raw:
        if key not in ("locations", "tariffs"):
            raise ValidationError(key, "unknown section (expected [[locations]] and [[tariffs]])")
    tariffs = parse_tariffs(raw.get("tariffs", []), country_code=country_code, party_id=party_id)
    tariff_ids = {norm(t.id) for t in tariffs} | {norm(t) for t in known_tariff_ids}
    raw_locs = raw.get("locations", [])
    if not isinstance(raw_locs, list):
        raise ValidationError("locations", "must be an array of tables ([[locations]])")
    locations = tuple(
        parse_location(t, f"locations[{i}]", tariff_ids) for i, t in enumerate(raw_locs)
    )
    check_unique(locations)
    _check_local_times(locations, tariffs)
    return Catalog(locations=locations, tariffs=tariffs)


def check_unique(locations: Iterable[LocationSpec], path: str = "locations") -> None:
    """Location ids, EVSE uids and mapped connectors are unique among ``locations``."""
    seen_locs: set[str] = set()
    seen_evses: dict[str, str] = {}
    seen_connectors: dict[tuple[str, int], str] = {}
    for i, loc in enumerate(locations):
        if norm(loc.id) in seen_locs:
            raise ValidationError(f"{path}[{i}].id", f"duplicate location id {loc.id!r}")
        seen_locs.add(norm(loc.id))
        for j, evse in enumerate(loc.evses):
            at = f"{path}[{i}].evses[{j}]"
            if norm(evse.uid) in seen_evses:
                raise ValidationError(f"{at}.uid", f"duplicate EVSE uid {evse.uid!r}")
            seen_evses[norm(evse.uid)] = loc.id
            mapped = evse.mapping
            if mapped is None:
                continue
            if mapped in seen_connectors:
                raise ValidationError(
                    f"{at}.connector_id",
                    f"charger {mapped[0]} connector {mapped[1]} is already EVSE "
                    f"{seen_connectors[mapped]!r}",
                )
            seen_connectors[mapped] = evse.uid


def _check_local_times(locations: tuple[LocationSpec, ...], tariffs: tuple[Tariff, ...]) -> None:
    """A tariff priced by local time (time of day, date, weekday) needs the Location's
    time zone to be a real IANA zone, or its prices would switch at the wrong hour."""
    local = {
        norm(t.id)
        for t in tariffs
        if any(r.start_time or r.end_time or r.start_date or r.end_date or r.day_of_week
               for r in t.restrictions())
    }  # fmt: skip
    for i, loc in enumerate(locations):
        uses = {
            norm(tid)
            for evse in loc.evses
            for conn in evse.body["connectors"]
            for tid in conn.get("tariff_ids", [])
        }
        if not uses & local:
            continue
        try:
            ZoneInfo(loc.body["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"locations[{i}].time_zone",
                "must be an IANA time zone like Europe/Amsterdam (its tariffs use local time)",
            ) from None
