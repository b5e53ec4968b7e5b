"""``csms-sim`` over wss:// with a client certificate, as an operator runs it."""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from csms.system import System
from tests.e2e.security.conftest import register, wss_url
from tests.support.certs import Pki


async def _csms_sim(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_csms_sim_connects_with_its_client_certificate(
    csms_tls: System, http: aiohttp.ClientSession, pki: Pki
) -> None:
    await register(http, "CP3", 3)
    await http.post("/api/tokens", json={"id_tag": "TAG1"})
    tls = pki.charger("CP3")
    base = ["run", "--url", wss_url(csms_tls), "--id", "CP3", "--scenario", "basic"]
    code, out, err = await _csms_sim(
        *base,
        "--ca-file",
        tls["ca_file"],
        "--client-cert",
        tls["client_cert"],
        "--client-key",
        tls["client_key"],
    )
    assert code == 0, err
    assert out.rstrip().endswith("ok")
    code, _, err = await _csms_sim(*base, "--ca-file", tls["ca_file"])
    assert code == 1 and "HTTP 403" in err
