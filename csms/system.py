"""The composition root: :func:`compose` builds the whole CSMS top-down, explicitly.

Why one function: a newcomer reads the system's shape here and nowhere else. Every part
is built with explicit arguments from the parts before it; nothing is looked up by a
string key, found by import tricks or registered at import time. ``csms serve``, the
tests and the demo all run the same :class:`System`.

Build order (:func:`compose`, nothing listens yet):

1. the store (``store.url``: SQLite or PostgreSQL; refused if its schema is newer than
   this release, else the CSMS's migrations applied);
2. the charger gateway (CSMS-initiated calls; the OCPP server fills it as chargers
   connect, the admin API and OCPI commands call through it) and the cluster (this
   node among the others on PostgreSQL: presence, bus, one-node jobs) with the
   coherence of the caches over its bus (:mod:`csms.cluster.coherence`);
3. the authorization: the operator's own cards (``id_tags``) and the decision log;
4. with ``ocpi.enabled``: the roaming runtime (partners, tokens, client, token sync),
   the CPO modules (locations, sessions, CDRs, outbox, OCPP event sink), the roaming
   authorization service behind the own cards, and OCPI commands;
5. the Local Authorization List manager (own cards, and with roaming the eMSP tokens
   through :class:`csms.ocpi.local_list_tokens.StoreRoamingCards`), and with roaming
   the offline-start seam in front of the authorizer;
6. the admin API's context and routes; the metrics (one registry per system) and their
   observers handed to the OCPP server, the decision log, the OCPI client and the store;
7. the retention purge of the decision log (its timer starts with the server).

With ``admin.token`` empty, the generated token of ``admin.token_file`` is read (or made
on first start): :mod:`csms.admin.token_file`.

Start order (:meth:`System.start`): the cluster (the node's lease), the OCPP server, the local list manager, then OCPI
(outbox worker, OCPI server, token sync), then the admin API. :meth:`System.stop` closes everything in the
reverse order of opening, also after a start that failed half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from aiohttp import web

from csms import logs
from csms.admin.app import start_admin_api
from csms.admin.context import AdminContext
from csms.admin.token_file import TokenSource, ensure_admin_token
from csms.authorization import Authorization, build_local_authorization
from csms.authz.own_cards import HeldOwnCards
from csms.authz.ports import Authorizer
from csms.cluster.coherence import Coherence
from csms.cluster.forwarding import Forwarder
from csms.cluster.node import Cluster
from csms.config import Config
from csms.locallist.admin_routes import local_list_routes
from csms.locallist.attribution import ListedOfflineStarts
from csms.locallist.manager import FollowOwnCards, LocalListManager
from csms.locallist.ports import RoamingCards
from csms.observability.exposure import exposure_warnings
from csms.observability.metrics import Metrics, ScrapeSources
from csms.observability.routes import Readiness, observability_routes
from csms.ocpi.admin_routes import admin_routes as cpo_admin_routes
from csms.ocpi.authorization import build_roaming_authorization
from csms.ocpi.catalog_admin import CatalogAdmin
from csms.ocpi.commands import CommandService
from csms.ocpi.cpo import (
    CpoModules,
    build_cpo,
    ocpi_modules,
    push_all_locations,
    push_all_tariffs,
)
from csms.ocpi.dashboard import StoreRoamingView
from csms.ocpi.local_list_tokens import StoreRoamingCards
from csms.ocpi.location_routes import location_routes
from csms.ocpi.locations import unmapped_connectors
from csms.ocpi.runtime import RoamingRuntime, build_runtime, share_roaming_caches
from csms.ocpp16.events import ChargerEvents, NoEvents
from csms.ocpp16.gateway import ChargerGateway
from csms.ocpp16.observer import NO_OBSERVER
from csms.retention import Retention
from csms.server import OcppServer, start_ocpp_server
from csms.store import schema
from csms.store.db import Database, redacted
from csms.store.id_tags import IdTagRepo
from csms.store.local_lists import LocalListRepo
from csms.store.transactions import TransactionRepo
from roaming import tokens
from roaming.context import OcpiModule
from roaming.store import schema as roaming_schema

log = logs.get("csms.system")


@dataclass
class Roaming:
    """The OCPI side of a running CSMS (present when ``ocpi.enabled``)."""

    runtime: RoamingRuntime
    cpo: CpoModules
    commands: CommandService
    modules: list[OcpiModule]


@dataclass
class System:
    """A composed CSMS. ``start`` it, always ``stop`` it (ports are read back after start)."""

    config: Config
    db: Database
    gateway: ChargerGateway
    authorization: Authorization
    events: ChargerEvents
    roaming: Roaming | None
    admin: AdminContext
    admin_routes: list[web.AbstractRouteDef]
    cluster: Cluster
    coherence: Coherence
    metrics: Metrics | None = None
    forwarder: Forwarder | None = None  # calls to chargers on other nodes (PostgreSQL)
    admin_token: TokenSource = field(default_factory=lambda: TokenSource("config"))
    local_lists: LocalListManager | None = None
    retention: Retention | None = None
    ocpp: OcppServer | None = None
    ocpp_port: int = 0
    admin_port: int = 0
    ocpi_port: int | None = None
    admin_app: web.Application | None = None  # the running admin app (its router, for tests)
    _exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _stopped: bool = False

    async def start(self) -> None:
        """Listen: OCPP first, then OCPI, then the admin API; on failure, stop everything."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        # The node's lease first: its chargers' presence rows are believed only while it runs.
        await self.cluster.start()
        self._exit.push_async_callback(bounded, "cluster", self.cluster.stop)
        await self.coherence.start()
        self._exit.push_async_callback(bounded, "coherence", self.coherence.stop)
        if self.forwarder is not None:
            await self.forwarder.start()
            self._exit.push_async_callback(bounded, "forwarding", self.forwarder.stop)
        self.ocpp = await start_ocpp_server(
            self.config,
            self.db,
            self.authorization.authorizer,
            events=self.events,
            gateway=self.gateway,
            observer=self.metrics or NO_OBSERVER,
            presence=self.cluster.presence if self.cluster.multi else None,
        )
        self._exit.push_async_callback(bounded, "ocpp", self.ocpp.close)
        self.ocpp_port = int(self.ocpp.port)
        if self.local_lists is not None:
            self.local_lists.start()
            self._exit.push_async_callback(bounded, "local_lists", self.local_lists.stop)
        if self.roaming is not None:
            roaming = self.roaming
            roaming.cpo.worker.start()
            self._exit.push_async_callback(bounded, "outbox", roaming.cpo.worker.stop)
            self._exit.push_async_callback(bounded, "commands", roaming.commands.close)
            roaming.commands.start()  # reservation expiry checks
            self.ocpi_port = await roaming.runtime.serve(roaming.modules)
            roaming.runtime.sync.start()
        if self.retention is not None:
            self.retention.start()
            self._exit.push_async_callback(bounded, "retention", self.retention.close)
        runner, self.admin_port = await start_admin_api(self.admin, self.admin_routes)
        self._exit.push_async_callback(bounded, "admin", runner.cleanup)
        self.admin_app = runner.app
        for key, message in exposure_warnings(self.config):
            log.warning("listener_without_tls", key=key, message=message)
        log.info(
            "listening",
            ocpp_port=self.ocpp_port,
            admin_port=self.admin_port,
            ocpi_port=self.ocpi_port,
            store=redacted(self.config.store.effective_url),
        )

    async def stop(self) -> None:
        """Close everything opened, newest first; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        await self._exit.aclose()
        log.info("stopped")


# How long one part may take to stop. Why a bound: a part waiting on a peer that never
# answers (a hung eMSP, a charger that does not close its socket) must not keep the
# whole process from stopping; the rest still closes, and the log names the part.
STOP_STEP_TIMEOUT_S = 15.0


async def bounded(step: str, close: Callable[[], Awaitable[object]]) -> None:
    """Run one part's stop within :data:`STOP_STEP_TIMEOUT_S`; log and go on when it hangs."""
    try:
        async with asyncio.timeout(STOP_STEP_TIMEOUT_S):
            await close()
    except TimeoutError:
        log.error("stop_step_timed_out", step=step, timeout_s=STOP_STEP_TIMEOUT_S)


