"""Fixtures: a real System on ephemeral ports, an admin HTTP session, a registered charger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from csms.system import System
from tests.support.csms import admin_session, running_csms


@pytest.fixture
async def csms_app(tmp_path: Path) -> AsyncIterator[System]:
    async with running_csms(tmp_path, server={"call_timeout_s": 2.0}) as app:
        yield app


@pytest.fixture
async def http(csms_app: System) -> AsyncIterator[aiohttp.ClientSession]:
    async with admin_session(csms_app) as session:
        yield session
