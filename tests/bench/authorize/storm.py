"""The connection storm: ``STORM`` (15,000) chargers connect at once, then idle.

Four figures from one fresh server: the time until the last charger is Accepted; the
server's CPU share while they idle the way real chargers do (a Heartbeat every 300 s,
the default interval, and one StatusNotification a minute each, staggered); its RSS per
idle connection; and open-loop Authorize at 2,000/s from 1,000 more chargers while the
storm's are still connected. The storm's chargers are bare asyncio WebSocket clients
(``tests.bench.rawws``) spread over ``STORM_SOURCES`` loopback source addresses, so
that neither the generator nor one address's ephemeral ports is what the storm measures.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.bench import rawws
from tests.bench.authorize.measure import Runs, load, settle
from tests.bench.authorize.servers import fresh_store, start_csms, start_echo
from tests.bench.authorize.settings import (
    ATTEMPTS,
    CHARGER_IDS,
    IDLE_HEARTBEAT_S,
    IDLE_STATUS_S,
    IDLE_WINDOW_S,
    OWN_TAGS,
    QUICK,
    STEAL_LIMIT,
    STORM,
    STORM_SOURCES,
)
from tests.bench.authorize.trees import Tree
from tests.bench.procs import CpuMeter, Proc, core_steal, steal_share

_STATUS = b'{"connectorId":1,"errorCode":"NoError","status":"Available"}'


class _Idle:
    """A bare charger: connect, BootNotification, then Heartbeats and StatusNotifications
    on their periods."""

    def __init__(self, url: str, cp_id: str, source: str) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.host, self.port = host, int(port)
        self.path = f"/{path}/{cp_id}" if path else f"/{cp_id}"
        self.source = source
        self.ws: rawws.RawCharger | None = None

    async def boot(self) -> bool:
        try:
            self.ws = await rawws.connect(self.host, self.port, self.path, source=self.source)
            reply = await self.ws.call(
                "BootNotification", b'{"chargePointVendor":"bench","chargePointModel":"Idle"}'
            )
        except Exception:
            return False
        return bool(reply[0] == 3 and reply[2].get("status") == "Accepted")

    async def idle(self, until: float, beat_at: float, status_at: float) -> tuple[int, int]:
        """Heartbeats every IDLE_HEARTBEAT_S from ``beat_at``, StatusNotifications every
        IDLE_STATUS_S from ``status_at`` (monotonic times), until ``until``; returns how
        many of each were answered."""
        assert self.ws is not None
        beats = statuses = 0
        while True:
            at = min(beat_at, status_at)
            if at >= until:
                return beats, statuses
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if beat_at <= status_at:
                reply = await self.ws.call("Heartbeat", b"{}")
                beats += reply[0] == 3
                beat_at += IDLE_HEARTBEAT_S
            else:
                reply = await self.ws.call("StatusNotification", _STATUS)
                statuses += reply[0] == 3
                status_at += IDLE_STATUS_S

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


async def _connect_all(proc: Proc, url: str) -> tuple[list[_Idle], dict[str, Any]]:
    """Every charger connects and boots at once; returns the booted ones and the figures."""
    chargers = [
        _Idle(url, CHARGER_IDS.format(n=i), f"127.0.0.{2 + i % STORM_SOURCES}")
        for i in range(1, STORM + 1)
    ]
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
        # The kernel caps every listen backlog at this (the server asks LISTEN_BACKLOG):
        # a storm beyond it overflows the queue and the dropped SYNs retry after 1, 3, 7 s.
        "somaxconn": somaxconn(),
    }
    for c, good in zip(chargers, ok, strict=True):
        if not good:
            c.close()
    return [c for c, good in zip(chargers, ok, strict=True) if good], figures


def somaxconn() -> int:
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


async def _idle(proc: Proc, live: list[_Idle], rss0: int) -> dict[str, Any]:
    """The booted chargers idle for IDLE_WINDOW_S: each one's Heartbeat and
    StatusNotification phases spread evenly over their periods, so the window sees the
    steady rates (STORM / 300 Heartbeats and STORM / 60 StatusNotifications a second)."""
    window = IDLE_WINDOW_S / QUICK
    # After a storm the server still has one-time work per charger (the local list
    # probe a second after each connect: a GetConfiguration and its store writes, 16
    # chargers at a time); the idle window measures the steady state after it.
    waited = await settle(proc, max_s=60.0)
    meter = CpuMeter(proc)
    meter.start()
    now = time.monotonic()
    until = now + window
    n = max(1, len(live))
    done = await asyncio.gather(
        *(
            c.idle(until, now + IDLE_HEARTBEAT_S * i / n, now + IDLE_STATUS_S * i / n)
            for i, c in enumerate(live)
        )
    )
    share = meter.stop()
    rss = proc.rss_kb()
    return {
        "idle_window_s": window,
        "settled_after_s": round(waited, 1),
        "heartbeats": sum(b for b, _ in done),
        "status_notifications": sum(st for _, st in done),
        "idle_cpu_share": round(share, 4),
        "rss0_kb": rss0,
        "rss_kb": rss,
        "rss_per_connection_kb": round((rss - rss0) / max(1, len(live)), 3),
    }


async def _authorize_while_connected(proc: Proc, url: str) -> dict[str, Any]:
    """Open-loop Authorize (own cards) at 2,000/s over 1,000 more chargers (ids
    ``AUTH*``, registered as they connect) while the storm's chargers stay connected."""
    await settle(proc)
    report = await load(url, 1000, 20000, tags=OWN_TAGS, rate=2000, id_pattern="AUTH{n:05d}")
    a = report.actions["Authorize"]
    return {
        "open_p50_ms": a.p50_ms,
        "open_p99_ms": a.p99_ms,
        "open_errors": report.errors + report.connect_failures,
        "open_rejected": a.rejected,
        "open_behind": report.behind_schedule,
    }


