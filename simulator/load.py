"""The load generator (``csms-sim load``) and its yardstick (``csms-sim echo-server``).

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

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from simulator.fastws import DirectClientConnection, send_now

SUBPROTOCOL = Subprotocol("ocpp1.6")
STATELESS = ("Authorize", "Heartbeat", "MeterValues", "StatusNotification")


@dataclass
class LoadConfig:
    url: str
    chargers: int = 10
    calls: int = 1000
    rate: float = 0.0  # total calls/s; 0 = closed loop
    mix: str = "session"
    meter_per_session: int = 2
    id_pattern: str = "LOAD{n:05d}"
    id_tags: tuple[str, ...] = ("LOADTAG",)
    password: str | None = None
    seed: int = 0
    timeout: float = 10.0
    connect_concurrency: int = 200
    boot: bool = True


@dataclass
class ActionStats:
    count: int = 0
    errors: int = 0
    rejected: int = 0  # answered, but idTagInfo.status was not Accepted
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class LoadReport:
    url: str
    mode: str
    chargers: int
    calls_planned: int
    calls_done: int
    errors: int
    duration_s: float
    throughput: float
    actions: dict[str, ActionStats]
    error_kinds: dict[str, int] = field(default_factory=dict)
    connect_failures: int = 0
    behind_schedule: int = 0
    generator_cpu_s: float = 0.0  # CPU this process spent in the measured phase
    generator_capacity: float = 0.0  # calls per CPU-second: our one-core ceiling
    calibration: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Recorder:
    """Latencies per action in plain lists: appends are the cheapest thing we can do per call."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {}
        self.err: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.done = 0
        self.behind = 0

    def ok(self, action: str, ms: float) -> None:
        lst = self.lat.get(action)
        if lst is None:
            lst = self.lat[action] = []
        lst.append(ms)
        self.done += 1

    def error(self, action: str, kind: str) -> None:
        self.err[action] = self.err.get(action, 0) + 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.done += 1

    def reject(self, action: str) -> None:
        self.rejected[action] = self.rejected.get(action, 0) + 1

    def stats(self) -> dict[str, ActionStats]:
        out: dict[str, ActionStats] = {}
        for action in sorted(set(self.lat) | set(self.err)):
            values = sorted(self.lat.get(action, []))
            s = ActionStats(
                count=len(values) + self.err.get(action, 0),
                errors=self.err.get(action, 0),
                rejected=self.rejected.get(action, 0),
            )
            if values:
                s.p50_ms = round(percentile(values, 50), 3)
                s.p95_ms = round(percentile(values, 95), 3)
                s.p99_ms = round(percentile(values, 99), 3)
                s.max_ms = round(values[-1], 3)
            out[action] = s
        return out


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


class _Clock:
    """An OCPP timestamp refreshed at most every 10 ms: formatting per call is measurable."""

    def __init__(self) -> None:
        self._at = 0.0
        self._text = b""

    def now(self) -> bytes:
        t = time.monotonic()
        if t - self._at > 0.01:
            self._at = t
            self._text = (
                datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()
            )
        return self._text


