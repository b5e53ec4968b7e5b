"""Hostile-input benchmarks (``python -m tests.bench flood | auth_storm | ocpp_fuzz``).

* **flood**: one charger pipelines 100,000 Authorize frames while 100 others send 500
  Authorize/s in total (open loop, latency from each call's scheduled time): the
  others' p99 during the flood and the server's RSS growth.
* **auth_storm**: 50 wrong-password handshakes/s for 30 s (registered ids with
  passwords, one source address) while a legitimate charger reconnects 5 times a
  second: its connect p99, and the server's RSS before, at peak and after.
* **ocpp_fuzz**: 100,000 frames, mutations of 3,000 seeds generated with hypothesis
  (the strategies of ``tests/fuzz/test_ocpp_fuzz.py``: schema-generated CALLs with
  hostile values, CALLs of any action with any payload, frames of any shape), sent
  over 4 sockets, each followed by a probe CALL, while 10 healthy chargers Heartbeat:
  InternalErrors, crashes, unanswered healthy calls.

The server is ``csms serve`` pinned to core 0 (OCPI off, log level info, JSON); this
process is the generator, pinned to core 1. Figures and method: tests/bench/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import sys
import time
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.bench.hostile_common import (
    ADMIN_TOKEN,
    RssSampler,
    Server,
    csms,
    log_count,
    machine,
    percentile,
)
from tests.bench.procs import CLIENT_CPU, pin_self, raise_nofile

QUICK = os.environ.get("BENCH_QUICK") == "1"
BOOT = b'{"chargePointVendor":"V","chargePointModel":"M"}'


async def open_charger(url: str, cp_id: str, password: str | None = None) -> ClientConnection:
    headers = {}
    if password is not None:
        token = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return await connect(
        f"{url}/{cp_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=headers,
        ping_interval=None,
        max_size=None,
        open_timeout=30,
    )


async def call(ws: ClientConnection, uid: str, action: str, payload: bytes) -> list[Any]:
    await ws.send(
        b'[2,"' + uid.encode() + b'","' + action.encode() + b'",' + payload + b"]", text=True
    )
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame[1] == uid:
            return frame  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- flood


async def paced(ws: ClientConnection, index: int, rate: float, until: list[bool],
                latencies: list[float], failures: list[str]) -> None:  # fmt: skip
    """One healthy charger: an Authorize every 1/rate s on a fixed schedule; latency
    counted from the scheduled time (no coordinated omission)."""
    period = 1 / rate
    clock = time.monotonic  # the loop's clock may count in whole milliseconds (uvloop)
    due = clock() + (index % 100) * period / 100
    n = 0
    while not until[0]:
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        n += 1
        try:
            await call(ws, f"a{n}", "Authorize", b'{"idTag":"CARD%03d"}' % index)
            latencies.append(clock() - due)
        except Exception as exc:
            failures.append(type(exc).__name__)
        due += period


async def flood_run() -> dict[str, Any]:
    frames = 20_000 if QUICK else 100_000
    with csms("flood") as srv:
        others = [await open_charger(srv.ocpp_url, f"OK{i:03d}") for i in range(100)]
        for i, ws in enumerate(others):
            await call(ws, f"b{i}", "BootNotification", BOOT)
        flooder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.flooder", srv.ocpp_url, str(frames),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert flooder.stdin is not None and flooder.stdout is not None
        assert (await flooder.stdout.readline()).strip() == b"ready"
        rss = RssSampler(srv.proc)
        stop = [False]
        warm: list[float] = []
        fails: list[str] = []
        tasks = [
            asyncio.create_task(paced(ws, i, 5.0, stop, warm, fails)) for i, ws in enumerate(others)
        ]
        await asyncio.sleep(3)  # warm-up at 500/s, not measured
        base_mb = rss.now_mb()
        measured: list[float] = []
        stop[0] = True
        await asyncio.gather(*tasks, return_exceptions=True)
        fails.clear()
        stop = [False]
        tasks = [
            asyncio.create_task(paced(ws, i, 5.0, stop, measured, fails))
            for i, ws in enumerate(others)
        ]
        rss.start()
        flooder.stdin.write(b"go\n")
        await flooder.stdin.drain()
        line = (await asyncio.wait_for(flooder.stdout.readline(), 700)).decode().split()
        await flooder.wait()
        answered, sent_s, flood_s = int(line[1]), float(line[2]), float(line[3])
        stop[0] = True
        await asyncio.gather(*tasks, return_exceptions=True)
        await rss.stop()
        peak_mb = rss.peak
        await asyncio.sleep(5)
        after_mb = rss.now_mb()
        for ws in others:
            await ws.close()
        return {
            "frames": frames,
            "flood_answered": answered,
            "flood_sent_s": round(sent_s, 2),
            "flood_answered_s": round(flood_s, 2),
            "others_calls": len(measured),
            "others_failed": len(fails),
            "others_p50_ms": round(percentile(measured, 50) * 1000, 2),
            "others_p99_ms": round(percentile(measured, 99) * 1000, 2),
            "others_max_ms": round(max(measured, default=float("nan")) * 1000, 2),
            "rss_base_mb": round(base_mb, 1),
            "rss_peak_mb": round(peak_mb, 1),
            "rss_growth_mb": round(peak_mb - base_mb, 1),
            "rss_after_5s_mb": round(after_mb, 1),
            "internal_errors": log_count(srv, "ocpp.internal_error"),
            "tree": str(srv.tree),
            "machine": machine(),
        }


# ----------------------------------------------------------------------- auth storm


async def add_charger(srv: Server, cp_id: str, password: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        r = await http.post(
            f"{srv.admin_url}/api/chargers", json={"id": cp_id, "password": password}
        )
        assert r.status == 201, await r.text()


async def handshake(url: str, cp_id: str, password: str) -> tuple[int, float]:
    t0 = time.monotonic()
    try:
        ws = await open_charger(url, cp_id, password)
    except InvalidStatus as exc:
        return exc.response.status_code, time.monotonic() - t0
    took = time.monotonic() - t0
    await ws.close()
    return 101, took


async def auth_storm_run() -> dict[str, Any]:
    seconds = 10 if QUICK else 30
    with csms("auth_storm") as srv:
        await add_charger(srv, "LEGIT", "legit-password")
        victims = [f"VICTIM{i:02d}" for i in range(10)]
        for v in victims:
            await add_charger(srv, v, f"right-{v}")
        rss = RssSampler(srv.proc)
        assert (await handshake(srv.ocpp_url, "LEGIT", "legit-password"))[0] == 101
        quiet = [(await handshake(srv.ocpp_url, "LEGIT", "legit-password"))[1] for _ in range(20)]
        await asyncio.sleep(1)
        base_mb = rss.now_mb()
        rss.start()
        statuses: dict[int, int] = {}
        legit: list[float] = []
        legit_failed = [0]
        end = time.monotonic() + seconds
        attempts = itertools.count()

        async def attacker() -> None:
            loop = asyncio.get_running_loop()
            due = loop.time()
            pending: set[asyncio.Task[tuple[int, float]]] = set()
            while time.monotonic() < end:
                n = next(attempts)
                task = asyncio.create_task(handshake(srv.ocpp_url, victims[n % 10], f"guess-{n}"))
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(
                    lambda t: (
                        statuses.__setitem__(t.result()[0], statuses.get(t.result()[0], 0) + 1)
                        if not t.cancelled() and t.exception() is None
                        else None
                    )
                )
                due += 1 / 50
                await asyncio.sleep(max(0.0, due - loop.time()))
            await asyncio.gather(*pending, return_exceptions=True)

        async def legitimate() -> None:
            while time.monotonic() < end:
                status, took = await handshake(srv.ocpp_url, "LEGIT", "legit-password")
                if status == 101:
                    legit.append(took)
                else:
                    legit_failed[0] += 1
                await asyncio.sleep(0.2)

        await asyncio.gather(attacker(), legitimate())
        await rss.stop()
        peak_mb = rss.peak
        await asyncio.sleep(5)
        after_mb = rss.now_mb()
        scrypt_runs = log_count(srv, '"status":401')
        return {
            "seconds": seconds,
            "attempts": sum(statuses.values()),
            "statuses": statuses,
            "wrong_password_checks_401": scrypt_runs,
            "legit_connects": len(legit),
            "legit_failed": legit_failed[0],
            "legit_quiet_p50_ms": round(percentile(quiet, 50) * 1000, 2),
            "legit_p50_ms": round(percentile(legit, 50) * 1000, 2),
            "legit_p99_ms": round(percentile(legit, 99) * 1000, 2),
            "legit_max_ms": round(max(legit, default=float("nan")) * 1000, 2),
            "rss_base_mb": round(base_mb, 1),
            "rss_peak_mb": round(peak_mb, 1),
            "rss_after_5s_mb": round(after_mb, 1),
            "tree": str(srv.tree),
            "machine": machine(),
        }


# ------------------------------------------------------------------------- ocpp fuzz


def generate_frames(n: int) -> list[str | bytes]:
    """``n`` frames drawn from the fuzz tests' strategies (hypothesis, generation only)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from tests.fuzz.test_ocpp_fuzz import WRONG_FRAMES, hostile_call, wrong_call

    out: list[str | bytes] = []
    uid = itertools.count()

    def as_call(c: tuple[str, Any]) -> str | None:
        try:
            return json.dumps([2, f"z{next(uid)}", c[0], c[1]], allow_nan=False)
        except (TypeError, ValueError):
            return None

    frames = st.one_of(hostile_call().map(as_call), wrong_call().map(as_call), WRONG_FRAMES)

    @settings(
        max_examples=n,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames)
    def collect(frame: str | bytes | None) -> None:
        if frame is not None:
            out.append(frame)

    collect()
    return out