async def open_store(config: Config, *, migrate: bool = True) -> Database:
    """Open ``store.url``; refuse a schema newer than this release (a migration name
    neither the CSMS's list nor roaming's has), then apply the CSMS's pending steps
    (roaming's follow when OCPI is built)."""
    db = await Database.open(
        config.store.effective_url, pool_size=config.store.pool_size, migrate=False
    )
    try:
        await schema.refuse_newer(db, known_migrations())
        if migrate:
            await schema.migrate_database(db)
    except BaseException:
        await db.close()
        raise
    return db


def known_migrations() -> frozenset[str]:
    """Every migration name this release has: the CSMS's and roaming's lists."""
    return frozenset(name for name, _ in schema.MIGRATIONS) | frozenset(
        name for name, _ in roaming_schema.MIGRATIONS
    )


async def migrate_store(config: Config) -> tuple[list[str], list[str]]:
    """``csms db migrate``: apply every pending step of both lists (the CSMS's, then
    roaming's, which ``serve`` applies only with OCPI on); returns the names applied."""
    db = await open_store(config, migrate=False)
    try:
        applied = await schema.migrate_database(db)
        return applied, await roaming_schema.migrate(db)
    finally:
        await db.close()


async def store_status(config: Config) -> tuple[list[str], list[str]]:
    """``csms db status``: (applied names, names this release would still apply)."""
    db = await Database.open(
        config.store.effective_url, pool_size=config.store.pool_size, migrate=False
    )
    try:
        applied = await schema.recorded(db)
    finally:
        await db.close()
    everything = [name for name, _ in schema.MIGRATIONS] + [
        name for name, _ in roaming_schema.MIGRATIONS
    ]
    return applied, [name for name in everything if name not in applied]


