"""The figures against their targets, as console and Markdown tables, and the README
sections between markers that every run rewrites."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.authorize.measure import Runs
from tests.bench.authorize.settings import DEADLINE_S, LADDER, QUICK, STORM

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Row:
    """One figure against its target."""

    name: str
    value: float
    unit: str
    target: str
    ok: bool | None  # None: reference figure, no target
    note: str = ""


def _auth(runs: Runs, key: str) -> dict[str, Any]:
    return runs[key]["actions"]["Authorize"]  # type: ignore[no-any-return]


def _remote_cpu_rows(runs: Runs) -> list[Row]:
    """The remote path's CPU per call against its target, beside the bare exchange's."""
    run = runs.get("csms-remote-50ms")
    if run is None or "server_cpu_us_per_call" not in run:
        return []
    us = run["server_cpu_us_per_call"]
    out = [Row("remote path: server CPU per real-time authorize", us, "µs", "<= 300 µs", us <= 300)]
    floor = runs.get("remote-echo-50ms")
    if floor is not None and "server_cpu_us_per_call" in floor:
        f = floor["server_cpu_us_per_call"]
        a = _auth(runs, "remote-echo-50ms")
        out.append(
            Row(
                "the same load on the bare remote exchange (a WebSocket frame in and out, "
                "one kept-alive POST to the eMSP): server CPU per call",
                f,
                "µs",
                "reference",
                None,
                f"p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms, errors {floor['errors']}; "
                f"the CSMS used {us / f:.1f}x"
                if f
                else "",
            )
        )
    return out


def _latency_rows(runs: Runs) -> list[Row]:
    out = []
    run, a = runs["csms-open-2000"], _auth(runs, "csms-open-2000")
    out.append(
        Row(
            "open loop 2,000 Authorize/s over 1,000 chargers: p99",
            a["p99_ms"],
            "ms",
            "<= 10 ms",
            a["p99_ms"] <= 10 and run["errors"] == 0,
            f"p50 {a['p50_ms']} ms, errors {run['errors']}, behind {run['behind_schedule']}",
        )
    )
    e = _auth(runs, "echo-open-2000")
    out.append(
        Row(
            "echo open loop 2,000/s (calibration): p99",
            e["p99_ms"],
            "ms",
            "reference",
            None,
            f"p50 {e['p50_ms']} ms",
        )
    )
    for key, what in (
        ("csms-remote-50ms", "remote path, eMSP 50 ms, 1,000/s: p99"),
        ("csms-remote-nagle-50ms", "remote path, eMSP 50 ms with Nagle (head, body apart): p99"),
    ):
        if key not in runs:
            continue
        run, a = runs[key], _auth(runs, key)
        us = run.get("server_cpu_us_per_call")
        out.append(
            Row(
                what,
                a["p99_ms"],
                "ms",
                "<= 55 ms",
                a["p99_ms"] <= 55 and run["errors"] == 0 and a["rejected"] == 0,
                f"p50 {a['p50_ms']} ms, errors {run['errors']}, rejected {a['rejected']}"
                + (f", server {us:.0f} µs CPU/call" if us else ""),
            )
        )
    out += _remote_cpu_rows(runs)
    run, a = runs["csms-hung"], _auth(runs, "csms-hung")
    limit = DEADLINE_S * 1000 + 50
    answered = 100.0 * (a["count"] - a["errors"]) / max(1, a["count"])
    out.append(
        Row(
            f"hung eMSP (deadline {DEADLINE_S:g} s): answered within deadline + 50 ms",
            answered if a["max_ms"] <= limit else 0.0,
            "%",
            "100 %",
            a["errors"] == 0 and a["max_ms"] <= limit,
            f"max {a['max_ms']} ms, p50 {a['p50_ms']} ms, errors {run['errors']}",
        )
    )
    side = run.get("server_side", {})
    if side.get("count"):
        out.append(
            Row(
                "hung eMSP, server side: decision latency max (from frame arrival)",
                side["max_ms"],
                "ms",
                "reference",
                None,
                f"{side['count']} fallbacks, p50 {side['p50_ms']:.3f} ms",
            )
        )
    return out


# The decision paths measured on the closed-loop ladder: (key infix, what it is).
PATHS = (("", "cache hit"), ("-own", "own card"), ("-command", "command pre-authorization"))


def _path_rows(runs: Runs, infix: str, what: str) -> list[Row]:
    e100, n100 = runs["echo@100"]["throughput"], runs["naive@100"]["throughput"]
    c100 = runs[f"csms{infix}@100"]["throughput"]
    c1000 = runs[f"csms{infix}@1000"]["throughput"]
    a1 = _auth(runs, f"csms{infix}@1")
    us = runs[f"csms{infix}@100"].get("server_cpu_us_per_call", 0)
    out = [
        Row(
            f"csms {what} @100 vs naive", c100 / n100 if n100 else 0, "x", ">= 5x", c100 >= 5 * n100
        ),
        Row(
            f"csms {what} @100 vs echo",
            100 * c100 / e100 if e100 else 0,
            "%",
            ">= 60 %",
            c100 >= 0.6 * e100,
            f"{c100:,.0f} calls/s, server {us:.0f} µs CPU/call",
        ),
    ]
    fast = runs.get("echo-fast@100")
    if fast:
        f100 = fast["throughput"]
        out.append(
            Row(
                f"csms {what} @100 vs echo on uvloop + orjson",
                100 * c100 / f100,
                "%",
                "reference",
                None,
            )
        )
    out += [
        Row(f"csms {what} @1,000", c1000, "calls/s", ">= 18,000/s", c1000 >= 18000),
        Row(
            f"csms {what} @1: p99",
            a1["p99_ms"],
            "ms",
            "<= 0.35 ms",
            a1["p99_ms"] <= 0.35,
            f"p50 {a1['p50_ms']} ms",
        ),
    ]
    return out


def _reuse_rows(runs: Runs) -> list[Row]:
    """The reuse window: sessions whose StartTransaction reuses a real-time Authorize,
    beside the same sessions on own cards. A session's calls include its transaction's
    store writes, so their rate is set against the echo's Authorize only as a reference;
    the decision itself is the server's own latency of the reused decisions."""
    reuse, own = runs.get("csms-reuse-sessions@100"), runs.get("csms-own-sessions@100")
    if reuse is None:
        return []
    e100 = runs["echo@100"]["throughput"]
    decided = reuse.get("decisions_reused", {"count": 0})
    start = reuse["actions"]["StartTransaction"]
    out = [
        Row(
            "reuse window @100: StartTransaction decisions reused (server side p99)",
            decided.get("p99_ms", 0.0),
            "ms",
            "reference",
            None,
            f"{decided['count']} reused of {start['count']} StartTransactions, p50 "
            f"{decided.get('p50_ms', 0):.3f} ms; StartTransaction round trip p50 "
            f"{start['p50_ms']} ms, p99 {start['p99_ms']} ms, rejected {start['rejected']}",
        ),
        Row(
            "reuse window @100: session calls vs echo (Authorize)",
            100 * reuse["throughput"] / e100 if e100 else 0,
            "%",
            ">= 60 %",
            reuse["throughput"] >= 0.6 * e100 and decided["count"] == start["count"],
            f"{reuse['throughput']:,.0f} calls/s, server "
            f"{reuse.get('server_cpu_us_per_call', 0):.0f} µs CPU/call, errors {reuse['errors']}",
        ),
    ]
    if own is not None:
        out.append(
            Row(
                "own card @100: the same sessions (reference)",
                own["throughput"],
                "calls/s",
                "reference",
                None,
                f"server {own.get('server_cpu_us_per_call', 0):.0f} µs CPU/call, StartTransaction "
                f"p50 {own['actions']['StartTransaction']['p50_ms']} ms",
            )
        )
    return out


