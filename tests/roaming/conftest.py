"""A real CPO OCPI server (roaming app on 127.0.0.1:0) and a real eMSP.

The CPO's store is each backend in turn (the ``store_url`` fixture: a SQLite file in
tmp_path, then a PostgreSQL schema), so every test of the partners', tokens' and sync
stores runs on both.

The second party is the eMSP sandbox (``simulator.emsp``), a separate OCPI
implementation, so a wire bug in roaming cannot cancel out against itself.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from csms.store.db import Database
from roaming import credentials, tokens
from roaming.app import create_ocpi_app
from roaming.client import OcpiClient
from roaming.context import RoamingContext
from roaming.partners import Partner
from roaming.settings import RoamingSettings
from roaming.store import RoamingStore
from roaming.store import schema as roaming_schema
from roaming.sync import TokenSync
from simulator.emsp.sandbox import EmspSandbox


class Cpo:
    """The CPO side under test plus helpers to call it like a partner would."""

    def __init__(self, ctx: RoamingContext, runner: web.AppRunner, port: int, db: Database):
        self.ctx = ctx
        self.runner = runner
        self.port = port
        self.db = db
        self.sync = TokenSync(ctx, after_registration_delay_s=0.05)
        self.http = aiohttp.ClientSession()
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, token) received

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def versions_url(self) -> str:
        return self.ctx.settings.versions_url

    @property
    def store(self) -> RoamingStore:
        return self.ctx.store

    async def invite(self, cc: str = "NL", pid: str = "EMS") -> str:
        _, token_a = await credentials.invite(self.ctx, cc, pid)
        return token_a

    async def partner(self, key: str = "NL-EMS") -> Partner:
        p = await self.store.partners.partner_by_key(key)
        assert p is not None
        return p

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        body: Any = None,
        raw: bytes | None = None,
        encoding: str = "base64",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One request with ``Authorization: Token ...``; returns (http, envelope, headers)."""
        h = dict(headers or {})
        if token is not None:
            value = base64.b64encode(token.encode()).decode() if encoding == "base64" else token
            h["Authorization"] = f"Token {value}"
        kwargs: dict[str, Any] = {"headers": h}
        if raw is not None:
            kwargs["data"] = raw
            h["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        url = path if path.startswith("http") else self.base + path
        async with self.http.request(method, url, **kwargs) as resp:
            payload = await resp.json(content_type=None)
            return resp.status, payload, dict(resp.headers)

    async def close(self) -> None:
        await self.sync.stop()
        await self.http.close()
        await self.ctx.client.close()
        await self.runner.cleanup()


# The CSMS's ``[ocpi]`` defaults, with short timeouts and small pages for tests.
DEFAULT_SETTINGS: dict[str, Any] = {
    "public_base_url": "http://127.0.0.1:9200",
    "country_code": "NL",
    "party_id": "CPO",
    "business_name": "Example CPO",
    "business_website": "",
    "http_timeout_s": 2.0,
    "connection_limit_per_partner": 512,
    "token_sync_interval_s": 86400.0,
    "token_sync_page_size": 10,
    "page_limit": 1000,
    "allow_private_partner_urls": True,  # the eMSPs of these tests listen on 127.0.0.1
}


async def start_cpo(
    tmp_path: Any, *, record: bool = True, store_url: str | None = None, **settings: Any
) -> Cpo:
    db = await Database.open(store_url or str(tmp_path / "cpo.sqlite3"))
    await roaming_schema.migrate(db)
    base = RoamingSettings(**{**DEFAULT_SETTINGS, **settings})
    client = OcpiClient(
        timeout_s=base.http_timeout_s,
        connection_limit_per_partner=base.connection_limit_per_partner,
        from_country_code=base.country_code,
        from_party_id=base.party_id,
        allow_private_urls=base.allow_private_partner_urls,
    )
    ctx = RoamingContext(settings=base, store=RoamingStore(db), client=client)
    app = create_ocpi_app(ctx, [tokens.MODULE])
    seen: list[tuple[str, str, str | None]] = []

    @web.middleware
    async def recorder(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(
            (request.method, request.path, decode_auth(request.headers.get("Authorization")))
        )
        return await handler(request)

    if record:
        app.middlewares.insert(0, recorder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ctx.settings = dataclasses.replace(base, public_base_url=f"http://127.0.0.1:{port}")
    cpo = Cpo(ctx, runner, port, db)
    cpo.seen = seen
    return cpo


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[Database]:
    """The roaming store's schema alone on each backend, for store-level tests."""
    database = await Database.open(store_url)
    await roaming_schema.migrate(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def cpo(tmp_path: Any, store_url: str) -> AsyncIterator[Cpo]:
    c = await start_cpo(tmp_path, store_url=store_url)
    try:
        yield c
    finally:
        await c.close()
        await c.db.close()


@pytest.fixture
async def emsp() -> AsyncIterator[EmspSandbox]:
    async with EmspSandbox.start(
        country_code="NL", party_id="EMS", control_port=None, page_limit=10
    ) as sb:
        yield sb


@pytest.fixture
async def registered(cpo: Cpo, emsp: EmspSandbox) -> tuple[Cpo, EmspSandbox]:
    """The eMSP registered with us (it initiated, we are Responder)."""
    token_a = await cpo.invite("NL", "EMS")
    await emsp.register_with(cpo.versions_url, token_a)
    return cpo, emsp


def decode_auth(value: str | None) -> str | None:
    """The credentials token carried by an ``Authorization: Token ...`` header we sent."""
    if value is None:
        return None
    enc = value.split(" ", 1)[1]
    try:
        return base64.b64decode(enc, validate=True).decode()
    except Exception:
        return enc
