"""Writes to ``ocpi_locations`` / ``ocpi_evses`` / ``ocpi_tariffs``, from any source.

Why one write path: the locations file, ``csms locations import`` and the admin API all
change the same objects, and partners must see the same rules whatever the source:
``last_updated`` moves only when the content did (a content hash decides), EVSEs are
never deleted but become ``REMOVED``, one OCPP connector stands for at most one EVSE.
Every function works inside the caller's transaction, so a rejected write leaves
nothing behind, and reports what changed so the caller can push exactly that.

The locations file's rule (:func:`sync_file`): the file owns only what it says. An
object whose entry in the file is unchanged since the last load (``file_hash``) is left
as the store has it, so admin edits survive a restart; what changed in the file is
applied; an EVSE that left the file is retired. Objects that never came from the file
are not touched by it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from roaming.catalog import Catalog, EvseSpec, LocationSpec
from roaming.costing import Tariff
from roaming.models import ValidationError, format_datetime, norm
from roaming.ports import SqlExecutor


def content_hash(obj: Any) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


def evse_hash(evse: EvseSpec) -> str:
    """The EVSE's content with its mapping: a remap is a change like any other."""
    return content_hash({**evse.body, "_map": [evse.charger_id, evse.connector_id]})


def tariff_body(tariff: Tariff) -> dict[str, Any]:
    body = tariff.to_json()
    body.pop("last_updated")
    return body


class StoredEvse(NamedTuple):
    """An EVSE as stored (body without status/last_updated), what an update starts from."""

    body: dict[str, Any]
    charger_id: str | None  # None: stands for no connector
    connector_id: int | None
    status: str


class StoredLocation(NamedTuple):
    body: dict[str, Any]  # the static Location body, as the catalogue parser made it
    evses: list[StoredEvse]  # in order, REMOVED ones included


@dataclass
class SyncReport:
    """What one write changed; the caller pushes these and nothing else."""

    changed_locations: list[str] = field(default_factory=list)
    removed_evses: list[str] = field(default_factory=list)
    changed_tariffs: list[str] = field(default_factory=list)
    # EVSEs whose OCPP mapping changed: (uid, charger_id, connector_id), None = unmapped.
    remapped: list[tuple[str, str | None, int | None]] = field(default_factory=list)
    # Locations this write turned from published to ``publish = false``: PUT once more so
    # eMSPs that have them learn to hide them (OCPI has no delete).
    unpublished_locations: list[str] = field(default_factory=list)

    def location(self, location_id: str) -> None:
        if location_id not in self.changed_locations:
            self.changed_locations.append(location_id)

    @property
    def changed(self) -> bool:
        return bool(self.changed_locations or self.removed_evses or self.changed_tariffs)