def _throughput_rows(runs: Runs) -> list[Row]:
    e100, n100 = runs["echo@100"]["throughput"], runs["naive@100"]["throughput"]
    out = [
        Row("echo @100 (generator calibration)", e100, "calls/s", "reference", None),
        Row("naive ocpp-library CSMS @100", n100, "calls/s", "reference", None),
    ]
    if "echo-fast@100" in runs:
        out.append(
            Row(
                "echo uvloop + orjson @100",
                runs["echo-fast@100"]["throughput"],
                "calls/s",
                "reference",
                None,
            )
        )
    for infix, what in PATHS:
        if f"csms{infix}@100" in runs:
            out += _path_rows(runs, infix, what)
    out += _reuse_rows(runs)
    c100, c1000 = runs["csms@100"]["throughput"], runs["csms@1000"]["throughput"]
    # Headroom: what the generator can drive on its one core (calls per CPU-second of
    # its own, measured against the echo) over what the CSMS run needed. Not the echo's
    # throughput: the echo parses JSON and is itself the limit of its ladder step.
    for n, csms_rate in ((100, c100), (1000, c1000)):
        capacity = runs[f"echo@{n}"]["generator_capacity"]
        headroom = capacity / csms_rate if csms_rate else 0.0
        out.append(
            Row(
                f"generator headroom @{n:,} (capacity / csms)",
                headroom,
                "x",
                ">= 1.5x",
                headroom >= 1.5,
                f"generator {capacity:,.0f} calls per CPU-second",
            )
        )
    return out


