"""The simulator's tests run against the real CSMS (System on ephemeral ports, SQLite in tmp_path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from csms.store.chargers import ChargerRepo
from csms.store.id_tags import IdTagRepo
from csms.system import System
from tests.support.csms import ocpp_url, running_csms

TAG = "SIMTAG1"
BLOCKED = "SIMBLOCKED"


@dataclass
class Csms:
    app: System
    url: str

    async def add_charger(self, cp_id: str, password: str | None = None) -> None:
        await ChargerRepo(self.app.db).add(cp_id, password)

    async def rows(self, sql: str, *params: object) -> list[dict]:
        return [dict(r) for r in await self.app.db.fetchall(sql, params)]


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    async with running_csms(
        tmp_path,
        server={"call_timeout_s": 2.0, "unknown_chargers": "accept"},
    ) as app:
        tags = IdTagRepo(app.db)
        await tags.add(TAG)
        await tags.add(BLOCKED, status="Blocked")
        yield Csms(app, ocpp_url(app))
