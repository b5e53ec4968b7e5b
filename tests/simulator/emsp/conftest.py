"""Fixtures for the eMSP sandbox tests: real sandboxes and a real stub CPO on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from simulator.emsp import EmspSandbox
from tests.simulator.emsp.cpo_stub import CpoStub, running_cpo_stub


@pytest.fixture
async def emsp() -> AsyncIterator[EmspSandbox]:
    async with EmspSandbox.start(seed=42, page_limit=10) as sb:
        yield sb


@pytest.fixture
async def cpo() -> AsyncIterator[CpoStub]:
    async with running_cpo_stub() as stub:
        yield stub


@pytest.fixture
async def paired(emsp: EmspSandbox, cpo: CpoStub) -> tuple[EmspSandbox, CpoStub]:
    """The sandbox registered (as Responder) by the stub CPO."""
    await cpo.register_with(emsp.versions_url, emsp.issue_token_a())
    return emsp, cpo


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def auth(token: str, raw: bool = False) -> dict[str, str]:
    value = token if raw else base64.b64encode(token.encode()).decode()
    return {"Authorization": f"Token {value}"}


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None,
    body: Any = None,
    **kw: Any,
) -> tuple[int, Any, Any]:
    headers = auth(token) if token else {}
    headers.update(kw.pop("headers", {}))
    async with http.request(method, url, json=body, headers=headers, **kw) as r:
        text = await r.text()
        try:
            import json

            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return r.status, parsed, r.headers