def _storm_rows(runs: Runs) -> list[Row]:
    s = runs["storm"]
    took, accepted, share, per = (
        s["seconds"],
        s["accepted"],
        s["idle_cpu_share"],
        s["rss_per_connection_kb"],
    )
    return [
        Row(
            f"{STORM:,} chargers connect at once: all Accepted",
            took,
            "s",
            "<= 10 s, 0 fail",
            accepted == STORM and took <= 10.0,
            f"{accepted}/{STORM} accepted; CPU s server {s['server_cpu_s']:.2f}, generator "
            f"{s['generator_cpu_s']:.2f}; steal {s['steal_share']:.1%}, attempt {s['attempt']}; "
            f"net.core.somaxconn {s.get('somaxconn', '?')}",
        ),
        Row(
            f"{accepted:,} idle chargers, Heartbeat/300 s + StatusNotification/60 s: server CPU",
            share * 100,
            "% core",
            "<= 5 %",
            share <= 0.05,
            f"{s['heartbeats']} heartbeats, {s.get('status_notifications', 0)} status "
            f"notifications in {s['idle_window_s']:.0f} s, from "
            f"{s.get('settled_after_s', '?')} s after the storm (post-connect work done)",
        ),
        *_echo_floor_rows(runs),
        Row(
            "RSS per idle connection",
            per,
            "KB",
            "<= 20 KB",
            per <= 20,
            f"RSS {s['rss0_kb'] / 1024:.0f} -> {s['rss_kb'] / 1024:.0f} MB",
        ),
        Row(
            f"open loop 2,000 Authorize/s (own cards) with the {accepted:,} connected: p99",
            s.get("open_p99_ms", 0.0),
            "ms",
            "<= 10 ms",
            s.get("open_p99_ms", 1e9) <= 10 and s.get("open_errors", 1) == 0,
            f"p50 {s.get('open_p50_ms')} ms, errors {s.get('open_errors')}, "
            f"behind {s.get('open_behind')}",
        ),
    ]


def _echo_floor_rows(runs: Runs) -> list[Row]:
    echo = runs.get("storm-echo")
    if echo is None:
        return []
    share = runs["storm"]["idle_cpu_share"]
    return [
        Row(
            f"the same idle load against the bare echo ({echo['accepted']:,} chargers)",
            echo["idle_cpu_share"] * 100,
            "% core",
            "reference",
            None,
            f"{echo['heartbeats']} heartbeats, {echo['status_notifications']} status "
            f"notifications; the CSMS used {share / max(echo['idle_cpu_share'], 1e-9):.1f}x",
        )
    ]


def target_rows(runs: Runs) -> list[Row]:
    """Every target of the benchmark, from one run's echo, naive and CSMS steps."""
    return _latency_rows(runs) + _throughput_rows(runs) + _storm_rows(runs)


def table(rows: list[Row]) -> str:
    lines = ["| figure | measured | target | result |", "|---|---:|---|---|"]
    for r in rows:
        mark = "reference" if r.ok is None else ("PASS" if r.ok else "**MISS**")
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.name}{note} | {r.value:,.3f} {r.unit} | {r.target} | {mark} |")
    return "\n".join(lines)


def ladder_table(runs: Runs) -> str:
    head = "| server | chargers | Authorize/s | p50 ms | p95 ms | p99 ms | server CPU µs/call | errors |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label in ("echo", "echo-fast", "naive", "csms", "csms-own", "csms-command"):
        for chargers, _ in LADDER:
            run = runs.get(f"{label}@{chargers}")
            if run:
                a = run["actions"].get("Authorize", {})
                cells = [label, f"{chargers:,}", f"{run['throughput']:,.0f}"]
                cells += [f"{a.get(k, 0):.3f}" for k in ("p50_ms", "p95_ms", "p99_ms")]
                cells += [f"{run.get('server_cpu_us_per_call', 0):.0f}", str(run["errors"])]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_line(when: str, meta: dict[str, Any]) -> str:
    """When and where: the CPU, the load average around the run, the hypervisor's steal."""
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " + (
        f"Python {platform.python_version()}"
    )
    return (
        f"Measured {when} on {cpu_model} ({machine}); server pinned to core 0, "
        f"load generator to core 1{' (QUICK run: counts / 5)' if QUICK > 1 else ''}; "
        f"load average before/after the run: {meta['loadavg']['before']} / "
        f"{meta['loadavg']['after']} (other work on the machine); "
        f"CPU steal by the hypervisor {meta['steal']['seconds']} s in "
        f"{meta['steal']['wall_s']} s of wall time."
    )


def write_section(marker: str, heading: str, body: str) -> None:
    """Replace what stands between ``<!-- marker:begin -->`` and ``<!-- marker:end -->``
    in the README (appended under ``heading`` when the markers are missing)."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    block = f"{begin}\n{body}\n{end}"
    text = README.read_text() if README.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{block}\n"
    README.write_text(text)
