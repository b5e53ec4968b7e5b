"""The measured steps: the closed-loop ladder (every server), then the CSMS's open-loop,
remote-path and hung-eMSP steps, each against a :class:`CsmsUnderTest`.

Why steps as separate callables: with a baseline, each step is measured for both
checkouts back to back (in alternating order) before the next step begins, so the
machine's drift over the run falls on both alike.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from simulator.load import LoadReport
from tests.bench.authorize.measure import Runs, load, measured, settle
from tests.bench.authorize.servers import (
    Ports,
    emsp_behaviour,
    fresh_store,
    start_csms,
    start_emsp,
    start_remote_echo,
)
from tests.bench.authorize.settings import (
    CHARGERS,
    DEADLINE_S,
    LADDER,
    OWN_TAGS,
    REM_TAGS,
    WARM_UP_CALLS,
)
from tests.bench.authorize.trees import Tree
from tests.bench.procs import Proc


@dataclass(frozen=True)
class Server:
    """A server under test: ``label`` keys its runs ("echo", "naive", "csms"), ``name``
    is what the console calls it (which checkout, for the CSMS)."""

    label: str
    name: str
    proc: Proc
    url: str


@dataclass(frozen=True)
class CsmsUnderTest:
    """One checkout's CSMS with its eMSP, up for every step but the storm."""

    tree: Tree
    server: Server
    emsp: Proc
    control: str
    ports: Ports

    def stop(self) -> None:
        self.emsp.stop()
        self.server.proc.stop()


async def start_under_test(tree: Tree, template: Path) -> CsmsUnderTest:
    """``tree``'s CSMS on a copy of ``template``, its eMSP registered, code paths warmed."""
    name = f"csms-{tree.label}"
    fresh_store(template, name)
    proc, ports = start_csms(tree, name)
    try:
        emsp, control = start_emsp(ports, f"emsp-{tree.label}")
    except Exception:
        proc.stop()
        raise
    server = Server("csms", f"csms[{tree.label}]", proc, ports.ocpp_url)
    csms = CsmsUnderTest(tree, server, emsp, control, ports)
    try:
        # Warm the token memo and the connections' code paths before measuring.
        await load(csms.server.url, CHARGERS, WARM_UP_CALLS)
    except Exception:
        csms.stop()
        raise
    return csms


def show(
    server: Server, key: str, report: LoadReport, run: dict[str, Any], extra: str = ""
) -> None:
    a = report.actions["Authorize"]
    print(
        f"  {server.name:<17} {key:<17} {report.throughput:>9,.0f} calls/s  "
        f"p50 {a.p50_ms:.3f}  p95 {a.p95_ms:.3f}  p99 {a.p99_ms:.3f}  max {a.max_ms:.3f} ms  "
        f"{extra}errors {report.errors}  rejected {a.rejected}  behind {report.behind_schedule}  "
        f"steal {run['steal_share']:.1%} of a core, attempts {len(run['attempts'])}",
        flush=True,
    )


async def with_cpu(
    key: str, server: Server, runs: Runs, run_load: Callable[[], Awaitable[LoadReport]]
) -> tuple[LoadReport, dict[str, Any], float]:
    """:func:`measured` plus the server's CPU per call of the reported attempt, a figure
    that other load on the machine disturbs far less than throughput."""
    cpu: dict[int, float] = {}  # id(report) -> server CPU µs per call of that attempt

    async def step() -> LoadReport:
        cpu0 = server.proc.cpu_seconds()
        report = await run_load()
        cpu[id(report)] = (server.proc.cpu_seconds() - cpu0) / max(1, report.calls_done) * 1e6
        return report

    report, run = await measured(key, step, runs, server.proc)
    us = cpu[id(report)]
    run["server_cpu_us_per_call"] = round(us, 1)
    return report, run, us


async def closed_loop(
    server: Server,
    runs: Runs,
    chargers: int,
    calls: int,
    *,
    tags: tuple[str, ...] | None = None,
    path: str = "",
    in_order: bool = False,
) -> LoadReport:
    """Closed-loop Authorize with ``chargers`` (``tags``: the decision path's tokens,
    ``path`` its key suffix; the cache hit by default)."""
    key = f"{server.label}{path}@{chargers}"
    run_load = partial(load, server.url, chargers, calls)
    if tags is not None:
        run_load = partial(load, server.url, chargers, calls, tags=tags, in_order=in_order)
    report, run, us = await with_cpu(key, server, runs, run_load)
    show(server, key, report, run, f"server {us:.0f} µs CPU/call  ")
    return report


async def ladder(server: Server, runs: Runs) -> None:
    for chargers, calls in LADDER:
        await closed_loop(server, runs, chargers, calls)


async def open_loop(server: Server, runs: Runs) -> None:
    """2,000 Authorize/s over 1,000 chargers for 10 s."""
    key = f"{server.label}-open-2000"
    step = partial(load, server.url, CHARGERS, 20000, rate=2000)
    report, run = await measured(key, step, runs, server.proc)
    show(server, key, report, run)