HOSTILE_VALUES: list[Any] = [
    *(0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**400, -(10**400)),
    *("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-14:00"),
    *("", "x" * 70_000, "\u0000", "\ud7ff\ue000", None, 1.5, [], {}, True),
]


def mutate(seed: str | bytes, uid: str, rnd: random.Random) -> str | bytes:
    """One cheap mutation of a hypothesis-generated frame: a field of a CALL swapped for a
    hostile value, dropped or added; the text cut short; a byte flipped; or as it was."""
    roll = rnd.random()
    if isinstance(seed, str) and roll < 0.6:
        try:
            frame = json.loads(seed)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) == 4 and isinstance(frame[3], dict):
            frame[1] = uid
            payload = frame[3]
            keys = list(payload)
            if keys and roll < 0.45:
                payload[rnd.choice(keys)] = rnd.choice(HOSTILE_VALUES)
            elif keys and roll < 0.5:
                del payload[rnd.choice(keys)]
            else:
                payload[rnd.choice(["x", "idTag", "timestamp", "connectorId"])] = rnd.choice(
                    HOSTILE_VALUES
                )
            return json.dumps(frame)
    if roll < 0.75:
        return seed[: rnd.randrange(len(seed) + 1)]
    if roll < 0.85:
        data = bytearray(seed.encode() if isinstance(seed, str) else seed)
        if data:
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        return bytes(data)
    return seed