class LocationWrites:
    """The write side, bound to one transaction and one timestamp."""

    def __init__(self, tx: SqlExecutor, now: datetime, report: SyncReport | None = None) -> None:
        self.tx = tx
        self.ts = format_datetime(now)
        self.report = report or SyncReport()

    # ------------------------------------------------------------------ tariffs

    async def tariff(self, tariff: Tariff, *, file: bool = False, seq: int | None = None) -> bool:
        """Insert or replace one tariff; True when its content changed."""
        body = tariff_body(tariff)
        h = content_hash(body)
        key = norm(tariff.id)
        row = await self.tx.fetchone(
            "SELECT content_hash, file_hash FROM ocpi_tariffs WHERE id_norm = ?", (key,)
        )
        if file and row is not None and row["file_hash"] == h:
            return False
        fh = h if file else (row["file_hash"] if row is not None else None)
        raw = orjson.dumps(body).decode()
        if row is None:
            seq = await self._next_seq("ocpi_tariffs") if seq is None else seq
            await self.tx.execute(
                "INSERT INTO ocpi_tariffs (id_norm, id, body, content_hash, last_updated, seq,"
                " file_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, tariff.id, raw, h, self.ts, seq, fh),
            )
        elif row["content_hash"] != h:
            await self.tx.execute(
                "UPDATE ocpi_tariffs SET id = ?, body = ?, content_hash = ?, last_updated = ?,"
                " file_hash = ? WHERE id_norm = ?",
                (tariff.id, raw, h, self.ts, fh, key),
            )
        else:
            await self._set_file_hash("ocpi_tariffs", "id_norm", key, fh)
            return False
        self.report.changed_tariffs.append(tariff.id)
        return True

    async def tariff_ids(self) -> set[str]:
        rows = await self.tx.fetchall("SELECT id_norm FROM ocpi_tariffs")
        return {r["id_norm"] for r in rows}

    # ------------------------------------------------------------------ locations

    async def location(
        self, spec: LocationSpec, *, file: bool = False, seq: int | None = None, path: str = ""
    ) -> bool:
        """Write the Location's own fields, then its EVSEs (those in ``spec``; others of
        the location stay as they are); True when anything changed."""
        h = content_hash(spec.body)
        key = norm(spec.id)
        row = await self.tx.fetchone(
            "SELECT content_hash, file_hash, body FROM ocpi_locations WHERE id_norm = ?", (key,)
        )
        changed = False
        if not (file and row is not None and row["file_hash"] == h):
            was_published = row is not None and orjson.loads(row["body"]).get("publish", True)
            if was_published and not spec.body.get("publish", True):
                self.report.unpublished_locations.append(spec.id)
            fh = h if file else (row["file_hash"] if row is not None else None)
            raw = orjson.dumps(spec.body).decode()
            if row is None:
                seq = await self._next_seq("ocpi_locations") if seq is None else seq
                await self.tx.execute(
                    "INSERT INTO ocpi_locations (id_norm, id, body, content_hash, last_updated,"
                    " seq, file_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, spec.id, raw, h, self.ts, seq, fh),
                )
                changed = True
            elif row["content_hash"] != h:
                await self.tx.execute(
                    "UPDATE ocpi_locations SET id = ?, body = ?, content_hash = ?,"
                    " last_updated = ?, file_hash = ? WHERE id_norm = ?",
                    (spec.id, raw, h, self.ts, fh, key),
                )
                changed = True
            else:
                await self._set_file_hash("ocpi_locations", "id_norm", key, fh)
        evse_path = f"{path}.evses" if path else "evses"
        if await self.evses(spec.id, spec.evses, file=file, path=evse_path):
            changed = True
        if changed:
            await self.bump_location(key)
            self.report.location(spec.id)
        return changed

    async def evses(
        self,
        location_id: str,
        evses: Sequence[EvseSpec],
        *,
        file: bool = False,
        path: str = "evses",
    ) -> bool:
        """Write EVSEs of one Location; True when any changed.

        Mappings are applied in two steps (clear every changing mapping, then set them),
        so two EVSEs may swap connectors in one write; a connector already standing for
        another EVSE is a ValidationError naming ``path[i].connector_id`` (or just
        ``connector_id`` when ``path`` is empty: one EVSE written on its own).
        """
        loc_key = norm(location_id)
        rows: list[Any] = []
        for evse in evses:
            rows.append(
                await self.tx.fetchone(
                    "SELECT uid, content_hash, file_hash, location_id_norm, status, charger_id,"
                    " connector_id, seq FROM ocpi_evses WHERE uid_norm = ?",
                    (norm(evse.uid),),
                )
            )
        todo: list[tuple[int, EvseSpec, Any, str]] = []
        for i, (evse, row) in enumerate(zip(evses, rows, strict=True)):
            h = evse_hash(evse)
            if file and row is not None and row["file_hash"] == h:
                continue
            if (
                row is not None
                and row["content_hash"] == h
                and row["location_id_norm"] == loc_key
                and row["status"] != "REMOVED"
            ):
                fh = h if file else row["file_hash"]
                await self._set_file_hash("ocpi_evses", "uid_norm", norm(evse.uid), fh)
                continue
            todo.append((i, evse, row, h))
        for _, evse, row, _ in todo:
            if row is not None and _mapping_of(row) != evse.mapping:
                await self.tx.execute(
                    "UPDATE ocpi_evses SET charger_id = '', connector_id = 0 WHERE uid_norm = ?",
                    (norm(evse.uid),),
                )
        next_seq = await self._next_evse_seq(loc_key)
        for i, evse, row, h in todo:
            await self._check_free(evse, f"{path}[{i}].connector_id" if path else "connector_id")
            # The file orders its EVSEs; other writes keep an EVSE's place or append it.
            if file:
                seq = i
            elif row is not None and row["location_id_norm"] == loc_key:
                seq = int(row["seq"])
            else:
                seq, next_seq = next_seq, next_seq + 1
            await self._write_evse(loc_key, evse, row, h, seq, file=file)
        return bool(todo)

    async def _check_free(self, evse: EvseSpec, where: str) -> None:
        if evse.mapping is None:
            return
        taken = await self.tx.fetchone(
            "SELECT uid FROM ocpi_evses WHERE charger_id = ? AND connector_id = ?"
            " AND status != 'REMOVED' AND uid_norm != ?",
            (*evse.mapping, norm(evse.uid)),
        )
        if taken is not None:
            raise ValidationError(
                where,
                f"charger {evse.mapping[0]} connector {evse.mapping[1]} is already EVSE "
                f"{taken['uid']!r}",
            )

    async def _write_evse(
        self, loc_key: str, evse: EvseSpec, row: Any, h: str, seq: int, *, file: bool
    ) -> None:
        body = dict(evse.body)
        body["connectors"] = [{**c, "last_updated": self.ts} for c in body["connectors"]]
        raw = orjson.dumps(body).decode()
        charger_id, connector_id = evse.mapping or ("", 0)
        fh = h if file else (row["file_hash"] if row is not None else None)
        if row is None:
            await self.tx.execute(
                "INSERT INTO ocpi_evses (uid_norm, uid, location_id_norm, charger_id,"
                " connector_id, body, content_hash, status, last_updated, seq, file_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'UNKNOWN', ?, ?, ?)",
                (norm(evse.uid), evse.uid, loc_key, charger_id, connector_id, raw, h, self.ts,
                 seq, fh),
            )  # fmt: skip
        else:
            status = "UNKNOWN" if row["status"] == "REMOVED" else row["status"]
            if _mapping_of(row) != evse.mapping:
                status = "UNKNOWN"  # the caller sets the new connector's status
            await self.tx.execute(
                "UPDATE ocpi_evses SET uid = ?, location_id_norm = ?, charger_id = ?,"
                " connector_id = ?, body = ?, content_hash = ?, status = ?,"
                " last_updated = ?, seq = ?, file_hash = ? WHERE uid_norm = ?",
                (evse.uid, loc_key, charger_id, connector_id, raw, h, status, self.ts, seq, fh,
                 norm(evse.uid)),
            )  # fmt: skip
            if row["location_id_norm"] != loc_key:  # moved: the old location lost it
                await self._bump_and_report(row["location_id_norm"])
        if row is None or _mapping_of(row) != evse.mapping or row["status"] == "REMOVED":
            self.report.remapped.append((evse.uid, *(evse.mapping or (None, None))))

    async def live_evse(self, evse_uid: str) -> tuple[str, str] | None:
        """(uid, location id) of a non-REMOVED EVSE with this uid, or None."""
        row = await self.tx.fetchone(
            "SELECT e.uid, l.id FROM ocpi_evses e JOIN ocpi_locations l"
            " ON l.id_norm = e.location_id_norm WHERE e.uid_norm = ? AND e.status != 'REMOVED'",
            (norm(evse_uid),),
        )
        return None if row is None else (row[0], row[1])

    async def remove_evse(self, evse_uid: str, *, left_file: bool = False) -> bool:
        """Mark one EVSE ``REMOVED`` (OCPI never deletes); False when it already was.

        ``left_file``: retired because it left the locations file, which then no longer
        says anything about it (put back, it is applied again). Removed otherwise, the
        file's unchanged entry must not bring it back at the next start."""
        row = await self.tx.fetchone(
            "SELECT uid, location_id_norm, status FROM ocpi_evses WHERE uid_norm = ?",
            (norm(evse_uid),),
        )
        if row is None or row["status"] == "REMOVED":
            return False
        await self.tx.execute(
            "UPDATE ocpi_evses SET status = 'REMOVED', last_updated = ?,"
            " file_hash = CASE WHEN ? THEN NULL ELSE file_hash END WHERE uid_norm = ?",
            (self.ts, left_file, norm(evse_uid)),
        )
        self.report.removed_evses.append(row["uid"])
        await self._bump_and_report(row["location_id_norm"])
        return True

    async def bump_location(self, id_norm: str) -> None:
        await self.tx.execute(
            "UPDATE ocpi_locations SET last_updated = ? WHERE id_norm = ?", (self.ts, id_norm)
        )

    async def _bump_and_report(self, id_norm: str) -> None:
        await self.bump_location(id_norm)
        loc = await self.tx.fetchone("SELECT id FROM ocpi_locations WHERE id_norm = ?", (id_norm,))
        if loc is not None:
            self.report.location(loc["id"])

    async def _set_file_hash(self, table: str, key_col: str, key: str, fh: str | None) -> None:
        await self.tx.execute(f"UPDATE {table} SET file_hash = ? WHERE {key_col} = ?", (fh, key))

    async def _next_seq(self, table: str) -> int:
        row = await self.tx.fetchone(f"SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM {table}")
        return int(row["n"]) if row else 0

    async def _next_evse_seq(self, loc_key: str) -> int:
        row = await self.tx.fetchone(
            "SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM ocpi_evses WHERE location_id_norm = ?",
            (loc_key,),
        )
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------------ whole catalogues

    async def sync_file(self, catalog: Catalog) -> SyncReport:
        """Load the locations file (see the module docstring for what it may change)."""
        for seq, tariff in enumerate(catalog.tariffs):
            await self.tariff(tariff, file=True, seq=seq)
        # Retire EVSEs that left the file first: a replacement may reuse their connector.
        wanted = {norm(e.uid) for loc in catalog.locations for e in loc.evses}
        rows = await self.tx.fetchall(
            "SELECT uid_norm FROM ocpi_evses WHERE status != 'REMOVED' AND file_hash IS NOT NULL"
        )
        for r in rows:
            if r["uid_norm"] not in wanted:
                await self.remove_evse(r["uid_norm"], left_file=True)
        for seq, loc in enumerate(catalog.locations):
            await self.location(loc, file=True, seq=seq, path=f"locations[{seq}]")
        return self.report

    async def import_catalog(self, catalog: Catalog) -> SyncReport:
        """Upsert everything a file says; nothing else in the store is touched or retired."""
        for tariff in catalog.tariffs:
            await self.tariff(tariff)
        for i, loc in enumerate(catalog.locations):
            await self.location(loc, path=f"locations[{i}]")
        return self.report


def _mapping_of(row: Any) -> tuple[str, int] | None:
    if not row["charger_id"]:
        return None
    return row["charger_id"], int(row["connector_id"])
