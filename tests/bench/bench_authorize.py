"""OCPP Authorize benchmarks: the real CSMS beside a naive ``ocpp``-library CSMS and a bare
echo, and optionally beside a baseline checkout's CSMS, measured in the same run.

One run, this 2-core machine: every server under test is a subprocess pinned to core 0,
the load generator (``simulator.load``, uvloop + orjson, one CALL in flight per charger)
runs here pinned to core 1, the eMSP shares core 1 (it idles except in the remote-path
runs, where the generator sends only 1,000 calls/s). The echo server's figures double as
the generator's calibration: the generator is not the bottleneck of a run whose
throughput is well below what it pushed through the echo.

What "cache hit" means here: the CSMS is ``csms serve`` with OCPI enabled, so the
roaming authorization service is the authorizer; an eMSP registers through the real
credentials handshake (``POST /api/partners/invite`` on the admin API) and pushes its
tokens; the HIT* tokens are whitelist ALWAYS, so they are decided from the token cache
without an eMSP call. REM* tokens are NEVER (always real-time), used for the remote
path with the eMSP answering after 50 ms, and with the eMSP hung (deadline fallback).

With a baseline (``--baseline REV`` or ``BENCH_BASELINE=<checkout>``) every CSMS step
is measured for the baseline's ``csms serve`` and this checkout's, one after the other
in alternating order, and a comparison table is printed, kept in the JSON and written
into the README. Env and output: see ``tests/bench/README.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Coroutine
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from tests.bench.authorize.compare import compare, comparison_table, interleaved
from tests.bench.authorize.measure import Runs
from tests.bench.authorize.paths import command_steps, reuse_steps
from tests.bench.authorize.report import (
    ladder_table,
    machine_line,
    table,
    target_rows,
    write_section,
)
from tests.bench.authorize.servers import start_echo, start_fast_echo, start_naive, store_template
from tests.bench.authorize.settings import CHARGERS, LADDER, QUICK, ROUNDS, STORM
from tests.bench.authorize.steps import (
    CsmsUnderTest,
    Server,
    closed_loop,
    csms_steps,
    ladder,
    open_loop,
    start_under_test,
)
from tests.bench.authorize.storm import echo_floor, storm
from tests.bench.authorize.trees import Tree, baseline_tree, current_tree, verify
from tests.bench.procs import CLIENT_CPU, OUT, loadavg, pin_self, raise_nofile, steal_seconds


async def references(runs: Runs) -> None:
    """The echo's and the naive CSMS's ladders (the echo's also open loop): the yardsticks
    of the targets, measured once per run from this checkout."""
    proc, url = start_echo()
    try:
        echo = Server("echo", "echo", proc, url)
        await ladder(echo, runs)
        # The floor the generator and the machine put under the CSMS's open-loop p99.
        await open_loop(echo, runs)
    finally:
        proc.stop()
    proc, url = start_fast_echo()
    try:
        fast = Server("echo-fast", "echo uvloop+orjson", proc, url)
        for chargers, calls in LADDER:
            if chargers >= 100:
                await closed_loop(fast, runs, chargers, calls)
    finally:
        proc.stop()
    proc, url = start_naive()
    try:
        await ladder(Server("naive", "naive", proc, url), runs)
    finally:
        proc.stop()
    await echo_floor(runs)


async def csms_rounds(trees: list[Tree], rounds: int) -> list[dict[str, Runs]]:
    """Every CSMS step, each measured for every tree (alternating which goes first) before
    the next step begins, ``rounds`` times over; then the storm the same way. Returns
    each round's runs by tree label."""
    out: list[dict[str, Runs]] = [{t.label: {} for t in trees} for _ in range(rounds)]
    steps = csms_steps() + command_steps() + reuse_steps()
    templates = {t.label: store_template(t, CHARGERS) for t in trees}
    under_test: list[CsmsUnderTest] = []
    try:
        for t in trees:
            under_test.append(await start_under_test(t, templates[t.label]))
        for r in range(rounds):
            for i, (_, step) in enumerate(steps):
                for csms in interleaved(under_test, r * len(steps) + i):
                    await step(csms, out[r][csms.tree.label])
    finally:
        for csms in under_test:
            csms.stop()
    templates = {t.label: store_template(t, STORM) for t in trees}
    for r in range(rounds):
        for t in interleaved(trees, r * len(steps) + len(steps)):
            await storm(t, templates[t.label], out[r][t.label], f"csms[{t.label}]")
    return out


async def run(trees: list[Tree], rounds: int) -> tuple[Runs, list[dict[str, Runs]]]:
    """The references, then the CSMS rounds."""
    print(
        f"  cores {os.cpu_count()} (this process pinned to {sorted(os.sched_getaffinity(0))}), "
        f"fd limit {raise_nofile()}, quick divisor {QUICK}, rounds {rounds}",
        flush=True,
    )
    refs: Runs = {}
    await references(refs)
    return refs, await csms_rounds(trees, rounds)


def measure(trees: list[Tree], rounds: int) -> tuple[Runs, list[dict[str, Runs]]]:
    """:func:`run` on uvloop with this process pinned to the generator's core."""
    affinity = os.sched_getaffinity(0)
    pin_self(CLIENT_CPU)
    raise_nofile()
    try:
        coro: Coroutine[Any, Any, tuple[Runs, list[dict[str, Runs]]]] = run(trees, rounds)
        try:
            import uvloop
        except ImportError:  # pragma: no cover
            return asyncio.run(coro)
        return uvloop.run(coro)
    finally:
        os.sched_setaffinity(0, affinity)  # the next benchmark in this process gets every core


def main(baseline: str | None = None) -> None:
    """Measure this checkout, and ``baseline`` (a git revision) or ``BENCH_BASELINE`` (a
    checkout's path) beside it when given; report to stdout, JSON and the README."""
    current = current_tree()
    base = baseline_tree(baseline, os.environ.get("BENCH_BASELINE"))
    trees = [current] if base is None else [base, current]
    imported = {t.label: verify(t) for t in trees}
    for t in trees:
        print(f"  {t.describe()}: csms imported from {imported[t.label]}", flush=True)

    rounds = ROUNDS if base is not None else 1
    before, steal0, wall0 = loadavg(), steal_seconds(), time.monotonic()
    refs, measured = measure(trees, rounds)
    meta: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": QUICK,
        "loadavg": {"before": before, "after": loadavg()},
        "steal": {
            "seconds": round(steal_seconds() - steal0, 2),
            "wall_s": round(time.monotonic() - wall0, 1),
        },
        "trees": {t.label: {**asdict(t), "csms_file": imported[t.label]} for t in trees},
    }
    publish(meta, refs | measured[0]["current"], measured if base is not None else None)


