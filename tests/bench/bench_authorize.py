"""OCPP Authorize benchmarks: the real CSMS beside a naive ``ocpp``-library CSMS and a bare echo.

One run, this 2-core machine: every server under test is a subprocess pinned to core 0,
the load generator (``simulator.load``, uvloop + orjson, one CALL in flight per charger)
runs here pinned to core 1, the eMSP sandbox shares core 1 (it idles except in the
remote-path runs, where the generator sends only 1,000 calls/s). The echo server's
figures double as the generator's calibration: the generator is not the bottleneck of a
run whose throughput is well below what it pushed through the echo.

What "cache hit" means here: the CSMS is ``csms serve`` with OCPI enabled, so the
roaming :class:`~csms.authz.service.AuthorizationService` is the authorizer; an eMSP
sandbox registers through the real credentials handshake (``POST /api/partners/invite``
on the admin API) and pushes its tokens; the HIT* tokens are whitelist ALWAYS, so they
are decided from the token cache without an eMSP call. REM* tokens are NEVER (always
real-time), used for the remote path with the sandbox answering after 50 ms, and with
the sandbox hung (deadline fallback).

Run: ``python -m tests.bench authorize`` (``make bench`` runs every benchmark).
Env: ``BENCH_QUICK=1`` divides every call count by 5 (smoke run);
``BENCH_CSMS_LOG_LEVEL=warning`` measures the CSMS without its per-decision log line;
``BENCH_STEAL_LIMIT`` (default 0.02) and ``BENCH_ATTEMPTS`` (default 3): a step during
which the hypervisor took more than that share of a pinned core is measured again
(see :func:`measured`); ``BENCH_ATTEMPTS=1`` measures every step exactly once.
Output: a table on stdout, ``var/bench/authorize.json``, and the figures section of
``tests/bench/README.md`` (between the ``authorize`` markers) rewritten.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulator.load import LoadConfig, LoadReport, run_load
from tests.bench import rawws
from tests.bench.procs import (
    CLIENT_CPU,
    OUT,
    SERVER_CPU,
    CpuMeter,
    Proc,
    free_port,
    pin_self,
    raise_nofile,
)

QUICK = 5 if os.environ.get("BENCH_QUICK") else 1
README = Path(__file__).with_name("README.md")
ADMIN_TOKEN = "bench-admin-token"
DEADLINE_S = 1.0  # authz.authorize_deadline_s for the hung-eMSP run
HIT_TAGS = tuple(f"HIT{n:05d}" for n in range(1, 1001))
REM_TAGS = tuple(f"REM{n:05d}" for n in range(1, 1001))
LOG_LEVEL = os.environ.get("BENCH_CSMS_LOG_LEVEL", "info")  # what production runs at
# "lean": tests/bench/lean_emsp.py (keeps nothing per call, see there why); "sandbox":
# the simulator's eMSP sandbox, as in engineer H's runs.
EMSP = os.environ.get("BENCH_EMSP", "lean")
STORM = 5000
CHARGER_IDS = "LOAD{n:05d}"

# A measured step during which the hypervisor took more than this share of either
# pinned core's wall time is measured again, up to ATTEMPTS times in all; the attempt
# with the least steal is the one reported, and every attempt is kept in the JSON.
STEAL_LIMIT = float(os.environ.get("BENCH_STEAL_LIMIT", "0.02"))
ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", "3"))

# (chargers, calls) of the closed-loop Authorize runs.
LADDER = ((1, 4000), (10, 20000), (100, 60000), (1000, 60000))


@dataclass
class Row:
    """One measured figure against its target."""

    name: str
    value: float
    unit: str
    target: str
    ok: bool | None  # None: reference figure, no target
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)

    def add(
        self, name: str, value: float, unit: str, target: str = "", ok: bool | None = None, note=""
    ) -> None:
        self.rows.append(Row(name, round(value, 3), unit, target, ok, note))
        mark = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"  {name:<58} {value:>12,.3f} {unit:<8} {target:<16} {mark} {note}", flush=True)


# ----------------------------------------------------------------- servers


def start_echo() -> tuple[Proc, str]:
    proc = Proc("echo", ["-m", "simulator.cli", "echo-server", "--port", "0"])
    m = proc.wait_for(r"listening on (ws://\S+)")
    return proc, m.group(1)


def start_naive() -> tuple[Proc, str]:
    proc = Proc(
        "naive",
        [
            "-m",
            "tests.bench.naive_csms",
            "--port",
            "0",
            "--log-file",
            str(OUT / "naive-frames.log"),
        ],
    )
    m = proc.wait_for(r"listening on (ws://\S+)")
    return proc, m.group(1)


def write_config(name: str, ports: dict[str, int]) -> Path:
    db = OUT / f"{name}.sqlite3"
    path = OUT / f"{name}.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {ports["ocpp_port"]}
unknown_chargers = "accept"
ping_interval_s = 0
listen_backlog = 8192
call_timeout_s = 10.0

[store]
path = "{db}"

[admin]
host = "127.0.0.1"
port = {ports["admin_port"]}
token = "{ADMIN_TOKEN}"

[ocpi]
host = "127.0.0.1"
port = {ports["ocpi_port"]}
public_base_url = "http://127.0.0.1:{ports["ocpi_port"]}"
connection_limit_per_partner = 2000
token_sync_interval_s = 86400.0

[authz]
authorize_deadline_s = {DEADLINE_S}

[log]
level = "{LOG_LEVEL}"
format = "json"
"""
    )
    return path


