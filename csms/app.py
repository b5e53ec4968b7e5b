"""The composition root: one object that opens the store and starts every server.

Why a class with ``start``/``stop`` rather than code in ``__main__``: tests, the demo
and ``csms serve`` all need the same fully wired system on ports they can read back
(config ports may be 0), and they all need to stop it cleanly.

Start order (stop runs the reverse):

1. the store (``config.store.path``),
2. the authorizer (``authorizer_factory``; default: the local id_tags table),
3. *setup hooks*: run before any server listens; they may replace ``app.authorizer``,
   set ``app.ocpp_events`` and add admin routes with :meth:`CsmsApp.add_admin_routes`,
4. the OCPP server (``app.gateway`` and ``app.ocpp_port`` exist from here on),
5. *start hooks*: things that need the gateway (e.g. OCPI: commands reach chargers),
   they may set ``app.ocpi_port``,
6. the admin API.

A hook is ``async def hook(app: CsmsApp) -> Closer | None`` where ``Closer`` is an
``async def close() -> None``; closers run in reverse order on :meth:`stop`. When the
module ``csms.wiring`` exists and OCPI is enabled its ``setup``/``start`` functions
(if defined) are added as hooks automatically, so roaming plugs in without this file
importing ``roaming``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from csms import logs
from csms.authz.ports import Authorizer
from csms.config import Config
from csms.store.db import Database

Closer = Callable[[], Awaitable[None]]
Hook = Callable[["CsmsApp"], Awaitable[Closer | None]]
AuthorizerFactory = Callable[["CsmsApp"], Authorizer | Awaitable[Authorizer]]

log = logs.get("csms.app")


def default_authorizer(app: CsmsApp) -> Authorizer:
    """The local id_tags table: what a CSMS without roaming authorizes against.

    Its decisions go to the same decision log and ``/api/authorizations`` as the roaming
    service's (which, when OCPI is enabled, replaces this authorizer and its log).
    """
    from csms.admin.authorizations import LOG_EXTENSION
    from csms.admin.authorizations import routes as authorization_routes
    from csms.authz.own_cards import own_cards_authorizer
    from csms.store.authorizations import AuthorizationLog

    decisions = AuthorizationLog(app.db)
    decisions.start()
    app.on_stop(decisions.close)
    app.extensions[LOG_EXTENSION] = decisions
    app.add_admin_routes(authorization_routes)
    return own_cards_authorizer(app.db, app.config.authz.id_tag_expiry_s, sink=decisions)


class CsmsApp:
    """A running CSMS. Build it with :meth:`start`, always end with :meth:`stop`."""

    def __init__(self, config: Config, db: Database) -> None:
        self.config = config
        self.db = db
        self.authorizer: Authorizer | None = None
        self.ocpp_events: Any = None
        self.ocpp: Any = None  # csms.server.OcppServer
        self.ocpp_port: int = 0
        self.admin_port: int = 0
        self.ocpi_port: int | None = None
        self.extensions: dict[str, Any] = {}  # shared objects hooks publish for each other
        self._admin_routes: list[web.AbstractRouteDef] = []
        self._admin_runner: web.AppRunner | None = None
        self._closers: list[Closer] = []
        self._stopped = False

    @property
    def gateway(self) -> Any:
        """The :class:`csms.ocpp16.gateway.ChargerGateway` of the OCPP server."""
        if self.ocpp is None:
            raise RuntimeError("the OCPP server is not started yet")
        return self.ocpp.gateway

    def on_stop(self, closer: Closer) -> None:
        """Run ``closer`` on :meth:`stop` (newest first: before anything started earlier)."""
        self._closers.append(closer)

    def add_admin_routes(self, routes: Sequence[web.AbstractRouteDef]) -> None:
        """Mount extra admin API routes (behind the same bearer auth); setup/start hooks only.

        Idempotent per route: the local and the roaming authorizer both offer
        ``/api/authorizations`` and whichever is installed last serves it.
        """
        if self._admin_runner is not None:
            raise RuntimeError("admin routes must be added before the admin API starts")
        self._admin_routes.extend(r for r in routes if r not in self._admin_routes)

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        authorizer_factory: AuthorizerFactory | None = None,
        setup_hooks: Sequence[Hook] = (),
        start_hooks: Sequence[Hook] = (),
        extra_admin_routes: Sequence[web.AbstractRouteDef] = (),
        use_wiring: bool = True,
    ) -> CsmsApp:
        db = await Database.open(config.store.path)
        app = cls(config, db)
        app._closers.append(db.close)
        try:
            await app._start(
                authorizer_factory or default_authorizer,
                list(setup_hooks),
                list(start_hooks),
                extra_admin_routes,
                use_wiring,
            )
        except BaseException:
            await app.stop()
            raise
        return app

    async def _start(
        self,
        authorizer_factory: AuthorizerFactory,
        setup_hooks: list[Hook],
        start_hooks: list[Hook],
        extra_admin_routes: Sequence[web.AbstractRouteDef],
        use_wiring: bool,
    ) -> None:
        from csms.admin.app import start_admin_api
        from csms.server import start_ocpp_server

        self._admin_routes.extend(extra_admin_routes)
        if use_wiring and self.config.ocpi.enabled:
            wiring_setup, wiring_start = _wiring_hooks()
            setup_hooks = [*wiring_setup, *setup_hooks]
            start_hooks = [*wiring_start, *start_hooks]

        made = authorizer_factory(self)
        self.authorizer = await made if isinstance(made, Awaitable) else made
        await self._run_hooks(setup_hooks)

        self.ocpp = await start_ocpp_server(
            self.config, self.db, self.authorizer, events=self.ocpp_events
        )
        self._closers.append(self.ocpp.close)
        self.ocpp_port = int(self.ocpp.port)
        await self._run_hooks(start_hooks)

        self._admin_runner, self.admin_port = await start_admin_api(self, self._admin_routes)
        self._closers.append(self._admin_runner.cleanup)
        log.info(
            "listening",
            ocpp_port=self.ocpp_port,
            admin_port=self.admin_port,
            ocpi_port=self.ocpi_port,
            store=self.config.store.path,
        )

    async def _run_hooks(self, hooks: Sequence[Hook]) -> None:
        for hook in hooks:
            closer = await hook(self)
            if closer is not None:
                self._closers.append(closer)

    async def stop(self) -> None:
        """Close everything started, newest first; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        while self._closers:
            closer = self._closers.pop()
            try:
                await closer()
            except Exception:
                log.exception("stop_failed", closer=getattr(closer, "__qualname__", repr(closer)))
        log.info("stopped")

    async def __aenter__(self) -> CsmsApp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _wiring_hooks() -> tuple[list[Hook], list[Hook]]:
    """``csms.wiring.setup`` / ``csms.wiring.start`` when that module exists."""
    if importlib.util.find_spec("csms.wiring") is None:
        return [], []
    wiring = importlib.import_module("csms.wiring")
    setup = getattr(wiring, "setup", None)
    start = getattr(wiring, "start", None)
    return ([setup] if setup else []), ([start] if start else [])
