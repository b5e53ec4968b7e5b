"""Node failover: how soon the chargers of a node killed with SIGKILL are served again by
the node that remains.

Two ``csms serve`` nodes on one fresh PostgreSQL database (the tests' server:
``CSMS_TEST_POSTGRES_URL``, 127.0.0.1:5432 or a throwaway one), OCPI off. The load
generator (``simulator.load``, lean chargers, open loop) runs N chargers in session loops
(Authorize, StartTransaction, MeterValues x2, StopTransaction, Heartbeat) with both URLs:
charger n starts on node n mod 2. Some seconds into the measured phase node a is killed
with SIGKILL; each of its chargers sees its socket drop, waits a jittered backoff
(0..0.2 s, doubling, at most 5 s), connects to node b, boots, and sends its unanswered
CALL again (new message id, same content).

Figures per orphaned charger, from its new socket: BootNotification answered, and first
other call answered ("served"); and from the lost socket to that call (the backoff
included). Target: every charger served within 10 s of its reconnect.

Run: ``python -m tests.bench failover`` (env BENCH_FAILOVER_CHARGERS, default 200;
BENCH_FAILOVER_RATE total calls/s, default 200; BENCH_FAILOVER_SECONDS measured phase,
default 20; BENCH_FAILOVER_KILL_AT_S, default 8). Output: the console and
``var/bench/failover.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from simulator.load import LoadConfig, LoadReport, run_load
from simulator.load.model import Recorder
from tests.support.nodes import Node, csms_nodes
from tests.support.postgres import TestServer

REPO = Path(__file__).resolve().parents[2]
TARGET_MS = 10_000.0


async def measure(server: TestServer) -> dict[str, Any]:
    chargers = int(os.environ.get("BENCH_FAILOVER_CHARGERS", "200"))
    rate = float(os.environ.get("BENCH_FAILOVER_RATE", "200"))
    seconds = float(os.environ.get("BENCH_FAILOVER_SECONDS", "20"))
    kill_at = float(os.environ.get("BENCH_FAILOVER_KILL_AT_S", "8"))
    url = await server.fresh_schema_url()
    with tempfile.TemporaryDirectory() as d:
        async with csms_nodes(Path(d), url, 2) as nodes:
            a, b = nodes
            await a.admin("POST", "/api/tokens", {"id_tag": "BENCHFO"})
            cfg = LoadConfig(
                url=f"{a.ocpp_url},{b.ocpp_url}",
                chargers=chargers,
                calls=int(rate * seconds),
                rate=rate,
                id_pattern="FOB{n:05d}",
                id_tags=("BENCHFO",),
                timeout=30.0,
                connect_concurrency=50,
            )
            killed: dict[str, float] = {}

            def progress(rec: Recorder, elapsed: float) -> None:
                if elapsed >= kill_at and not killed:
                    killed["at_s"] = round(elapsed, 1)
                    killed["calls_done"] = rec.done
                    kill_task.append(asyncio.ensure_future(a.kill()))

            kill_task: list[asyncio.Future[None]] = []
            t0 = time.perf_counter()
            report = await run_load(cfg, progress)
            took = time.perf_counter() - t0
            if kill_task:
                await kill_task[0]
            survivors = await chargers_on(b)
            out = summary(report, killed, took, chargers, rate, survivors)
            out["survivor_warnings"] = warnings_of(b)
    return out


def warnings_of(node: Node) -> dict[str, int]:
    """The survivor's warning and error log events, counted by name."""
    counts: dict[str, int] = {}
    for line in list(node.lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("level") in ("warning", "error", "critical"):
            name = str(event.get("event"))
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


async def chargers_on(node: Node) -> int | None:
    """How many chargers the survivor's node view says it holds (None: no such view)."""
    try:
        doc = await node.admin("GET", "/api/nodes", ok=False)
    except Exception:
        return None
    if not isinstance(doc, dict):
        return None
    for view in doc.get("nodes", []):
        if view.get("node_id") == node.node_id:
            return int(view.get("chargers", 0))
    return None


def summary(
    report: LoadReport,
    killed: dict[str, float],
    took: float,
    chargers: int,
    rate: float,
    survivors: int | None,
) -> dict[str, Any]:
    f = report.failover_ms
    orphaned = chargers // 2
    served_max = f.get("served_max", float("inf"))
    return {
        "chargers": chargers,
        "rate": rate,
        "killed": killed,
        "orphaned": orphaned,
        "moved": report.failovers,
        "failover_ms": f,
        "errors": report.errors,
        "error_kinds": report.error_kinds,
        "calls_done": report.calls_done,
        "calls_planned": report.calls_planned,
        "survivor_holds": survivors,
        "target_ms": TARGET_MS,
        "met": report.failovers == orphaned and served_max <= TARGET_MS,
        "wall_s": round(took, 1),
        "load_average": os.getloadavg(),
    }


def render(out: dict[str, Any]) -> str:
    f = out["failover_ms"]
    return "\n".join(
        [
            f"{out['chargers']} chargers on 2 nodes, open loop {out['rate']:g} calls/s; node a "
            f"SIGKILLed at {out['killed'].get('at_s')} s of the measured phase",
            f"moved to node b: {out['moved']} of {out['orphaned']} orphaned chargers "
            f"(node b holds {out['survivor_holds']} at the end)",
            f"from the new socket: BootNotification answered p50 {f.get('boot_p50', 0):.0f} / "
            f"p99 {f.get('boot_p99', 0):.0f} / max {f.get('boot_max', 0):.0f} ms; first call "
            f"served p50 {f.get('served_p50', 0):.0f} / p99 {f.get('served_p99', 0):.0f} / max "
            f"{f.get('served_max', 0):.0f} ms",
            f"from the lost socket (backoff included) to served: p50 {f.get('outage_p50', 0):.0f}"
            f" / p99 {f.get('outage_p99', 0):.0f} / max {f.get('outage_max', 0):.0f} ms",
            f"calls {out['calls_done']}/{out['calls_planned']}, errors {out['errors']} "
            f"{out['error_kinds'] or ''}",
            f"survivor's warnings and errors: {out.get('survivor_warnings') or 'none'}",
            f"target: all served within {out['target_ms'] / 1000:g} s of their reconnect: "
            f"{'met' if out['met'] else 'MISSED'} (load average {out['load_average'][0]:.1f}, "
            f"wall {out['wall_s']} s)",
        ]
    )


def main() -> None:
    server = TestServer.open()
    try:
        out = asyncio.run(measure(server))
    finally:
        server.close()
    print(render(out), flush=True)
    target = REPO / "var" / "bench"
    target.mkdir(parents=True, exist_ok=True)
    (target / "failover.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
