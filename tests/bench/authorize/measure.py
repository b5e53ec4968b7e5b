"""How one step is measured: the load it puts on a server, on an idle server, again when
the hypervisor disturbed it.

Every measured run is kept as JSON under its step's label in a :data:`Runs` mapping (one
per checkout under test); the report and the comparison read their figures from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from simulator.load import LoadConfig, LoadReport, run_load
from tests.bench.authorize.settings import (
    ATTEMPTS,
    CHARGER_IDS,
    HIT_TAGS,
    QUICK,
    STEAL_LIMIT,
)
from tests.bench.procs import Proc, core_steal, steal_share

# Step label ("csms@100", "csms-open-2000", "storm", ...) -> that step's run as JSON.
Runs = dict[str, dict[str, Any]]


async def load(
    url: str,
    chargers: int,
    calls: int,
    *,
    tags: tuple[str, ...] = HIT_TAGS,
    rate: float = 0.0,
    timeout: float = 10.0,
    id_pattern: str = CHARGER_IDS,
    in_order: bool = False,
    mix: str = "Authorize",
) -> LoadReport:
    """Authorize only (unless ``mix``), ``chargers`` connected at once; closed loop unless
    ``rate`` > 0; ``in_order``: charger n presents ``tags[n-1]``."""
    cfg = LoadConfig(
        url=url,
        chargers=chargers,
        calls=max(chargers, calls // QUICK),
        rate=rate,
        mix=mix,
        id_pattern=id_pattern,
        id_tags=tags[:chargers] if chargers <= len(tags) else tags,
        tags_in_order=in_order,
        timeout=timeout,
        connect_concurrency=500,
    )
    report = await run_load(cfg)
    if report.connect_failures or report.errors:
        print(f"  !! {report.connect_failures} connect failures, errors {report.error_kinds}")
    return report


async def settle(proc: Proc, window_s: float = 0.2, max_s: float = 5.0) -> float:
    """Wait until the server is idle (at most 5 % of a core over ``window_s``, or
    ``max_s`` at most); returns the seconds waited.

    Why: each step connects its own chargers and closes them at the end; the server's
    teardown of 1,000 connections (disconnect writes, log lines, the last decision rows)
    ran into the next step and was measured as that step's latency (the 1-charger step,
    4,000 calls in under a second, came right after the 1,000-charger warm-up).
    """
    start = time.monotonic()
    last = proc.cpu_seconds()
    while time.monotonic() - start < max_s:
        await asyncio.sleep(window_s)
        now = proc.cpu_seconds()
        if now - last <= 0.05 * window_s:
            break
        last = now
    return time.monotonic() - start


def authorize_p99(report: LoadReport) -> str:
    a = report.actions.get("Authorize")
    return f"p99 {a.p99_ms:.3f} ms, " if a is not None else ""


async def measured(
    label: str, step: Callable[[], Awaitable[LoadReport]], runs: Runs, proc: Proc
) -> tuple[LoadReport, dict[str, Any]]:
    """``step`` measured once, or again while the hypervisor disturbed it; returns the
    reported attempt and its JSON (kept as ``runs[label]``).

    Why: this is a shared VM. A step whose core lost seconds to other guests measures
    them, not the server (in one run a 10 s step lost 4 s of core 0, and the same
    remote-path step went from p99 57 ms to 1.1 s). Steal is read per pinned core
    around the step; above ``STEAL_LIMIT`` of the step's wall time the step runs again,
    at most ``ATTEMPTS`` times. Every attempt is printed and kept under
    ``runs[label]["attempts"]``; the least disturbed one is reported. Each attempt
    starts once ``proc`` (the server under test) is idle (:func:`settle`).
    """
    tried: list[tuple[float, LoadReport]] = []
    for n in range(1, ATTEMPTS + 1):
        await settle(proc)
        s0, w0 = core_steal(), time.monotonic()
        report = await step()
        share = steal_share(s0, time.monotonic() - w0)
        tried.append((share, report))
        if share <= STEAL_LIMIT:
            break
        if n < ATTEMPTS:
            print(
                f"  {label}: {authorize_p99(report)}{report.throughput:,.0f} calls/s with "
                f"{share:.1%} of a core stolen: measuring again ({n + 1} of {ATTEMPTS})",
                flush=True,
            )
    share, best = min(tried, key=lambda t: t[0])
    run = best.to_json()
    run["steal_share"] = round(share, 4)
    run["attempts"] = [
        {
            "steal_share": round(sh, 4),
            "throughput": round(r.throughput, 1),
            "p99_ms": r.actions["Authorize"].p99_ms if "Authorize" in r.actions else None,
        }
        for sh, r in tried
    ]
    runs[label] = run
    return best, run