def fresh_db(name: str) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{OUT / name}.sqlite3{suffix}").unlink(missing_ok=True)
    return str(OUT / f"{name}.sqlite3")


async def preregister(name: str, count: int) -> None:
    """Known chargers (the storm measures connecting, not auto-registration writes)."""
    from csms.store.db import Database

    db = await Database.open(fresh_db(name))
    try:
        now = datetime.now(UTC).isoformat()
        async with db.transaction() as tx:
            for n in range(1, count + 1):
                await tx.execute(
                    "INSERT INTO chargers (id, registration_status, created_at) VALUES (?, ?, ?)",
                    (CHARGER_IDS.format(n=n), "Accepted", now),
                )
    finally:
        await db.close()


def start_csms(name: str) -> tuple[Proc, dict[str, Any]]:
    """``csms serve`` on fixed free ports (the OCPI public URL must be known up front);
    ready once all three listen (log-level independent)."""
    info: dict[str, Any] = {k: free_port() for k in ("ocpp_port", "admin_port", "ocpi_port")}
    cfg = write_config(name, info)
    proc = Proc(name, ["-m", "csms", "serve", "--config", str(cfg)])
    deadline = time.monotonic() + 30
    pending = [info["ocpp_port"], info["admin_port"], info["ocpi_port"]]
    while pending:
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"csms did not start, see {proc.log_path}")
        try:
            socket.create_connection(("127.0.0.1", pending[0]), timeout=1).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.05)
    info["ocpp_url"] = f"ws://127.0.0.1:{info['ocpp_port']}/ocpp"
    return proc, info


def admin_post(info: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{info['admin_port']}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def start_emsp(info: dict[str, Any]) -> tuple[Proc, str]:
    """The eMSP (lean or sandbox, see EMSP) registers via the credentials handshake and
    pushes its tokens."""
    tokens = OUT / "emsp-tokens.csv"
    lines = ["uid,type,whitelist"]
    lines += [f"{t},RFID,ALWAYS" for t in HIT_TAGS]
    lines += [f"{t},RFID,NEVER" for t in REM_TAGS]
    tokens.write_text("\n".join(lines) + "\n")
    invite = admin_post(info, "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"})
    if EMSP == "lean":
        argv = [
            "-m",
            "tests.bench.lean_emsp",
            "--tokens",
            str(tokens),
            f"--register-with={invite['versions_url']}",
            f"--token-a={invite['token_a']}",
        ]
    else:
        argv = [
            "-m",
            "simulator.emsp.cli",
            "serve",
            "--port",
            "0",
            "--control-port",
            "0",
            "--quiet",
            "--tokens",
            str(tokens),
            f"--register-with={invite['versions_url']}",
            f"--token-a={invite['token_a']}",  # a token may start with '-'
            "--push-tokens",
        ]
    proc = Proc("emsp", argv, cpu=CLIENT_CPU)
    control = proc.wait_for(r"control API: (http://\S+)/control/state").group(1)
    m = proc.wait_for(r"pushed (\d+) tokens, (\d+) accepted", timeout=60)
    if m.group(1) != m.group(2) or int(m.group(1)) != len(HIT_TAGS) + len(REM_TAGS):
        raise RuntimeError(f"eMSP token push incomplete: {m.group(0)}")
    return proc, control