async def compose(
    config: Config,
    *,
    authorizer: Authorizer | None = None,
    extra_admin_routes: Sequence[web.AbstractRouteDef] = (),
) -> System:
    """Build every part of the CSMS from ``config``; nothing listens until ``start``.

    ``authorizer`` replaces the decision the OCPP server asks (tests of the seam);
    ``extra_admin_routes`` are mounted behind the admin API's auth.
    """
    config, token_source = ensure_admin_token(config)
    metrics = Metrics() if config.metrics.enabled else None
    exit_stack = contextlib.AsyncExitStack()
    try:
        db = await open_store(config)
        exit_stack.push_async_callback(db.close)
        gateway = ChargerGateway(config.server.call_timeout_s)
        cluster = Cluster(config.cluster, db, gateway)
        coherence = Coherence(
            cluster.bus, cluster.node_id, multi=cluster.multi, bound_s=cluster.cache_bound_s
        )
        held_cards: HeldOwnCards | None = None
        forwarder = None
        if cluster.multi:  # a charger connected to another node is called there
            forwarder = Forwarder(cluster.node_id, cluster.bus, cluster.presence, db, gateway)
            gateway.remote = forwarder
        authorization = build_local_authorization(config, db)
        exit_stack.push_async_callback(bounded, "decision_log", authorization.decisions.close)
        sources = ScrapeSources(connected=lambda: len(gateway.all()), node_id=cluster.node_id)

        async def node_states() -> list[tuple[str, bool, int]]:
            return [(n.node_id, n.alive, n.chargers) for n in await cluster.nodes()]

        sources.nodes = node_states
        readiness = Readiness(db, ocpp_serving=lambda: False)
        if cluster.multi:
            readiness.cluster_hearing = lambda: cluster.bus.healthy
        events: ChargerEvents = NoEvents()
        roaming: Roaming | None = None
        catalog: CatalogAdmin | None = None
        roaming_view: StoreRoamingView | None = None
        routes: list[web.AbstractRouteDef] = []
        roaming_cards: RoamingCards | None = None
        if config.ocpi.enabled:
            runtime = await build_runtime(config, db, observer=metrics, jobs=cluster)
            exit_stack.push_async_callback(bounded, "ocpi", runtime.stop)
            cpo = await build_cpo(config, db, runtime.store, runtime.client, cluster)
            share_roaming_caches(coherence, runtime.store, cpo.lookup)
            held_cards = await HeldOwnCards.load(IdTagRepo(db), max_age_s=coherence.max_age_s)
            authorization = await build_roaming_authorization(
                config,
                runtime.store,
                runtime.client,
                decisions=authorization.decisions,
                own_cards=held_cards,
                locations=cpo.lookup,
                transactions=TransactionRepo(db),
                max_age_s=coherence.max_age_s,
            )
            exit_stack.push_async_callback(bounded, "authorization", authorization.close)
            commands = CommandService(
                db,
                cpo.locations,
                runtime.client,
                gateway=gateway,
                preauthorizer=(
                    authorization.service
                    if forwarder is None
                    else forwarder.carrying(authorization.service)
                ),
                timeout_s=config.ocpi_cpo.command_timeout_s,
                reservations=cpo.reservations,
                notify=cpo.worker.notify,
                expiry_check_s=config.ocpi_cpo.reservation_check_interval_s,
                exclusive=cluster.exclusive,
            )
            runtime.ctx.on_registered.append(partial(push_all_tariffs, db, cpo))
            runtime.ctx.on_registered.append(partial(push_all_locations, db, cpo))
            events = cpo.events
            roaming_cards = StoreRoamingCards(runtime.store, config)
            roaming = Roaming(runtime, cpo, commands, [tokens.MODULE, *ocpi_modules(cpo, commands)])
            sources.outbox, sources.syncs = cpo.outbox, runtime.store.token_syncs

            async def unmapped_count() -> int:
                return len(await unmapped_connectors(db))

            sources.unmapped = unmapped_count
            readiness.ocpi_serving = lambda: runtime.serving
            catalog = CatalogAdmin(db, cpo.locations, cpo.worker.notify)
            routes += [
                *runtime.admin_routes,
                # Before the reads: /api/locations/export is not a location id.
                *location_routes(catalog),
                *cpo_admin_routes(cpo.locations, cpo.outbox, cpo.worker, config, db),
            ]
            roaming_view = StoreRoamingView(db, runtime.store, cpo.outbox)
        lists_repo = LocalListRepo(db)
        local_lists = LocalListManager(config.local_lists, gateway, lists_repo, roaming_cards)
        if roaming_cards is not None and config.local_lists.enabled:
            authorization.authorizer = ListedOfflineStarts(
                authorization.authorizer,
                lists_repo,
                roaming_cards,
                sink=authorization.decisions,
                expiry_s=config.authz.id_tag_expiry_s,
            )
        routes += list(local_list_routes(db, local_lists))
        if authorizer is not None:
            authorization.authorizer = authorizer
        if forwarder is not None:  # holds command pre-authorizations other nodes send
            forwarder.preauthorizer = authorization.service
        admin = AdminContext(
            config=config,
            db=db,
            gateway=gateway,
            decisions=authorization.decisions,
            own_cards=FollowOwnCards(
                followers := FollowOwnCards(authorization.service, local_lists),
                coherence.share_own_cards(followers, held_cards),
            ),
            sites=catalog,
            roaming_view=roaming_view,
            cluster=cluster,
        )
        if metrics is not None:
            db.write_observer = metrics.store_wrote
            gateway.observer = metrics.call_sent
            authorization.decisions.observers.append(metrics.decided)
        routes += observability_routes(config, metrics, sources, readiness)
        routes += list(extra_admin_routes)
    except BaseException:
        await exit_stack.aclose()
        raise
    system = System(
        config=config,
        db=db,
        gateway=gateway,
        authorization=authorization,
        events=events,
        roaming=roaming,
        admin=admin,
        admin_routes=routes,
        cluster=cluster,
        forwarder=forwarder,
        metrics=metrics,
        admin_token=token_source,
        local_lists=local_lists,
        coherence=coherence,
        retention=Retention(db, config.retention, exclusive=cluster.exclusive),
        _exit=exit_stack,
    )
    readiness.ocpp_serving = lambda: system.ocpp is not None and system.ocpp.serving
    return system


@contextlib.asynccontextmanager
async def running(
    config: Config,
    *,
    authorizer: Authorizer | None = None,
    extra_admin_routes: Sequence[web.AbstractRouteDef] = (),
) -> AsyncIterator[System]:
    """A composed and started :class:`System`, stopped on exit."""
    system = await compose(config, authorizer=authorizer, extra_admin_routes=extra_admin_routes)
    try:
        await system.start()
        yield system
    finally:
        await system.stop()
