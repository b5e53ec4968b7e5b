"""``csms db migrate`` and a real ``csms serve`` process on PostgreSQL (``store.url`` from
the environment): a charger boots, authorizes, starts and stops; the transaction is
served by the admin API and a restart on the same database keeps it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from csms.store.db import Database
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[2]


def _env(store_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    env.update(
        {
            "CSMS__SERVER__HOST": "127.0.0.1",
            "CSMS__SERVER__PORT": "0",
            "CSMS__SERVER__UNKNOWN_CHARGERS": "accept",
            "CSMS__ADMIN__PORT": "0",
            "CSMS__ADMIN__TOKEN": ADMIN_TOKEN,
            "CSMS__OCPI__ENABLED": "false",
            "CSMS__STORE__URL": store_url,
            "CSMS__STORE__POOL_SIZE": "4",
            "CSMS__LOG__FORMAT": "json",
        }
    )
    return env


async def _csms(tmp_path: Path, store_url: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", *args, "--config", str(REPO / "config.toml"),
        cwd=tmp_path, env=_env(store_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _listening(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stderr is not None
    async with asyncio.timeout(20):
        while line := await proc.stderr.readline():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                return event  # type: ignore[no-any-return]
    raise AssertionError("csms serve ended before listening")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        assert await proc.wait() == 0


async def test_migrate_then_serve_a_charge_on_postgresql(tmp_path: Path, postgres_url: str):
    migrate = await _csms(tmp_path, postgres_url, "db", "migrate")
    out, err = await asyncio.wait_for(migrate.communicate(), 30)
    assert migrate.returncode == 0, err.decode()
    assert "applied 0001_ocpp_core" in out.decode() and "applied 0003_ocpi_partners_tokens" in (
        out.decode()
    )

    proc = await _csms(tmp_path, postgres_url, "serve")
    try:
        listening = await _listening(proc)
        assert listening["store"].startswith("postgresql://")
        url = f"ws://127.0.0.1:{listening['ocpp_port']}/ocpp"
        async with SimulatedChargePoint.connect(
            url, "PG-CP", heartbeat=False, step_delay_s=0, meter_interval_s=3600
        ) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            async with aiohttp.ClientSession(
                base_url=f"http://127.0.0.1:{listening['admin_port']}",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as http:
                resp = await http.post("/api/tokens", json={"id_tag": "PGTAG1"})
                assert resp.status == 201, await resp.text()
                assert (await cp.authorize("pgtag1"))["idTagInfo"]["status"] == "Accepted"
                started = await cp.start_transaction(1, "PGTAG1", meter_start=0, meter_loop=False)
                assert started["idTagInfo"]["status"] == "Accepted"
                await cp.stop_transaction(1, meter_stop=7500, reason="Local")
                resp = await http.get(f"/api/transactions/{started['transactionId']}")
                doc = await resp.json()
                assert resp.status == 200 and doc["meter_stop"] == 7500, doc
    finally:
        if proc.returncode is None:
            await _stop(proc)

    status = await _csms(tmp_path, postgres_url, "db", "status")
    out, _ = await asyncio.wait_for(status.communicate(), 30)
    assert status.returncode == 0 and "pending" not in out.decode()
    again = await _csms(tmp_path, postgres_url, "db", "migrate")
    out, _ = await asyncio.wait_for(again.communicate(), 30)
    assert again.returncode == 0 and out.decode().strip() == "up to date"

    db = await Database.open(postgres_url, migrate=False)  # as a newer release would
    await db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('9000_next', 't')")
    await db.close()
    refused = await _csms(tmp_path, postgres_url, "serve")
    _, err = await asyncio.wait_for(refused.communicate(), 30)
    assert refused.returncode == 1
    assert "newer than this release: unknown migrations 9000_next" in err.decode()
