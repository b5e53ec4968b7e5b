"""OCPI Locations, CPO as Sender: the operator's catalogue, its store, and the GET interface.

Why a catalogue file plus a store: operators describe sites in a reviewed text file
(``locations.toml``, see :func:`parse_catalog`), while EVSE status and ``last_updated``
change at run time and must survive restarts and date-filtered pulls. :meth:`LocationStore.sync`
loads the file into the store and bumps ``last_updated`` only for objects whose content
changed; EVSEs that disappear from the file become ``REMOVED`` (OCPI never deletes them).

One EVSE per OCPP connector (the OCA application note for OCPP 1.x): every EVSE names the
``(charger_id, connector_id)`` it stands for, and has exactly one OCPI connector.

Errors: :class:`~roaming.models.ValidationError` with the dotted key
(``locations[0].evses[1].standard``) for a bad file; GETs of unknown objects are HTTP 404.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from aiohttp import web

from roaming.app import OcpiModule, RoamingContext
from roaming.costing import Tariff
from roaming.envelope import NotFound, ok
from roaming.models import InterfaceRole, ModuleID, ValidationError, format_datetime, norm
from roaming.pagination import PageParams, add_sender_list
from roaming.ports import SqlDatabase, SqlExecutor
from roaming.tariffs import parse_tariffs

LOCATIONS_PATH = "/ocpi/cpo/2.2.1/locations"

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


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True)
class EvseSpec:
    uid: str
    charger_id: str
    connector_id: int  # the OCPP connector this EVSE stands for
    body: dict[str, Any]  # OCPI EVSE without status / last_updated (connectors inside)


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
            raise ValidationError(path, "must be a table")
        for key in table:
            if key not in allowed:
                raise ValidationError(f"{path}.{key}", "unknown key")
        self.t = table
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}"

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


def _parse_evse(table: Any, path: str, tariff_ids: set[str]) -> EvseSpec:
    f = _Fields(table, path, _EVSE_KEYS)
    uid = f.text("uid", 36)
    charger_id = f.text("charger_id", 48)
    connector_id = f.integer("connector_id", minimum=1)
    assert uid and charger_id and connector_id is not None
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
            raise ValidationError(f.name("tariff_ids"), f"no tariff with id {t!r} in [[tariffs]]")
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


def _parse_location(table: Any, path: str, tariff_ids: set[str]) -> LocationSpec:
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
    evses = tuple(_parse_evse(e, f"{path}.evses[{i}]", tariff_ids) for i, e in enumerate(raw_evses))
    return LocationSpec(id=loc_id, body=body, evses=evses)


def parse_catalog(text: str, *, country_code: str, party_id: str) -> Catalog:
    """Parse a ``locations.toml``; raises ValidationError naming the key of any problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("locations file", f"not valid TOML: {exc}") from None
    for key in raw:
        if key not in ("locations", "tariffs"):
            raise ValidationError(key, "unknown section (expected [[locations]] and [[tariffs]])")
    tariffs = parse_tariffs(raw.get("tariffs", []), country_code=country_code, party_id=party_id)
    tariff_ids = {norm(t.id) for t in tariffs}
    raw_locs = raw.get("locations", [])
    if not isinstance(raw_locs, list):
        raise ValidationError("locations", "must be an array of tables ([[locations]])")
    locations = tuple(
        _parse_location(t, f"locations[{i}]", tariff_ids) for i, t in enumerate(raw_locs)
    )
    seen_locs: set[str] = set()
    seen_evses: dict[str, str] = {}
    seen_connectors: dict[tuple[str, int], str] = {}
    for i, loc in enumerate(locations):
        if norm(loc.id) in seen_locs:
            raise ValidationError(f"locations[{i}].id", f"duplicate location id {loc.id!r}")
        seen_locs.add(norm(loc.id))
        for j, evse in enumerate(loc.evses):
            path = f"locations[{i}].evses[{j}]"
            if norm(evse.uid) in seen_evses:
                raise ValidationError(f"{path}.uid", f"duplicate EVSE uid {evse.uid!r}")
            seen_evses[norm(evse.uid)] = loc.id
            mapped = (evse.charger_id, evse.connector_id)
            if mapped in seen_connectors:
                raise ValidationError(
                    f"{path}.connector_id",
                    f"charger {evse.charger_id} connector {evse.connector_id} is already EVSE "
                    f"{seen_connectors[mapped]!r}",
                )
            seen_connectors[mapped] = evse.uid
    return Catalog(locations=locations, tariffs=tariffs)


