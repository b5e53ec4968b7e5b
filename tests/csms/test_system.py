"""The composition root: compose builds without listening, start listens in order, stop
closes in reverse; extra admin routes sit behind the same auth, the authorizer seam is
honoured, and a failed start releases everything."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from aiohttp import web

from csms.admin.http import json_response
from csms.authz.model import NEED_IO, AuthRequest, AuthStatus, Decision, NeedIO, Source
from csms.store.db import Database
from csms.system import compose
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import admin_session, make_config, ocpp_url, running_csms


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    """Whether something holds ``port`` (binding it fails), without connecting to it."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


async def _assert_closed(db: Database) -> None:
    with pytest.raises(ValueError, match=r"(?i)closed|no active connection"):
        await db.fetchone("SELECT 1")


async def test_compose_builds_without_listening_and_start_listens(tmp_path: Path) -> None:
    ocpp_port, admin_port = _free_port(), _free_port()
    config = make_config(tmp_path, server={"port": ocpp_port}, admin={"port": admin_port})
    system = await compose(config)
    try:
        assert system.ocpp is None and system.ocpp_port == 0
        assert not _listening(ocpp_port) and not _listening(admin_port)
        await system.start()
        assert (system.ocpp_port, system.admin_port) == (ocpp_port, admin_port)
        assert _listening(ocpp_port) and _listening(admin_port)
    finally:
        await system.stop()
    assert not _listening(ocpp_port) and not _listening(admin_port)
    await _assert_closed(system.db)


async def test_roaming_parts_are_built_only_with_ocpi(tmp_path: Path) -> None:
    async with running_csms(tmp_path) as plain:
        assert plain.roaming is None and plain.ocpi_port is None
    (tmp_path / "ocpi").mkdir()
    async with running_csms(tmp_path / "ocpi", ocpi={"enabled": True}) as roaming:
        assert roaming.roaming is not None and roaming.ocpi_port
        assert roaming.authorization.service is not None
        assert roaming.roaming.commands.preauthorizer is roaming.authorization.service
        assert roaming.roaming.commands.gateway is roaming.gateway


async def test_extra_admin_routes_sit_behind_the_same_auth(tmp_path: Path) -> None:
    routes = web.RouteTableDef()

    @routes.get("/api/extra")
    async def extra(request: web.Request) -> web.Response:
        return json_response({"hello": "world"})

    async with running_csms(tmp_path, extra_admin_routes=routes) as app:
        async with admin_session(app) as http:
            resp = await http.get("/api/extra")
            assert resp.status == 200
            assert await resp.json() == {"hello": "world"}
        async with admin_session(app, token=None) as anon:
            assert (await anon.get("/api/extra")).status == 401


class _Fixed:
    """An authorizer that blocks everything: proves the seam is used."""

    def __init__(self) -> None:
        self.requests: list[AuthRequest] = []

    def try_now(self, request: AuthRequest) -> NeedIO:
        return NEED_IO

    async def decide(self, request: AuthRequest) -> Decision:
        self.requests.append(request)
        return Decision(AuthStatus.BLOCKED, Source.LOCAL, reason="test")


async def test_the_authorizer_seam_replaces_the_local_table(tmp_path: Path) -> None:
    fixed = _Fixed()
    async with running_csms(
        tmp_path, server={"unknown_chargers": "accept"}, authorizer=fixed
    ) as app:
        assert app.authorization.authorizer is fixed
        async with SimulatedChargePoint.connect(ocpp_url(app), "AZ1", heartbeat=False) as cp:
            await cp.boot()
            answer = await cp.authorize("ANY")
            assert answer["idTagInfo"]["status"] == "Blocked"
        assert [r.uid for r in fixed.requests] == ["ANY"]


async def test_failed_start_releases_ports_and_store(tmp_path: Path) -> None:
    ocpp_port = _free_port()
    with socket.socket() as taken:  # the admin port is in use: start fails after OCPP listens
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin_port = taken.getsockname()[1]
        config = make_config(tmp_path, server={"port": ocpp_port}, admin={"port": admin_port})
        system = await compose(config)
        with pytest.raises(OSError):
            await system.start()
    await _assert_closed(system.db)
    assert not _listening(ocpp_port)
    # the OCPP port is free again: a second start on the same ports works
    config = make_config(tmp_path, server={"port": ocpp_port})
    again = await compose(config)
    try:
        await again.start()
        assert again.ocpp_port == ocpp_port
    finally:
        await again.stop()
        await again.stop()  # idempotent


async def test_a_part_that_hangs_at_stop_is_abandoned_and_named(monkeypatch):
    """A part waiting on a peer that never answers must not keep the process from
    stopping: its stop is abandoned after the bound and the log names it."""
    from structlog.testing import capture_logs

    from csms import system

    monkeypatch.setattr(system, "STOP_STEP_TIMEOUT_S", 0.05)
    never = asyncio.Event()
    closed: list[str] = []

    async def fine() -> None:
        closed.append("admin")

    with capture_logs() as logs:
        await system.bounded("ocpi", never.wait)
        await system.bounded("admin", fine)
    assert closed == ["admin"]
    assert [(e["event"], e["step"]) for e in logs if e["log_level"] == "error"] == [
        ("stop_step_timed_out", "ocpi")
    ]
