"""CsmsApp lifecycle: hooks run in order around the servers, closers in reverse, extra
admin routes sit behind the same auth, the authorizer seam is honoured, and a failed
start releases everything."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from csms.admin.http import json_response
from csms.app import CsmsApp
from csms.authz.model import NEED_IO, AuthRequest, AuthStatus, Decision, NeedIO, Source
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import admin_session, make_config, ocpp_url, running_csms


async def test_hooks_order_closers_reverse_and_extra_routes(tmp_path: Path) -> None:
    seen: list[str] = []

    async def setup(app: CsmsApp) -> Any:
        seen.append(f"setup ocpp={app.ocpp is not None}")
        routes = web.RouteTableDef()

        @routes.get("/api/extra")
        async def extra(request: web.Request) -> web.Response:
            return json_response({"hello": "world"})

        app.add_admin_routes(routes)

        async def close() -> None:
            seen.append("close setup")

        return close

    async def start(app: CsmsApp) -> Any:
        seen.append(f"start ocpp={app.ocpp_port > 0}")
        app.ocpi_port = 12345

        async def close() -> None:
            seen.append("close start")

        return close

    async with running_csms(
        tmp_path, app_kwargs={"setup_hooks": [setup], "start_hooks": [start]}
    ) as app:
        assert app.ocpi_port == 12345
        async with admin_session(app) as http:
            resp = await http.get("/api/extra")
            assert resp.status == 200
            assert await resp.json() == {"hello": "world"}
        async with admin_session(app, token=None) as anon:
            assert (await anon.get("/api/extra")).status == 401
        with pytest.raises(RuntimeError):
            app.add_admin_routes([])
    assert seen == ["setup ocpp=False", "start ocpp=True", "close start", "close setup"]


class _Fixed:
    """An authorizer that blocks everything: proves the seam is used."""

    def __init__(self) -> None:
        self.requests: list[AuthRequest] = []

    def try_now(self, request: AuthRequest) -> NeedIO:
        return NEED_IO

    async def decide(self, request: AuthRequest) -> Decision:
        self.requests.append(request)
        return Decision(AuthStatus.BLOCKED, Source.LOCAL, reason="test")


async def test_authorizer_factory_replaces_the_local_table(tmp_path: Path) -> None:
    fixed = _Fixed()
    async with running_csms(
        tmp_path,
        server={"unknown_chargers": "accept"},
        app_kwargs={"authorizer_factory": lambda app: fixed},
    ) as app:
        assert app.authorizer is fixed
        async with SimulatedChargePoint.connect(ocpp_url(app), "AZ1", heartbeat=False) as cp:
            await cp.boot()
            answer = await cp.authorize("ANY")
            assert answer["idTagInfo"]["status"] == "Blocked"
        assert [r.uid for r in fixed.requests] == ["ANY"]


async def test_failed_start_releases_ports_and_store(tmp_path: Path) -> None:
    closed: list[str] = []

    async def setup(app: CsmsApp) -> Any:
        async def close() -> None:
            closed.append("setup")

        return close

    async def boom(app: CsmsApp) -> Any:
        raise RuntimeError("hook failed")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        ocpp_port = probe.getsockname()[1]
    config = make_config(tmp_path, server={"port": ocpp_port})
    with pytest.raises(RuntimeError, match="hook failed"):
        await CsmsApp.start(config, setup_hooks=[setup], start_hooks=[boom])
    assert closed == ["setup"]
    # the OCPP port is free again: a second start on the same port works
    app = await CsmsApp.start(config)
    try:
        assert app.ocpp_port == ocpp_port
    finally:
        await app.stop()
        await app.stop()  # idempotent