async def fuzz_run() -> dict[str, Any]:
    """Seeds from hypothesis (the fuzz tests' strategies; generating is slow, ~50 a
    second here), then cheap seeded mutations of them up to the frame count."""
    n = 10_000 if QUICK else 100_000
    t0 = time.monotonic()
    seeds = generate_frames(500 if QUICK else 3_000)
    rnd = random.Random(18)
    frames = [mutate(rnd.choice(seeds), f"m{i}", rnd) for i in range(n)]
    gen_s = time.monotonic() - t0
    with csms("ocpp_fuzz") as srv:
        internal = [0]
        closed: dict[str, int] = {}  # sockets the server closed, by close code
        unanswered_probes = [0]

        async def fuzzer(k: int, share: list[str | bytes]) -> None:
            ws = await open_charger(srv.ocpp_url, f"FUZZ{k}")
            for i, frame in enumerate(share):
                try:
                    await ws.send(frame)
                    probe = f"p{k}-{i}"
                    await ws.send(f'[2,"{probe}","Reset",{{"type":"Soft"}}]')
                    while True:
                        answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if answer[0] == 4 and answer[2] == "InternalError":
                            internal[0] += 1
                        if answer[1] == probe:
                            break
                except TimeoutError:
                    unanswered_probes[0] += 1
                except Exception:  # the socket was closed (e.g. a frame over the size limit)
                    code = str(ws.close_code)
                    closed[code] = closed.get(code, 0) + 1
                    ws = await open_charger(srv.ocpp_url, f"FUZZ{k}")
            await ws.close()

        healthy_ok = [0]
        healthy_failed = [0]
        done = [False]

        async def healthy(k: int) -> None:
            ws = await open_charger(srv.ocpp_url, f"OK{k}")
            await call(ws, "boot", "BootNotification", BOOT)
            n = 0
            while not done[0]:
                n += 1
                try:
                    frame = await call(ws, f"h{n}", "Heartbeat", b"{}")
                    healthy_ok[0] += frame[0] == 3
                    healthy_failed[0] += frame[0] != 3
                except Exception:
                    healthy_failed[0] += 1
                await asyncio.sleep(0.1)
            await ws.close()

        hs = [asyncio.create_task(healthy(k)) for k in range(10)]
        t1 = time.monotonic()
        await asyncio.gather(*(fuzzer(k, frames[k::4]) for k in range(4)))
        sent_s = time.monotonic() - t1
        done[0] = True
        await asyncio.gather(*hs)
        alive = srv.proc.popen.poll() is None
        return {
            "frames": len(frames),
            "hypothesis_seeds": len(seeds),
            "generation_s": round(gen_s, 1),
            "sending_s": round(sent_s, 1),
            "internal_error_answers": internal[0],
            "internal_error_log_lines": log_count(srv, "ocpp.internal_error"),
            "tracebacks_in_log": log_count(srv, "Traceback"),
            "connection_handler_failures": log_count(srv, "connection handler failed"),
            "fuzz_sockets_closed_by_server": closed,
            "fuzz_probes_unanswered": unanswered_probes[0],
            "server_alive": alive,
            "healthy_calls_answered": healthy_ok[0],
            "healthy_calls_failed": healthy_failed[0],
            "tree": str(srv.tree),
            "machine": machine(),
        }


def main(name: str) -> dict[str, Any]:
    pin_self(CLIENT_CPU)
    raise_nofile()
    run = {"flood": flood_run, "auth_storm": auth_storm_run, "ocpp_fuzz": fuzz_run}[name]
    try:
        import uvloop

        result = uvloop.run(run())
    except ImportError:
        result = asyncio.run(run())
    print(json.dumps({name: result}, indent=1), flush=True)
    return result
