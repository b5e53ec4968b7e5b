"""Baseline against current: the CSMS's figures side by side, their ratio, and whether the
current checkout stays within 5 % of the baseline (each side's median when every step
was measured in several rounds, ``BENCH_ROUNDS``).

"Within 5 %" is one-sided: a figure may improve by any amount, and may get worse by at
most 5 % (throughput at least 0.95x the baseline's; latency, CPU, time and memory at most
1.05x). Why both checkouts in one run: the machine moves figures by more than 5 % between
runs; measured in alternating order step by step, drift falls on both alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.bench.authorize.measure import Runs
from tests.bench.authorize.settings import LADDER

TOLERANCE = 0.05
T = TypeVar("T")


@dataclass(frozen=True)
class Figure:
    """A figure both checkouts measure: how to read it from a tree's runs, and which way
    is better."""

    name: str
    unit: str
    higher_is_better: bool
    read: Callable[[Runs], float]


def _authorize(key: str, field: str) -> Callable[[Runs], float]:
    return lambda runs: float(runs[key]["actions"]["Authorize"][field])


def _run(key: str, field: str) -> Callable[[Runs], float]:
    return lambda runs: float(runs[key][field])


def _server_side_max(runs: Runs) -> float:
    return float(runs["csms-hung"].get("server_side", {}).get("max_ms", 0.0))


def figures() -> list[Figure]:
    out = [
        Figure("cache hit @1: p50", "ms", False, _authorize("csms@1", "p50_ms")),
        Figure("cache hit @1: p99", "ms", False, _authorize("csms@1", "p99_ms")),
    ]
    for n, _ in LADDER:
        out.append(Figure(f"cache hit @{n:,}", "calls/s", True, _run(f"csms@{n}", "throughput")))
        out.append(
            Figure(
                f"cache hit @{n:,}: server CPU",
                "µs/call",
                False,
                _run(f"csms@{n}", "server_cpu_us_per_call"),
            )
        )
    out += [
        Figure("open loop 2,000/s: p99", "ms", False, _authorize("csms-open-2000", "p99_ms")),
        Figure(
            "remote path, eMSP 50 ms: p99", "ms", False, _authorize("csms-remote-50ms", "p99_ms")
        ),
        Figure("hung eMSP: slowest answer", "ms", False, _authorize("csms-hung", "max_ms")),
        Figure("hung eMSP, server side: slowest decision", "ms", False, _server_side_max),
        Figure("storm: 5,000 connect, all Accepted", "s", False, _run("storm", "seconds")),
        Figure(
            "idle 5,000: server CPU", "% core", False, lambda r: 100 * r["storm"]["idle_cpu_share"]
        ),
        Figure("RSS per idle connection", "KB", False, _run("storm", "rss_per_connection_kb")),
    ]
    return out


def verdict(ratio: float, higher_is_better: bool) -> str:
    worse = ratio < 1 - TOLERANCE if higher_is_better else ratio > 1 + TOLERANCE
    better = ratio > 1 + TOLERANCE if higher_is_better else ratio < 1 - TOLERANCE
    return "**no**" if worse else ("yes (better)" if better else "yes")


def compare(baseline: list[Runs], current: list[Runs]) -> list[dict[str, Any]]:
    """One row per figure: each side's median over its rounds, current / baseline, the
    verdict, and the ratio of every round (the noise the verdict stands on)."""
    rows = []
    for f in figures():
        bs, cs = [f.read(r) for r in baseline], [f.read(r) for r in current]
        b, c = statistics.median(bs), statistics.median(cs)
        ratio = c / b if b else float("inf")
        rows.append(
            {
                "figure": f.name,
                "unit": f.unit,
                "higher_is_better": f.higher_is_better,
                "baseline": round(b, 3),
                "current": round(c, 3),
                "ratio": round(ratio, 3),
                "within": verdict(ratio, f.higher_is_better),
                "rounds": [round(y / x, 3) if x else None for x, y in zip(bs, cs, strict=True)],
            }
        )
    return rows


def comparison_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | baseline | current | current / baseline | within 5 %? | per round |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        way = "higher is better" if r["higher_is_better"] else "lower is better"
        per_round = ", ".join(f"{x:.3f}" if x is not None else "-" for x in r["rounds"])
        lines.append(
            f"| {r['figure']} ({way}) | {r['baseline']:,.3f} {r['unit']} "
            f"| {r['current']:,.3f} {r['unit']} | {r['ratio']:.3f} | {r['within']} "
            f"| {per_round} |"
        )
    return "\n".join(lines)


def interleaved(items: Sequence[T], step: int) -> list[T]:
    """``items`` in order on even steps and reversed on odd ones (A B, B A, A B, ...), so
    neither checkout is always measured first."""
    return list(items) if step % 2 == 0 else list(reversed(items))