class _Charger:
    """One lean charger: a socket, a message counter, a plan of actions, one CALL in flight."""

    def __init__(
        self,
        n: int,
        cp_id: str,
        tag: str,
        quota: int,
        cfg: LoadConfig,
        rec: _Recorder,
        clock: _Clock,
    ) -> None:
        self.cp_id = cp_id
        self.quota = quota
        self.cfg = cfg
        self.rec = rec
        self.clock = clock
        self.ws: ClientConnection | None = None
        self.writes: set[asyncio.Task[None]] = set()
        self.reader: asyncio.Task[None] | None = None
        self.k = 0  # CALLs of the quota done (answered, failed or timed out)
        self.inflight: tuple[str, str, float] | None = None  # message id, action, t0
        self.sent_at = 0.0
        self.interval = self.start_at = 0.0
        self.timeout = cfg.timeout
        self.ids = itertools.count(1)
        self.prefix = f"{n:x}-".encode()
        self.tag = json.dumps(tag).encode()
        self.tx: int | None = None
        self.meter = 0
        self.cycle = 0
        self.pending_stop = False
        self.meter_left = 0
        self.stateless = [a for a in cfg.mix.split(",") if a] if cfg.mix != "session" else []
        self.frames = {
            "Authorize": b'","Authorize",{"idTag":' + self.tag + b"}]",
            "Heartbeat": b'","Heartbeat",{}]',
        }

    async def connect(self) -> None:
        url = f"{self.cfg.url.rstrip('/')}/{quote(self.cp_id, safe='')}"
        headers = {}
        if self.cfg.password is not None:
            token = base64.b64encode(f"{self.cp_id}:{self.cfg.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.ws = await websockets.connect(
            url,
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=self.cfg.timeout,
            ping_interval=None,
            compression=None,
            max_size=2**20,
            create_connection=DirectClientConnection,
        )
        if self.cfg.boot:
            reply = await self._exchange(
                b'","BootNotification",{"chargePointVendor":"csms-sim","chargePointModel":"Load"}]'
            )
            if reply[0] != 3 or reply[2].get("status") != "Accepted":
                raise RuntimeError(f"{self.cp_id}: BootNotification not accepted: {reply}")
        # Started here, not at the measured phase's start: a thousand first task steps
        # at once held the generator's loop for ~20 ms and showed as the open loop's tail.
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.reader = self.loop.create_task(self._read_library_path())

    async def _exchange(self, tail: bytes) -> list[Any]:
        ws = self.ws
        assert ws is not None
        mid = self.prefix + str(next(self.ids)).encode()
        await ws.send(b'[2,"' + mid + tail, text=True)
        while True:
            raw = await asyncio.wait_for(ws.recv(decode=False), self.cfg.timeout)
            msg = orjson.loads(raw)
            if msg[0] == 2:  # the CSMS asked us something: answer, keep waiting
                await ws.send(orjson.dumps([3, msg[1], {}]), text=True)
                continue
            if msg[1].encode() == mid:
                return msg  # type: ignore[no-any-return]

    def next_action(self, remaining: int) -> tuple[str, bytes]:
        """The plan: sessions that always close within the quota (counts stay exact)."""
        if self.stateless:
            action = self.stateless[self.cycle % len(self.stateless)]
            self.cycle += 1
            return action, self._frame(action)
        if self.tx is not None or self.pending_stop:
            if self.meter_left > 0 and remaining > 1:
                self.meter_left -= 1
                return "MeterValues", self._frame("MeterValues")
            return "StopTransaction", self._frame("StopTransaction")
        step = self.cycle % 3
        self.cycle += 1
        if step == 1 and remaining >= 2:
            self.meter_left = self.cfg.meter_per_session
            return "StartTransaction", self._frame("StartTransaction")
        if step == 2:
            return "Heartbeat", self.frames["Heartbeat"]
        return "Authorize", self.frames["Authorize"]

    def _frame(self, action: str) -> bytes:
        if action in self.frames:
            return self.frames[action]
        ts = self.clock.now()
        if action == "StartTransaction":
            self.meter += 1
            return (
                b'","StartTransaction",{"connectorId":1,"idTag":'
                + self.tag
                + b',"meterStart":'
                + str(self.meter).encode()
                + b',"timestamp":"'
                + ts
                + b'"}]'
            )
        if action == "StopTransaction":
            self.meter += 100
            tid = self.tx if self.tx is not None else -1
            return (
                b'","StopTransaction",{"transactionId":'
                + str(tid).encode()
                + b',"meterStop":'
                + str(self.meter).encode()
                + b',"timestamp":"'
                + ts
                + b'","reason":"Local"}]'
            )
        if action == "MeterValues":
            self.meter += 10
            tx = b',"transactionId":' + str(self.tx).encode() if self.tx is not None else b""
            return (
                b'","MeterValues",{"connectorId":1'
                + tx
                + b',"meterValue":[{"timestamp":"'
                + ts
                + b'","sampledValue":[{"value":"'
                + str(self.meter).encode()
                + b'","measurand":"Energy.Active.Import.Register","unit":"Wh"}]}]}]'
            )
        if action == "StatusNotification":
            return (
                b'","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
                b'"status":"Available","timestamp":"' + ts + b'"}]'
            )
        raise ValueError(f"the load generator cannot send {action}")

    def _settle(self, action: str, reply: list[Any]) -> None:
        if action == "StartTransaction":
            self.tx = reply[2].get("transactionId")
            self.pending_stop = True
        elif action == "StopTransaction":
            self.tx = None
            self.pending_stop = False
        if action in ("Authorize", "StartTransaction"):
            info = reply[2].get("idTagInfo") or {}
            if info.get("status") != "Accepted":
                self.rec.reject(action)

    def start(self, interval: float, start_at: float, timeout: float) -> asyncio.Future[None]:
        """Run the measured phase from callbacks: each answer, taken straight from the
        socket by :class:`DirectClientConnection`, records its latency and sends the next
        CALL (closed loop) or schedules it (open loop, ``interval`` > 0, latency from the
        scheduled time). No coroutine runs per call; see ``simulator/fastws.py`` for why.
        The returned future is done when the quota is spent or the socket closes."""
        ws = self.ws
        assert isinstance(ws, DirectClientConnection)
        self.interval, self.start_at, self.timeout = interval, start_at, timeout
        ws.on_frame = self._on_frame
        if not self.finished.done():  # the socket may have closed since connect()
            self._next()
        return self.finished

    def _next(self) -> None:
        if self.k >= self.quota:
            self._finish()
            return
        action, tail = self.next_action(self.quota - self.k)
        interval = self.interval
        if interval > 0:
            due = self.start_at + self.k * interval
            delay = due - time.perf_counter()
            if delay > 0:
                self.loop.call_later(delay, self._send, action, tail, due)
                return
            if delay < -interval:
                self.rec.behind += 1
            self._send(action, tail, due)
        else:
            self._send(action, tail, time.perf_counter())

    def _send(self, action: str, tail: bytes, t0: float) -> None:
        if self.finished.done():
            return
        mid = self.prefix + str(next(self.ids)).encode()
        self.inflight = (mid.decode(), action, t0)
        self.sent_at = time.perf_counter()
        self._write(b'[2,"' + mid + tail)

    def _write(self, frame: bytes) -> None:
        if not send_now(self.ws, frame):
            task = self.loop.create_task(self._write_later(frame))
            self.writes.add(task)
            task.add_done_callback(self.writes.discard)

    async def _write_later(self, frame: bytes) -> None:
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(frame, text=True)

    def _on_frame(self, raw: bytes) -> None:
        try:
            msg = orjson.loads(raw)
            kind, mid = msg[0], msg[1]
        except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
            self.rec.kinds["unparsable_frame"] = self.rec.kinds.get("unparsable_frame", 0) + 1
            return
        if kind == 2:  # the CSMS asked us something: answer, keep waiting
            self._write(orjson.dumps([3, mid, {}]))
            return
        inflight = self.inflight
        if inflight is None or mid != inflight[0]:
            return  # the answer to a CALL that already timed out
        self.inflight = None
        action = inflight[1]
        if kind == 3:
            self.rec.ok(action, (time.perf_counter() - inflight[2]) * 1000.0)
            self._settle(action, msg)
        else:
            self.rec.error(action, f"CallError:{msg[2] if len(msg) > 2 else '?'}")
            if action == "StopTransaction":
                self.tx, self.pending_stop = None, False
        self.k += 1
        self._next()

    def check_timeout(self, now: float) -> None:
        """Called by the run's watchdog: one timer for all chargers, not one per CALL."""
        inflight = self.inflight
        if inflight is not None and now - self.sent_at > self.timeout:
            self.inflight = None
            self.rec.error(inflight[1], "timeout")
            self.k += 1
            self._next()

    async def _read_library_path(self) -> None:
        """Frames the direct path leaves to websockets (fragmented ones) arrive here; the
        loop also learns that the socket closed."""
        ws = self.ws
        assert ws is not None
        try:
            while True:
                self._on_frame(await ws.recv(decode=False))
        except websockets.ConnectionClosed:
            if not self.finished.done():
                inflight, self.inflight = self.inflight, None
                action = inflight[1] if inflight is not None else "Authorize"
                for _ in range(self.quota - self.k):
                    self.rec.error(action, "connection_closed")
                self.k = self.quota
                self._finish()

    def _finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