async def remote(csms: CsmsUnderTest, runs: Runs) -> None:
    """NEVER tokens, the eMSP answering after 50 ms, 1,000/s over 1,000 chargers."""
    server, key = csms.server, "csms-remote-50ms"
    emsp_behaviour(csms.control, "delay", 50)
    step = partial(load, server.url, CHARGERS, 10000, tags=REM_TAGS, rate=1000)
    report, run, us = await with_cpu(key, server, runs, step)
    emsp_behaviour(csms.control, "normal")
    show(server, key, report, run, f"server {us:.0f} µs CPU/call  ")


async def remote_floor(csms: CsmsUnderTest, runs: Runs) -> None:
    """The remote step's load on the bare remote exchange (:mod:`tests.bench.remote_echo`)
    asking the same eMSP: what a real-time authorize costs any server on this stack and
    machine, beside the CSMS's CPU per call. Measured once per run."""
    key = "remote-echo-50ms"
    if key in runs:
        return
    proc, url = start_remote_echo(csms.control)
    try:
        floor = Server("remote-echo", "remote echo", proc, url)
        emsp_behaviour(csms.control, "delay", 50)
        step = partial(load, url, CHARGERS, 10000, tags=REM_TAGS, rate=1000)
        report, run, us = await with_cpu(key, floor, runs, step)
        emsp_behaviour(csms.control, "normal")
        show(floor, key, report, run, f"server {us:.0f} µs CPU/call  ")
    finally:
        proc.stop()


async def remote_nagle(csms: CsmsUnderTest, runs: Runs) -> None:
    """The remote step against an eMSP that writes the answer's head and body as two
    segments with Nagle on: a client in delayed-ACK mode would pay ~40 ms per kept-alive
    call (see roaming/http11.py ``_quickack``)."""
    server, key = csms.server, "csms-remote-nagle-50ms"
    emsp_behaviour(csms.control, "delay", 50, nagle=True)
    step = partial(load, server.url, CHARGERS, 10000, tags=REM_TAGS, rate=1000)
    report, run, us = await with_cpu(key, server, runs, step)
    emsp_behaviour(csms.control, "normal")
    show(server, key, report, run, f"server {us:.0f} µs CPU/call  ")


async def hung(csms: CsmsUnderTest, runs: Runs) -> None:
    """A hung eMSP: every Authorize must get the fallback within the deadline + 50 ms."""
    server, key = csms.server, "csms-hung"
    emsp_behaviour(csms.control, "hang")
    step = partial(load, server.url, CHARGERS, 1000, tags=REM_TAGS, rate=200, timeout=5)
    # Only this step's fallbacks: the log from an idle server on, read once it is idle
    # again (the server writes its buffered log lines every 100 ms).
    await settle(server.proc)
    log_from = server.proc.log_path.stat().st_size
    report, run = await measured(key, step, runs, server.proc)
    emsp_behaviour(csms.control, "normal")
    await settle(server.proc)
    run["server_side"] = side = decision_latencies(server.proc.log_path, log_from)
    show(
        server,
        key,
        report,
        run,
        f"deadline {DEADLINE_S:g} s, server side max {side.get('max_ms')} ms  ",
    )


def decision_latencies(log: Path, from_byte: int, source: str = "fallback") -> dict[str, float]:
    """The server's own view of the decisions of ``source`` logged since ``from_byte``:
    frame arrival to decision, the ``latency_ms`` of each ``authorization_decided``. For
    the hung step it separates the CSMS's deadline handling from the generator's and the
    machine's tail; for the reuse window it is the decision alone, without the
    transaction's store write."""
    with log.open("rb") as f:
        f.seek(from_byte)
        text = f.read().decode(errors="replace")
    found = []
    needle = f'"source":"{source}"'
    for line in text.splitlines():
        if '"authorization_decided"' in line and needle in line:
            found.append(float(json.loads(line)["latency_ms"]))
    found.sort()
    if not found:
        return {"count": 0}
    return {
        "count": len(found),
        "p50_ms": found[len(found) // 2],
        "p99_ms": found[min(len(found) - 1, len(found) * 99 // 100)],
        "max_ms": found[-1],
    }


CsmsStep = Callable[[CsmsUnderTest, Runs], Awaitable[Any]]


def csms_steps() -> list[tuple[str, CsmsStep]]:
    """Every CSMS step in order; each is measured for every checkout before the next."""
    steps: list[tuple[str, CsmsStep]] = []
    for chargers, calls in LADDER:

        def step(
            s: CsmsUnderTest, runs: Runs, chargers: int = chargers, calls: int = calls
        ) -> Awaitable[Any]:
            return closed_loop(s.server, runs, chargers, calls)

        steps.append((f"csms@{chargers}", step))
    for chargers, calls in LADDER:
        if chargers == 10:
            continue

        def own(
            s: CsmsUnderTest, runs: Runs, chargers: int = chargers, calls: int = calls
        ) -> Awaitable[Any]:
            return closed_loop(s.server, runs, chargers, calls, tags=OWN_TAGS, path="-own")

        steps.append((f"csms own card @{chargers}", own))
    steps.append(("open loop", lambda s, runs: open_loop(s.server, runs)))
    steps += [
        ("remote path", remote),
        ("remote path's floor", remote_floor),
        ("remote, Nagle eMSP", remote_nagle),
        ("hung eMSP", hung),
    ]
    return steps