async def echo_floor(runs: Runs) -> None:
    """The idle step against the bare echo (``csms-sim echo-server``): the same chargers
    and message rates, so the CSMS's idle share can be set against what the WebSocket
    stack and this machine cost with no work behind the answers. Kept as
    ``runs["storm-echo"]``."""
    proc, url = start_echo()
    live: list[_Idle] = []
    try:
        await asyncio.sleep(1.0)
        rss0 = proc.rss_kb()
        live, connected = await _connect_all(proc, url)
        idle = await _idle(proc, live, rss0)
        runs["storm-echo"] = {**connected, **idle}
        print(
            f"  {'echo':<17} storm: {connected['accepted']}/{STORM} Accepted in "
            f"{connected['seconds']:.3f} s; idle {idle['idle_cpu_share']:.1%} of a core, "
            f"{idle['heartbeats']} heartbeats, {idle['status_notifications']} status "
            f"notifications; RSS {idle['rss_per_connection_kb']:.1f} KB per connection",
            flush=True,
        )
    finally:
        for c in live:
            c.close()
        proc.stop()


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
            idle.update(await _authorize_while_connected(proc, ports.ocpp_url))
            runs["storm"] = {**connected, **idle, "attempt": n, "attempts": attempts}
            print(
                f"  {name:<17} storm: {connected['accepted']}/{STORM} Accepted in "
                f"{connected['seconds']:.3f} s (server {connected['server_cpu_s']:.2f} CPU-s, "
                f"steal {connected['steal_share']:.1%}); idle "
                f"{idle['idle_cpu_share']:.1%} of a core, {idle['heartbeats']} heartbeats, "
                f"{idle['status_notifications']} status notifications; "
                f"RSS {idle['rss_per_connection_kb']:.1f} KB per connection; open loop "
                f"2,000/s beside them p99 {idle['open_p99_ms']:.3f} ms, "
                f"errors {idle['open_errors']}",
                flush=True,
            )
            return
        finally:
            for c in live:
                c.close()
            proc.stop()
