"""The store on SQLite vs PostgreSQL, side by side in one run: Authorize of an own card
without roaming (read from ``id_tags`` per call), Authorize cache hits with roaming on
(an own card held in memory and an eMSP token, whitelist ALWAYS, from the roaming token
cache: the store must not slow them; over OCPP and, in process, the authorizer's
``try_now`` alone), StartTransaction + StopTransaction pairs through the real CSMS (OCPP
over WebSocket, real simulator) and OCPI token PUT throughput (the real roaming app).

On PostgreSQL the node runs as one of a cluster would: its caches bounded by
``cluster.cache_bound_s`` (the token memo refreshed ahead, the own cards verified every
half bound), so the cache-hit figures include what coherence costs. Logging is at
``warning`` for the run: the figures are the store's, not the log's.

Each backend gets a fresh store: a SQLite file in a temporary folder, a fresh PostgreSQL
database from the test server (``CSMS_TEST_POSTGRES_URL``, 127.0.0.1:5432 or a throwaway
server, as in the tests). The load runs in a separate process so the CSMS has this one
to itself. Short by design (a few seconds per figure): the figures compare the engines
on one machine, they are not capacity numbers.

Run: ``python -m tests.bench store`` (env BENCH_STORE_CHARGERS, BENCH_STORE_PAIRS,
BENCH_STORE_PUTS to change the load).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from csms import logs
from csms.authz.model import NEED_IO, AuthRequest, AuthStatus
from csms.system import System
from simulator.emsp import EmspSandbox
from tests.bench.bench_ocpi_tokens import LOAD as PUT_LOAD
from tests.roaming.conftest import start_cpo
from tests.support.csms import ADMIN_TOKEN, admin_url, ocpp_url, running_csms
from tests.support.postgres import TestServer
from tests.support.waiting import wait_until

PAIRS_LOAD = """
import asyncio, sys, time
from simulator.chargepoint import SimulatedChargePoint

