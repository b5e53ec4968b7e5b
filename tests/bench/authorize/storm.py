"""The connection storm: 5,000 chargers connect at once, then idle on Heartbeats.

Three figures from one fresh server: the time until the last charger is Accepted, the
server's CPU share while the 5,000 idle (a Heartbeat every 10 s each), and its RSS per
idle connection. The chargers are bare asyncio WebSocket clients (``tests.bench.rawws``)
so that the generator is not what the storm measures.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.bench import rawws
from tests.bench.authorize.measure import Runs
from tests.bench.authorize.servers import fresh_store, start_csms
from tests.bench.authorize.settings import ATTEMPTS, CHARGER_IDS, QUICK, STEAL_LIMIT, STORM
from tests.bench.authorize.trees import Tree
from tests.bench.procs import CpuMeter, Proc, core_steal, steal_share


class _Idle:
    """A bare charger: connect, BootNotification, then Heartbeats on a period."""

    def __init__(self, url: str, cp_id: str) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.host, self.port, self.path = host, int(port), f"/{path}/{cp_id}"
        self.ws: rawws.RawCharger | None = None

    async def boot(self) -> bool:
        try:
            self.ws = await rawws.connect(self.host, self.port, self.path)
            reply = await self.ws.call(
                "BootNotification", b'{"chargePointVendor":"bench","chargePointModel":"Idle"}'
            )
        except Exception:
            return False
        return bool(reply[0] == 3 and reply[2].get("status") == "Accepted")

    async def heartbeats(self, period: float, until: float, offset: float) -> int:
        assert self.ws is not None
        await asyncio.sleep(offset)
        ok = 0
        while time.monotonic() < until:
            reply = await self.ws.call("Heartbeat", b"{}")
            ok += reply[0] == 3
            await asyncio.sleep(period)
        return ok

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


async def _connect_all(proc: Proc, url: str) -> tuple[list[_Idle], dict[str, Any]]:
    """Every charger connects and boots at once; returns the booted ones and the figures."""
    chargers = [_Idle(url, CHARGER_IDS.format(n=i)) for i in range(1, STORM + 1)]
    t0, cpu0, own0 = time.monotonic(), proc.cpu_seconds(), time.process_time()
    s0 = core_steal()
    ok = await asyncio.gather(*(c.boot() for c in chargers))
    took = time.monotonic() - t0
    figures = {
        "seconds": round(took, 3),
        "accepted": sum(ok),
        "steal_share": round(steal_share(s0, took), 4),
        "server_cpu_s": round(proc.cpu_seconds() - cpu0, 3),
        "generator_cpu_s": round(time.process_time() - own0, 3),
    }
    for c, good in zip(chargers, ok, strict=True):
        if not good:
            c.close()
    return [c for c, good in zip(chargers, ok, strict=True) if good], figures


async def _idle(proc: Proc, live: list[_Idle], rss0: int) -> dict[str, Any]:
    """The booted chargers send a Heartbeat every 10 s (staggered) for 20 s."""
    window = 20.0 / QUICK
    await asyncio.sleep(1.0)
    meter = CpuMeter(proc)
    meter.start()
    until = time.monotonic() + window
    beats = await asyncio.gather(
        *(c.heartbeats(10.0, until, (i % 1000) / 100.0) for i, c in enumerate(live))
    )
    share = meter.stop()
    rss = proc.rss_kb()
    return {
        "idle_window_s": window,
        "heartbeats": sum(beats),
        "idle_cpu_share": round(share, 4),
        "rss0_kb": rss0,
        "rss_kb": rss,
        "rss_per_connection_kb": round((rss - rss0) / max(1, len(live)), 3),
    }


async def storm(tree: Tree, template: Path, runs: Runs, name: str) -> None:
    """The storm against a fresh ``tree`` server on a copy of ``template`` (``STORM``
    known chargers); measured again on a new server when steal disturbed it, as in
    :func:`~tests.bench.authorize.measure.measured`. Kept as ``runs["storm"]``."""
    attempts: list[dict[str, Any]] = []
    for n in range(1, ATTEMPTS + 1):
        store = f"storm-{tree.label}"
        fresh_store(template, store)
        proc, ports = start_csms(tree, store)
        live: list[_Idle] = []
        try:
            await asyncio.sleep(1.0)
            rss0 = proc.rss_kb()
            live, connected = await _connect_all(proc, ports.ocpp_url)
            attempts.append(connected)
            if connected["steal_share"] > STEAL_LIMIT and n < ATTEMPTS:
                print(
                    f"  {name} storm: {connected['seconds']:.2f} s with "
                    f"{connected['steal_share']:.1%} of a core stolen: "
                    f"measuring again ({n + 1} of {ATTEMPTS})",
                    flush=True,
                )
                continue
            idle = await _idle(proc, live, rss0)
            runs["storm"] = {**connected, **idle, "attempt": n, "attempts": attempts}
            print(
                f"  {name:<17} storm: {connected['accepted']}/{STORM} Accepted in "
                f"{connected['seconds']:.3f} s (server {connected['server_cpu_s']:.2f} CPU-s, "
                f"steal {connected['steal_share']:.1%}); idle "
                f"{idle['idle_cpu_share']:.1%} of a core, {idle['heartbeats']} heartbeats; "
                f"RSS {idle['rss_per_connection_kb']:.1f} KB per connection",
                flush=True,
            )
            return
        finally:
            for c in live:
                c.close()
            proc.stop()
