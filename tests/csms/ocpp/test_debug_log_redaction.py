"""Secrets stay out of the log at debug level, where websockets logs every frame it
reads or writes: a real ``csms serve`` (JSON lines, level debug), a real charger with a
password, and CALLs both ways that carry an AuthorizationKey and idTags. Every secret
the test used is then searched for in everything the server wrote; idTags may appear
only masked (``04A1…F6``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path

import aiohttp

from simulator.chargepoint import SimulatedChargePoint
from tests.support.serve_process import drain, listening

REPO = Path(__file__).resolve().parents[3]
ADMIN = "admin-secret-5d0c2a9e71"
PASSWORD = "cp-password-61b7d02f3c"
AUTH_KEY = "0123456789abcdef0123456789abcdef"  # an AuthorizationKey (hex, 16..20 bytes)
ID_TAGS = ["04A1B2C3D4E5F6", "77AB12CD34EF56", "5511AA22BB33CC"]


async def test_frames_logged_at_debug_level_hold_no_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    env.update(
        CSMS__SERVER__HOST="127.0.0.1",
        CSMS__SERVER__PORT="0",
        CSMS__ADMIN__PORT="0",
        CSMS__ADMIN__TOKEN=ADMIN,
        CSMS__OCPI__ENABLED="false",
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
    try:
        ports = await listening(out)
        admin = f"http://127.0.0.1:{ports['admin_port']}"
        ocpp = f"ws://127.0.0.1:{ports['ocpp_port']}/ocpp"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as http:
            r = await http.post(f"{admin}/api/chargers", json={"id": "CP-S", "password": PASSWORD})
            assert r.status == 201
            async with SimulatedChargePoint.connect(
                ocpp, "CP-S", password=PASSWORD, heartbeat=False, step_delay_s=0
            ) as cp:
                assert (await cp.boot())["status"] == "Accepted"
                await cp.authorize(ID_TAGS[0])
                start = await cp.start_transaction(1, ID_TAGS[0], meter_loop=False)
                await cp.stop_transaction(1, id_tag=ID_TAGS[0])
                assert start["transactionId"]

                async def call(action: str, payload: dict[str, object]) -> dict[str, object]:
                    r = await http.post(f"{admin}/api/chargers/CP-S/calls/{action}", json=payload)
                    assert r.status == 200, await r.text()
                    return await r.json()  # type: ignore[no-any-return]

                await call("ChangeConfiguration", {"key": "AuthorizationKey", "value": AUTH_KEY})
                await call("RemoteStartTransaction", {"connectorId": 2, "idTag": ID_TAGS[1]})
                await call(
                    "SendLocalList",
                    {
                        "listVersion": 3,
                        "updateType": "Full",
                        "localAuthorizationList": [
                            {
                                "idTag": ID_TAGS[2],
                                "idTagInfo": {"status": "Accepted", "parentIdTag": ID_TAGS[1]},
                            }
                        ],
                    },
                )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await proc.wait()
        await asyncio.gather(*drains)
    lines = b"".join(out).decode().splitlines()
    assert any("> TEXT" in line for line in lines), "no frame written was logged"
    assert any("< TEXT" in line for line in lines), "no frame read was logged"
    basic = base64.b64encode(f"CP-S:{PASSWORD}".encode()).decode()
    # Any part of a secret counts (websockets shows a long frame's start and end only).
    for secret, part in [(AUTH_KEY, 8), (PASSWORD, 8), (ADMIN, 8), (basic, 8)] + [
        (tag, 7)
        for tag in ID_TAGS  # a masked idTag shows 4 + 2 of its characters
    ]:
        pieces = {secret[i : i + part] for i in range(len(secret) - part + 1)}
        leaks = [line for line in lines if any(p in line for p in pieces)]
        assert not leaks, f"a secret ({secret[:4]}…) appears in the log: {leaks[0][:300]}"
    assert any("04A1…F6" in line for line in lines), "idTags are logged masked"


def test_ocpp_messages_are_redacted_for_the_log() -> None:
    from csms.logs import REDACTED, redact_frame_text, redact_ocpp

    reply = {
        "configurationKey": [
            {"key": "AuthorizationKey", "readonly": False, "value": AUTH_KEY},
            {"key": "VendorAdminPassword", "readonly": False, "value": "pw-1"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ]
    }
    assert redact_ocpp([3, "u1", reply]) == [
        3,
        "u1",
        {
            "configurationKey": [
                {"key": "AuthorizationKey", "readonly": False, "value": REDACTED},
                {"key": "VendorAdminPassword", "readonly": False, "value": REDACTED},
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            ]
        },
    ]
    start = {"idTag": ID_TAGS[0], "idTagInfo": {"status": "Accepted", "parentIdTag": "GROUP-77"}}
    assert redact_ocpp(start) == {
        "idTag": "04A1…F6",
        "idTagInfo": {"status": "Accepted", "parentIdTag": "GROU…77"},
    }
    assert redact_ocpp({"password": "x", "token": "y"}) == {"password": REDACTED, "token": REDACTED}
    assert redact_frame_text(b"not json " + AUTH_KEY.encode()) == "(payload not shown)"
