"""OCPI tokens: Receiver PUT throughput, and a full token sync of 1,000,000 tokens.

Targets (this 2-core machine): >= 2,000 PUT/s with 8 concurrent clients; a full sync of
1,000,000 tokens in <= 120 s with RSS growth <= 100 MB. The eMSP sandbox runs in a
separate process, so the CPO's RSS and CPU are measured alone.

Run: ``python -m tests.bench ocpi_tokens`` (env BENCH_TOKENS=N to change the sync size).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

from roaming import credentials
from tests.roaming.conftest import start_cpo

SANDBOX = """
import asyncio, sys
from simulator.emsp.sandbox import EmspSandbox

async def main(n):
    async with EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None,
                                 page_limit=1000, max_recorded=10) as sb:
        sb.serve_generated_tokens(n, seed=1)
        print(sb.versions_url, sb.issue_token_a(), flush=True)
        await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1])))
"""


LOAD = """
import asyncio, sys, time, aiohttp, orjson

async def main(url, header, per, clients):
    async def client(n):
        async with aiohttp.ClientSession(headers={"Authorization": header}) as s:
            for i in range(per):
                uid = f"B{n:02d}{i:07d}"
                body = {"country_code": "NL", "party_id": "EMS", "uid": uid, "type": "RFID",
                        "contract_id": "NL-EMS-" + uid, "issuer": "Bench eMSP", "valid": True,
                        "whitelist": "ALLOWED", "last_updated": "2024-05-01T09:30:00Z"}
                async with s.put(url + uid, data=orjson.dumps(body),
                                 headers={"Content-Type": "application/json"}) as r:
                    if r.status not in (200, 201):
                        raise RuntimeError(f"PUT answered {r.status}")
                    await r.read()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    print(time.perf_counter() - t0, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def token(uid: str) -> dict[str, object]:
    return {
        "country_code": "NL",
        "party_id": "EMS",
        "uid": uid,
        "type": "RFID",
        "contract_id": f"NL-EMS-{uid}",
        "issuer": "Bench eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2024-05-01T09:30:00Z",
    }


async def bench_put(tmp: Path, total: int = 20_000, clients: int = 8) -> float:
    from simulator.emsp.sandbox import EmspSandbox

    cpo = await start_cpo(tmp, record=False)
    try:
        async with EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as sb:
            await sb.register_with(cpo.versions_url, await cpo.invite())
            token = sb.peer.token_out
            assert token is not None  # set by the registration just above
            header = "Token " + base64.b64encode(token.encode()).decode()
            url = f"{cpo.base}/ocpi/cpo/2.2.1/tokens/NL/EMS/"
            per = total // clients
            # The load runs in its own process so the server has this process to itself.
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LOAD, url, header, str(per), str(clients),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError("load process failed")
            elapsed = float(out.decode().strip().splitlines()[-1])
    finally:
        await cpo.close()
        await cpo.db.close()
    rate = per * clients / elapsed
    print(
        f"token PUT: {per * clients} PUTs, {clients} clients, {elapsed:.1f} s -> {rate:,.0f} PUT/s (target >= 2,000)"
    )
    return rate


async def bench_sync(tmp: Path, n: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SANDBOX, str(n), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("http"):
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError("sandbox process ended before printing its URL")
        versions_url, token_a = line.split()
        # Keep draining its output so a chatty sandbox never blocks on a full pipe.
        drain = asyncio.get_running_loop().create_task(proc.stdout.read())
        cpo = await start_cpo(tmp, record=False, token_sync_page_size=1000, http_timeout_s=30.0)
        try:
            partner = await credentials.register_with(cpo.ctx, versions_url, token_a)
            base_rss = rss_mb()
            t0 = time.perf_counter()
            outcome = await cpo.sync.run(partner)
            elapsed = time.perf_counter() - t0
            growth = peak_rss_mb() - base_rss
            stored = await cpo.store.tokens.count_tokens(partner.id, removed=False)
        finally:
            await cpo.close()
            await cpo.db.close()
    finally:
        proc.terminate()
        await proc.wait()
        if "drain" in locals():
            drain.cancel()
    if not outcome.ok or stored != n:
        raise RuntimeError(f"sync failed: {outcome.run}")
    print(
        f"token sync: {n:,} tokens in {outcome.run.pages} pages, {elapsed:.1f} s "
        f"({n / elapsed:,.0f} tokens/s, target <= 120 s for 1M); "
        f"RSS growth {growth:.0f} MB (target <= 100 MB)"
    )


async def run() -> None:
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    n = int(os.environ.get("BENCH_TOKENS", "1000000"))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "put").mkdir()
        (Path(d) / "sync").mkdir()
        await bench_put(Path(d) / "put")
        await bench_sync(Path(d) / "sync", n)


def main() -> None:
    # The server side runs on uvloop, as under ``csms serve``.
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        asyncio.run(run())
    else:
        uvloop.run(run())


if __name__ == "__main__":
    main()