async def run_load(
    cfg: LoadConfig, progress: Callable[[_Recorder, float], None] | None = None
) -> LoadReport:
    """Connect (and boot) every charger, then run the measured phase and summarise it."""
    rng = random.Random(cfg.seed)
    rec = _Recorder()
    clock = _Clock()
    base, extra = divmod(cfg.calls, cfg.chargers)
    chargers = [
        _Charger(
            n,
            cfg.id_pattern.format(n=n),
            cfg.id_tags[0] if len(cfg.id_tags) == 1 else rng.choice(cfg.id_tags),
            base + (1 if n <= extra else 0),
            cfg,
            rec,
            clock,
        )
        for n in range(1, cfg.chargers + 1)
    ]
    gate = asyncio.Semaphore(cfg.connect_concurrency)
    failures: dict[str, int] = {}

    async def connect(ch: _Charger) -> bool:
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
    )


# ----------------------------------------------------------------- echo server


class EchoServer:
    """The yardstick: answers every CALL at once with a plausible CALLRESULT."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.port: int = server.sockets[0].getsockname()[1] if server.sockets else 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


def _echo_payload(action: str, tx: itertools.count[int]) -> dict[str, Any]:
    """A plausible answer; only StartTransaction and the time-bearing ones vary."""
    if action in ("Authorize", "StartTransaction"):
        info: dict[str, Any] = {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            info["transactionId"] = next(tx)
        return info
    if action in ("BootNotification", "Heartbeat"):
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if action == "Heartbeat":
            return {"currentTime": now}
        return {"status": "Accepted", "interval": 300, "currentTime": now}
    return {}


async def _echo_handler(ws: ServerConnection) -> None:
    """The yardstick the issue names: websockets and the standard library's json, no
    schema, no dispatch table. (Until the generator took its direct frame path it only
    cut the id out of the text, because a JSON round trip made it slower than the
    generator could drive; with the lean generator that is no longer so.)"""
    tx = itertools.count(1)
    while True:
        try:
            raw = await ws.recv()
        except websockets.ConnectionClosed:
            return
        try:
            msg = json.loads(raw)
            kind, unique_id, action = msg[0], msg[1], msg[2]
        except (ValueError, IndexError, KeyError, TypeError):
            await ws.send('[4,"-1","FormationViolation","not an OCPP-J frame",{}]')
            continue
        if kind != 2:
            continue  # an answer to a CALL we never make
        await ws.send(json.dumps([3, unique_id, _echo_payload(action, tx)]))


async def start_echo_server(host: str = "127.0.0.1", port: int = 0) -> EchoServer:
    server = await serve(
        _echo_handler,
        host,
        port,
        subprotocols=[SUBPROTOCOL],
        ping_interval=None,
        compression=None,
        backlog=4096,
    )
    return EchoServer(server)


async def serve_echo(host: str, port: int) -> int:
    server = await start_echo_server(host, port)
    print(f"echo server listening on ws://{host}:{server.port}/ocpp", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
    return 0


@contextlib.asynccontextmanager
async def echo_subprocess() -> Any:
    """An echo server in its own process (own core), so calibration measures only us."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.cli",
        "echo-server",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        if not url.startswith("ws://"):
            raise RuntimeError(f"echo server did not start: {line!r}")
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()


