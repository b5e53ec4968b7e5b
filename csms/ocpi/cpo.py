"""The CPO's OCPI parts of one running CSMS, built from config: the locations catalogue,
sessions and CDRs, the outbox and its worker, and the OCPP event sink that feeds them.

Why here and not in the composition root: these parts belong together (the event sink
writes session, CDR and outbox rows that the worker delivers), and the root only needs
the finished :class:`CpoModules` and the OCPI modules that serve them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from csms import logs
from csms.cluster.node import Cluster
from csms.cluster.presence import ALIVE, stamp, utc_now
from csms.config import Config
from csms.ocpi.charger_events import OcpiChargerEvents
from csms.ocpi.locations import (
    StoreLocationLookup,
    load_catalog,
    queue_tariff_put,
    sync_catalog,
    unmapped_connectors,
)
from csms.ocpi.release_gate import ReleaseGate
from csms.store.db import Database
from roaming import cdrs, locations, sessions, tariffs
from roaming import commands as ocpi_commands
from roaming.client import OcpiClient
from roaming.commands import CommandHandler
from roaming.context import OcpiModule
from roaming.models import InterfaceRole, ModuleID
from roaming.outbox import OcpiTransport, OutboxWorker, RetryPolicy, enqueue
from roaming.partners import Partner
from roaming.ports import Claims
from roaming.reservations import ReservationService
from roaming.sessions import SessionService
from roaming.store import RoamingStore
from roaming.store.cdrs import CdrStore
from roaming.store.locations import LocationStore
from roaming.store.outbox import SINGLE_PROCESS, OutboxStore

log = logs.get("csms.ocpi.cpo")


@dataclass
class CpoModules:
    """The CPO-side OCPI objects of one running CSMS."""

    locations: LocationStore
    lookup: StoreLocationLookup
    sessions: SessionService
    cdrs: CdrStore
    outbox: OutboxStore
    worker: OutboxWorker
    events: OcpiChargerEvents
    reservations: ReservationService | None = None


def ocpi_modules(cpo: CpoModules, commands: CommandHandler) -> list[OcpiModule]:
    """Everything we serve as CPO besides tokens, each module built with its service."""
    return [
        locations.module(cpo.locations),
        tariffs.module(cpo.locations),
        sessions.module(cpo.sessions),
        cdrs.module(cpo.cdrs),
        ocpi_commands.module(commands),
    ]


async def push_all_locations(db: Database, cpo: CpoModules, partner: Partner) -> None:
    """A newly registered partner with a locations RECEIVER gets every Location PUT, so
    later EVSE PATCHes address objects it knows (queued per partner, before any PATCH)."""
    if not partner.endpoint(ModuleID.LOCATIONS, InterfaceRole.RECEIVER):
        return
    now = datetime.now(UTC)
    total, items = await cpo.locations.page(None, None, 0, 1_000_000, published_only=True)
    async with db.transaction() as tx:
        for body in items:
            await enqueue(
                tx,
                partner_key=partner.key,
                module=ModuleID.LOCATIONS.value,
                method="PUT",
                path=[cpo.locations.country_code, cpo.locations.party_id, body["id"]],
                body=body,
                object_key=f"location:{body['id'].upper()}",
                now=now,
            )
    cpo.worker.notify()
    log.info("ocpi.locations_pushed_to_new_partner", partner=partner.key, locations=total)


async def push_all_tariffs(db: Database, cpo: CpoModules, partner: Partner) -> None:
    """A newly registered partner with a tariffs RECEIVER gets every Tariff PUT, so the
    tariff_ids of the Locations it is sent name tariffs it has."""
    if not partner.endpoint(ModuleID.TARIFFS, InterfaceRole.RECEIVER):
        return
    now = datetime.now(UTC)
    items = await cpo.locations.all_tariffs()
    async with db.transaction() as tx:
        for body in items:
            await queue_tariff_put(tx, cpo.locations, body, partner.key, now)
    cpo.worker.notify()
    log.info("ocpi.tariffs_pushed_to_new_partner", partner=partner.key, tariffs=len(items))


async def warn_unmapped(db: Database) -> None:
    """At boot: connectors chargers reported that no EVSE stands for, as one warning.

    Why: a roaming charge there cannot name its Location until an operator maps it
    (``csms locations unmapped`` lists them, ``csms locations map`` fixes one).
    """
    found = await unmapped_connectors(db)
    if found:
        log.warning(
            "ocpi.unmapped_connectors",
            count=len(found),
            connectors=[f"{u.charger_id}/{u.connector_id}" for u in found],
        )


# How often held Session pushes are looked at without a catalogue write seen here.
RELEASE_RECHECK_S = 60.0

# A claimer is alive while its node is (the cluster's rule: a lease that has not run
# out, not stopped); a claim by a node without a row is stale too.
_CLAIMER_ALIVE = (
    f"EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.node_id = o.claimed_by AND {ALIVE})"
)


def outbox_claims(node_id: str, *, multi: bool, clock: Callable[[], datetime] = utc_now) -> Claims:
    """How this node's outbox worker claims messages (see :class:`roaming.ports.Claims`).

    A single node (SQLite) knows no other: whatever another id claimed, an earlier
    process left. Several nodes: another node's claim holds while that node is alive.
    """
    if not multi:
        return Claims(node_id=node_id)
    return Claims(node_id=node_id, alive_sql=_CLAIMER_ALIVE, alive_params=lambda: (stamp(clock()),))


async def build_cpo(
    config: Config,
    db: Database,
    store: RoamingStore,
    client: OcpiClient,
    cluster: Cluster | None = None,
) -> CpoModules:
    """Load the locations file and build the stores, the outbox and the OCPP event sink.

    Nothing runs yet: the outbox worker starts with the system (:meth:`OutboxWorker.start`).
    With ``cluster``, the worker shares the outbox with the other nodes (claims) and
    releases held pushes on one node at a time.
    """
    cpo_cfg = config.ocpi_cpo
    cc, pid = config.ocpi.country_code, config.ocpi.party_id
    catalog = load_catalog(cpo_cfg.locations_file, country_code=cc, party_id=pid)
    locations = LocationStore(db, cc, pid)
    if cpo_cfg.locations_file:  # no file: it owns nothing, so nothing is loaded or retired
        await sync_catalog(db, locations, catalog)
    await warn_unmapped(db)
    service = SessionService(
        db,
        locations,
        country_code=cc,
        party_id=pid,
        currency=cpo_cfg.currency,
        update_interval_s=cpo_cfg.session_update_interval_s,
    )
    claims = SINGLE_PROCESS
    recheck_s = RELEASE_RECHECK_S
    if cluster is not None:
        if cluster.multi:  # another node's catalogue write moves only its own generation
            recheck_s = min(recheck_s, cluster.cache_bound_s)
        # Sessions may start waiting on any node: none can trust its own "none waiting".
        service.shared_store = cluster.multi
        claims = outbox_claims(cluster.node_id, multi=cluster.multi, clock=cluster.clock)
    box = OutboxStore(db, claims)
    worker = OutboxWorker(
        box,
        OcpiTransport(store.partners, client),
        policy=RetryPolicy(
            initial_s=cpo_cfg.outbox_retry_initial_s,
            max_s=cpo_cfg.outbox_retry_max_s,
            max_attempts=cpo_cfg.outbox_max_attempts,
        ),
        poll_interval_s=cpo_cfg.outbox_poll_interval_s,
        concurrency=cpo_cfg.outbox_concurrency,
        release_held=ReleaseGate(service.release_waiting, recheck_s=recheck_s),
        jobs=cluster,
    )
    reservations = ReservationService(db, service)
    events = OcpiChargerEvents(locations, service, notify=worker.notify, reservations=reservations)
    return CpoModules(
        locations=locations,
        lookup=StoreLocationLookup(locations),
        sessions=service,
        cdrs=CdrStore(db),
        outbox=box,
        worker=worker,
        events=events,
        reservations=reservations,
    )
