"""Locations on the CSMS side: the catalogue file, the OCPP→OCPI status table, the lookup.

Why the status mapping is ONE table here: an OCPP 1.6 StatusNotification is the only
source of EVSE status, and the same mapping must drive the stored status, the PATCH to
partners and the GET lists; one dict makes it impossible for them to disagree.

Connector 0 (the charge point as a whole) has no EVSE and is not mapped; its
Unavailable/Faulted is followed by per-connector notifications on real chargers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from csms import logs
from csms.authz.model import LocationRefs
from csms.config import ConfigError
from csms.ocpi.memo import TtlMemo
from csms.store.chargers import ConnectorRepo
from csms.store.db import Database, Executor
from roaming import outbox
from roaming.catalog import Catalog, parse_catalog
from roaming.models import ModuleID, ValidationError
from roaming.store.locations import LocationStore, LocationWrites, SyncReport

log = logs.get("csms.ocpi.locations")
T = TypeVar("T")

# OCPP 1.6 ChargePointStatus -> OCPI 2.2.1 EVSE Status.
OCPP_TO_OCPI_STATUS: dict[str, str] = {
    "Available": "AVAILABLE",
    "Preparing": "BLOCKED",  # plugged in / authorized, not yet charging: not free for others
    "Charging": "CHARGING",
    "SuspendedEV": "CHARGING",
    "SuspendedEVSE": "CHARGING",
    "Finishing": "BLOCKED",  # session over, vehicle still connected
    "Reserved": "RESERVED",
    "Unavailable": "INOPERATIVE",
    "Faulted": "OUTOFORDER",
}


def ocpi_status(ocpp_status: str) -> str:
    return OCPP_TO_OCPI_STATUS.get(ocpp_status, "UNKNOWN")


@dataclass(frozen=True, slots=True)
class UnmappedConnector:
    """A connector a charger reported that no (non-removed) EVSE stands for."""

    charger_id: str
    connector_id: int
    status: str
    reported_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "charger_id": self.charger_id,
            "connector_id": self.connector_id,
            "status": self.status,
            "reported_at": self.reported_at,
        }


async def unmapped_connectors(db: Executor) -> list[UnmappedConnector]:
    """Connectors seen in StatusNotification (connector 0 excluded) with no EVSE mapping.

    Why it matters: a roaming charge on such a connector cannot name its Location, so
    its Session and CDR wait until an operator maps it; this list is how they find out.
    """
    rows = await db.fetchall(
        "SELECT c.charger_id, c.connector_id, c.status, c.received_at FROM connectors c "
        "WHERE c.connector_id > 0 AND NOT EXISTS (SELECT 1 FROM ocpi_evses e "
        "WHERE e.charger_id = c.charger_id AND e.connector_id = c.connector_id "
        "AND e.status != 'REMOVED') ORDER BY c.charger_id, c.connector_id"
    )
    return [UnmappedConnector(r[0], int(r[1]), r[2], r[3]) for r in rows]


def load_catalog(path: str, *, country_code: str, party_id: str) -> Catalog:
    """Read ``ocpi_cpo.locations_file``; every problem is a ConfigError naming file and key."""
    if not path:
        return Catalog()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("ocpi_cpo.locations_file", f"cannot read {path}: {exc}") from None
    try:
        return parse_catalog(text, country_code=country_code, party_id=party_id)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc.field}", exc.message) from None


async def sync_catalog(
    db: Database, store: LocationStore, catalog: Catalog, now: datetime | None = None
) -> SyncReport:
    """Load the locations file into the store; what changed is PUT to every partner.

    A connector the file maps that another EVSE (written through the admin API) stands
    for is a :class:`ConfigError` naming the file's key; nothing of the load is kept.
    """

    async def apply(w: LocationWrites) -> SyncReport:
        return await w.sync_file(catalog)

    try:
        report, _ = await write_locations(db, store, apply, now)
    except ValidationError as exc:
        raise ConfigError(f"ocpi_cpo.locations_file: {exc.field}", exc.message) from None
    return report


async def write_locations(
    db: Database,
    store: LocationStore,
    apply: Callable[[LocationWrites], Awaitable[T]],
    now: datetime | None = None,
) -> tuple[SyncReport, T]:
    """Run one write (``apply``) in one transaction and queue what it changed.

    Why every writer comes through here (the file, the admin API, imports): the same
    transaction that changes a Location queues its PUT to every partner with a locations
    RECEIVER (tariffs first, ``tariff:<id>``, then ``location:<id>``), an EVSE given a
    new connector takes that connector's last reported status, and the lookups the
    authorization memoised are invalidated, committed or not. Pushes leave when the
    caller nudges the outbox worker.
    """
    now = now or datetime.now(UTC)
    try:
        async with db.transaction() as tx:
            w = store.writes(tx, now)
            result = await apply(w)
            report = w.report
            await _take_connector_status(tx, store, report, now)
            await _queue_pushes(tx, store, report, now)
    finally:  # committed or not, what lookups memoised may be stale now
        invalidate_lookups()
    if report.changed:
        log.info(
            "ocpi.locations_synced",
            changed_locations=report.changed_locations,
            removed_evses=report.removed_evses,
            changed_tariffs=report.changed_tariffs,
        )
    return report, result


async def _take_connector_status(
    tx: Executor, store: LocationStore, report: SyncReport, now: datetime
) -> None:
    for _, charger_id, connector_id in report.remapped:
        if charger_id is None or connector_id is None:
            continue
        status = await ConnectorRepo.current_status(tx, charger_id, connector_id)
        if status:
            await store.set_status(tx, charger_id, connector_id, ocpi_status(status), now)


async def _queue_pushes(
    tx: Executor, store: LocationStore, report: SyncReport, now: datetime
) -> None:
    for tariff_id in report.changed_tariffs:
        body = await store.tariff_json(tariff_id, tx)
        if body is not None:
            await queue_tariff_put(tx, store, body, outbox.BROADCAST, now)
    for loc_id in report.changed_locations:
        body = await store.location(loc_id, tx)
        if body is None:
            continue
        # Unpublished Locations are not pushed, except once when they turn unpublished,
        # so eMSPs that have them learn to hide them.
        if not body.get("publish", True) and loc_id not in report.unpublished_locations:
            continue
        await queue_location_put(tx, store, body, outbox.BROADCAST, now)


async def queue_location_put(
    tx: Executor, store: LocationStore, body: dict[str, Any], partner_key: str, now: datetime
) -> None:
    await outbox.enqueue(
        tx,
        partner_key=partner_key,
        module=ModuleID.LOCATIONS.value,
        method="PUT",
        path=[store.country_code, store.party_id, body["id"]],
        body=body,
        object_key=f"location:{body['id'].upper()}",
        now=now,
    )


async def queue_tariff_put(
    tx: Executor, store: LocationStore, body: dict[str, Any], partner_key: str, now: datetime
) -> None:
    """A Tariff PUT (OCPI tariffs, CPO → eMSP Receiver), ordered per tariff."""
    await outbox.enqueue(
        tx,
        partner_key=partner_key,
        module=ModuleID.TARIFFS.value,
        method="PUT",
        path=[store.country_code, store.party_id, body["id"]],
        body=body,
        object_key=f"tariff:{body['id'].upper()}",
        now=now,
    )


async def push_statuses(
    tx: Executor,
    store: LocationStore,
    changes: Sequence[tuple[str, int, str]],
    now: datetime,
) -> bool:
    """Store the mapped statuses of (charger id, connector id, OCPP status), in order;
    for each EVSE whose status changed, queue its PATCH to every partner. True when any
    PATCH was queued."""
    mapped = [(cid, conn, ocpi_status(status)) for cid, conn, status in changes if conn != 0]
    if not mapped:
        return False
    queued = False
    for ref, ts in await store.set_statuses(tx, mapped, now):
        if not ref.published:  # kept in the store (GETs stay right once published), not pushed
            continue
        await outbox.enqueue(
            tx,
            partner_key=outbox.BROADCAST,
            module=ModuleID.LOCATIONS.value,
            method="PATCH",
            path=[store.country_code, store.party_id, ref.location_id, ref.evse_uid],
            body={"status": ref.status, "last_updated": ts},
            # The whole location is one ordering unit: an EVSE PATCH must not overtake a
            # PUT of its location.
            object_key=f"location:{ref.location_id.upper()}",
            now=now,
        )
        queued = True
    return queued


# Bumped by every write to locations (write_locations): the only writer of which EVSEs
# a charger publishes. Lookups drop their memo when it moves.
_catalog_generation = 0


def catalog_generation() -> int:
    """Moves with every write to locations (what may map a connector or attach a tariff)."""
    return _catalog_generation


def invalidate_lookups() -> None:
    """Every :class:`StoreLocationLookup` forgets what it memoised (locations changed)."""
    global _catalog_generation
    _catalog_generation += 1


class StoreLocationLookup(TtlMemo):
    """The authorization's ``LocationLookup`` port over the location store, memoised per (charger,
    connector).

    Why a memo: every real-time Authorize sends LocationReferences, and the SQLite
    lookup (a join, on the one store thread) cost more than the rest of the decision
    at 1,000 remote Authorizes a second. Which EVSEs a charger publishes changes only
    when the catalogue is (re)loaded through :func:`sync_catalog`, which bumps the
    generation this memo checks; ``ttl_s`` is a backstop for writes made elsewhere.
    A read that raced a reload is answered but not kept.
    """

    def __init__(
        self,
        store: LocationStore,
        *,
        ttl_s: float = 60.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_entries=max_entries, monotonic=monotonic)
        self.store = store
        self._memo: dict[tuple[str, int], tuple[float, LocationRefs | None]] = {}
        self._generation = _catalog_generation

    async def refs(self, charger_id: str, connector_id: int | None) -> LocationRefs | None:
        if self._generation != _catalog_generation:
            self._memo.clear()
            self._generation = _catalog_generation
        key = (charger_id, connector_id or 0)
        held = self._memo.get(key)
        if held is not None and held[0] > self._now():
            return held[1]
        generation = _catalog_generation
        found = await self.store.refs(charger_id, connector_id)
        refs = None if found is None else LocationRefs(found[0], tuple(found[1]))
        if generation == _catalog_generation and self.ttl_s > 0:
            if len(self._memo) >= self.max_entries:
                self._memo.clear()
            self._memo[key] = (self.expires_at(), refs)
        return refs