# --------------------------------------------------------------------------- store


def _hash(obj: Any) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


class EvseRef(NamedTuple):
    """Everything a Session / CDR needs about the EVSE a connector stands for."""

    location_id: str
    evse_uid: str
    evse_id: str | None
    connector: dict[str, Any]  # the OCPI connector object
    location: dict[str, Any]  # the static Location body (address, coordinates, ...)
    charger_id: str
    connector_id: int
    status: str


@dataclass
class SyncReport:
    changed_locations: list[str] = field(default_factory=list)
    removed_evses: list[str] = field(default_factory=list)
    changed_tariffs: list[str] = field(default_factory=list)


class LocationStore:
    """SQL over ``ocpi_locations`` / ``ocpi_evses`` / ``ocpi_tariffs``."""

    def __init__(self, db: SqlDatabase, country_code: str, party_id: str) -> None:
        self.db = db
        self.country_code = country_code
        self.party_id = party_id

    # ---------------------------------------------------------------- sync

    async def sync(self, tx: SqlExecutor, catalog: Catalog, now: datetime) -> SyncReport:
        ts = format_datetime(now)
        report = SyncReport()
        for seq, tariff in enumerate(catalog.tariffs):
            body = tariff.to_json()
            body.pop("last_updated")
            h = _hash(body)
            row = await tx.fetchone(
                "SELECT content_hash FROM ocpi_tariffs WHERE id_norm = ?", (norm(tariff.id),)
            )
            if row is None:
                await tx.execute(
                    "INSERT INTO ocpi_tariffs (id_norm, id, body, content_hash, last_updated, seq)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (norm(tariff.id), tariff.id, orjson.dumps(body).decode(), h, ts, seq),
                )
                report.changed_tariffs.append(tariff.id)
            elif row["content_hash"] != h:
                await tx.execute(
                    "UPDATE ocpi_tariffs SET id = ?, body = ?, content_hash = ?, last_updated = ?,"
                    " seq = ? WHERE id_norm = ?",
                    (tariff.id, orjson.dumps(body).decode(), h, ts, seq, norm(tariff.id)),
                )
                report.changed_tariffs.append(tariff.id)
        # Retire EVSEs that left the file first: a replacement may reuse their connector.
        wanted_evses = {norm(e.uid) for loc in catalog.locations for e in loc.evses}
        rows = await tx.fetchall(
            "SELECT uid_norm, uid, location_id_norm FROM ocpi_evses WHERE status != 'REMOVED'"
        )
        for r in rows:
            if r["uid_norm"] in wanted_evses:
                continue
            await tx.execute(
                "UPDATE ocpi_evses SET status = 'REMOVED', last_updated = ? WHERE uid_norm = ?",
                (ts, r["uid_norm"]),
            )
            await self._bump_location(tx, r["location_id_norm"], ts)
            report.removed_evses.append(r["uid"])
            loc_row = await tx.fetchone(
                "SELECT id FROM ocpi_locations WHERE id_norm = ?", (r["location_id_norm"],)
            )
            if loc_row and loc_row["id"] not in report.changed_locations:
                report.changed_locations.append(loc_row["id"])
        for seq, loc in enumerate(catalog.locations):
            changed = False
            h = _hash(loc.body)
            row = await tx.fetchone(
                "SELECT content_hash FROM ocpi_locations WHERE id_norm = ?", (norm(loc.id),)
            )
            if row is None or row["content_hash"] != h:
                await tx.execute(
                    "INSERT INTO ocpi_locations (id_norm, id, body, content_hash, last_updated, seq)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id_norm) DO UPDATE SET id = excluded.id,"
                    " body = excluded.body, content_hash = excluded.content_hash,"
                    " last_updated = excluded.last_updated",
                    (norm(loc.id), loc.id, orjson.dumps(loc.body).decode(), h, ts, seq),
                )
                changed = True
            for eseq, evse in enumerate(loc.evses):
                content = {**evse.body, "_map": [evse.charger_id, evse.connector_id]}
                eh = _hash(content)
                erow = await tx.fetchone(
                    "SELECT content_hash, location_id_norm, status FROM ocpi_evses WHERE uid_norm = ?",
                    (norm(evse.uid),),
                )
                if (
                    erow is not None
                    and erow["content_hash"] == eh
                    and erow["location_id_norm"] == norm(loc.id)
                    and erow["status"] != "REMOVED"
                ):
                    continue
                body = dict(evse.body)
                body["connectors"] = [{**c, "last_updated": ts} for c in body["connectors"]]
                if erow is None:
                    await tx.execute(
                        "INSERT INTO ocpi_evses (uid_norm, uid, location_id_norm, charger_id,"
                        " connector_id, body, content_hash, status, last_updated, seq)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, 'UNKNOWN', ?, ?)",
                        (
                            norm(evse.uid), evse.uid, norm(loc.id), evse.charger_id,
                            evse.connector_id, orjson.dumps(body).decode(), eh, ts, eseq,
                        ),
                    )  # fmt: skip
                else:
                    status = "UNKNOWN" if erow["status"] == "REMOVED" else erow["status"]
                    await tx.execute(
                        "UPDATE ocpi_evses SET uid = ?, location_id_norm = ?, charger_id = ?,"
                        " connector_id = ?, body = ?, content_hash = ?, status = ?,"
                        " last_updated = ?, seq = ? WHERE uid_norm = ?",
                        (
                            evse.uid, norm(loc.id), evse.charger_id, evse.connector_id,
                            orjson.dumps(body).decode(), eh, status, ts, eseq, norm(evse.uid),
                        ),
                    )  # fmt: skip
                changed = True
            if changed:
                await self._bump_location(tx, norm(loc.id), ts)
                if loc.id not in report.changed_locations:
                    report.changed_locations.append(loc.id)
        return report

    @staticmethod
    async def _bump_location(tx: SqlExecutor, id_norm: str, ts: str) -> None:
        await tx.execute(
            "UPDATE ocpi_locations SET last_updated = ? WHERE id_norm = ?", (ts, id_norm)
        )

    # ---------------------------------------------------------------- reads

    def _evse_json(self, row: Any) -> dict[str, Any]:
        body = orjson.loads(row["body"])
        out = {"uid": body.pop("uid")}
        if "evse_id" in body:
            out["evse_id"] = body.pop("evse_id")
        out["status"] = row["status"]
        out.update(body)
        out["last_updated"] = row["last_updated"]
        return out

    async def _location_json(self, db: SqlExecutor, row: Any) -> dict[str, Any]:
        body = orjson.loads(row["body"])
        evse_rows = await db.fetchall(
            "SELECT * FROM ocpi_evses WHERE location_id_norm = ? ORDER BY seq, uid_norm",
            (row["id_norm"],),
        )
        out: dict[str, Any] = {"country_code": self.country_code, "party_id": self.party_id}
        out.update(body)
        out["evses"] = [self._evse_json(r) for r in evse_rows]
        out["last_updated"] = row["last_updated"]
        return out

    async def page(
        self, date_from: str | None, date_to: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        where, params = _date_filter(date_from, date_to)
        total_row = await self.db.fetchone(
            f"SELECT count(*) AS n FROM ocpi_locations {where}", params
        )
        rows = await self.db.fetchall(
            f"SELECT * FROM ocpi_locations {where} ORDER BY seq, id_norm LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return total_row["n"], [await self._location_json(self.db, r) for r in rows]

    async def location(
        self, location_id: str, db: SqlExecutor | None = None
    ) -> dict[str, Any] | None:
        ex = db or self.db
        row = await ex.fetchone(
            "SELECT * FROM ocpi_locations WHERE id_norm = ?", (norm(location_id),)
        )
        return await self._location_json(ex, row) if row else None

    async def evse(self, location_id: str, evse_uid: str) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            "SELECT * FROM ocpi_evses WHERE location_id_norm = ? AND uid_norm = ?",
            (norm(location_id), norm(evse_uid)),
        )
        return self._evse_json(row) if row else None

    async def refs(
        self, charger_id: str, connector_id: int | None
    ) -> tuple[str, tuple[str, ...]] | None:
        """(location_id, evse uids) of a charger (all its EVSEs when connector_id is None/0)."""
        sql = (
            "SELECT l.id AS location_id, e.uid FROM ocpi_evses e JOIN ocpi_locations l"
            " ON l.id_norm = e.location_id_norm WHERE e.charger_id = ? AND e.status != 'REMOVED'"
        )
        params: list[Any] = [charger_id]
        if connector_id:
            sql += " AND e.connector_id = ?"
            params.append(connector_id)
        rows = await self.db.fetchall(sql + " ORDER BY e.seq", params)
        if not rows:
            return None
        return rows[0]["location_id"], tuple(
            r["uid"] for r in rows if r["location_id"] == rows[0]["location_id"]
        )

    async def evse_for(self, db: SqlExecutor, charger_id: str, connector_id: int) -> EvseRef | None:
        row = await db.fetchone(
            "SELECT e.*, l.id AS location_id, l.body AS location_body FROM ocpi_evses e"
            " JOIN ocpi_locations l ON l.id_norm = e.location_id_norm"
            " WHERE e.charger_id = ? AND e.connector_id = ? AND e.status != 'REMOVED'",
            (charger_id, connector_id),
        )
        return _ref(row) if row else None

    async def evse_by_uid(
        self, location_id: str, evse_uid: str | None, db: SqlExecutor | None = None
    ) -> list[EvseRef]:
        """The EVSE(s) a command addresses: one by uid, or all of the location when None."""
        ex = db or self.db
        sql = (
            "SELECT e.*, l.id AS location_id, l.body AS location_body FROM ocpi_evses e"
            " JOIN ocpi_locations l ON l.id_norm = e.location_id_norm"
            " WHERE l.id_norm = ? AND e.status != 'REMOVED'"
        )
        params: list[Any] = [norm(location_id)]
        if evse_uid is not None:
            sql += " AND e.uid_norm = ?"
            params.append(norm(evse_uid))
        rows = await ex.fetchall(sql + " ORDER BY e.seq", params)
        return [_ref(r) for r in rows]

    async def location_exists(self, location_id: str) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM ocpi_locations WHERE id_norm = ?", (norm(location_id),)
        )
        return row is not None

    async def set_status(
        self, tx: SqlExecutor, charger_id: str, connector_id: int, status: str, now: datetime
    ) -> tuple[EvseRef, str] | None:
        """Store a new EVSE status; returns (ref, last_updated) when it actually changed."""
        ref = await self.evse_for(tx, charger_id, connector_id)
        if ref is None or ref.status == status:
            return None
        ts = format_datetime(now)
        await tx.execute(
            "UPDATE ocpi_evses SET status = ?, last_updated = ? WHERE uid_norm = ?",
            (status, ts, norm(ref.evse_uid)),
        )
        await self._bump_location(tx, norm(ref.location_id), ts)
        return ref._replace(status=status), ts

    # ---------------------------------------------------------------- tariffs

    async def tariff_page(
        self, date_from: str | None, date_to: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        where, params = _date_filter(date_from, date_to)
        total_row = await self.db.fetchone(
            f"SELECT count(*) AS n FROM ocpi_tariffs {where}", params
        )
        rows = await self.db.fetchall(
            f"SELECT * FROM ocpi_tariffs {where} ORDER BY seq, id_norm LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return total_row["n"], [self._tariff_json(r) for r in rows]

    def _tariff_json(self, row: Any) -> dict[str, Any]:
        return {**orjson.loads(row["body"]), "last_updated": row["last_updated"]}

    async def tariff_json(
        self, tariff_id: str, db: SqlExecutor | None = None
    ) -> dict[str, Any] | None:
        row = await (db or self.db).fetchone(
            "SELECT * FROM ocpi_tariffs WHERE id_norm = ?", (norm(tariff_id),)
        )
        return self._tariff_json(row) if row else None

    async def all_tariffs(self) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT * FROM ocpi_tariffs ORDER BY seq")
        return [self._tariff_json(r) for r in rows]


def _ref(row: Any) -> EvseRef:
    body = orjson.loads(row["body"])
    return EvseRef(
        location_id=row["location_id"],
        evse_uid=row["uid"],
        evse_id=body.get("evse_id"),
        connector=body["connectors"][0],
        location=orjson.loads(row["location_body"]),
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        status=row["status"],
    )


def _date_filter(date_from: str | None, date_to: str | None) -> tuple[str, tuple[Any, ...]]:
    """``last_updated`` is stored as ``YYYY-MM-DDTHH:MM:SSZ``; compare on that shape."""
    clauses, params = [], []
    if date_from:
        clauses.append("last_updated >= ?")
        params.append(_canon(date_from))
    if date_to:
        clauses.append("last_updated < ?")
        params.append(_canon(date_to))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)


def _canon(value: str) -> str:
    from roaming.models import parse_datetime

    return format_datetime(parse_datetime(value))


# --------------------------------------------------------------------------- HTTP


def _store(ctx: RoamingContext) -> LocationStore:
    store: LocationStore = ctx.services["locations"]
    return store


def _add_routes(app: web.Application, ctx: RoamingContext) -> None:
    async def location_page(_: web.Request, page: PageParams) -> tuple[int, list[Any]]:
        return await _store(ctx).page(page.date_from, page.date_to, page.offset, page.limit)

    async def get_location(request: web.Request) -> web.Response:
        loc = await _store(ctx).location(request.match_info["location_id"])
        if loc is None:
            raise NotFound("unknown location", status_code=2003)
        return ok(loc)

    async def get_evse(request: web.Request) -> web.Response:
        evse = await _store(ctx).evse(
            request.match_info["location_id"], request.match_info["evse_uid"]
        )
        if evse is None:
            raise NotFound("unknown EVSE", status_code=2003)
        return ok(evse)

    async def get_connector(request: web.Request) -> web.Response:
        evse = await _store(ctx).evse(
            request.match_info["location_id"], request.match_info["evse_uid"]
        )
        cid = norm(request.match_info["connector_id"])
        for conn in (evse or {}).get("connectors", []):
            if norm(conn["id"]) == cid:
                return ok(conn)
        raise NotFound("unknown connector", status_code=2003)

    add_sender_list(app, LOCATIONS_PATH, location_page)
    app.router.add_get(LOCATIONS_PATH + "/{location_id}", get_location)
    app.router.add_get(LOCATIONS_PATH + "/{location_id}/{evse_uid}", get_evse)
    app.router.add_get(LOCATIONS_PATH + "/{location_id}/{evse_uid}/{connector_id}", get_connector)


def module() -> OcpiModule:
    """Our Locations SENDER interface; needs ``ctx.services['locations']`` (a LocationStore)."""
    return OcpiModule(ModuleID.LOCATIONS, InterfaceRole.SENDER, LOCATIONS_PATH, _add_routes)


__all__ = [
    "Catalog",
    "EvseRef",
    "LocationSpec",
    "LocationStore",
    "Mapping",
    "Sequence",
    "module",
    "parse_catalog",
]
