"""The decision paths beyond the cache hit and the own card: a token pre-authorized by
an OCPI START_SESSION (row 2 of the policy), and a StartTransaction reusing a real-time
Authorize of the same token at the same charger (row 3, the reuse window).

Why their own set-up: a command's pre-authorization holds for one token at one charger,
and only for a charger connected when the command arrives; the reuse window applies to
StartTransaction only, so its step runs whole sessions and reads the decisions' own
latency from the server's log, apart from the transaction's store write.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from tests.bench.authorize.measure import Runs, load, settle
from tests.bench.authorize.servers import Ports, admin_post, emsp_behaviour
from tests.bench.authorize.settings import (
    ADMIN_TOKEN,
    CHARGER_IDS,
    CHARGERS,
    CMD_TAGS,
    HIT_TAGS,
    OWN_TAGS,
    REM_TAGS,
)
from tests.bench.authorize.steps import (
    CsmsStep,
    CsmsUnderTest,
    closed_loop,
    decision_latencies,
    with_cpu,
)

LOCATION = "BENCH-LOC"
# (chargers, calls) of the command path's ladder: the three points its targets name.
COMMAND_LADDER = ((1, 4000), (100, 60000), (1000, 60000))
REUSE_CHARGERS, REUSE_CALLS = 100, 30000


def locations_toml(chargers: int) -> str:
    """One published Location with an EVSE on connector 1 of every bench charger, each
    priced by one tariff (so a roaming charge's CDR goes at its stop, as in production)."""
    head = """
[[tariffs]]
id = "BENCH-AC"
currency = "EUR"
energy_price = 0.40

[[locations]]
id = "BENCH-LOC"
name = "Bench"
address = "Benchstraat 1"
city = "Amsterdam"
postal_code = "1011AB"
country = "NLD"
latitude = "52.37403"
longitude = "4.88969"
time_zone = "Europe/Amsterdam"
parking_type = "PARKING_LOT"
"""
    evses = [
        f'\n[[locations.evses]]\nuid = "{evse_uid(n)}"\nevse_id = "NL*CPO*E{n}*1"\n'
        f'charger_id = "{CHARGER_IDS.format(n=n)}"\nconnector_id = 1\n'
        'capabilities = ["REMOTE_START_STOP_CAPABLE"]\nstandard = "IEC_62196_T2"\n'
        'format = "SOCKET"\npower_type = "AC_3_PHASE"\nmax_voltage = 230\nmax_amperage = 32\n'
        'tariff_ids = ["BENCH-AC"]\n'
        for n in range(1, chargers + 1)
    ]
    return head + "".join(evses)


def evse_uid(n: int) -> str:
    return f"BENCH-EVSE-{n}"


def _connected(ports: Ports) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{ports.admin}/api/chargers",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        docs: list[dict[str, Any]] = json.loads(resp.read())["chargers"]
    return sum(1 for d in docs if d.get("connected"))


def _start_sessions(control: str, starts: list[tuple[str, str]]) -> dict[str, int]:
    req = urllib.request.Request(
        f"{control}/control/start_sessions",
        data=json.dumps({"location_id": LOCATION, "starts": starts}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


async def preauthorize_all(csms: CsmsUnderTest, runs: Runs) -> None:
    """Map every bench charger to an EVSE, then, while all of them are connected (a slow
    open loop holds them), have the eMSP send START_SESSION for ``CMD_TAGS[n-1]`` at
    charger n. The CSMS pre-authorizes each (held 15 minutes) before it sends the
    RemoteStartTransaction, which the generator answers ``{}`` (the command then fails,
    the pre-authorization stays, as it would for a charger that missed the remote start)."""
    try:
        await asyncio.to_thread(
            admin_post, csms.ports, "/api/locations/import", {"toml": locations_toml(CHARGERS)}
        )
    except OSError as e:  # a checkout without the route: its command steps are skipped
        runs["csms-command-setup"] = {"ok": False, "error": str(e)}
        print(f"  {csms.server.name:<17} command path not set up: {e}", flush=True)
        return
    holding = asyncio.create_task(
        load(csms.server.url, CHARGERS, 3000, tags=HIT_TAGS, rate=100)  # ~30 s
    )
    try:
        for _ in range(300):  # 30 s at most
            if await asyncio.to_thread(_connected, csms.ports) >= CHARGERS or holding.done():
                break
            await asyncio.sleep(0.1)
        starts = [(evse_uid(n), CMD_TAGS[n - 1]) for n in range(1, CHARGERS + 1)]
        answers = await asyncio.to_thread(_start_sessions, csms.control, starts)
    finally:
        await holding
    ok = answers.get("ACCEPTED", 0) == CHARGERS
    runs["csms-command-setup"] = {"ok": ok, "start_session_answers": answers}
    print(f"  {csms.server.name:<17} START_SESSION answers {answers}", flush=True)


def command_steps() -> list[tuple[str, CsmsStep]]:
    """The set-up, then the command path's ladder: charger n presents ``CMD_TAGS[n-1]``,
    the token a START_SESSION pre-authorized there; a rejection would mean the decision
    fell through to the eMSP (which does not know these tokens)."""
    steps: list[tuple[str, CsmsStep]] = [("command pre-authorization set-up", preauthorize_all)]
    for chargers, calls in COMMAND_LADDER:

        async def step(
            s: CsmsUnderTest, runs: Runs, chargers: int = chargers, calls: int = calls
        ) -> None:
            if not runs.get("csms-command-setup", {}).get("ok"):
                return
            await closed_loop(
                s.server, runs, chargers, calls, tags=CMD_TAGS, path="-command", in_order=True
            )

        steps.append((f"csms command @{chargers}", step))
    return steps


async def sessions(csms: CsmsUnderTest, runs: Runs, tags: tuple[str, ...], key: str) -> None:
    """Session mix over :data:`REUSE_CHARGERS` (Authorize, StartTransaction, MeterValues
    x2, StopTransaction, Heartbeat), charger n presenting ``tags[n-1]`` (so no token
    charges at two chargers); the decisions' own latency by source from the log."""
    server = csms.server

    def run_load() -> Any:
        return load(
            server.url, REUSE_CHARGERS, REUSE_CALLS, tags=tags, in_order=True, mix="session"
        )

    await settle(server.proc)
    log_from = server.proc.log_path.stat().st_size
    report, run, us = await with_cpu(key, server, runs, run_load)
    await settle(server.proc)
    for source in ("reused", "remote", "local"):
        side = decision_latencies(server.proc.log_path, log_from, source)
        if side["count"]:
            run[f"decisions_{source}"] = side
    start = report.actions["StartTransaction"]
    print(
        f"  {server.name:<17} {key:<17} {report.throughput:>9,.0f} calls/s  StartTransaction "
        f"p50 {start.p50_ms:.3f} p99 {start.p99_ms:.3f} ms, rejected {start.rejected}; "
        f"server {us:.0f} µs CPU/call; decisions by source "
        + ", ".join(
            f"{k[10:]} {v['count']} (p50 {v['p50_ms']:.3f} ms)"
            for k, v in run.items()
            if k.startswith("decisions_")
        )
        + f"; errors {report.errors}, attempts {len(run['attempts'])}",
        flush=True,
    )


def reuse_steps() -> list[tuple[str, CsmsStep]]:
    """The reuse window (REM tokens: Authorize asks the eMSP, answering at once;
    StartTransaction reuses that answer), beside the same mix on own cards."""

    async def reuse(s: CsmsUnderTest, runs: Runs) -> None:
        emsp_behaviour(s.control, "normal")
        await sessions(s, runs, REM_TAGS, "csms-reuse-sessions@100")

    async def own(s: CsmsUnderTest, runs: Runs) -> None:
        await sessions(s, runs, OWN_TAGS, "csms-own-sessions@100")

    return [("reuse window, sessions", reuse), ("own card, sessions", own)]
