"""One lean charger of the load generator: a socket, a plan of actions, one CALL in flight.

Why callbacks and pre-encoded bytes: the generator must cost less CPU per call than the
server it measures, so answers come straight from the socket
(``simulator/fastws.py``), frames are assembled from pre-encoded pieces, answers are
parsed with orjson only to read the message id, status and transactionId, and no
coroutine runs per call.

With several URLs (``LoadConfig.url`` "A,B"), charger n starts on URL n (round robin) and,
when the CSMS side drops its socket, moves to the next after a jittered backoff, boots
again, and sends the CALL left unanswered once more with a new message id and the same
content: the load a node's death puts on the nodes that remain, measured per charger
from its new socket to its BootNotification answered and its first call served.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from simulator.failover import jittered_backoff, split_urls
from simulator.fastws import DirectClientConnection, send_now
from simulator.load.model import LoadConfig, Recorder
from simulator.tls import client_context, tls_kwargs
from simulator.wire import SUBPROTOCOL, basic_auth, charger_url, now_iso

# The tails of CALL frames after the message id, filled in per call.
_START = b'","StartTransaction",{"connectorId":1,"idTag":%b,"meterStart":%d,"timestamp":"%b"}]'
_STOP = (
    b'","StopTransaction",{"transactionId":%b,"meterStop":%d,"timestamp":"%b","reason":"Local"}]'
)
_METER = (
    b'","MeterValues",{"connectorId":1%b,"meterValue":[{"timestamp":"%b","sampledValue":'
    b'[{"value":"%d","measurand":"Energy.Active.Import.Register","unit":"Wh"}]}]}]'
)
_STATUS = (
    b'","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
    b'"status":"Available","timestamp":"%b"}]'
)


class FrameClock:
    """An OCPP timestamp refreshed at most every 10 ms: formatting per call is measurable."""

    def __init__(self) -> None:
        self._at = 0.0
        self._text = b""

    def now(self) -> bytes:
        t = time.monotonic()
        if t - self._at > 0.01:
            self._at = t
            self._text = now_iso().encode()
        return self._text


class LeanCharger:
    """One lean charger: a socket, a message counter, a plan of actions, one CALL in flight."""

    def __init__(
        self,
        n: int,
        cp_id: str,
        tag: str,
        quota: int,
        cfg: LoadConfig,
        rec: Recorder,
        clock: FrameClock,
    ) -> None:
        self.cp_id = cp_id
        self.quota = quota
        self.cfg = cfg
        self.rec = rec
        self.clock = clock
        self.urls = split_urls(cfg.url)
        self.at = (n - 1) % len(self.urls)
        self.rng = random.Random(cfg.seed * 1_000_003 + n)
        self.ws: ClientConnection | None = None
        self.mover: asyncio.Task[None] | None = None  # the failover under way
        self.unanswered: tuple[str, bytes] | None = None  # action, frame tail to send again
        self.lost_at = 0.0  # when the CSMS side dropped the socket
        self.moved_at: tuple[float, float] | None = None  # new socket open, boot answered
        self.closing = False
        self.due: asyncio.TimerHandle | None = None  # the next CALL, scheduled (open loop)
        self.writes: set[asyncio.Task[None]] = set()
        self.reader: asyncio.Task[None] | None = None
        self.k = 0  # CALLs of the quota done (answered, failed or timed out)
        self.inflight: tuple[str, str, float] | None = None  # message id, action, t0
        self.inflight_tail = b""
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
        await self._open(boot=self.cfg.boot)
        # Started here, not at the measured phase's start: a thousand first task steps
        # at once held the generator's loop for ~20 ms and showed as the open loop's tail.
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.reader = self.loop.create_task(self._read_library_path(self.ws))

    async def _open(self, *, boot: bool) -> None:
        """A socket to the current URL; BootNotification on it unless ``boot`` is False."""
        headers = {}
        if self.cfg.password is not None:
            headers["Authorization"] = basic_auth(self.cp_id, self.cfg.password)
        url = charger_url(self.urls[self.at], self.cp_id)
        self.ws = await websockets.connect(
            url,
            **tls_kwargs(url, client_context(self.cfg.ca_file)),
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=self.cfg.timeout,
            ping_interval=None,
            compression=None,
            max_size=2**20,
            create_connection=DirectClientConnection,
        )
        if boot:
            reply = await self._exchange(
                b'","BootNotification",{"chargePointVendor":"csms-sim","chargePointModel":"Load"}]'
            )
            if reply[0] != 3 or reply[2].get("status") != "Accepted":
                raise RuntimeError(f"{self.cp_id}: BootNotification not accepted: {reply}")

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
            return _START % (self.tag, self.meter, ts)
        if action == "StopTransaction":
            self.meter += 100
            return _STOP % (str(self.tx if self.tx is not None else -1).encode(), self.meter, ts)
        if action == "MeterValues":
            self.meter += 10
            tx = b',"transactionId":' + str(self.tx).encode() if self.tx is not None else b""
            return _METER % (tx, ts, self.meter)
        if action == "StatusNotification":
            return _STATUS % ts
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
                self.due = self.loop.call_later(delay, self._send, action, tail, due)
                return
            if delay < -interval:
                self.rec.behind += 1
            self._send(action, tail, due)
        else:
            self._send(action, tail, time.perf_counter())

    def _send(self, action: str, tail: bytes, t0: float) -> None:
        self.due = None
        if self.finished.done():
            return
        if self.mover is not None and not self.mover.done():
            self.unanswered = (action, tail)  # due while moving: sent once moved
            return
        mid = self.prefix + str(next(self.ids)).encode()
        self.inflight = (mid.decode(), action, t0)
        self.inflight_tail = tail
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
        if self.moved_at is not None:
            opened, booted = self.moved_at
            self.moved_at = None
            now = time.perf_counter()
            self.rec.moved(
                (booted - opened) * 1000.0, (now - opened) * 1000.0, (now - self.lost_at) * 1000.0
            )
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

    async def _read_library_path(self, ws: ClientConnection | None) -> None:
        """Frames the direct path leaves to websockets (fragmented ones) arrive here; the
        loop also learns that the socket closed."""
        assert ws is not None
        try:
            while True:
                self._on_frame(await ws.recv(decode=False))
        except websockets.ConnectionClosed:
            if self.finished.done() or ws is not self.ws or self.closing:
                return
            inflight, self.inflight = self.inflight, None
            if len(self.urls) > 1:
                self.lost_at = time.perf_counter()
                self.unanswered = (inflight[1], self.inflight_tail) if inflight else None
                self.mover = self.loop.create_task(self._fail_over())
                return
            self._give_up(inflight[1] if inflight is not None else "Authorize")

    def _give_up(self, action: str) -> None:
        for _ in range(self.quota - self.k):
            self.rec.error(action, "connection_closed")
        self.k = self.quota
        self._finish()

    async def _fail_over(self) -> None:
        """Next URL, jittered backoff, boot, then the unanswered CALL again (new id)."""
        cfg = self.cfg
        for attempt in range(cfg.failover_attempts):
            await asyncio.sleep(
                jittered_backoff(attempt, cfg.failover_initial_s, cfg.failover_max_s, self.rng)
            )
            self.at = (self.at + 1) % len(self.urls)
            opened = time.perf_counter()
            try:
                await self._open(boot=True)
            except Exception as exc:  # refused, closed or silent: try the next one
                kind = f"failover:{type(exc).__name__}"
                self.rec.kinds[kind] = self.rec.kinds.get(kind, 0) + 1
                continue
            ws = self.ws
            assert isinstance(ws, DirectClientConnection)
            self.moved_at = (opened, time.perf_counter())
            self.mover = None  # moved: calls go out again
            self.rec.failovers += 1
            ws.on_frame = self._on_frame
            self.reader = self.loop.create_task(self._read_library_path(ws))
            if self.unanswered is not None:
                action, tail = self.unanswered
                self.unanswered = None
                self._send(action, tail, time.perf_counter())
            elif self.due is None:  # else the CALL scheduled before the loss goes then
                self._next()
            return
        self._give_up(self.unanswered[0] if self.unanswered else "Authorize")

    def _finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    async def close(self) -> None:
        self.closing = True
        if self.mover is not None:
            self.mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.mover
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
