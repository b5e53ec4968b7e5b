"""``csms serve`` as a real process: starts, a charger connects, SIGTERM stops it cleanly;
bad config exits 2 naming the key."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    env.update(
        {
            "CSMS__SERVER__HOST": "127.0.0.1",
            "CSMS__SERVER__PORT": "0",
            "CSMS__SERVER__UNKNOWN_CHARGERS": "accept",
            "CSMS__ADMIN__PORT": "0",
            "CSMS__ADMIN__TOKEN": ADMIN_TOKEN,
            "CSMS__OCPI__ENABLED": "false",
            "CSMS__STORE__PATH": str(tmp_path / "serve.sqlite3"),
            "CSMS__LOG__FORMAT": "json",
        }
    )
    env.update(extra)
    return env


async def _spawn(tmp_path: Path, **extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", "serve", "--config", str(REPO / "config.toml"),
        cwd=tmp_path, env=_env(tmp_path, **extra),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@asynccontextmanager
async def _serving(tmp_path: Path, **extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``csms serve`` as a child process, killed on the way out if it still runs."""
    proc = await _spawn(tmp_path, **extra)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM must end the process cleanly (exit 0) within 10 s."""
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        assert await proc.wait() == 0


async def _wait_event(proc: asyncio.subprocess.Process, name: str) -> dict[str, Any]:
    assert proc.stderr is not None
    async with asyncio.timeout(15):
        while True:
            line = await proc.stderr.readline()
            if not line:
                raise AssertionError(f"process ended before logging {name!r}")
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                return event  # type: ignore[no-any-return]


async def test_serve_starts_accepts_a_charger_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with _serving(tmp_path) as proc:
        listening = await _wait_event(proc, "listening")
        ocpp_port, admin_port = listening["ocpp_port"], listening["admin_port"]
        assert ocpp_port > 0 and admin_port > 0
        async with SimulatedChargePoint.connect(
            f"ws://127.0.0.1:{ocpp_port}/ocpp", "SERVE-CP", heartbeat=False
        ) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as http:
                resp = await http.get(f"http://127.0.0.1:{admin_port}/api/chargers/SERVE-CP")
                doc = await resp.json()
                assert doc["connected"] is True
                assert doc["vendor"] == "csms-sim"
        stopped = asyncio.ensure_future(_wait_event(proc, "stopped"))
        await _terminate(proc)
        await stopped


async def test_serve_runs_the_collector_policy(tmp_path: Path) -> None:
    """``csms serve`` starts the heap freezer from config: with a short full-collection
    interval its ``gc.full_collection`` event appears (csms/collector.py)."""
    proc = await _spawn(
        tmp_path,
        CSMS__SERVER__GC_FREEZE_INTERVAL_S="0.05",
        CSMS__SERVER__GC_FULL_COLLECT_INTERVAL_S="0.2",
    )
    try:
        event = await _wait_event(proc, "gc.full_collection")
        assert event["pause_ms"] >= 0 and event["frozen"] > 0
    finally:
        proc.kill()
        await proc.wait()


async def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    proc = await _spawn(tmp_path, CSMS__SERVER__PORT="70000")
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    text = err.decode()
    assert text.startswith("config error: server.port:")
    assert "Traceback" not in text

    bad = tmp_path / "bad.toml"
    bad.write_text("[admin]\ncolour = 'red'\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", "serve", "--config", str(bad),
        cwd=tmp_path, env=_env(tmp_path), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    assert "config error: admin.colour: unknown key" in err.decode()


async def test_port_in_use_exits_1_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await _spawn(tmp_path, CSMS__ADMIN__PORT=str(port))
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 1
    text = err.decode()
    assert "cannot start" in text
    assert "Traceback" not in text


async def test_serve_with_ocpi_reports_all_three_ports(tmp_path: Path) -> None:
    async with _serving(
        tmp_path, CSMS__OCPI__ENABLED="true", CSMS__OCPI__HOST="127.0.0.1", CSMS__OCPI__PORT="0"
    ) as proc:
        listening = await _wait_event(proc, "listening")
        ocpi_port = listening["ocpi_port"]
        assert isinstance(ocpi_port, int) and ocpi_port > 0
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{ocpi_port}/ocpi/versions") as resp,
        ):
            # OCPI answers (and refuses us: no credentials token) on the reported port
            assert resp.status == 401
            assert "status_code" in await resp.json()
        await _terminate(proc)
