"""Roaming's runtime inside the CSMS: store, client, OCPI server, token sync, admin routes.

Why a runtime object: the CSMS composition root must start and stop roaming as one
thing, and the authorization service and the CPO's OCPI modules need the same store
and client instances; :class:`RoamingRuntime` is the single place they are made.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from aiohttp import web

from csms import logs
from csms.cluster.coherence import PARTNERS, TOKENS, Coherence
from csms.config import Config
from csms.ocpi.memo import TtlMemo
from csms.store.db import Database
from roaming.admin import admin_routes
from roaming.app import create_ocpi_app
from roaming.client import OcpiClient
from roaming.context import OcpiModule, RoamingContext
from roaming.observer import CallObserver
from roaming.ports import JobLock
from roaming.settings import RoamingSettings
from roaming.store import RoamingStore, TokenStore
from roaming.store import schema as roaming_schema
from roaming.sync import TokenSync

log = logs.get("csms.ocpi.runtime")


def settings_from_config(config: Config) -> RoamingSettings:
    """Roaming's settings are the ``[ocpi]`` keys of the same names."""
    o = config.ocpi
    return RoamingSettings(**{f.name: getattr(o, f.name) for f in fields(RoamingSettings)})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_private_partner_urls(config: Config) -> bool:
    """Warn when partner URLs on private addresses are allowed while OCPI listens beyond
    this machine: a setting for one-machine setups, a risk on a reachable server (a
    partner could make us call internal services). Returns whether it warned."""
    o = config.ocpi
    if not o.allow_private_partner_urls or _is_loopback(o.host):
        return False
    log.warning(
        "ocpi.private_partner_urls_allowed",
        host=o.host,
        hint="ocpi.allow_private_partner_urls is on while OCPI listens on a non-loopback "
        "address: partners may make us call loopback/private addresses; turn it off in "
        "production",
    )
    return True


@dataclass
class RoamingRuntime:
    """Everything roaming runs; ``tokens`` is the token store the authorizer reads."""

    config: Config
    ctx: RoamingContext
    sync: TokenSync
    admin_routes: web.RouteTableDef
    ocpi_port: int | None = None
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _stopped: bool = False

    @property
    def store(self) -> RoamingStore:
        return self.ctx.store

    @property
    def tokens(self) -> TokenStore:
        return self.ctx.store.tokens

    @property
    def client(self) -> OcpiClient:
        return self.ctx.client

    async def serve(self, modules: Sequence[OcpiModule]) -> int:
        """Start the OCPI HTTP server on ``ocpi.host``/``ocpi.port`` (0: any free port)."""
        app = create_ocpi_app(self.ctx, modules)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.ocpi.host, self.config.ocpi.port)
        await site.start()
        self._runner = runner
        port = int(runner.addresses[0][1])
        self.ocpi_port = port
        if self.config.ocpi.port == 0:
            # Tests and ad-hoc runs: the advertised URLs must carry the real port.
            host = (
                "127.0.0.1"
                if self.config.ocpi.host in ("0.0.0.0", "", "::")
                else self.config.ocpi.host
            )
            self.ctx.settings = dataclasses.replace(
                self.ctx.settings, public_base_url=f"http://{host}:{port}"
            )
        warn_private_partner_urls(self.config)
        log.info(
            "ocpi.listening",
            port=port,
            public_base_url=self.ctx.settings.public_base_url,
            modules=[str(m.identifier) for m in modules],
        )
        return port

    @property
    def serving(self) -> bool:
        """Whether the OCPI HTTP server is up (readiness)."""
        return self._runner is not None and not self._stopped

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self.sync.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.ctx.client.close()


async def build_runtime(
    config: Config,
    db: Database,
    observer: CallObserver | None = None,
    *,
    jobs: JobLock | None = None,
) -> RoamingRuntime:
    """``observer`` is told every outgoing OCPI call (metrics); ``jobs`` keeps a partner's
    token sync to one node at a time (several nodes on one database)."""
    settings = settings_from_config(config)
    await roaming_schema.migrate(db)  # roaming's tables, right after the CSMS's own
    store = RoamingStore(db)
    client = OcpiClient(
        timeout_s=settings.http_timeout_s,
        connection_limit_per_partner=settings.connection_limit_per_partner,
        from_country_code=settings.country_code,
        from_party_id=settings.party_id,
        observer=observer,
        allow_private_urls=settings.allow_private_partner_urls,
    )
    ctx = RoamingContext(settings=settings, store=store, client=client)
    sync = TokenSync(ctx, jobs=jobs)
    await sync.fail_interrupted()
    ctx.on_registered.append(sync.schedule_now)
    return RoamingRuntime(config=config, ctx=ctx, sync=sync, admin_routes=admin_routes(ctx, sync))


def share_roaming_caches(
    coherence: Coherence, store: RoamingStore, locations: TtlMemo | None = None
) -> None:
    """The roaming store's memos follow the other nodes' writes (PostgreSQL): token
    writes are announced by uid and told to this node's token listeners (the
    authorization's memo, the local lists); partner writes drop the partner memo, which
    also starts over every ``cluster.cache_bound_s``; the location memo (which EVSEs a
    charger publishes, sent with real-time Authorizes) lives no longer than that."""
    coherence.share(TOKENS, store.tokens.add_token_listener, store.tokens.listeners.notify)
    partners = coherence.topic(PARTNERS)
    partners.follow(lambda _keys: store.partners.forget())  # forgetting announces nothing
    store.partners.write_listeners.append(lambda: partners.publish(None))
    store.partners.max_age_s = coherence.max_age_s
    if locations is not None and coherence.max_age_s is not None:
        locations.ttl_s = min(locations.ttl_s, coherence.max_age_s)
