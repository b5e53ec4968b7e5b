"""Secrets never reach the logs: a real ``csms serve`` at debug level, JSON lines, through
a charger password (right and wrong), the admin token, and a full OCPI credentials
handshake (TOKEN_A, TOKEN_B, TOKEN_C), then every secret is searched for in what it wrote.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from simulator.chargepoint import ConnectFailed, SimulatedChargePoint
from simulator.emsp.sandbox import EmspSandbox
from tests.support.serve_process import drain, listening

REPO = Path(__file__).resolve().parents[2]
ADMIN = "admin-secret-7f1c9d2e4b"
PASSWORD = "cp-password-93be01aa55"


async def test_no_secret_is_ever_logged(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    env.update(
        CSMS__SERVER__HOST="127.0.0.1",
        CSMS__SERVER__PORT="0",
        CSMS__ADMIN__PORT="0",
        CSMS__ADMIN__TOKEN=ADMIN,
        CSMS__OCPI__HOST="127.0.0.1",
        CSMS__OCPI__PORT="0",
        CSMS__STORE__PATH=str(tmp_path / "csms.sqlite3"),
        CSMS__LOG__FORMAT="json",
        CSMS__LOG__LEVEL="debug",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms", "serve", "--config", str(REPO / "config.toml"),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    out: list[bytes] = []
    drains = [
        asyncio.create_task(drain(proc.stderr, out)),
        asyncio.create_task(drain(proc.stdout, out)),
    ]
    secrets = [ADMIN, PASSWORD, "wrong-" + PASSWORD]
    try:
        ports = await listening(out)
        admin = f"http://127.0.0.1:{ports['admin_port']}"
        ocpp = f"ws://127.0.0.1:{ports['ocpp_port']}/ocpp"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http:
            r = await http.post(f"{admin}/api/chargers", json={"id": "CP-S", "password": PASSWORD})
            assert r.status == 201
            with pytest.raises(ConnectFailed):
                async with SimulatedChargePoint.connect(ocpp, "CP-S", password=secrets[2]):
                    pass
            async with SimulatedChargePoint.connect(
                ocpp, "CP-S", password=PASSWORD, heartbeat=False
            ) as cp:
                assert (await cp.boot())["status"] == "Accepted"

            r = await http.post(
                f"{admin}/api/partners/invite", json={"country_code": "NL", "party_id": "EMS"}
            )
            invite = await r.json()
            assert r.status in (200, 201), invite
            async with EmspSandbox.start(country_code="NL", party_id="EMS") as emsp:
                await emsp.register_with(invite["versions_url"], invite["token_a"])
                assert emsp.peer.registered
                secrets += [invite["token_a"], emsp.peer.token_in, emsp.peer.token_out]
                emsp.add_token("04A1B2C3D4", type="RFID", whitelist="ALWAYS")
                assert (await emsp.push_token("04A1B2C3D4", "RFID")).ok
            # A wrong bearer token is refused, and not echoed into the log either.
            r = await http.get(f"{admin}/api/chargers", headers={"Authorization": "Bearer nope-x1"})
            assert r.status == 401
            secrets.append("nope-x1")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await proc.wait()
        await asyncio.gather(*drains)
    text = b"".join(out).decode()
    assert '"event":"listening"' in text.replace(" ", "")
    assert len(out) > 20, "debug logging produced suspiciously little output"
    basic = base64.b64encode(f"CP-S:{PASSWORD}".encode()).decode()
    assert not [line for line in text.splitlines() if basic in line], "Basic credentials logged"
    for secret in secrets:
        assert secret, "a secret was empty: the handshake did not happen"
        for form in (secret, base64.b64encode(secret.encode()).decode()):
            leaks = [line for line in text.splitlines() if form in line]
            assert not leaks, f"a secret ({secret[:4]}…) appears in the log: {leaks[0][:300]}"
