"""A real CSMS with a TLS listener, client-certificate checks and a signing CA, over a PKI
made in ``tmp_path``; chargers are the real simulator over wss://."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from csms.system import System
from tests.support.certs import Pki
from tests.support.csms import admin_session, running_csms


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.fixture
async def csms_tls(tmp_path: Path, pki: Pki) -> AsyncIterator[System]:
    async with running_csms(tmp_path, **pki.csms_sections()) as app:
        yield app


@pytest.fixture
async def http(csms_tls: System) -> AsyncIterator[aiohttp.ClientSession]:
    async with admin_session(csms_tls) as session:
        yield session


def wss_url(app: System) -> str:
    return f"wss://127.0.0.1:{app.ocpp_port}{app.config.server.path_prefix}"


async def register(
    http: aiohttp.ClientSession, charger_id: str, profile: int, password: str | None = None
) -> None:
    body: dict[str, object] = {"id": charger_id, "security_profile": profile}
    if password is not None:
        body["password"] = password
    async with http.post("/api/chargers", json=body) as resp:
        assert resp.status == 201, await resp.text()
