"""The load run (``csms-sim load``): connect many lean chargers, drive them, report.

Why not the simulator's charge point: it validates every frame against JSON schemas,
builds dicts and matches futures, which costs more CPU than many CSMS handlers do, so a
benchmark would measure the generator. Here each charger is a ``websockets`` client
with one CALL in flight (as OCPP-J requires), driven by callbacks rather than a
coroutine per call: answers come straight from the socket (``simulator/fastws.py``),
frames are bytes assembled from pre-encoded pieces, answers are parsed with orjson only
to read the message id, status and transactionId, one watchdog enforces every CALL's
timeout, and the loop is uvloop when available. That costs about 25 µs of CPU per call
where awaiting ``send()`` and ``wait_for(recv())`` per call cost 50 to 80 µs.

Trust the figures only when the generator has headroom: ``--calibrate`` first runs the
same load against an echo server in a separate process and reports how much faster the
generator went there; below 1.5x the target's figure the result is flagged.

Open loop (``--rate``): each charger sends on a fixed schedule and latency is measured
from the *scheduled* send time, so a slow server cannot hide queueing by slowing the
generator down (coordinated omission). Closed loop (default): the next CALL goes as
soon as the previous answer arrives.

Mixes: ``session`` (Authorize, StartTransaction, MeterValues x k, StopTransaction,
Heartbeat; every session is closed even when the quota ends early, and counts stay
exact) or a comma list of stateless actions (Authorize, Heartbeat, MeterValues,
StatusNotification).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from simulator.load.charger import FrameClock, LeanCharger
from simulator.load.model import LoadConfig, LoadReport, Recorder


async def run_load(
    cfg: LoadConfig, progress: Callable[[Recorder, float], None] | None = None
) -> LoadReport:
    """Connect (and boot) every charger, then run the measured phase and summarise it."""
    rng = random.Random(cfg.seed)
    rec = Recorder()
    clock = FrameClock()
    base, extra = divmod(cfg.calls, cfg.chargers)

    def tag(n: int) -> str:
        if cfg.tags_in_order:
            return cfg.id_tags[(n - 1) % len(cfg.id_tags)]
        return cfg.id_tags[0] if len(cfg.id_tags) == 1 else rng.choice(cfg.id_tags)

    chargers = [
        LeanCharger(
            n,
            cfg.id_pattern.format(n=n),
            tag(n),
            base + (1 if n <= extra else 0),
            cfg,
            rec,
            clock,
        )
        for n in range(1, cfg.chargers + 1)
    ]
    gate = asyncio.Semaphore(cfg.connect_concurrency)
    failures: dict[str, int] = {}

    async def connect(ch: LeanCharger) -> bool:
        async with gate:
            try:
                await ch.connect()
                return True
            except Exception as exc:
                kind = f"connect:{type(exc).__name__}"
                failures[kind] = failures.get(kind, 0) + 1
                return False

    ok = await asyncio.gather(*(connect(ch) for ch in chargers))
    live = [ch for ch, good in zip(chargers, ok, strict=True) if good]
    planned = sum(ch.quota for ch in live)
    interval = cfg.chargers / cfg.rate if cfg.rate > 0 else 0.0
    started = time.perf_counter()
    cpu0 = time.process_time()
    # Open loop: the first CALLs are due a little after every charger has been armed,
    # else arming a thousand of them makes the first ones late and that lateness (latency
    # counts from the scheduled time) would be charged to the server.
    lead = 0.05 if interval else 0.0
    runs = [
        ch.start(
            interval,
            started + lead + (i / max(1, len(live))) * interval if interval else started,
            cfg.timeout,
        )
        for i, ch in enumerate(live)
    ]

    async def watchdog() -> None:
        while True:
            await asyncio.sleep(min(0.5, cfg.timeout / 4))
            now = time.perf_counter()
            for ch in live:
                ch.check_timeout(now)

    guard = asyncio.create_task(watchdog())
    ticker = None
    if progress is not None:

        async def tick() -> None:
            while True:
                await asyncio.sleep(1.0)
                progress(rec, time.perf_counter() - started)

        ticker = asyncio.create_task(tick())
    try:
        await asyncio.gather(*runs)
    finally:
        guard.cancel()
        if ticker is not None:
            ticker.cancel()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        if progress is not None:  # the last line shows where the run ended
            progress(rec, elapsed)
        await asyncio.gather(*(ch.close() for ch in live), return_exceptions=True)
    stats = rec.stats()
    errors = sum(s.errors for s in stats.values())
    kinds = dict(rec.kinds)
    for k, v in failures.items():
        kinds[k] = kinds.get(k, 0) + v
    return LoadReport(
        url=cfg.url,
        mode=f"open@{cfg.rate:g}/s" if cfg.rate > 0 else "closed",
        chargers=cfg.chargers,
        calls_planned=planned,
        calls_done=rec.done,
        errors=errors,
        duration_s=round(elapsed, 3),
        throughput=round((rec.done - errors) / elapsed, 1) if elapsed > 0 else 0.0,
        actions=stats,
        error_kinds=kinds,
        connect_failures=sum(failures.values()),
        behind_schedule=rec.behind,
        generator_cpu_s=round(cpu, 3),
        generator_capacity=round(rec.done / cpu, 1) if cpu > 0 else 0.0,
        failovers=rec.failovers,
        failover_ms=rec.failover_ms(),
    )