def emsp_behaviour(control: str, mode: str, delay_ms: int = 0) -> None:
    req = urllib.request.Request(
        f"{control}/control/behaviour",
        data=json.dumps({"mode": mode, "delay_ms": delay_ms}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


# ----------------------------------------------------------------- load


async def load(
    url: str,
    chargers: int,
    calls: int,
    *,
    tags: tuple[str, ...] = HIT_TAGS,
    rate: float = 0.0,
    timeout: float = 10.0,
) -> LoadReport:
    cfg = LoadConfig(
        url=url,
        chargers=chargers,
        calls=max(chargers, calls // QUICK),
        rate=rate,
        mix="Authorize",
        id_pattern=CHARGER_IDS,
        id_tags=tags[:chargers] if chargers <= len(tags) else tags,
        timeout=timeout,
        connect_concurrency=500,
    )
    report = await run_load(cfg)
    if report.connect_failures or report.errors:
        print(f"  !! {report.connect_failures} connect failures, errors {report.error_kinds}")
    return report


def core_steal() -> dict[int, float]:
    """Seconds stolen so far from each of the two pinned cores (``/proc/stat``)."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for line in Path("/proc/stat").read_text().splitlines():
        name, _, rest = line.partition(" ")
        if (
            name.startswith("cpu")
            and name[3:].isdigit()
            and int(name[3:]) in (SERVER_CPU, CLIENT_CPU)
        ):
            fields = rest.split()
            out[int(name[3:])] = int(fields[7]) / tick if len(fields) > 7 else 0.0
    return out


def steal_share(before: dict[int, float], wall_s: float) -> float:
    """The largest share of ``wall_s`` that either pinned core lost since ``before``."""
    after = core_steal()
    return max(((after[c] - before.get(c, 0.0)) / max(wall_s, 1e-9) for c in after), default=0.0)


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


async def measured(
    label: str, step: Callable[[], Awaitable[LoadReport]], results: Results, proc: Proc
) -> LoadReport:
    """``step`` measured once, or again while the hypervisor disturbed it.

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
            a = report.actions.get("Authorize")
            p99 = f"p99 {a.p99_ms:.3f} ms, " if a is not None else ""
            print(
                f"  {label}: {p99}{report.throughput:,.0f} calls/s with {share:.1%} of a core "
                f"stolen: measuring again ({n + 1} of {ATTEMPTS})",
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
    results.runs[label] = run
    return best


def auth_stats(report: LoadReport) -> Any:
    return report.actions["Authorize"]


async def ladder(label: str, url: str, proc: Proc, results: Results) -> dict[int, LoadReport]:
    """Closed-loop Authorize at each ladder step; also the server's CPU per call, a figure
    that other load on the machine disturbs far less than throughput."""
    out: dict[int, LoadReport] = {}
    for chargers, calls in LADDER:
        cpu: dict[int, float] = {}  # id(report) -> server CPU µs per call of that attempt

        async def step(
            chargers: int = chargers, calls: int = calls, cpu: dict[int, float] = cpu
        ) -> LoadReport:
            cpu0 = proc.cpu_seconds()
            report = await load(url, chargers, calls)
            cpu[id(report)] = (proc.cpu_seconds() - cpu0) / max(1, report.calls_done) * 1e6
            return report

        key = f"{label}@{chargers}"
        report = await measured(key, step, results, proc)
        run = results.runs[key]
        us = cpu[id(report)]
        stolen = run["steal_share"]
        out[chargers] = report
        run["server_cpu_us_per_call"] = round(us, 1)
        a = auth_stats(report)
        print(
            f"  {label:<6} {chargers:>5} chargers: {report.throughput:>9,.0f} calls/s  "
            f"p50 {a.p50_ms:.3f}  p95 {a.p95_ms:.3f}  p99 {a.p99_ms:.3f} ms  "
            f"server {us:.0f} us CPU/call  errors {report.errors}  rejected {a.rejected}  "
            f"steal {stolen:.1%} of a core, attempts {len(run['attempts'])}",
            flush=True,
        )
    return out


# ----------------------------------------------------------------- connection storm


class _Idle:
    """A bare charger for the storm (tests.bench.rawws): connect, BootNotification, then
    Heartbeats on a period."""

    def __init__(self, url: str, cp_id: str) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.host, self.port, self.path = host, int(port), f"/{path}/{cp_id}"
        self.ws: rawws.RawCharger | None = None

    async def boot(self) -> bool:
        self.ws = await rawws.connect(self.host, self.port, self.path)
        reply = await self.ws.call(
            "BootNotification", b'{"chargePointVendor":"bench","chargePointModel":"Idle"}'
        )
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


async def storm(results: Results) -> None:
    """5,000 chargers connect at once, then idle with a Heartbeat every 10 s. The storm
    is measured again (fresh server) when steal disturbed it, as in :func:`measured`."""
    name = "csms-storm"
    attempts: list[dict[str, Any]] = []
    for n in range(1, ATTEMPTS + 1):
        await preregister(name, STORM)
        proc, info = start_csms(name)
        try:
            await asyncio.sleep(1.0)
            rss0 = proc.rss_kb()
            chargers = [
                _Idle(info["ocpp_url"], CHARGER_IDS.format(n=i)) for i in range(1, STORM + 1)
            ]

            async def one(c: _Idle) -> bool:
                try:
                    return await c.boot()
                except Exception:
                    return False

            t0, cpu0, own0 = time.monotonic(), proc.cpu_seconds(), time.process_time()
            s0 = core_steal()
            ok = await asyncio.gather(*(one(c) for c in chargers))
            took = time.monotonic() - t0
            stolen = steal_share(s0, took)
            server_cpu, own_cpu = proc.cpu_seconds() - cpu0, time.process_time() - own0
            accepted = sum(ok)
            attempts.append(
                {"steal_share": round(stolen, 4), "seconds": round(took, 3), "accepted": accepted}
            )
            if stolen > STEAL_LIMIT and n < ATTEMPTS:
                print(
                    f"  storm: {took:.2f} s with {stolen:.1%} of a core stolen: "
                    f"measuring again ({n + 1} of {ATTEMPTS})",
                    flush=True,
                )
                for c in chargers:
                    c.close()
                continue
            results.runs["storm"] = {"attempts": attempts}
            results.add(
                f"{STORM:,} chargers connect at once: all Accepted",
                took,
                "s",
                "<= 3 s, 0 fail",
                accepted == STORM and took <= 3.0,
                f"{accepted}/{STORM} accepted; CPU s server {server_cpu:.2f}, generator "
                f"{own_cpu:.2f}; steal {stolen:.1%}, attempt {n}",
            )
            live = [c for c, good in zip(chargers, ok, strict=True) if good]
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
            per = (rss - rss0) / max(1, len(live))
            results.add(
                f"{len(live):,} idle chargers, Heartbeat/10 s: server CPU",
                share * 100,
                "% core",
                "<= 10 %",
                share <= 0.10,
                f"{sum(beats)} heartbeats in {window:.0f} s",
            )
            results.add(
                "RSS per idle connection",
                per,
                "KB",
                "<= 20 KB",
                per <= 20,
                f"RSS {rss0 / 1024:.0f} -> {rss / 1024:.0f} MB",
            )
            for c in live:
                c.close()
            return
        finally:
            proc.stop()


# ----------------------------------------------------------------- main


async def run() -> Results:
    results = Results()
    print(
        f"  cores {os.cpu_count()} (this process pinned to {sorted(os.sched_getaffinity(0))}), fd limit {raise_nofile()}, quick divisor {QUICK}",
        flush=True,
    )

    proc, url = start_echo()
    try:
        echo = await ladder("echo", url, proc, results)
        # The open-loop run against the echo: the floor the generator and the machine
        # put under the CSMS's open-loop p99 in this run (other tenants move it a lot).
        echo_open = await measured(
            "echo-open-2000", lambda: load(url, 1000, 20000, rate=2000), results, proc
        )
    finally:
        proc.stop()
    proc, url = start_naive()
    try:
        naive = await ladder("naive", url, proc, results)
    finally:
        proc.stop()

    name = "csms"
    await preregister(name, 1000)
    proc, info = start_csms(name)
    emsp = None
    try:
        emsp, control = start_emsp(info)
        url = info["ocpp_url"]
        # Warm the token memo and the connections' code paths before measuring.
        await load(url, 1000, 5000)
        csms = await ladder("csms", url, proc, results)

        # Open loop: 2,000/s over 1,000 chargers for 10 s.
        report = await measured(
            "csms-open-2000", lambda: load(url, 1000, 20000, rate=2000), results, proc
        )
        a = auth_stats(report)
        results.add(
            "open loop 2,000 Authorize/s over 1,000 chargers: p99",
            a.p99_ms,
            "ms",
            "<= 10 ms",
            a.p99_ms <= 10 and report.errors == 0,
            f"p50 {a.p50_ms} ms, errors {report.errors}, behind {report.behind_schedule}",
        )

        ea = auth_stats(echo_open)
        results.add(
            "echo open loop 2,000/s (calibration): p99",
            ea.p99_ms,
            "ms",
            "reference",
            None,
            f"p50 {ea.p50_ms} ms",
        )

        # Remote path: NEVER tokens, eMSP answers after 50 ms, 1,000/s over 1,000 chargers.
        emsp_behaviour(control, "delay", 50)
        report = await measured(
            "csms-remote-50ms",
            lambda: load(url, 1000, 10000, tags=REM_TAGS, rate=1000),
            results,
            proc,
        )
        a = auth_stats(report)
        results.add(
            "remote path, eMSP 50 ms, 1,000/s: p99",
            a.p99_ms,
            "ms",
            "<= 60 ms",
            a.p99_ms <= 60 and report.errors == 0 and a.rejected == 0,
            f"p50 {a.p50_ms} ms, errors {report.errors}, rejected {a.rejected}",
        )

        # Hung eMSP: every Authorize answered (fallback) within deadline + 50 ms.
        emsp_behaviour(control, "hang")
        report = await measured(
            "csms-hung",
            lambda: load(url, 1000, 1000, tags=REM_TAGS, rate=200, timeout=5),
            results,
            proc,
        )
        a = auth_stats(report)
        limit = DEADLINE_S * 1000 + 50
        results.add(
            f"hung eMSP (deadline {DEADLINE_S:g} s): answered within deadline + 50 ms",
            100.0 * (a.count - a.errors) / max(1, a.count) if a.max_ms <= limit else 0.0,
            "%",
            "100 %",
            a.errors == 0 and a.max_ms <= limit,
            f"max {a.max_ms} ms, p50 {a.p50_ms} ms, errors {report.errors}",
        )
        emsp_behaviour(control, "normal")
    finally:
        if emsp is not None:
            emsp.stop()
        proc.stop()

    # The hung run seen from the server: its own decision latency (frame arrival to the
    # fallback, the ``latency_ms`` of each ``authorization_decided``), which separates
    # the CSMS's deadline handling from the generator's and the machine's tail.
    timeouts = []
    for line in (OUT / "csms.log").read_text(errors="replace").splitlines():
        if '"authorization_decided"' in line and '"source":"fallback"' in line:
            timeouts.append(float(json.loads(line)["latency_ms"]))
    if timeouts:
        results.add(
            "hung eMSP, server side: decision latency max (from frame arrival)",
            max(timeouts),
            "ms",
            "reference",
            None,
            f"{len(timeouts)} fallbacks, p50 {sorted(timeouts)[len(timeouts) // 2]:.3f} ms",
        )

    e100, n100, c100 = (echo[100].throughput, naive[100].throughput, csms[100].throughput)
    results.add("echo @100 (generator calibration)", e100, "calls/s", "reference", None)
    results.add("naive ocpp-library CSMS @100", n100, "calls/s", "reference", None)
    results.add(
        "csms cache hit @100 vs naive", c100 / n100 if n100 else 0, "x", ">= 3x", c100 >= 3 * n100
    )
    results.add(
        "csms cache hit @100 vs echo",
        100 * c100 / e100 if e100 else 0,
        "%",
        ">= 50 %",
        c100 >= 0.5 * e100,
    )
    c1000 = csms[1000].throughput
    results.add("csms cache hit @1,000", c1000, "calls/s", ">= 12,000/s", c1000 >= 12000)
    a1 = auth_stats(csms[1])
    results.add("csms cache hit @1: p50", a1.p50_ms, "ms", "<= 0.3 ms", a1.p50_ms <= 0.3)
    results.add("csms cache hit @1: p99", a1.p99_ms, "ms", "<= 0.6 ms", a1.p99_ms <= 0.6)
    # Headroom: what the generator can drive on its one core (calls per CPU-second of
    # its own, measured against the echo) over what the CSMS run needed. Not the echo's
    # throughput: the echo parses JSON and is itself the limit of its ladder step.
    for n, csms_rate in ((100, c100), (1000, c1000)):
        capacity = echo[n].generator_capacity
        headroom = capacity / csms_rate if csms_rate else 0.0
        results.add(
            f"generator headroom @{n:,} (capacity / csms)",
            headroom,
            "x",
            ">= 1.5x",
            headroom >= 1.5,
            f"generator {capacity:,.0f} calls per CPU-second",
        )

    await storm(results)
    return results


def table(results: Results) -> str:
    lines = [
        "| figure | measured | target | result |",
        "|---|---:|---|---|",
    ]
    for r in results.rows:
        mark = "reference" if r.ok is None else ("PASS" if r.ok else "**MISS**")
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.name}{note} | {r.value:,.3f} {r.unit} | {r.target} | {mark} |")
    return "\n".join(lines)


def ladder_table(results: Results) -> str:
    lines = [
        "| server | chargers | Authorize/s | p50 ms | p95 ms | p99 ms | server CPU µs/call | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("echo", "naive", "csms"):
        for chargers, _ in LADDER:
            run = results.runs.get(f"{label}@{chargers}")
            if not run:
                continue
            a = run["actions"].get("Authorize", {})
            lines.append(
                f"| {label} | {chargers:,} | {run['throughput']:,.0f} | {a.get('p50_ms', 0):.3f} "
                f"| {a.get('p95_ms', 0):.3f} | {a.get('p99_ms', 0):.3f} "
                f"| {run.get('server_cpu_us_per_call', 0):.0f} | {run['errors']} |"
            )
    return "\n".join(lines)


def write_readme(results: Results, when: str) -> None:
    begin, end = "<!-- authorize:begin -->", "<!-- authorize:end -->"
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " + (
        f"Python {platform.python_version()}"
    )
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    body = (
        f"{begin}\n"
        f"Measured {when} on {cpu_model} ({machine}); server pinned to core 0, "
        f"load generator to core 1{' (QUICK run: counts / 5)' if QUICK > 1 else ''}; "
        f"load average before/after the run: {results.runs.get('loadavg', {}).get('before')} / "
        f"{results.runs.get('loadavg', {}).get('after')} (other work on the machine); "
        f"CPU steal by the hypervisor {results.runs.get('steal', {}).get('seconds')} s in "
        f"{results.runs.get('steal', {}).get('wall_s')} s of wall time.\n\n"
        f"{table(results)}\n\n{ladder_table(results)}\n{end}"
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + body + tail
    else:
        text = text.rstrip() + "\n\n## Authorize figures (written by bench_authorize)\n\n" + body
        text += "\n"
    README.write_text(text)


def loadavg() -> str:
    """Other tenants' load: the machine is shared, and every figure here depends on it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def steal_seconds() -> float:
    """CPU time the hypervisor gave other guests while ours wanted it (all cores): the
    noise a load average inside this VM cannot see."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def main() -> None:
    before = loadavg()
    steal0, wall0 = steal_seconds(), time.monotonic()
    affinity = os.sched_getaffinity(0)
    pin_self(CLIENT_CPU)
    raise_nofile()
    try:
        import uvloop

        results = uvloop.run(run())
    except ImportError:  # pragma: no cover
        results = asyncio.run(run())
    finally:
        os.sched_setaffinity(0, affinity)  # the next benchmark in this process gets every core
    when = datetime.now(UTC).isoformat(timespec="seconds")
    results.runs["loadavg"] = {"before": before, "after": loadavg()}
    stolen, wall = steal_seconds() - steal0, time.monotonic() - wall0
    results.runs["steal"] = {"seconds": round(stolen, 2), "wall_s": round(wall, 1)}
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": when,
        "quick": QUICK,
        "rows": [r.__dict__ for r in results.rows],
        "runs": results.runs,
    }
    (OUT / "authorize.json").write_text(json.dumps(payload, indent=2))
    print(table(results))
    print(ladder_table(results))
    write_readme(results, when)


if __name__ == "__main__":
    main()
