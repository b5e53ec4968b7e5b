"""Real OCPP server on 127.0.0.1:0 over a real SQLite file, and a raw OCPP-J client.

The raw client is deliberately dumb: it sends exactly the text a test gives it, so
malformed frames reach the server as a misbehaving charger would send them.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from csms.authz.own_cards import own_cards_authorizer
from csms.authz.ports import Authorizer
from csms.config import Config, ServerConfig
from csms.ocpp16.events import ChargerEvents
from csms.security_config import SecurityConfig
from csms.server import OcppServer, start_ocpp_server
from csms.store.db import Database
from csms.store.passwords import PasswordChecker

TS = "2024-05-01T10:00:00Z"


class RawClient:
    """One charger socket; ``call`` sends a CALL and returns the frame answering it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def send_text(self, text: str | bytes) -> list[Any]:
        await self.ws.send(text)
        return await self.recv()

    async def recv(self, timeout: float = 5.0) -> list[Any]:
        return orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def call(self, action: str, payload: Any, unique_id: str | None = None) -> list[Any]:
        uid = unique_id or f"m{next(self._ids)}"
        reply = await self.send_text(orjson.dumps([2, uid, action, payload]))
        assert reply[1] == uid, reply
        return reply

    async def ok(self, action: str, payload: Any) -> dict[str, Any]:
        """A CALL that must succeed; returns the CALLRESULT payload."""
        reply = await self.call(action, payload)
        assert reply[0] == 3, reply
        return reply[2]  # type: ignore[no-any-return]

    async def boot(self) -> dict[str, Any]:
        return await self.ok(
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )

    async def answer_next(self, fn: Callable[[str, dict[str, Any]], Any]) -> list[Any]:
        """Wait for one CSMS CALL and answer it with ``fn(action, payload)``."""
        frame = await self.recv()
        assert frame[0] == 2, frame
        await self.ws.send(orjson.dumps([3, frame[1], fn(frame[2], frame[3])]))
        return frame


def make_config(**server: Any) -> Config:
    base = ServerConfig(
        host="127.0.0.1", port=0, call_timeout_s=2.0, ping_interval_s=0, status_linger_s=0
    )
    return Config(server=replace(base, **server))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "csms.sqlite3"))
    yield database
    await database.close()


StartServer = Callable[..., Awaitable[OcppServer]]


@pytest.fixture
async def start_server(db: Database, tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(authorizer=None, events=None, passwords=None, security=None,
    **server_config)``; ``security``: [security] keys."""
    servers: list[OcppServer] = []

    async def start(
        authorizer: Authorizer | None = None,
        events: ChargerEvents | None = None,
        passwords: PasswordChecker | None = None,
        security: dict[str, Any] | None = None,
        **server: Any,
    ) -> OcppServer:
        server.setdefault("unknown_chargers", "accept")
        cfg = replace(make_config(**server), security=SecurityConfig(**(security or {})))
        srv = await start_ocpp_server(
            cfg,
            db,
            authorizer or own_cards_authorizer(db, 3600),
            events,
            passwords=passwords,
        )
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        await srv.close()


Connect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def connect_cp() -> AsyncIterator[Connect]:
    """``await connect_cp(server, "CP1", password=None, subprotocols=["ocpp1.6"])``."""
    sockets: list[ClientConnection] = []

    async def open_(
        srv: OcppServer,
        cp_id: str,
        password: str | None = None,
        subprotocols: list[str] | None = None,
        scheme: str = "ws",
        **kwargs: Any,
    ) -> RawClient:
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        ws = await connect(
            f"{scheme}://127.0.0.1:{srv.port}/ocpp/{cp_id}",
            subprotocols=subprotocols or ["ocpp1.6"],  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=5,
            **kwargs,
        )
        sockets.append(ws)
        return RawClient(ws)

    yield open_
    for ws in sockets:
        await ws.close()
