"""The charge point's websocket: handshake, receive loop, our CALLs, and the heartbeat.

Why it owns its receive loop instead of ``ChargePoint.start()``: the library routes every
CALLRESULT into one queue that a single ``call()`` drains, so a reply to a raw fault frame
would be swallowed, a closed socket leaves a caller waiting for the whole timeout, and a
CallError silently becomes ``None`` unless every caller remembers ``suppress=False``. Here
incoming CALLs still go through the library (schema validation, ``@on`` routing,
snake_case kwargs), while our own CALLs are matched to futures by message id in
:meth:`Session.request`, the ONE place that sends them. It raises :class:`CallFailed`
for a CallError and :class:`NotConnected` the moment the socket dies.

The heartbeat lives here because it only keeps the link alive: it starts once the CSMS
accepted us and stops with the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import websockets
from ocpp.messages import Call, CallResult, validate_payload
from ocpp.routing import create_route_map
from ocpp.v16 import ChargePoint as OcppChargePoint
from websockets.asyncio.client import ClientConnection

from simulator.cpconfig import ConfigTable
from simulator.errors import (
    CallFailed,
    CallTimeout,
    ConnectFailed,
    NotConnected,
    SimulatorError,
)
from simulator.failover import Link, split_urls
from simulator.wire import SUBPROTOCOL, basic_auth, charger_url

log = structlog.get_logger("simulator")


@dataclass(frozen=True)
class Step:
    """One CALL we sent and how it ended; the CLI prints these, tests may assert on them."""

    action: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: str | None
    latency_ms: float
    queued: bool = False  # sent later from the offline queue


class _Router(OcppChargePoint):
    """The library's CALL routing (schema checks, ``@on``/``@after``), fed by our loop.

    The routes come from handler objects rather than from this class, so the CSMS-initiated
    behaviour can live in modules of its own.
    """

    def answer_with(self, handlers: tuple[object, ...]) -> None:
        self.route_map = {}
        for handler in handlers:
            self.route_map.update(create_route_map(handler))

    def attach(self, ws: ClientConnection) -> None:
        self._connection = ws


class Session:
    """One charge point's link to the CSMS; reconnecting opens a new socket on it.

    ``steps`` (every CALL we sent), ``received_calls`` ((action, camelCase payload) in
    arrival order), ``errors`` (failures nobody awaited), ``connected`` and ``links``
    (every socket opened, :class:`Link`) are public. With several base URLs the socket
    goes to ``url`` until :meth:`next_url` moves on; ``on_lost`` is called when the CSMS
    side closes a socket the charger did not close itself.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        cp_id: str,
        config: ConfigTable,
        *,
        password: str | None,
        response_timeout: float,
        open_timeout: float,
        heartbeat: bool,
        on_step: Callable[[Step], None] | None,
        on_call: Callable[[str, dict[str, Any]], None] | None,
        ssl_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.cp_id = cp_id
        self.urls = [charger_url(u, cp_id) for u in split_urls(base_url)]
        self._at = 0
        self.links: list[Link] = []
        self.on_lost: Callable[[], None] | None = None
        self.password = password
        self.config = config
        self.response_timeout = response_timeout
        self.open_timeout = open_timeout
        self.heartbeat_enabled = heartbeat
        self.on_step = on_step
        self.on_call = on_call
        self.ssl_context = ssl_context  # asked at every wss:// open: a new certificate counts
        self.steps: list[Step] = []
        self.received_calls: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self.connected = False
        self.replaying = False  # steps recorded meanwhile are marked ``queued``
        self._router = _Router(cp_id, None, response_timeout=response_timeout)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[str, asyncio.Future[list[Any]]]] = {}
        self._raw_waiters: list[asyncio.Future[str]] = []
        self._request_lock = asyncio.Lock()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._log = log.bind(cp_id=cp_id)

    @property
    def url(self) -> str:
        """The charger URL the next (or current) socket goes to."""
        return self.urls[self._at]

    @url.setter
    def url(self, value: str) -> None:
        """Point the current entry elsewhere (a CSMS restarted on another port)."""
        self.urls[self._at] = value

    def next_url(self) -> str:
        """Move on to the next base URL (round robin); returns the new charger URL."""
        self._at = (self._at + 1) % len(self.urls)
        return self.url

    def answer_with(self, *handlers: object) -> None:
        """Route the CSMS's CALLs to the ``@on``/``@after`` methods of ``handlers``."""
        self._router.answer_with(handlers)

    # ----------------------------------------------------------------- socket

    async def open(self) -> None:
        """Connect the websocket (subprotocol ocpp1.6, Basic auth when a password is set,
        over wss:// the TLS context of :attr:`ssl_context`)."""
        headers = {}
        if self.password is not None:
            headers["Authorization"] = basic_auth(self.cp_id, self.password)
        extra: dict[str, Any] = {}
        if self.ssl_context is not None and self.url.startswith("wss://"):
            extra["ssl"] = self.ssl_context()
        try:
            ws = await websockets.connect(
                self.url,
                **extra,
                subprotocols=[SUBPROTOCOL],
                additional_headers=headers,
                open_timeout=self.open_timeout,
                ping_interval=None,
                max_size=2**20,
            )
        except websockets.InvalidStatus as exc:
            raise ConnectFailed(self.url, exc.response.status_code, "handshake refused") from None
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise ConnectFailed(self.url, None, f"{type(exc).__name__}: {exc}") from None
        if ws.subprotocol != SUBPROTOCOL:
            await ws.close()
            raise ConnectFailed(self.url, None, f"server did not agree to {SUBPROTOCOL}")
        self._ws = ws
        self._router.attach(ws)
        self.links.append(Link(self.url, time.monotonic()))
        self.connected = True
        self._closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read_loop(ws), name=f"sim-read-{self.cp_id}")
        self._log.debug("sim.connected", url=self.url)

    async def drop(self) -> None:
        """Close the socket (if any); CALLs still waiting fail with :class:`NotConnected`."""
        ws, self._ws = self._ws, None
        self.connected = False
        if ws is not None:
            await ws.close()
        if self._reader is not None and self._reader is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 2.0)
        self._reader = None
        self._fail_pending()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until the CSMS (or anyone) closes our socket."""
        await asyncio.wait_for(self._closed.wait(), timeout)

    def _fail_pending(self) -> None:
        for action, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(NotConnected(action))
        self._pending.clear()

    async def _read_loop(self, ws: ClientConnection) -> None:
        """Answers go to their waiting future by message id; CALLs go through the library."""
        try:
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                await self._dispatch(text)
        except websockets.ConnectionClosed:
            pass
        except Exception as exc:  # a bug in a handler must not kill the charger silently
            self.errors.append(exc)
            self._log.exception("sim.read_loop_failed")
        finally:
            lost = self._ws is ws
            if lost or self._ws is None:
                self.connected = False
                self.stop_heartbeat()
                self._fail_pending()
            self._closed.set()
            self.notify()
            if lost:
                if self.links:
                    self.links[-1].lost_at = time.monotonic()
                if self.on_lost is not None:
                    self.on_lost()

    async def _dispatch(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, list) or len(msg) < 3:
            self._log.warning("sim.unparseable_frame", frame=text[:200])
            self._resolve_raw(text)
            return
        kind, mid = msg[0], msg[1]
        if kind in (3, 4):
            pending = self._pending.pop(str(mid), None)
            if pending is not None and not pending[1].done():
                pending[1].set_result(msg)
            else:
                self._resolve_raw(text)
            return
        if kind == 2 and len(msg) == 4:
            action, body = str(msg[2]), msg[3] if isinstance(msg[3], dict) else {}
            self.received_calls.append((action, body))
            if self.on_call is not None:
                self.on_call(action, body)
            self.notify()
        await self._router.route_message(text)

    def _resolve_raw(self, text: str) -> None:
        while self._raw_waiters:
            fut = self._raw_waiters.pop(0)
            if not fut.done():
                fut.set_result(text)
                return

    # ----------------------------------------------------------------- waiting

    def notify(self) -> None:
        """Wake :meth:`wait_until`: something a caller may be waiting for has changed."""
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` holds; re-checked on every frame, step and state change
        (and every 50 ms, so a change made from outside the charger is seen too)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    async def wait_for_call(
        self, action: str, *, timeout: float = 5.0, count: int = 1
    ) -> dict[str, Any]:
        """Wait until the CSMS has sent ``count`` CALLs of ``action``; returns the last payload."""

        def seen() -> list[dict[str, Any]]:
            return [p for a, p in self.received_calls if a == action]

        await self.wait_until(lambda: len(seen()) >= count, timeout)
        return seen()[count - 1]

    # ----------------------------------------------------------------- sending

    async def request(
        self, action: str, payload: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        """Send one CALL and return the CALLRESULT payload (camelCase, as on the wire).

        The only path our CALLs take: one in flight at a time (OCPP-J 4.1.1), a CallError
        raises :class:`CallFailed`, a dead socket :class:`NotConnected`. Every outcome is
        appended to ``steps`` and passed to ``on_step``.
        """
        if validate:
            await validate_payload(Call(unique_id="x", action=action, payload=payload), "1.6")
        async with self._request_lock:
            started = time.perf_counter()
            try:
                response = await self._exchange(action, payload)
                if validate:
                    await validate_payload(
                        CallResult(unique_id="x", payload=response, action=action), "1.6"
                    )
            except Exception as exc:
                self._record(action, payload, None, str(exc), started)
                raise
            self._record(action, payload, response, None, started)
            return response

    async def _exchange(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        ws = self._ws
        if ws is None or not self.connected:
            raise NotConnected(action)
        mid = str(uuid.uuid4())
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = (action, fut)
        try:
            await ws.send(json.dumps([2, mid, action, payload], separators=(",", ":")))
        except websockets.ConnectionClosed:
            self._pending.pop(mid, None)
            raise NotConnected(action) from None
        try:
            msg = await asyncio.wait_for(fut, self.response_timeout)
        except TimeoutError:
            self._pending.pop(mid, None)
            raise CallTimeout(action, self.response_timeout) from None
        if msg[0] == 4:
            code = msg[2] if len(msg) > 2 else "?"
            desc = msg[3] if len(msg) > 3 else ""
            raise CallFailed(action, str(code), str(desc), msg[4] if len(msg) > 4 else None)
        result = msg[2]
        if not isinstance(result, dict):
            raise CallFailed(
                action, "FormationViolation", "CALLRESULT payload is not an object", result
            )
        return result

    def _record(
        self,
        action: str,
        payload: dict[str, Any],
        response: dict[str, Any] | None,
        error: str | None,
        started: float,
    ) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response is not None and self.links:
            link = self.links[-1]
            if action == "BootNotification":
                if response.get("status") == "Accepted" and link.booted_at is None:
                    link.booted_at = time.monotonic()
            elif link.booted_at is not None and link.served_at is None:
                link.served_at = time.monotonic()
        step = Step(action, payload, response, error, elapsed_ms, self.replaying)
        self.steps.append(step)
        self._changed.set()
        if self.on_step is not None:
            self.on_step(step)

    async def send_raw(
        self, text: str, *, timeout: float = 5.0, expect_reply: bool = True
    ) -> str | None:
        """Send any text frame (fault tests); return the raw reply frame, or None on timeout.

        The reply is matched by message id when ``text`` is a CALL we can read; otherwise
        the next CALLRESULT/CALLERROR (or unparseable frame) that nobody waits for.
        """
        ws = self._ws
        if ws is None:
            raise NotConnected("raw")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        mid: str | None = None
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list) and len(parsed) >= 2 and parsed[0] == 2:
                mid = str(parsed[1])
        except ValueError:
            pass
        if expect_reply:
            if mid is not None and mid not in self._pending:
                self._pending[mid] = ("raw", fut)
            else:
                self._raw_waiters.append(fut)
        await ws.send(text)
        if not expect_reply:
            return None
        try:
            got = await asyncio.wait_for(fut, timeout)
        except (TimeoutError, NotConnected):
            if mid is not None:
                self._pending.pop(mid, None)
            return None
        return got if isinstance(got, str) else json.dumps(got, separators=(",", ":"))

    # ----------------------------------------------------------------- heartbeat

    async def heartbeat(self) -> dict[str, Any]:
        return await self.request("Heartbeat", {})

    def start_heartbeat(self) -> None:
        self.stop_heartbeat()
        if self.heartbeat_enabled and self.connected:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())

    def stop_heartbeat(self) -> None:
        if self._heartbeat_task is not None and self._heartbeat_task is not asyncio.current_task():
            self._heartbeat_task.cancel()
        self._heartbeat_task = None

    async def _heartbeat_loop(self) -> None:
        while self.connected:
            interval = self.config.get_int("HeartbeatInterval", 300)
            await asyncio.sleep(max(interval, 0.05))
            try:
                await self.heartbeat()
            except SimulatorError as exc:
                self._log.warning("sim.heartbeat_failed", error=str(exc))
