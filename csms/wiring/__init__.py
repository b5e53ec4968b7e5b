"""The only csms package that imports roaming: it builds roaming and plugs it into CsmsApp.

How it plugs in: :class:`csms.app.CsmsApp` calls :func:`setup` (before the OCPP server
starts) and :func:`start` (after it) when OCPI is enabled. Other engineers extend
roaming through the three registries below instead of editing the hooks:

* :data:`OCPI_MODULES` - every :class:`roaming.app.OcpiModule` served and advertised;
* :data:`SETUP_STEPS` / :data:`START_STEPS` - ``async step(app, runtime) -> Closer | None``
  run inside :func:`setup` / :func:`start` (before the OCPI server listens), e.g. to
  install the authorization service or to put ports into ``runtime.ctx.services``.

Standalone use (tests, tools): :func:`start_roaming` returns a serving
:class:`RoamingRuntime` without a CsmsApp.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from csms.config import Config
from csms.store.db import Database
from csms.wiring.partners import RoamingRuntime, build_runtime, settings_from_config
from roaming import tokens
from roaming.app import OcpiModule

if TYPE_CHECKING:
    from csms.app import CsmsApp

Closer = Callable[[], Awaitable[None]]
Step = Callable[["CsmsApp", RoamingRuntime], Awaitable[Closer | None]]

RUNTIME_EXTENSION = "roaming"

OCPI_MODULES: list[OcpiModule] = [tokens.MODULE]


async def _install_authorization(app: CsmsApp, runtime: RoamingRuntime) -> Closer | None:
    from csms.wiring.authz import install

    return await install(app, runtime.store, runtime.client)


SETUP_STEPS: list[Step] = [_install_authorization]
START_STEPS: list[Step] = []


def _install_cpo_modules() -> None:
    """Locations, tariffs, sessions, CDRs, commands and the outbox (csms.wiring.sessions)."""
    from csms.wiring import sessions as cpo

    OCPI_MODULES.extend(cpo.ocpi_modules())
    SETUP_STEPS.append(cpo.setup_step)
    START_STEPS.append(cpo.start_step)


_install_cpo_modules()


async def start_roaming(
    config: Config, db: Database, modules: Sequence[OcpiModule] | None = None
) -> RoamingRuntime:
    """Build roaming over ``db``, serve OCPI and start the token sync scheduler."""
    runtime = await build_runtime(config, db)
    try:
        await runtime.serve(OCPI_MODULES if modules is None else modules)
        runtime.sync.start()
    except BaseException:
        await runtime.stop()
        raise
    return runtime


async def _run_steps(steps: Sequence[Step], app: CsmsApp, runtime: RoamingRuntime) -> list[Closer]:
    closers = []
    for step in steps:
        closer = await step(app, runtime)
        if closer is not None:
            closers.append(closer)
    return closers


async def setup(app: CsmsApp) -> Closer:
    """CsmsApp setup hook: build the runtime, mount admin routes, run SETUP_STEPS."""
    runtime = await build_runtime(app.config, app.db)
    app.extensions[RUNTIME_EXTENSION] = runtime
    app.add_admin_routes(list(runtime.admin_routes))
    closers = await _run_steps(SETUP_STEPS, app, runtime)

    async def close() -> None:
        await runtime.stop()
        for c in reversed(closers):
            await c()

    return close


async def start(app: CsmsApp) -> Closer | None:
    """CsmsApp start hook: run START_STEPS, then serve OCPI and schedule token syncs."""
    runtime: RoamingRuntime = app.extensions[RUNTIME_EXTENSION]
    closers = await _run_steps(START_STEPS, app, runtime)
    app.ocpi_port = await runtime.serve(OCPI_MODULES)
    runtime.sync.start()

    async def close() -> None:
        for c in reversed(closers):
            await c()

    return close


def runtime_of(app: Any) -> RoamingRuntime:
    runtime: RoamingRuntime = app.extensions[RUNTIME_EXTENSION]
    return runtime


__all__ = [
    "OCPI_MODULES",
    "SETUP_STEPS",
    "START_STEPS",
    "RoamingRuntime",
    "runtime_of",
    "settings_from_config",
    "setup",
    "start",
    "start_roaming",
]
