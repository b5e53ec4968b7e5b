"""A simulated OCPP 1.6J charge point, usable from tests, scenarios and the ``csms-sim`` CLI.

Why it owns its receive loop instead of ``ChargePoint.start()``: the library routes every
CALLRESULT into one queue that a single ``call()`` drains, so a reply to a raw fault frame
would be swallowed, a closed socket leaves a caller waiting for the whole timeout, and a
CallError silently becomes ``None`` unless every caller remembers ``suppress=False``. Here
incoming CALLs still go through the library (schema validation, ``@on`` routing,
snake_case kwargs), while our own CALLs are matched to futures by message id in
:meth:`SimulatedChargePoint.request`, the ONE place that sends them. It raises
:class:`CallFailed` for a CallError and :class:`NotConnected` the moment the socket dies.

Handlers never await a CALL of their own (the library's receive loop is serial per
socket: that would deadlock until the timeout). Follow-up work (RemoteStart's Authorize
and StartTransaction, firmware status, Reset's reboot) is scheduled from ``@after`` hooks,
which run once the CALLRESULT is on the wire, so the CSMS always sees the answer first.

Errors (all subclasses of :class:`SimulatorError`):
    ConnectFailed(url, status, reason)  the handshake failed; ``status`` is the HTTP code
    NotConnected(action)                no open socket (call sent while offline / closed)
    CallFailed(action, code, description, details)   the CSMS answered with a CallError
    CallTimeout(action, timeout)        no answer in time
    IllegalTransition (from simulator.connector)      a status change 1.6 does not allow

Example::

    async with SimulatedChargePoint.connect("ws://127.0.0.1:9000/ocpp", "CP1") as cp:
        await cp.boot()
        await cp.authorize("TAG1")
        tx = await cp.start_transaction(1, "TAG1", meter_start=1000)
        await cp.send_meter_values(1)
        await cp.stop_transaction(1, reason="Local")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog
import websockets
from ocpp.messages import Call, CallResult, validate_payload
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call_result
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from simulator.connector import Connector, Status
from simulator.cpconfig import ConfigTable

log = structlog.get_logger("simulator")

SUBPROTOCOL = Subprotocol("ocpp1.6")
TX_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})


class SimulatorError(Exception):
    """Base of everything the simulator raises on purpose."""


class ConnectFailed(SimulatorError):
    def __init__(self, url: str, status: int | None, reason: str) -> None:
        where = f"HTTP {status}" if status is not None else reason
        super().__init__(f"could not connect to {url}: {where}")
        self.url = url
        self.status = status
        self.reason = reason


class NotConnected(SimulatorError):
    def __init__(self, action: str) -> None:
        super().__init__(f"{action}: charge point is not connected")
        self.action = action


class CallFailed(SimulatorError):
    """The CSMS answered our CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any) -> None:
        super().__init__(f"{action}: CSMS answered CallError {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class CallTimeout(SimulatorError):
    def __init__(self, action: str, timeout: float) -> None:
        super().__init__(f"{action}: no answer within {timeout:g} s")
        self.action = action
        self.timeout = timeout


@dataclass(frozen=True)
class Step:
    """One CALL we sent and how it ended; the CLI prints these, tests may assert on them."""

    action: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: str | None
    latency_ms: float
    queued: bool = False  # sent later from the offline queue


@dataclass
class Tx:
    """A transaction as the charger knows it; ``id`` stays None until the CSMS numbers it."""

    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    id: int | None = None
    auth_status: str | None = None
    reservation_id: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Queued:
    action: str
    payload: dict[str, Any]
    tx: Tx | None


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """OCPP-J date-time: UTC, millisecond precision, ``Z`` suffix."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def basic_auth(cp_id: str, password: str) -> str:
    token = base64.b64encode(f"{cp_id}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def charger_url(base_url: str, cp_id: str) -> str:
    """``ws://host:port/ocpp`` + ``CP1`` -> ``ws://host:port/ocpp/CP1`` (id percent-encoded)."""
    return f"{base_url.rstrip('/')}/{quote(cp_id, safe='')}"


class SimulatedChargePoint(OcppChargePoint):
    """One charge point: a websocket, connectors, a config table, and answers to every CSMS call.

    Public state tests may read: ``connectors`` (id -> Connector, 0 is the whole charger),
    ``transactions`` (connector id -> active Tx), ``config`` (ConfigTable), ``steps``,
    ``received_calls`` ((action, camelCase payload) in arrival order), ``local_list``,
    ``local_list_version``, ``reservations``, ``boot_count``, ``registration``,
    ``connected``, ``offline_queue``.
    """

    def __init__(
        self,
        url: str,
        cp_id: str,
        *,
        password: str | None = None,
        connectors: int = 2,
        vendor: str = "csms-sim",
        model: str = "SimCharger",
        serial: str | None = None,
        firmware: str = "1.0.0",
        response_timeout: float = 10.0,
        open_timeout: float = 10.0,
        heartbeat: bool = True,
        meter_interval_s: int = 60,
        power_w: float = 11000.0,
        time_scale: float = 1.0,
        step_delay_s: float = 0.2,
        on_step: Callable[[Step], None] | None = None,
        on_call: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__(cp_id, None, response_timeout=response_timeout)
        self.base_url = url
        self.url = charger_url(url, cp_id)
        self.password = password
        self.vendor, self.model, self.firmware = vendor, model, firmware
        self.serial = (serial or f"SIM-{cp_id}")[:25]  # CiString25 in BootNotification
        self.open_timeout = open_timeout
        self.heartbeat_enabled = heartbeat
        self.power_w = power_w
        self.time_scale = time_scale
        self.step_delay_s = step_delay_s
        self.on_step = on_step
        self.on_call = on_call
        self.config = ConfigTable(connectors, meter_s=meter_interval_s)
        self.connectors: dict[int, Connector] = {i: Connector(i) for i in range(connectors + 1)}
        self.transactions: dict[int, Tx] = {}
        self.steps: list[Step] = []
        self.received_calls: list[tuple[str, dict[str, Any]]] = []
        self.local_list: dict[str, dict[str, Any]] = {}
        self.local_list_version = 0
        self.auth_cache: dict[str, dict[str, Any]] = {}
        self.reservations: dict[int, dict[str, Any]] = {}
        self.data_transfers: list[dict[str, Any]] = []
        self.offline_queue: list[_Queued] = []
        self.boot_count = 0
        self.registration: str | None = None
        self.heartbeat_interval: int | None = None
        self.connected = False
        self.errors: list[BaseException] = []
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[str, asyncio.Future[list[Any]]]] = {}
        self._raw_waiters: list[asyncio.Future[str]] = []
        self._request_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._meter_tasks: dict[int, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._reported: dict[int, Status] = {}
        self._replaying = False
        self._remote_start_target: int | None = None
        self._pending_available: int | None = None
        self._log = log.bind(cp_id=cp_id)

    # ----------------------------------------------------------------- connection

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, cp_id: str, **kwargs: Any) -> AsyncIterator[Any]:
        """Open the socket, yield the charge point, and always close it (tasks included)."""
        cp = cls(url, cp_id, **kwargs)
        await cp.open()
        try:
            yield cp
        finally:
            await cp.close()

    async def open(self) -> None:
        """Connect the websocket (subprotocol ocpp1.6, Basic auth when a password is set)."""
        headers = {}
        if self.password is not None:
            headers["Authorization"] = basic_auth(self.id, self.password)
        try:
            ws = await websockets.connect(
                self.url,
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
        self._connection = ws
        self.connected = True
        self._closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read_loop(ws), name=f"sim-read-{self.id}")
        self._log.debug("sim.connected", url=self.url)

    async def close(self) -> None:
        """Stop every background task and close the socket; safe to call twice."""
        for task in [*self._tasks, *self._meter_tasks.values(), self._heartbeat_task]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._meter_tasks.clear()
        self._heartbeat_task = None
        await self._drop_socket()

    async def disconnect(self) -> None:
        """Go offline on purpose: transaction messages are queued until :meth:`reconnect`."""
        self._stop_heartbeat()
        await self._drop_socket()

    async def reconnect(self, *, boot: bool = False, replay: bool = True) -> list[Step]:
        """Open a new socket; optionally boot; replay the offline queue in order.

        Returns the replay steps. Connector statuses that changed while offline are
        reported after the replay, as a real charger does once it is back.
        """
        await self._drop_socket()
        await self.open()
        if boot:
            await self.boot()
        elif self.registration == "Accepted":
            self._start_heartbeat()
        steps = await self.replay_queue() if replay else []
        for cid, conn in self.connectors.items():
            if self._reported.get(cid) not in (None, conn.status):
                await self._send_status(cid)
        return steps

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until the CSMS (or anyone) closes our socket."""
        await asyncio.wait_for(self._closed.wait(), timeout)

    async def _drop_socket(self) -> None:
        ws, self._ws = self._ws, None
        self.connected = False
        if ws is not None:
            await ws.close()
        if self._reader is not None and self._reader is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 2.0)
        self._reader = None
        self._fail_pending()

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
            if self._ws is ws or self._ws is None:
                self.connected = False
                self._stop_heartbeat()
                self._fail_pending()
            self._closed.set()
            await self._notify()

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
            await self._notify()
        await self.route_message(text)

    def _resolve_raw(self, text: str) -> None:
        while self._raw_waiters:
            fut = self._raw_waiters.pop(0)
            if not fut.done():
                fut.set_result(text)
                return

    async def _notify(self) -> None:
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
            msg = await asyncio.wait_for(fut, self._response_timeout)
        except TimeoutError:
            self._pending.pop(mid, None)
            raise CallTimeout(action, self._response_timeout) from None
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
        queued: bool = False,
    ) -> None:
        step = Step(
            action,
            payload,
            response,
            error,
            (time.perf_counter() - started) * 1000,
            queued or self._replaying,
        )
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

    def now(self) -> str:
        return iso(utc_now())

    def follow_ups(self) -> list[str]:
        """Names of follow-up tasks still running (``remote-start``, ``reset``, ``firmware``...)."""
        return [t.get_name() for t in self._tasks if not t.done()]

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Run follow-up work off the receive loop, keep a reference, record failures."""
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                self.errors.append(exc)
                self._log.warning("sim.follow_up_failed", task=name, error=str(exc))

        task.add_done_callback(done)
        return task

    # ----------------------------------------------------------------- charger-initiated

    async def boot(
        self,
        *,
        retry: bool = False,
        attempts: int = 5,
        max_wait_s: float | None = None,
        announce: bool = False,
    ) -> dict[str, Any]:
        """BootNotification; with ``retry`` resend after the CSMS's interval while not Accepted.

        ``max_wait_s`` caps the wait between attempts (tests). ``announce`` sends
        StatusNotification for connector 0 and every connector once Accepted. Returns the
        last response; the heartbeat loop starts on Accepted.
        """
        payload = {
            "chargePointVendor": self.vendor,
            "chargePointModel": self.model,
            "chargePointSerialNumber": self.serial,
            "firmwareVersion": self.firmware,
        }
        response: dict[str, Any] = {}
        for attempt in range(max(1, attempts if retry else 1)):
            response = await self.request("BootNotification", payload)
            self.registration = response.get("status")
            interval = int(response.get("interval") or 0)
            if self.registration == "Accepted":
                self.boot_count += 1
                if interval > 0:
                    self.heartbeat_interval = interval
                    self.config.set("HeartbeatInterval", str(interval))
                self._start_heartbeat()
                if announce:
                    for cid in self.connectors:
                        await self._send_status(cid)
                await self._notify()
                return response
            if not retry or attempt == attempts - 1:
                break
            wait = interval if interval > 0 else 10
            await asyncio.sleep(min(wait, max_wait_s) if max_wait_s is not None else wait)
        await self._notify()
        return response

    async def heartbeat(self) -> dict[str, Any]:
        return await self.request("Heartbeat", {})

    async def authorize(self, id_tag: str) -> dict[str, Any]:
        response = await self.request("Authorize", {"idTag": id_tag})
        info = response.get("idTagInfo")
        if isinstance(info, dict):
            self.auth_cache[id_tag] = info
        return response

    async def status(
        self,
        connector: int,
        status: str | Status,
        *,
        error_code: str = "NoError",
        info: str | None = None,
        force: bool = False,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        """Move ``connector`` to ``status`` (checked unless ``force``) and report it."""
        conn = self._connector(connector)
        conn.move(Status(status), force=force)
        return await self._send_status(connector, error_code=error_code, info=info, ts=timestamp)

    async def _send_status(
        self,
        connector: int,
        *,
        error_code: str = "NoError",
        info: str | None = None,
        ts: str | None = None,
    ) -> dict[str, Any]:
        conn = self._connector(connector)
        if not self.connected:
            return {}  # reported on reconnect
        payload: dict[str, Any] = {
            "connectorId": connector,
            "errorCode": error_code,
            "status": str(conn.status),
            "timestamp": ts or self.now(),
        }
        if info:
            payload["info"] = info
        response = await self.request("StatusNotification", payload)
        self._reported[connector] = conn.status
        return response

    async def _move(self, connector: int, status: Status) -> None:
        """Automatic flows: report only real changes, never an illegal edge."""
        conn = self._connector(connector)
        if conn.status != status:
            conn.move(status)
            await self._send_status(connector)

    async def start_transaction(
        self,
        connector: int,
        id_tag: str,
        meter_start: int | None = None,
        *,
        timestamp: str | None = None,
        reservation_id: int | None = None,
        move_status: bool = True,
        meter_loop: bool = True,
    ) -> dict[str, Any]:
        """StartTransaction; on Accepted the connector goes Charging and sampling starts.

        While offline the message is queued (returns ``{}``) and replayed on reconnect.
        Whatever the answer, the Tx is kept in ``transactions`` with ``auth_status``:
        what a charger does with a rejected start is the caller's (scenario's) choice.
        """
        conn = self._connector(connector)
        if meter_start is not None:
            conn.meter_wh = meter_start
        tx = Tx(
            connector_id=connector,
            id_tag=id_tag,
            meter_start=int(conn.meter_wh),
            started_at=timestamp or self.now(),
            reservation_id=reservation_id,
        )
        payload: dict[str, Any] = {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": tx.meter_start,
            "timestamp": tx.started_at,
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        tx.samples.append(self._sample(conn, "Transaction.Begin", tx.started_at))
        self.transactions[connector] = tx
        if move_status and conn.status in (Status.AVAILABLE, Status.RESERVED):
            conn.move(Status.PREPARING)
            await self._send_status(connector)
        if not self.connected:
            self.offline_queue.append(_Queued("StartTransaction", payload, tx))
            conn.move(Status.CHARGING)
            return {}
        response = await self.request("StartTransaction", payload)
        tx.id = response.get("transactionId")
        tx.auth_status = (response.get("idTagInfo") or {}).get("status")
        if reservation_id is not None:
            self.reservations.pop(reservation_id, None)
        if tx.auth_status == "Accepted":
            if move_status:
                await self._move(connector, Status.CHARGING)
            if meter_loop:
                self._start_meter_loop(connector)
        await self._notify()
        return response

    async def send_meter_values(
        self,
        connector: int,
        *,
        energy_wh: float | None = None,
        power_w: float | None = None,
        timestamp: str | None = None,
        context: str = "Sample.Periodic",
        transaction_id: int | None = None,
    ) -> dict[str, Any]:
        """MeterValues with Energy.Active.Import.Register (Wh) and Power.Active.Import (W)."""
        conn = self._connector(connector)
        if energy_wh is not None:
            conn.meter_wh = energy_wh
        ts = timestamp or self.now()
        sample = self._sample(conn, context, ts, power_w)
        tx = self.transactions.get(connector)
        if tx is not None:
            tx.samples.append(self._sample(conn, context, ts))
        payload: dict[str, Any] = {"connectorId": connector, "meterValue": [sample]}
        tid = transaction_id if transaction_id is not None else (tx.id if tx else None)
        if tid is not None:
            payload["transactionId"] = tid
        if not self.connected:
            if tx is None:
                raise NotConnected("MeterValues")
            self.offline_queue.append(_Queued("MeterValues", payload, tx))
            return {}
        return await self.request("MeterValues", payload)

    def _sample(
        self, conn: Connector, context: str, ts: str, power_w: float | None = None
    ) -> dict[str, Any]:
        values = [
            {
                "value": str(int(conn.meter_wh)),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unit": "Wh",
            }
        ]
        if context not in ("Transaction.Begin", "Transaction.End"):
            charging = conn.status == Status.CHARGING
            power = power_w if power_w is not None else (self.power_w if charging else 0.0)
            values.append(
                {
                    "value": f"{power:.1f}",
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "location": "Outlet",
                    "unit": "W",
                }
            )
        return {"timestamp": ts, "sampledValue": values}

    async def stop_transaction(
        self,
        connector: int | None = None,
        *,
        transaction_id: int | None = None,
        reason: str = "Local",
        meter_stop: int | None = None,
        id_tag: str | None = None,
        timestamp: str | None = None,
        transaction_data: bool = True,
        move_status: bool = True,
    ) -> dict[str, Any]:
        """StopTransaction with reason and transactionData (Begin, periodic, End samples).

        Pass ``transaction_id`` alone to stop a transaction the charger does not know
        (fault tests). Offline, it is queued and its id filled in at replay.
        """
        tx = None
        if connector is None and transaction_id is not None:
            connector = next(
                (c for c, t in self.transactions.items() if t.id == transaction_id), None
            )
        if connector is not None:
            tx = self.transactions.get(connector)
        conn = self._connector(connector) if connector is not None else None
        meter_task = self._meter_tasks.pop(connector, None) if connector is not None else None
        if meter_task is not None:
            meter_task.cancel()
        if conn is not None and meter_stop is not None:
            conn.meter_wh = meter_stop
        ts = timestamp or self.now()
        stop_meter = int(conn.meter_wh) if conn is not None else int(meter_stop or 0)
        tid = transaction_id if transaction_id is not None else (tx.id if tx else None)
        payload: dict[str, Any] = {
            "transactionId": tid if tid is not None else -1,
            "meterStop": stop_meter,
            "timestamp": ts,
            "reason": reason,
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        if transaction_data and tx is not None and conn is not None:
            payload["transactionData"] = [*tx.samples, self._sample(conn, "Transaction.End", ts)]
        if connector is not None:
            self.transactions.pop(connector, None)
        if (
            move_status
            and conn is not None
            and conn.status
            not in (
                Status.AVAILABLE,
                Status.FINISHING,
            )
        ):
            conn.move(Status.FINISHING)
            await self._send_status(connector)  # type: ignore[arg-type]
        if not self.connected:
            self.offline_queue.append(_Queued("StopTransaction", payload, tx))
            response: dict[str, Any] = {}
        else:
            response = await self.request("StopTransaction", payload)
        if move_status and conn is not None:
            target = Status.UNAVAILABLE if conn.unavailable_after_tx else Status.AVAILABLE
            conn.unavailable_after_tx = False
            if conn.status != target:
                conn.move(target)
                await self._send_status(conn.id)
        await self._notify()
        return response

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        return await self.request("DataTransfer", payload)

    async def replay_queue(self, *, drop_starts: bool = False) -> list[Step]:
        """Send queued transaction messages in order, filling in ids learnt on the way.

        ``drop_starts`` simulates a charger that lost its queued StartTransaction: the
        later messages then carry ``transactionId`` -1 (Stop) or none (MeterValues).
        """
        done: list[Step] = []
        self._replaying = True
        try:
            await self._replay(done, drop_starts)
        finally:
            self._replaying = False
        return done

    async def _replay(self, done: list[Step], drop_starts: bool) -> None:
        while self.offline_queue:
            item = self.offline_queue[0]
            if drop_starts and item.action == "StartTransaction":
                self.offline_queue.pop(0)
                continue
            payload = dict(item.payload)
            if item.action != "StartTransaction" and item.tx is not None:
                if item.tx.id is not None:
                    payload["transactionId"] = item.tx.id
                elif item.action == "StopTransaction":
                    payload["transactionId"] = -1
                else:
                    payload.pop("transactionId", None)
            response = await self.request(item.action, payload)
            self.offline_queue.pop(0)
            if item.action == "StartTransaction" and item.tx is not None:
                item.tx.id = response.get("transactionId")
                item.tx.auth_status = (response.get("idTagInfo") or {}).get("status")
            done.append(self.steps[-1])

    # ----------------------------------------------------------------- loops

    def _start_heartbeat(self) -> None:
        self._stop_heartbeat()
        if self.heartbeat_enabled and self.connected:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())

    def _stop_heartbeat(self) -> None:
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

    def _start_meter_loop(self, connector: int) -> None:
        old = self._meter_tasks.pop(connector, None)
        if old is not None:
            old.cancel()
        if self.config.get_int("MeterValueSampleInterval", 60) > 0:
            self._meter_tasks[connector] = asyncio.create_task(self._meter_loop(connector))

    async def _meter_loop(self, connector: int) -> None:
        """Advance the energy register at ``power_w`` and report every sample interval."""
        conn = self._connector(connector)
        last = time.monotonic()
        while connector in self.transactions:
            interval = self.config.get_int("MeterValueSampleInterval", 60)
            if interval <= 0:
                return
            await asyncio.sleep(interval)
            now = time.monotonic()
            if conn.status == Status.CHARGING:
                conn.meter_wh += self.power_w * (now - last) * self.time_scale / 3600.0
            last = now
            try:
                await self.send_meter_values(connector)
            except SimulatorError as exc:
                self._log.warning("sim.meter_values_failed", error=str(exc))

    def _connector(self, connector: int) -> Connector:
        try:
            return self.connectors[connector]
        except KeyError:
            raise ValueError(f"no connector {connector} on {self.id}") from None

    # ----------------------------------------------------------------- CSMS-initiated

    @on("RemoteStartTransaction")
    def _on_remote_start(self, id_tag: str, connector_id: int | None = None, **kwargs: Any) -> Any:
        cid = connector_id if connector_id is not None else self._free_connector()
        ok = (
            cid is not None
            and cid in self.connectors
            and cid != 0
            and cid not in self.transactions
            and self.connectors[cid].status
            in (Status.AVAILABLE, Status.PREPARING, Status.FINISHING, Status.RESERVED)
        )
        self._remote_start_target = cid if ok else None
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after("RemoteStartTransaction")
    def _after_remote_start(self, id_tag: str, **kwargs: Any) -> None:
        cid = self._remote_start_target
        if cid is not None:
            self._spawn(self._remote_start(cid, id_tag), "remote-start")

    async def _remote_start(self, connector: int, id_tag: str) -> None:
        conn = self._connector(connector)
        if conn.status in (Status.AVAILABLE, Status.FINISHING, Status.RESERVED):
            await self._move(connector, Status.PREPARING)
        if self.config.get_bool("AuthorizeRemoteTxRequests", True):
            answer = await self.authorize(id_tag)
            if (answer.get("idTagInfo") or {}).get("status") != "Accepted":
                await self._move(connector, Status.AVAILABLE)
                return
        await self.start_transaction(connector, id_tag)

    def _free_connector(self) -> int | None:
        for cid, conn in self.connectors.items():
            if cid and cid not in self.transactions and conn.status == Status.AVAILABLE:
                return cid
        return None

    @on("RemoteStopTransaction")
    def _on_remote_stop(self, transaction_id: int, **kwargs: Any) -> Any:
        found = any(t.id == transaction_id for t in self.transactions.values())
        return call_result.RemoteStopTransaction(status="Accepted" if found else "Rejected")

    @after("RemoteStopTransaction")
    def _after_remote_stop(self, transaction_id: int, **kwargs: Any) -> None:
        for cid, tx in list(self.transactions.items()):
            if tx.id == transaction_id:
                self._spawn(self.stop_transaction(cid, reason="Remote"), "remote-stop")

    @on("Reset")
    def _on_reset(self, type: str, **kwargs: Any) -> Any:
        return call_result.Reset(status="Accepted")

    @after("Reset")
    def _after_reset(self, type: str, **kwargs: Any) -> None:
        self._spawn(self._reset(type), "reset")

    async def _reset(self, kind: str) -> None:
        """Stop every transaction (reason HardReset/SoftReset), drop the socket, come back, boot."""
        for cid in list(self.transactions):
            await self.stop_transaction(cid, reason=f"{kind}Reset")
        await asyncio.sleep(self.step_delay_s)
        await self.reconnect(replay=True)
        await self.boot(retry=True, max_wait_s=self.step_delay_s * 5, announce=True)

    @on("ChangeConfiguration")
    def _on_change_configuration(self, key: str, value: str, **kwargs: Any) -> Any:
        return call_result.ChangeConfiguration(status=self.config.set(key, value))

    @after("ChangeConfiguration")
    def _after_change_configuration(self, key: str, **kwargs: Any) -> None:
        if key == "HeartbeatInterval" and self.registration == "Accepted":
            self._start_heartbeat()
        elif key == "MeterValueSampleInterval":
            for cid in list(self._meter_tasks):
                self._start_meter_loop(cid)

    @on("GetConfiguration")
    def _on_get_configuration(self, key: list[str] | None = None, **kwargs: Any) -> Any:
        known, unknown = self.config.describe(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeAvailability")
    def _on_change_availability(self, connector_id: int, type: str, **kwargs: Any) -> Any:
        if connector_id not in self.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        targets = [connector_id] if connector_id else list(self.connectors)
        scheduled = False
        for cid in targets:
            conn = self.connectors[cid]
            if type == "Inoperative" and cid in self.transactions:
                conn.unavailable_after_tx = True
                scheduled = True
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @after("ChangeAvailability")
    def _after_change_availability(self, connector_id: int, type: str, **kwargs: Any) -> None:
        if connector_id not in self.connectors:
            return
        targets = [connector_id] if connector_id else list(self.connectors)
        target = Status.UNAVAILABLE if type == "Inoperative" else Status.AVAILABLE

        async def apply() -> None:
            for cid in targets:
                if cid in self.transactions:
                    continue
                conn = self.connectors[cid]
                if type == "Operative" and conn.status != Status.UNAVAILABLE:
                    continue
                conn.unavailable_after_tx = False
                if conn.status != target:
                    conn.move(target, force=True)
                    await self._send_status(cid)

        self._spawn(apply(), "change-availability")

    @on("UnlockConnector")
    def _on_unlock(self, connector_id: int, **kwargs: Any) -> Any:
        ok = connector_id in self.connectors and connector_id != 0
        return call_result.UnlockConnector(status="Unlocked" if ok else "NotSupported")

    @after("UnlockConnector")
    def _after_unlock(self, connector_id: int, **kwargs: Any) -> None:
        if connector_id in self.transactions:
            self._spawn(self.stop_transaction(connector_id, reason="UnlockCommand"), "unlock")

    @on("ClearCache")
    def _on_clear_cache(self, **kwargs: Any) -> Any:
        self.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on("DataTransfer")
    def _on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **kw: Any
    ) -> Any:
        self.data_transfers.append({"vendorId": vendor_id, "messageId": message_id, "data": data})
        if vendor_id != self.vendor:
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)

    @on("TriggerMessage")
    def _on_trigger(
        self, requested_message: str, connector_id: int | None = None, **kw: Any
    ) -> Any:
        known = {
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
        }
        if requested_message not in known:
            return call_result.TriggerMessage(status="NotImplemented")
        if connector_id is not None and connector_id not in self.connectors:
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after("TriggerMessage")
    def _after_trigger(
        self, requested_message: str, connector_id: int | None = None, **kw: Any
    ) -> None:
        if connector_id is not None and connector_id not in self.connectors:
            return
        targets = [connector_id] if connector_id is not None else list(self.connectors)
        senders: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "BootNotification": lambda: self.boot(),
            "Heartbeat": self.heartbeat,
            "DiagnosticsStatusNotification": lambda: self.request(
                "DiagnosticsStatusNotification", {"status": "Idle"}
            ),
            "FirmwareStatusNotification": lambda: self.request(
                "FirmwareStatusNotification", {"status": "Idle"}
            ),
        }

        async def send() -> None:
            if requested_message in senders:
                await senders[requested_message]()
            elif requested_message == "StatusNotification":
                for cid in targets:
                    await self._send_status(cid)
            elif requested_message == "MeterValues":
                for cid in targets:
                    if cid:
                        await self.send_meter_values(cid, context="Trigger")

        self._spawn(send(), "trigger")

    @on("SendLocalList")
    def _on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> Any:
        if not self.config.get_bool("LocalAuthListEnabled", True):
            return call_result.SendLocalList(status="NotSupported")
        entries = local_authorization_list or []
        if update_type == "Differential" and list_version <= self.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        if update_type == "Full":
            self.local_list = {}
        for entry in entries:
            tag = entry["id_tag"]
            info = entry.get("id_tag_info")
            if info is None:
                self.local_list.pop(tag, None)
            else:
                self.local_list[tag] = info
        self.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    def _on_get_local_list_version(self, **kw: Any) -> Any:
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on("ReserveNow")
    def _on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **kw: Any,
    ) -> Any:
        conn = self.connectors.get(connector_id)
        if conn is None or connector_id == 0:
            return call_result.ReserveNow(status="Rejected")
        existing = self.reservations.get(reservation_id)
        if existing is None:
            if connector_id in self.transactions or conn.status not in (
                Status.AVAILABLE,
                Status.RESERVED,
            ):
                status = {
                    Status.FAULTED: "Faulted",
                    Status.UNAVAILABLE: "Unavailable",
                }.get(conn.status, "Occupied")
                return call_result.ReserveNow(status=status)
            if conn.reservation_id is not None:
                return call_result.ReserveNow(status="Occupied")
        self.reservations[reservation_id] = {
            "connectorId": connector_id,
            "idTag": id_tag,
            "expiryDate": expiry_date,
            "parentIdTag": parent_id_tag,
        }
        conn.reservation_id = reservation_id
        return call_result.ReserveNow(status="Accepted")

    @after("ReserveNow")
    def _after_reserve_now(self, connector_id: int, reservation_id: int, **kw: Any) -> None:
        if self.reservations.get(reservation_id, {}).get("connectorId") == connector_id:
            self._spawn(self._move(connector_id, Status.RESERVED), "reserve")

    @on("CancelReservation")
    def _on_cancel_reservation(self, reservation_id: int, **kw: Any) -> Any:
        res = self.reservations.pop(reservation_id, None)
        if res is None:
            return call_result.CancelReservation(status="Rejected")
        conn = self.connectors[res["connectorId"]]
        conn.reservation_id = None
        if conn.status == Status.RESERVED:
            self._pending_available = conn.id
        return call_result.CancelReservation(status="Accepted")

    @after("CancelReservation")
    def _after_cancel_reservation(self, **kw: Any) -> None:
        cid = self._pending_available
        self._pending_available = None
        if cid is not None:
            self._spawn(self._move(cid, Status.AVAILABLE), "cancel-reservation")

    @on("SetChargingProfile")
    def _on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kw: Any
    ) -> Any:
        conn = self.connectors.get(connector_id)
        profile = cs_charging_profiles
        if conn is None:
            return call_result.SetChargingProfile(status="Rejected")
        purpose = profile.get("charging_profile_purpose")
        if purpose == "TxProfile" and connector_id not in self.transactions:
            return call_result.SetChargingProfile(status="Rejected")
        conn.profiles[int(profile["charging_profile_id"])] = profile
        return call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def _on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **kw: Any,
    ) -> Any:
        removed = 0
        for cid, conn in self.connectors.items():
            if connector_id is not None and cid != connector_id:
                continue
            for pid, prof in list(conn.profiles.items()):
                if id is not None and pid != id:
                    continue
                if (
                    charging_profile_purpose is not None
                    and prof.get("charging_profile_purpose") != charging_profile_purpose
                ):
                    continue
                if stack_level is not None and prof.get("stack_level") != stack_level:
                    continue
                del conn.profiles[pid]
                removed += 1
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on("GetCompositeSchedule")
    def _on_get_composite_schedule(
        self,
        connector_id: int,
        duration: int,
        charging_rate_unit: str | None = None,
        **kw: Any,
    ) -> Any:
        conn = self.connectors.get(connector_id)
        if conn is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        profiles = [*conn.profiles.values(), *self.connectors[0].profiles.values()]
        profiles.sort(key=lambda p: p.get("stack_level", 0), reverse=True)
        if profiles:
            sched = profiles[0]["charging_schedule"]
            unit = sched.get("charging_rate_unit", "A")
            periods = [
                {"startPeriod": int(p["start_period"]), "limit": float(p["limit"])}
                for p in sched.get("charging_schedule_period", [])
            ] or [{"startPeriod": 0, "limit": 32.0}]
        else:
            unit = charging_rate_unit or "A"
            periods = [{"startPeriod": 0, "limit": 32.0 if unit == "A" else self.power_w}]
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=self.now(),
            charging_schedule={
                "duration": duration,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": periods,
            },
        )

    @on("UpdateFirmware")
    def _on_update_firmware(self, location: str, retrieve_date: str, **kw: Any) -> Any:
        return call_result.UpdateFirmware()

    @after("UpdateFirmware")
    def _after_update_firmware(self, **kw: Any) -> None:
        async def run() -> None:
            for status in ("Downloading", "Downloaded", "Installing", "Installed"):
                await asyncio.sleep(self.step_delay_s)
                await self.request("FirmwareStatusNotification", {"status": status})

        self._spawn(run(), "firmware")

    @on("GetDiagnostics")
    def _on_get_diagnostics(self, location: str, **kw: Any) -> Any:
        stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
        return call_result.GetDiagnostics(file_name=f"diagnostics-{self.id}-{stamp}.log")

    @after("GetDiagnostics")
    def _after_get_diagnostics(self, **kw: Any) -> None:
        async def run() -> None:
            for status in ("Uploading", "Uploaded"):
                await asyncio.sleep(self.step_delay_s)
                await self.request("DiagnosticsStatusNotification", {"status": status})

        self._spawn(run(), "diagnostics")


def jittered_backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: spreads a reconnect storm instead of synchronising it."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


def shifted(iso_ts: str | None = None, seconds: float = 0.0) -> str:
    """``now`` (or ``iso_ts``) shifted by ``seconds``: historical timestamps for offline replay."""
    base = utc_now() if iso_ts is None else datetime.fromisoformat(iso_ts.replace("Z", "+00:00"))
    return iso(base + timedelta(seconds=seconds))
