"""A bug behind an OCPI endpoint is still answered with an OCPI envelope and logged."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from structlog.testing import capture_logs

from roaming import app as ocpi_app
from roaming.context import OcpiModule, RoamingContext
from roaming.models import InterfaceRole
from tests.roaming.conftest import Cpo
from tests.support.servers import serving


def _buggy_module() -> OcpiModule:
    async def crash(request: web.Request) -> web.Response:
        raise KeyError("a bug")

    def add(app: web.Application, _ctx: RoamingContext) -> None:
        app.router.add_get("/ocpi/cpo/2.2.1/buggy", crash)

    return OcpiModule("buggy", InterfaceRole.SENDER, "/ocpi/cpo/2.2.1/buggy", add)


async def test_a_crashing_handler_answers_3000_envelope_and_logs_it(
    registered: tuple[Cpo, Any],
) -> None:
    cpo, emsp = registered
    app = ocpi_app.create_ocpi_app(cpo.ctx, [_buggy_module()])
    async with serving(app) as port:
        with capture_logs() as logs:
            status, env, headers = await cpo.call(
                "GET", f"http://127.0.0.1:{port}/ocpi/cpo/2.2.1/buggy", emsp.peer.token_out
            )
    assert status == 500
    assert env["status_code"] == 3000 and env["status_message"] == "internal server error"
    assert "X-Request-ID" in headers
    assert any(e["event"] == "ocpi.handler_error" for e in logs)


async def test_an_error_outside_the_ocpi_middleware_is_still_an_envelope() -> None:
    """The outermost guard: a failure in another middleware (here one that breaks) is
    answered as OCPI 3000, never as aiohttp's plain-text 500 page."""

    @web.middleware
    async def broken(request: web.Request, handler: Any) -> web.StreamResponse:
        raise RuntimeError("middleware bug")

    async def fine(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application(middlewares=[ocpi_app._last_resort, broken])
    app.router.add_get("/x", fine)
    async with serving(app) as port, aiohttp.ClientSession() as http:
        with capture_logs() as logs:
            async with http.get(f"http://127.0.0.1:{port}/x") as resp:
                env = await resp.json()
                assert resp.status == 500 and resp.content_type == "application/json"
    assert env["status_code"] == 3000
    assert any(e["event"] == "ocpi.unhandled_error" for e in logs)