def publish(meta: dict[str, Any], runs: Runs, rounds: list[dict[str, Runs]] | None) -> None:
    """``var/bench/authorize.json``, the console and the README's sections: the figures
    against their targets from ``runs`` (the first round's), and with a baseline the
    comparison over every round."""
    rows = target_rows(runs)
    payload = {**meta, "rows": [{**asdict(r), "value": round(r.value, 3)} for r in rows]}
    payload["runs"] = runs
    line = machine_line(meta["when"], meta)
    figures = f"{line}\n\n{table(rows)}\n\n{ladder_table(runs)}"
    sections = [("authorize", "## Authorize figures", figures)]
    if rounds is not None:
        compared = compare([m["baseline"] for m in rounds], [m["current"] for m in rounds])
        payload["rounds"] = rounds
        payload["comparison"] = compared
        trees = meta["trees"]
        head = (
            f"Baseline {trees['baseline']['commit'][:12]} against current "
            f"{trees['current']['commit'][:12]}: every CSMS step measured for both in the "
            f"same run, in alternating order, {len(rounds)} round(s) (medians). {line}"
        )
        sections.append(
            ("authorize-compare", "## Comparison", f"{head}\n\n{comparison_table(compared)}")
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "authorize.json").write_text(json.dumps(payload, indent=2, default=str))
    for marker, heading, body in sections:
        print(body.split("\n\n", 1)[1], flush=True)
        write_section(marker, heading, body)
