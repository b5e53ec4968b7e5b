"""The ``csms-sim load`` command: its options, the calibration run, the printed report.

Why calibration is part of the command: figures are only trustworthy when the generator
has headroom, so ``--calibrate`` first measures it against the echo server and the report
flags a ceiling below 1.5x the measured rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from simulator.failover import split_urls
from simulator.load.echo import echo_subprocess
from simulator.load.engine import run_load
from simulator.load.model import STATELESS, LoadConfig, LoadReport, Recorder

DEFAULT_URL = "ws://127.0.0.1:9000/ocpp"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        action="append",
        default=None,
        help=f"CSMS base URL (default {DEFAULT_URL}); repeat it, or separate URLs with "
        "commas, for several nodes: a charger that loses its link moves to the next",
    )
    p.add_argument("--chargers", type=int, default=100, help="simulated chargers, one socket each")
    p.add_argument("--calls", type=int, default=10000, help="total CALLs in the measured phase")
    p.add_argument(
        "--rate", type=float, default=0.0, help="total calls/s (open loop); 0 = closed loop"
    )
    p.add_argument(
        "--mix", default="session", help="'session' or a comma list of " + ", ".join(STATELESS)
    )
    p.add_argument(
        "--meter-per-session", type=int, default=2, help="MeterValues per session (mix session)"
    )
    p.add_argument("--id-pattern", default="LOAD{n:05d}", help="charger ids; {n} counts from 1")
    p.add_argument(
        "--id-tags",
        default="LOADTAG",
        help="comma-separated idTags, each charger takes one at random",
    )
    p.add_argument(
        "--tags-in-order",
        action="store_true",
        help="charger n takes the n-th idTag (cycling) instead of a random one",
    )
    p.add_argument("--password", default=None, help="HTTP Basic password of every charger")
    p.add_argument("--ca-file", default=None, help="PEM CA to trust for a wss:// url")
    p.add_argument("--seed", type=int, default=0, help="seed for every random choice")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")
    p.add_argument("--no-boot", action="store_true", help="skip BootNotification before measuring")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="first measure the generator against an echo server",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--progress", action="store_true", help="live progress line even when not a TTY")


def config_from(args: argparse.Namespace, url: str | None = None) -> LoadConfig:
    mix = args.mix
    if mix != "session":
        bad = [a for a in mix.split(",") if a and a not in STATELESS]
        if bad:
            raise SystemExit(f"csms-sim load: --mix: cannot send {bad}; use session or {STATELESS}")
    return LoadConfig(
        url=url or ",".join(split_urls(args.url or [DEFAULT_URL])),
        chargers=args.chargers,
        calls=args.calls,
        rate=args.rate,
        mix=mix,
        meter_per_session=args.meter_per_session,
        id_pattern=args.id_pattern,
        id_tags=tuple(t for t in args.id_tags.split(",") if t) or ("LOADTAG",),
        tags_in_order=args.tags_in_order,
        password=args.password,
        seed=args.seed,
        timeout=args.timeout,
        boot=not args.no_boot,
        ca_file=args.ca_file,
    )


def render(report: LoadReport) -> str:
    lines = [
        f"target {report.url}  mode {report.mode}  chargers {report.chargers}",
        f"{report.calls_done}/{report.calls_planned} calls in {report.duration_s:.2f} s = "
        f"{report.throughput:,.0f} calls/s, {report.errors} errors "
        f"(generator: {report.generator_cpu_s:.2f} CPU-s, ceiling "
        f"{report.generator_capacity:,.0f} calls/CPU-s)",
        f"{'action':<20}{'count':>8}{'errors':>8}{'rejected':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}",
    ]
    for action, s in report.actions.items():
        lines.append(
            f"{action:<20}{s.count:>8}{s.errors:>8}{s.rejected:>9}{s.p50_ms:>9.2f}"
            f"{s.p95_ms:>9.2f}{s.p99_ms:>9.2f}{s.max_ms:>9.2f}"
        )
    if report.error_kinds:
        lines.append("errors: " + ", ".join(f"{k}={v}" for k, v in report.error_kinds.items()))
    if report.failovers:
        f = report.failover_ms
        lines.append(
            f"failovers: {report.failovers} charger(s) moved to another URL; boot answered "
            f"p50 {f.get('boot_p50', 0):.0f} / p99 {f.get('boot_p99', 0):.0f} ms, first call "
            f"served p50 {f.get('served_p50', 0):.0f} / p99 {f.get('served_p99', 0):.0f} / "
            f"max {f.get('served_max', 0):.0f} ms after the new socket"
        )
    if report.behind_schedule:
        lines.append(
            f"behind schedule: {report.behind_schedule} sends (generator or target saturated)"
        )
    if report.calibration:
        c = report.calibration
        flag = (
            ""
            if c["headroom"] >= 1.5
            else "  WARNING: below 1.5x, the generator may be the bottleneck"
        )
        lines.append(
            f"calibration: against echo {c['echo_throughput']:,.0f} calls/s; generator ceiling "
            f"{c['generator_capacity']:,.0f} calls per CPU-second = {c['headroom']:.2f}x the "
            f"measured rate{flag}"
        )
    return "\n".join(lines)


def progress_text(done: int, total: int, errors: int, elapsed: float) -> str:
    """One progress line: done of total with percentage, rate, errors, elapsed and ETA."""
    rate = done / elapsed if elapsed > 0 else 0.0
    pct = 100.0 * done / total if total else 100.0
    if done >= total:
        eta = "done"
    elif rate > 0:
        eta = f"ETA {(total - done) / rate:,.0f} s"
    else:
        eta = "ETA ?"
    return (
        f"  {done:,}/{total:,} calls ({pct:5.1f}%)  {rate:,.0f} calls/s  {errors} errors  "
        f"{elapsed:5.1f} s  {eta}"
    )


def _progress_printer(total: int) -> Callable[[Recorder, float], None]:
    def show(rec: Recorder, elapsed: float) -> None:
        line = progress_text(rec.done, total, sum(rec.err.values()), elapsed)
        print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)

    return show


async def main(args: argparse.Namespace) -> int:
    live = args.progress or sys.stderr.isatty()
    progress = _progress_printer(args.calls) if live else None
    calibration = None
    if args.calibrate:
        async with echo_subprocess() as echo_url:
            echo = await run_load(config_from(args, echo_url), progress)
        if progress:
            print(file=sys.stderr)
        calibration = {
            "echo_throughput": echo.throughput,
            "echo_errors": echo.errors,
            "generator_capacity": echo.generator_capacity,
        }
    report = await run_load(config_from(args), progress)
    if progress:
        print(file=sys.stderr)
    if calibration is not None:
        calibration["headroom"] = (
            round(calibration["generator_capacity"] / report.throughput, 2)
            if report.throughput
            else 0.0
        )
        report.calibration = calibration
    print(json.dumps(report.to_json(), indent=2) if args.json else render(report), flush=True)
    return 0 if report.errors == 0 and report.connect_failures == 0 else 1
