"""Locations, EVSEs and Tariffs managed through the admin API (and so the CLI).

Why every operation is "read the stored object as a catalogue table, merge the change,
parse it with :mod:`roaming.catalog`, write it with :func:`write_locations`": the file
parser is the one definition of a valid Location, EVSE and Tariff, and the one write
path bumps ``last_updated`` only on real change, queues the PUTs and invalidates the
authorization's location memo. A rejected write raises before the transaction commits,
so nothing is half-written; errors are :class:`~csms.admin.http.ApiError` with the
offending field named (``{"error": "invalid_field", "field": "latitude", ...}``).

Charger sites (``csms chargers add CP1 --location LOC-1 ...``): the Location is created
(unpublished unless asked) or reused as stored, and connectors 1..N get EVSEs with uid
``<charger id>-<connector id>`` mapped to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from csms.admin.http import ApiError
from csms.ocpi.locations import write_locations
from csms.store.db import Database
from roaming.catalog import check_unique, parse_catalog, parse_evse, parse_location
from roaming.catalog_tables import dump_catalog, evse_table, location_table, merge, tariff_table
from roaming.models import ValidationError, norm
from roaming.store.locations import LocationStore, LocationWrites, StoredLocation, SyncReport
from roaming.tariffs import parse_tariffs

# What ``chargers add --location`` gives each EVSE unless told otherwise: a common AC
# socket; every OCPP 1.6 charger supports remote start/stop (Core profile).
SITE_EVSE_DEFAULTS: dict[str, Any] = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
    "capabilities": ["REMOTE_START_STOP_CAPABLE"],
}
_SITE_EVSE_KEYS = {*SITE_EVSE_DEFAULTS, "max_electric_power", "tariff_ids"}
_SITE_KEYS = {"location_id", "connectors", *_SITE_EVSE_KEYS}
_SITE_LOCATION_KEYS = {
    "name", "address", "city", "postal_code", "state", "country", "latitude", "longitude",
    "time_zone", "parking_type", "facilities", "charging_when_closed", "publish",
}  # fmt: skip


def invalid(exc: ValidationError, prefix: str = "") -> ApiError:
    name = exc.field
    if prefix and name.startswith(prefix):
        name = name[len(prefix) :]
    return ApiError(400, "invalid_field", f"{name}: {exc.message}", {"field": name})


class _DryRun(Exception):
    """Raised inside a write to roll it back after it was fully checked."""


class CatalogAdmin:
    """The admin operations on the CPO's catalogue; ``notify`` wakes the outbox worker."""

    def __init__(self, db: Database, store: LocationStore, notify: Callable[[], None]) -> None:
        self.db = db
        self.store = store
        self.notify = notify

    async def _write(
        self, apply: Callable[[LocationWrites], Awaitable[Any]], *, prefix: str = ""
    ) -> SyncReport:
        try:
            report, _ = await write_locations(self.db, self.store, apply)
        except ValidationError as exc:
            raise invalid(exc, prefix) from None
        if report.changed:
            self.notify()
        return report

    async def _location_or_404(self, location_id: str, tx: Any) -> StoredLocation:
        found = await self.store.editable(location_id, tx)
        if found is None:
            raise ApiError(404, "unknown_location", f"no location {location_id!r}")
        return found

    async def _published(self, location_id: str) -> dict[str, Any]:
        loc = await self.store.location(location_id)
        assert loc is not None
        return loc

    # ------------------------------------------------------------------ locations

    async def create_location(self, table: dict[str, Any]) -> dict[str, Any]:
        """A new Location (with EVSEs when ``evses`` is given); 409 when the id exists."""

        async def apply(w: LocationWrites) -> None:
            spec = parse_location(table, "", await w.tariff_ids())
            check_unique([spec])
            if await self.store.editable(spec.id, w.tx) is not None:
                raise ApiError(409, "already_exists", f"location {spec.id!r} exists")
            for i, evse in enumerate(spec.evses):
                await self._check_new_uid(w, evse.uid, f"evses[{i}].uid")
            await w.location(spec)

        await self._write(apply, prefix="locations[0].")
        return await self._published(str(table["id"]))

    async def update_location(self, location_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Change some fields of a Location (``null`` removes an optional one); EVSEs have
        their own routes."""
        if "evses" in patch:
            raise ApiError(
                400, "invalid_field", "evses: change EVSEs through their own routes",
                {"field": "evses"},
            )  # fmt: skip

        async def apply(w: LocationWrites) -> None:
            body, _ = await self._location_or_404(location_id, w.tx)
            _keep_id(patch, "id", body["id"])
            spec = parse_location(merge(location_table(body), patch), "", await w.tariff_ids())
            await w.location(spec)

        await self._write(apply)
        return await self._published(location_id)

    # ------------------------------------------------------------------ EVSEs

    async def _check_new_uid(self, w: LocationWrites, uid: str, where: str) -> None:
        row = await w.live_evse(uid)
        if row is not None:
            raise ApiError(
                409, "already_exists", f"{where}: EVSE {row[0]!r} exists (location {row[1]!r})",
                {"field": where},
            )  # fmt: skip

    async def add_evse(self, location_id: str, table: dict[str, Any]) -> dict[str, Any]:
        """A new EVSE in a Location (a REMOVED uid may be used again)."""

        async def apply(w: LocationWrites) -> None:
            body, _ = await self._location_or_404(location_id, w.tx)
            evse = parse_evse(table, "", await w.tariff_ids())
            await self._check_new_uid(w, evse.uid, "uid")
            await w.evses(body["id"], [evse], path="")
            await w.bump_location(norm(body["id"]))
            w.report.location(body["id"])

        await self._write(apply)
        return await self._published(location_id)

    async def update_evse(
        self, location_id: str, evse_uid: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Change some fields of an EVSE; ``charger_id``/``connector_id`` map or remap it,
        both ``null`` unmap it; ``tariff_ids`` attaches tariffs to its connector."""

        async def apply(w: LocationWrites) -> None:
            body, evses = await self._location_or_404(location_id, w.tx)
            current = next(
                (
                    e
                    for e in evses
                    if norm(e.body["uid"]) == norm(evse_uid) and e.status != "REMOVED"
                ),
                None,
            )
            if current is None:
                raise ApiError(404, "unknown_evse", f"no EVSE {evse_uid!r} in {location_id!r}")
            _keep_id(patch, "uid", current.body["uid"])
            table = merge(evse_table(current.body, current.charger_id, current.connector_id), patch)
            evse = parse_evse(table, "", await w.tariff_ids())
            if await w.evses(body["id"], [evse], path=""):
                await w.bump_location(norm(body["id"]))
                w.report.location(body["id"])

        await self._write(apply)
        return await self._published(location_id)

    async def remove_evse(self, location_id: str, evse_uid: str) -> dict[str, Any]:
        """Mark an EVSE REMOVED (OCPI never deletes); removing twice is not an error."""

        async def apply(w: LocationWrites) -> bool:
            _, evses = await self._location_or_404(location_id, w.tx)
            if not any(norm(e.body["uid"]) == norm(evse_uid) for e in evses):
                raise ApiError(404, "unknown_evse", f"no EVSE {evse_uid!r} in {location_id!r}")
            return await w.remove_evse(evse_uid)

        report = await self._write(apply)
        return {"removed": bool(report.removed_evses), **await self._published(location_id)}

    # ------------------------------------------------------------------ tariffs

    async def put_tariff(
        self, tariff_id: str, table: dict[str, Any], *, create_only: bool = False
    ) -> dict[str, Any]:
        """Create or replace a tariff given in the simple ``[[tariffs]]`` shape."""
        _keep_id(table, "id", tariff_id)
        cc, pid = self.store.country_code, self.store.party_id

        async def apply(w: LocationWrites) -> None:
            try:
                [tariff] = parse_tariffs(
                    [{**table, "id": tariff_id}], country_code=cc, party_id=pid
                )
            except ValidationError as exc:
                raise invalid(exc, "tariffs[0].") from None
            if create_only and norm(tariff_id) in await w.tariff_ids():
                raise ApiError(409, "already_exists", f"tariff {tariff_id!r} exists")
            await w.tariff(tariff)

        await self._write(apply)
        found = await self.store.tariff_json(tariff_id)
        assert found is not None
        return found

    # ------------------------------------------------------------------ files

    async def import_text(self, text: str) -> SyncReport:
        """Upsert every object of a locations file; objects only in the store stay."""
        cc, pid = self.store.country_code, self.store.party_id

        async def apply(w: LocationWrites) -> None:
            catalog = parse_catalog(
                text, country_code=cc, party_id=pid, known_tariff_ids=await w.tariff_ids()
            )
            await w.import_catalog(catalog)

        return await self._write(apply)

    async def export_text(self) -> str:
        """Every tariff and Location (EVSEs not REMOVED) as a locations file."""
        tables = []
        for loc_id in await self.store.location_ids():
            body, evses = await self._location_or_404(loc_id, None)
            table = location_table(body)
            table["evses"] = [
                evse_table(e.body, e.charger_id, e.connector_id)
                for e in evses
                if e.status != "REMOVED"
            ]
            if not table["evses"]:
                del table["evses"]
            tables.append(table)
        try:
            tariffs = [tariff_table(t) for t in await self.store.all_tariffs()]
        except ValidationError as exc:
            raise ApiError(409, "not_exportable", str(exc), {"field": exc.field}) from None
        return dump_catalog(tables, tariffs)

    # ------------------------------------------------------------------ charger sites

    async def check_site(self, charger_id: str, site: dict[str, Any]) -> None:
        """Everything :meth:`attach_site` would check, writing nothing."""
        try:
            await self._write(lambda w: self._attach(w, charger_id, site, dry_run=True))
        except _DryRun:
            pass

    async def attach_site(self, charger_id: str, site: dict[str, Any]) -> dict[str, Any]:
        """Create or reuse the site's Location and give connectors 1..N their EVSEs."""
        await self._write(lambda w: self._attach(w, charger_id, site, dry_run=False))
        return await self._published(str(site["location_id"]))

    async def _attach(
        self, w: LocationWrites, charger_id: str, site: dict[str, Any], *, dry_run: bool
    ) -> None:
        unknown = sorted(set(site) - _SITE_KEYS - _SITE_LOCATION_KEYS)
        if unknown:
            raise ApiError(400, "invalid_field", f"site.{unknown[0]}: unknown key",
                           {"field": f"site.{unknown[0]}"})  # fmt: skip
        count = site.get("connectors", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 32:
            raise ApiError(400, "invalid_field", "site.connectors: must be an integer 1..32",
                           {"field": "site.connectors"})  # fmt: skip
        location_id = site.get("location_id")
        tariffs = await w.tariff_ids()
        loc_fields = {k: v for k, v in site.items() if k in _SITE_LOCATION_KEYS}
        found = await self.store.editable(str(location_id), w.tx) if location_id else None
        try:
            if found is None:
                table = {"id": location_id, "publish": False, **loc_fields}
                await w.location(parse_location(table, "site", tariffs), path="site")
                loc_id = str(location_id)
            else:
                stored = location_table(found.body)
                for key, value in loc_fields.items():
                    if stored.get(key) != value:
                        raise ApiError(
                            409, "location_differs",
                            f"site.{key}: location {found.body['id']!r} has {stored.get(key)!r};"
                            " change it with csms locations update",
                            {"field": f"site.{key}"},
                        )  # fmt: skip
                loc_id = found.body["id"]
            evse_fields = {k: v for k, v in site.items() if k in _SITE_EVSE_KEYS}
            specs = []
            for n in range(1, count + 1):
                uid = f"{charger_id}-{n}"
                await self._check_new_uid(w, uid, f"site.connectors ({uid})")
                table = {**SITE_EVSE_DEFAULTS, **evse_fields, "uid": uid,
                         "charger_id": charger_id, "connector_id": n}  # fmt: skip
                specs.append(parse_evse(table, "site", tariffs))
            if await w.evses(loc_id, specs, path="site.connectors"):
                await w.bump_location(norm(loc_id))
                w.report.location(loc_id)
        except ValidationError as exc:
            if exc.field == "site.id":
                exc = ValidationError("site.location_id", exc.message)
            raise invalid(exc) from None
        if dry_run:
            raise _DryRun


def _keep_id(patch: dict[str, Any], key: str, current: str) -> None:
    """An update names its object in the URL; a different id in the body is refused."""
    given = patch.get(key)
    if given is not None and (not isinstance(given, str) or norm(given) != norm(current)):
        raise ApiError(400, "invalid_field", f"{key}: cannot be changed (is {current!r})",
                       {"field": key})  # fmt: skip
    if key in patch and patch[key] is None:
        raise ApiError(400, "invalid_field", f"{key}: cannot be removed", {"field": key})
