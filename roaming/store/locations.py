"""The published Locations, EVSEs and Tariffs: ``ocpi_locations``, ``ocpi_evses``,
``ocpi_tariffs``.

Why objects are written in place and never replaced wholesale: EVSE status and
``last_updated`` change at run time and must survive restarts and date-filtered pulls.
Writes (the locations file, imports, the admin API) go through
:class:`~roaming.store.location_writes.LocationWrites`, which bumps ``last_updated`` only
for objects whose content changed and marks EVSEs ``REMOVED`` instead of deleting them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from roaming.catalog import Catalog
from roaming.models import format_datetime, norm
from roaming.ports import SqlDatabase, SqlExecutor
from roaming.store.location_writes import (
    LocationWrites,
    StoredEvse,
    StoredLocation,
    SyncReport,
)
from roaming.store.paging import count_and_page, last_updated_filter

__all__ = [
    "EvseRef",
    "LocationStore",
    "LocationWrites",
    "StoredEvse",
    "StoredLocation",
    "SyncReport",
]


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

    @property
    def published(self) -> bool:
        """``publish`` of its Location (OCPI: false = not shown to eMSPs' drivers)."""
        return bool(self.location.get("publish", True))

    def snapshot(self) -> dict[str, Any]:
        """What a Session keeps of its EVSE at start, so its CDR shows the place as it was
        even when the EVSE is removed or remapped before the stop (OCPI: CDR data is
        frozen at session start)."""
        return {
            "location_id": self.location_id,
            "evse_uid": self.evse_uid,
            "evse_id": self.evse_id,
            "connector": self.connector,
            "location": {k: v for k, v in self.location.items() if k in _SNAPSHOT_KEYS},
            "charger_id": self.charger_id,
            "connector_id": self.connector_id,
        }

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> EvseRef:
        return cls(
            location_id=snap["location_id"],
            evse_uid=snap["evse_uid"],
            evse_id=snap.get("evse_id"),
            connector=snap["connector"],
            location=snap["location"],
            charger_id=snap["charger_id"],
            connector_id=int(snap["connector_id"]),
            status="UNKNOWN",  # a snapshot's status is not current: never read
        )


# The Location fields a CdrLocation is made of (plus ``publish``, and ``time_zone`` that
# the tariff's local times are read in): all a snapshot keeps.
_SNAPSHOT_KEYS = frozenset(
    [
        "id", "name", "address", "city", "postal_code", "state", "country", "coordinates",
        "publish", "time_zone",
    ]
)  # fmt: skip

# Locations with ``publish = false`` are kept out of what eMSPs list (no
# ``publish_allowed_to`` is configured, so no eMSP driver may see them); Sessions and
# CDRs at them are still sent (OCPI 2.2.1: CDRs may be sent for unpublished locations).
# CAST: JSON true/false read as 1/0 on both engines (PostgreSQL's json_extract is text).
_PUBLISHED = "coalesce(CAST(json_extract(body, '$.publish') AS INTEGER), 1) = 1"


class LocationStore:
    """SQL over ``ocpi_locations`` / ``ocpi_evses`` / ``ocpi_tariffs``."""

    def __init__(self, db: SqlDatabase, country_code: str, party_id: str) -> None:
        self.db = db
        self.country_code = country_code
        self.party_id = party_id

    # ---------------------------------------------------------------- writes

    async def sync(self, tx: SqlExecutor, catalog: Catalog, now: datetime) -> SyncReport:
        """Load the locations file (:meth:`LocationWrites.sync_file` says what it may change)."""
        return await LocationWrites(tx, now).sync_file(catalog)

    def writes(self, tx: SqlExecutor, now: datetime) -> LocationWrites:
        """The write side inside ``tx`` (admin API, import): see :mod:`.location_writes`."""
        return LocationWrites(tx, now)

    async def editable(
        self, location_id: str, db: SqlExecutor | None = None
    ) -> StoredLocation | None:
        """One Location and its EVSEs as stored (not as published), or None: what an
        update or an export starts from."""
        ex = db or self.db
        row = await ex.fetchone(
            "SELECT id_norm, body FROM ocpi_locations WHERE id_norm = ?", (norm(location_id),)
        )
        if row is None:
            return None
        evse_rows = await ex.fetchall(
            "SELECT body, charger_id, connector_id, status FROM ocpi_evses"
            " WHERE location_id_norm = ? ORDER BY seq, uid_norm",
            (row["id_norm"],),
        )
        evses = [
            StoredEvse(
                orjson.loads(r["body"]),
                r["charger_id"] or None,
                int(r["connector_id"]) if r["charger_id"] else None,
                r["status"],
            )
            for r in evse_rows
        ]
        return StoredLocation(orjson.loads(row["body"]), evses)

    async def location_ids(self, db: SqlExecutor | None = None) -> list[str]:
        rows = await (db or self.db).fetchall("SELECT id FROM ocpi_locations ORDER BY seq, id_norm")
        return [r["id"] for r in rows]

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
        self,
        date_from: str | None,
        date_to: str | None,
        offset: int,
        limit: int,
        *,
        published_only: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Locations by ``last_updated``; ``published_only`` for what eMSPs may list."""
        where, params = last_updated_filter(date_from, date_to)
        if published_only:
            where = f"{where} AND {_PUBLISHED}" if where else f"WHERE {_PUBLISHED}"
        total, rows = await count_and_page(
            self.db,
            "ocpi_locations",
            where,
            params,
            order_by="seq, id_norm",
            offset=offset,
            limit=limit,
        )
        return total, [await self._location_json(self.db, r) for r in rows]

    async def location(
        self, location_id: str, db: SqlExecutor | None = None
    ) -> dict[str, Any] | None:
        ex = db or self.db
        row = await ex.fetchone(
            "SELECT * FROM ocpi_locations WHERE id_norm = ?", (norm(location_id),)
        )
        return await self._location_json(ex, row) if row else None

    async def is_published(self, location_id: str) -> bool:
        """True for a known Location with ``publish`` true (what eMSPs may GET)."""
        row = await self.db.fetchone(
            f"SELECT 1 FROM ocpi_locations WHERE id_norm = ? AND {_PUBLISHED}",
            (norm(location_id),),
        )
        return row is not None

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

    async def evse_as_recorded(
        self, db: SqlExecutor, location_id: str, evse_uid: str
    ) -> EvseRef | None:
        """An EVSE by uid even when REMOVED (rows are never deleted): what it last was."""
        row = await db.fetchone(
            "SELECT e.*, l.id AS location_id, l.body AS location_body FROM ocpi_evses e"
            " JOIN ocpi_locations l ON l.id_norm = e.location_id_norm"
            " WHERE l.id_norm = ? AND e.uid_norm = ?",
            (norm(location_id), norm(evse_uid)),
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
        changed = await self.set_statuses(tx, [(charger_id, connector_id, status)], now)
        return changed[0] if changed else None

    async def set_statuses(
        self, tx: SqlExecutor, changes: Sequence[tuple[str, int, str]], now: datetime
    ) -> list[tuple[EvseRef, str]]:
        """New OCPI statuses of (charger id, connector id, status), in order; returns
        (ref, last_updated) of each that changed its EVSE.

        Why one SELECT for all: a batch of StatusNotifications from idle chargers was
        one round trip to the store's thread per report for this lookup alone."""
        ids = sorted({cid for cid, _, _ in changes})
        rows = await tx.fetchall(
            "SELECT e.*, l.id AS location_id, l.body AS location_body FROM ocpi_evses e"
            " JOIN ocpi_locations l ON l.id_norm = e.location_id_norm"
            f" WHERE e.charger_id IN ({', '.join('?' * len(ids))}) AND e.status != 'REMOVED'",
            ids,
        )
        refs = {(r["charger_id"], int(r["connector_id"])): r for r in rows}
        current: dict[tuple[str, int], EvseRef] = {}
        out: list[tuple[EvseRef, str]] = []
        ts = format_datetime(now)
        for cid, conn, status in changes:
            key = (cid, conn)
            ref = current.get(key)
            if ref is None:
                row = refs.get(key)
                if row is None:
                    continue
                ref = current[key] = _ref(row)
            if ref.status == status:
                continue
            await tx.execute(
                "UPDATE ocpi_evses SET status = ?, last_updated = ? WHERE uid_norm = ?",
                (status, ts, norm(ref.evse_uid)),
            )
            await self._bump_location(tx, norm(ref.location_id), ts)
            ref = current[key] = ref._replace(status=status)
            out.append((ref, ts))
        return out

    # ---------------------------------------------------------------- tariffs

    async def tariff_page(
        self, date_from: str | None, date_to: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        where, params = last_updated_filter(date_from, date_to)
        total, rows = await count_and_page(
            self.db,
            "ocpi_tariffs",
            where,
            params,
            order_by="seq, id_norm",
            offset=offset,
            limit=limit,
        )
        return total, [self._tariff_json(r) for r in rows]

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
