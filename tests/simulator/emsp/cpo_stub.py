"""A minimal CPO peer for the sandbox's own tests, written independently of ``roaming``.

Why it exists: the sandbox's push and command paths need a party with tokens/commands
RECEIVER endpoints, and the sandbox's tests must not depend on the CSMS being finished.
It is a real aiohttp server on 127.0.0.1; end-to-end tests against the real CSMS live
next to it and skip only while the CSMS piece they need is missing.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web


def _env(data: Any = None, code: int = 1000) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status_code": code,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if data is not None:
        out["data"] = data
    return out


class CpoStub:
    def __init__(self) -> None:
        self.port = 0
        self.token_as: set[str] = set()
        self.token_in: str | None = None  # what the eMSP sends us
        self.token_out: str | None = None  # what we send the eMSP
        self.endpoints: dict[tuple[str, str], str] = {}
        self.tokens: dict[tuple[str, str], dict[str, Any]] = {}
        self.token_calls: list[tuple[str, str, Any]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.command_result = "ACCEPTED"
        self._tasks: set[asyncio.Task[Any]] = set()
        self.http: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.base}/ocpi/versions"

    def _auth(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Token "):
            return None
        value = header[6:]
        try:
            value = base64.b64decode(value, validate=True).decode()
        except ValueError:
            pass
        if value == self.token_in:
            return "in"
        if value in self.token_as:
            return "a"
        return None

    @web.middleware
    async def mw(self, request: web.Request, handler: Any) -> web.StreamResponse:
        kind = self._auth(request)
        if kind is None or (kind == "a" and "/cpo/" in request.path):
            return web.json_response(_env(None, 2000), status=401)
        return await handler(request)

    async def versions(self, request: web.Request) -> web.Response:
        return web.json_response(_env([{"version": "2.2.1", "url": f"{self.base}/ocpi/2.2.1"}]))

    async def details(self, request: web.Request) -> web.Response:
        eps = [
            {"identifier": "credentials", "role": "SENDER", "url": f"{self.base}/ocpi/2.2.1/credentials"},
            {"identifier": "tokens", "role": "RECEIVER", "url": f"{self.base}/ocpi/cpo/2.2.1/tokens"},
            {"identifier": "commands", "role": "RECEIVER", "url": f"{self.base}/ocpi/cpo/2.2.1/commands"},
        ]  # fmt: skip
        return web.json_response(_env({"version": "2.2.1", "endpoints": eps}))

    def creds(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "CPO",
                    "party_id": "CPO",
                    "country_code": "NL",
                    "business_details": {"name": "Stub CPO"},
                }
            ],
        }

    async def post_credentials(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._fetch(body["url"], body["token"])
        self.token_out = body["token"]
        self.token_in = f"cpo-c-{uuid.uuid4()}"
        self.token_as.clear()
        return web.json_response(_env(self.creds(self.token_in)))

    async def _fetch(self, versions_url: str, token: str) -> None:
        assert self.http is not None
        hdr = {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}
        async with self.http.get(versions_url, headers=hdr) as r:
            versions = (await r.json())["data"]
        async with self.http.get(versions[0]["url"], headers=hdr) as r:
            details = (await r.json())["data"]
        self.endpoints = {(e["identifier"], e["role"]): e["url"] for e in details["endpoints"]}

    async def register_with(self, versions_url: str, token_a: str) -> None:
        await self._fetch(versions_url, token_a)
        token_b = f"cpo-b-{uuid.uuid4()}"
        self.token_in = token_b
        url = self.endpoints[("credentials", "SENDER")]
        answer = await self.call("POST", url, self.creds(token_b), token=token_a)
        self.token_out = answer["data"]["token"]

    async def token(self, request: web.Request) -> web.Response:
        m = request.match_info
        key = (m["uid"].upper(), request.query.get("type", "RFID"))
        body = await request.json() if request.can_read_body else None
        self.token_calls.append((request.method, m["uid"], body))
        if request.method == "GET":
            if key not in self.tokens:
                return web.json_response(_env(None, 2004), status=404)
            return web.json_response(_env(self.tokens[key]))
        if request.method == "PUT":
            self.tokens[key] = body
        elif key in self.tokens:
            self.tokens[key].update(body)
        return web.json_response(_env())

    async def command(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.commands.append((request.match_info["command"], body))
        task = asyncio.create_task(
            self.call("POST", body["response_url"], {"result": self.command_result})
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(_env({"result": "ACCEPTED", "timeout": 30}))

    async def call(self, method: str, url: str, body: Any = None, token: str | None = None) -> Any:
        assert self.http is not None
        tok = token or self.token_out
        assert tok is not None
        hdr = {
            "Authorization": "Token " + base64.b64encode(tok.encode()).decode(),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
        }
        async with self.http.request(method, url, json=body, headers=hdr) as r:
            return await r.json(content_type=None)


@asynccontextmanager
async def running_cpo_stub() -> Any:
    stub = CpoStub()
    app = web.Application(middlewares=[stub.mw])
    app.router.add_get("/ocpi/versions", stub.versions)
    app.router.add_get("/ocpi/2.2.1", stub.details)
    app.router.add_post("/ocpi/2.2.1/credentials", stub.post_credentials)
    for m in ("GET", "PUT", "PATCH"):
        app.router.add_route(m, "/ocpi/cpo/2.2.1/tokens/{cc}/{pid}/{uid}", stub.token)
    app.router.add_post("/ocpi/cpo/2.2.1/commands/{command}", stub.command)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stub.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stub.http = aiohttp.ClientSession()
    try:
        yield stub
    finally:
        for t in list(stub._tasks):
            t.cancel()
        await stub.http.close()
        await runner.cleanup()