async def main(url, chargers, pairs):
    latencies = []
    async def charger(n):
        async with SimulatedChargePoint.connect(url, f"BENCH-{n:03d}", heartbeat=False,
                                                step_delay_s=0, meter_interval_s=3600) as cp:
            await cp.boot()
            for i in range(pairs):
                t0 = time.perf_counter()
                start = await cp.start_transaction(1, "BENCH", meter_start=i * 1000,
                                                   meter_loop=False, move_status=False)
                if start["idTagInfo"]["status"] != "Accepted":
                    raise RuntimeError(f"start answered {start}")
                await cp.stop_transaction(1, meter_stop=i * 1000 + 500, move_status=False,
                                          transaction_data=False)
                latencies.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    await asyncio.gather(*(charger(n) for n in range(chargers)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(elapsed, p50, p99, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


AUTHORIZE_LOAD = """
import asyncio, sys, time
from simulator.chargepoint import SimulatedChargePoint

async def main(url, chargers, calls):
    latencies = []
    async def charger(n):
        async with SimulatedChargePoint.connect(url, f"AUTH-{n:03d}", heartbeat=False,
                                                step_delay_s=0, meter_interval_s=3600) as cp:
            await cp.boot()
            for i in range(calls):
                t0 = time.perf_counter()
                answer = await cp.authorize("BENCH")
                latencies.append(time.perf_counter() - t0)
                if answer["idTagInfo"]["status"] != "Accepted":
                    raise RuntimeError(f"authorize answered {answer}")
    t0 = time.perf_counter()
    await asyncio.gather(*(charger(n) for n in range(chargers)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(elapsed, p50, p99, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""

# The same closed loop, for the uid named by the fourth argument.
AUTHORIZE_UID_LOAD = AUTHORIZE_LOAD.replace('cp.authorize("BENCH")', "cp.authorize(sys.argv[4])")
assert AUTHORIZE_UID_LOAD != AUTHORIZE_LOAD

EMSP_UID = "BENCHEMSP1"


async def run_load(load: str, *args: str) -> tuple[float, float, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", load, *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError("load process failed")
    elapsed, p50, p99 = map(float, out.decode().strip().splitlines()[-1].split())
    return elapsed, p50, p99


def try_now_us(app: System, uid: str, calls: int) -> float:
    """Mean µs of the authorizer's memory path for ``uid`` (asserted a decision, never
    NEED_IO: a cache hit must not need the store)."""
    authorizer = app.authorization.service
    t0 = time.perf_counter()
    for _ in range(calls):
        answer = authorizer.try_now(AuthRequest("TRY-NOW", uid))
        if answer is NEED_IO or answer.status is not AuthStatus.ACCEPTED:
            raise RuntimeError(f"try_now of {uid} answered {answer}")
    return (time.perf_counter() - t0) / calls * 1e6


async def bench_cache_hits(tmp: Path, store_url: str, chargers: int, calls: int) -> list[str]:
    """Authorize cache hits with roaming on: an own card, then an eMSP token."""
    async with (
        running_csms(
            tmp,
            store={"url": store_url},
            server={"unknown_chargers": "accept"},
            ocpi={"enabled": True},
        ) as app,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http,
        EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp,
    ):
        resp = await http.post(f"{admin_url(app)}/api/tokens", json={"id_tag": "BENCH"})
        assert resp.status == 201, await resp.text()
        resp = await http.post(
            f"{admin_url(app)}/api/partners/invite", json={"country_code": "NL", "party_id": "EMS"}
        )
        assert resp.status in (200, 201), await resp.text()
        invite = await resp.json()
        emsp.add_token(EMSP_UID, whitelist="ALWAYS")
        await emsp.register_with(invite["versions_url"], invite["token_a"])
        assert app.roaming is not None
        tokens = app.roaming.runtime.store.tokens

        async def synced() -> bool:
            return bool(await tokens.get_token(EMSP_UID, "RFID"))

        await wait_until(synced, timeout=30, what="the eMSP token synced")
        lines = []
        for label, uid in (("own card", "BENCH"), ("eMSP token", EMSP_UID)):
            await app.authorization.service.decide(AuthRequest("TRY-NOW", uid))  # fills caches
            elapsed, p50, p99 = await run_load(
                AUTHORIZE_UID_LOAD, ocpp_url(app), str(chargers), str(calls), uid
            )
            n = chargers * calls
            # In process, in slices: the decision log flushes between them.
            us = []
            for _ in range(20):
                us.append(try_now_us(app, uid, 2_000))
                await asyncio.sleep(0.01)
            us.sort()
            lines.append(
                f"{label}: {n} Authorize, {chargers} chargers: {n / elapsed:,.0f}/s, "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; try_now median {us[len(us) // 2]:.2f} µs"
            )
        return lines


async def bench_pairs(
    tmp: Path, store_url: str, chargers: int, pairs: int, load: str = PAIRS_LOAD
) -> str:
    async with running_csms(
        tmp, store={"url": store_url}, server={"unknown_chargers": "accept"}
    ) as app:
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as http:
            resp = await http.post(f"{admin_url(app)}/api/tokens", json={"id_tag": "BENCH"})
            assert resp.status == 201, await resp.text()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", load, ocpp_url(app), str(chargers), str(pairs),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError("load process failed")
        elapsed, p50, p99 = map(float, out.decode().strip().splitlines()[-1].split())
    n = chargers * pairs
    what = "pairs" if load is PAIRS_LOAD else "Authorize calls"
    return (
        f"{n} {what}, {chargers} chargers: {n / elapsed:,.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


async def bench_puts(tmp: Path, store_url: str, total: int, clients: int = 8) -> str:
    from simulator.emsp.sandbox import EmspSandbox

    cpo = await start_cpo(tmp, record=False, store_url=store_url)
    try:
        async with EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as sb:
            await sb.register_with(cpo.versions_url, await cpo.invite())
            token = sb.peer.token_out
            assert token is not None
            header = "Token " + base64.b64encode(token.encode()).decode()
            url = f"{cpo.base}/ocpi/cpo/2.2.1/tokens/NL/EMS/"
            per = total // clients
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PUT_LOAD, url, header, str(per), str(clients),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError("load process failed")
            elapsed = float(out.decode().strip().splitlines()[-1])
    finally:
        await cpo.close()
        await cpo.db.close()
    return f"{per * clients} PUTs, {clients} clients: {per * clients / elapsed:,.0f} PUT/s"


async def run(server: TestServer) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    # The CSMS runs in this process: its per-decision info lines would be the figure.
    logs.configure("warning", "json")
    chargers = int(os.environ.get("BENCH_STORE_CHARGERS", "20"))
    pairs = int(os.environ.get("BENCH_STORE_PAIRS", "50"))
    puts = int(os.environ.get("BENCH_STORE_PUTS", "8000"))
    # SQLite runs WAL with synchronous=NORMAL: a commit does not wait for the disk.
    # PostgreSQL's default (synchronous_commit=on) waits for its WAL flush on every
    # commit; "async commit" is the same server with synchronous_commit=off for this
    # session, the like-for-like durability.
    variants = [
        ("sqlite", ""),
        ("postgresql", "pg"),
        ("postgresql, async commit", "&synchronous_commit=off"),
    ]
    with tempfile.TemporaryDirectory() as d:
        for n, (backend, extra) in enumerate(variants):
            for what in ("authorize", "hits", "pairs", "puts"):
                tmp = Path(d) / f"{n}-{what}"
                tmp.mkdir()
                if not extra:
                    url = f"sqlite:///{tmp / 'store.sqlite3'}"
                else:
                    url = await server.fresh_schema_url() + extra.removeprefix("pg")
                t0 = time.perf_counter()
                if what == "authorize":
                    line = await bench_pairs(tmp, url, chargers, 10 * pairs, AUTHORIZE_LOAD)
                elif what == "hits":
                    found = await bench_cache_hits(tmp, url, chargers, 10 * pairs)
                    line = ("\n" + " " * 37).join(found)
                elif what == "pairs":
                    line = await bench_pairs(tmp, url, chargers, pairs)
                else:
                    line = await bench_puts(tmp, url, puts)
                took = time.perf_counter() - t0
                print(f"{backend:>24} {what:>9}: {line} ({took:.1f} s)", flush=True)


def main() -> None:
    server = TestServer.open()
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is absent on Windows only
            asyncio.run(run(server))
        else:
            uvloop.run(run(server))
    finally:
        server.close()


if __name__ == "__main__":
    main()