# ----------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="ws://127.0.0.1:9000/ocpp", help="CSMS base URL")
    p.add_argument("--chargers", type=int, default=100)
    p.add_argument("--calls", type=int, default=10000, help="total CALLs in the measured phase")
    p.add_argument(
        "--rate", type=float, default=0.0, help="total calls/s (open loop); 0 = closed loop"
    )
    p.add_argument(
        "--mix", default="session", help="'session' or a comma list of " + ", ".join(STATELESS)
    )
    p.add_argument("--meter-per-session", type=int, default=2)
    p.add_argument("--id-pattern", default="LOAD{n:05d}")
    p.add_argument("--id-tags", default="LOADTAG", help="comma-separated idTags, one per charger")
    p.add_argument("--password", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0)
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
        url=url or args.url,
        chargers=args.chargers,
        calls=args.calls,
        rate=args.rate,
        mix=mix,
        meter_per_session=args.meter_per_session,
        id_pattern=args.id_pattern,
        id_tags=tuple(t for t in args.id_tags.split(",") if t) or ("LOADTAG",),
        password=args.password,
        seed=args.seed,
        timeout=args.timeout,
        boot=not args.no_boot,
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


def _progress_line(rec: _Recorder, elapsed: float) -> None:
    errors = sum(rec.err.values())
    rate = rec.done / elapsed if elapsed else 0.0
    print(
        f"\r  {rec.done} calls  {rate:,.0f} calls/s  {errors} errors  {elapsed:5.1f} s",
        end="",
        file=sys.stderr,
        flush=True,
    )


async def main(args: argparse.Namespace) -> int:
    progress = _progress_line if (args.progress or sys.stderr.isatty()) else None
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
