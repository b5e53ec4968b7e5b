"""One charger's WebSocket session: the read loop, answers to its CALLs, our outstanding CALL.

Why one read loop that never waits on slow work: CALLRESULTs to our own calls are
resolved right in the loop, and handlers that may await something slow (see
:data:`csms.ocpp16.actions.SLOW`) run in their own task. A charger whose idTag takes
seconds to authorize therefore still answers a GetConfiguration at once, and one
charger's traffic never delays another's.
"""

from __future__ import annotations

import asyncio
import uuid
from contextvars import Context, ContextVar, copy_context
from dataclasses import dataclass
from time import monotonic
from typing import Any, Protocol

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from csms.ocpp16 import errors, framing, schemas
from csms.ocpp16.actions import ALL_OCPP16, CHARGER_INITIATED, SLOW
from csms.ocpp16.observer import NO_OBSERVER, MessageObserver
from csms.ocpp16.payloads import unstorable_integers
from csms.ocpp16.wire import HOLD, DirectTextConnection, send_text_now

log = structlog.get_logger("csms.ocpp")

# ``time.monotonic()`` when the CALL being answered was read off the socket. A context
# variable because a SLOW action's handler runs in a task made right after the read
# (the task copies the context then), while the read loop moves on to the next frame.
# The authorization deadline counts from here (``AuthRequest.received_at``).
RECEIVED_AT: ContextVar[float | None] = ContextVar("ocpp_received_at", default=None)


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    charger_id: str
    connected_at: str
    remote_address: str
    subprotocol: str | None


class Faults:
    """Counts of the server's own failures, shared by every connection; read as plain
    attributes (e.g. by a metrics endpoint).

    ``internal_errors``: CALLs answered InternalError. Every input the 1.6 schemas admit
    is answered or refused with the error code that names what is wrong with it, so
    each InternalError is a bug of ours: counted, and logged once as
    ``ocpp.internal_error`` with its traceback.
    """

    __slots__ = ("internal_errors",)

    def __init__(self) -> None:
        self.internal_errors = 0


class Dispatcher(Protocol):
    """Answers one validated charger-initiated CALL; raises OcppError for a CALLERROR.

    Two entry points, one answer: :meth:`answer_now` (synchronous) gives the answer
    when it needs no I/O, else None, and :meth:`handle` is its continuation. The
    connection tries the first for SLOW actions, so a cache-hit Authorize costs no task.
    A response may be a :class:`framing.Prepared` from :func:`schemas.prepare_response`
    (validated already).
    """

    def answer_now(
        self, conn: ChargerConnection, action: str, payload: dict[str, Any]
    ) -> framing.Prepared | None: ...

    async def handle(
        self, conn: ChargerConnection, action: str, payload: dict[str, Any]
    ) -> Any: ...


DEFAULT_MAX_CALLS_IN_FLIGHT = 4


class ChargerConnection:
    """One charger's session.

    CALLs in flight. OCPP-J 1.6 lets a charger send one CALL at a time. A charger's
    CALLs that wait on I/O (:data:`SLOW`) run in tasks; at most ``max_calls_in_flight``
    of them at once. The excess is not refused: it is not *read*. Reading from the
    socket stops until one in flight is answered, so the charger's own TCP window holds
    its flood back, nothing it sent is lost or answered with an error it would retry,
    and the server keeps a fixed amount per connection whatever is pipelined. Likewise
    while an answer waits for the charger's socket to drain (it does not read), nothing
    more is read from it. Results to our own CALLs are taken at any time (they cost no
    work), so a charger answers a GetConfiguration while its Authorize is pending.
    """

    # Slots, and a call lock made on first use: thousands of mostly idle connections each
    # carry this object, so its size shows in RSS per connection.
    __slots__ = (
        "_call_lock",
        "_closed",
        "_ctx",
        "_dispatcher",
        "_faults",
        "_in_flight",
        "_max_in_flight",
        "_observer",
        "_pending",
        "_pending_id",
        "_sending",
        "_slot_waiter",
        "_tasks",
        "charger_id",
        "info",
        "registration_status",
        "replaced",
        "ws",
    )

    def __init__(
        self,
        charger_id: str,
        ws: ServerConnection,
        dispatcher: Dispatcher,
        info: ConnectionInfo,
        registration_status: str,
        faults: Faults | None = None,
        max_calls_in_flight: int = DEFAULT_MAX_CALLS_IN_FLIGHT,
        observer: MessageObserver = NO_OBSERVER,
    ) -> None:
        self.charger_id = charger_id
        self._faults = faults or Faults()
        self._max_in_flight = max(1, max_calls_in_flight)
        self._in_flight = 0
        self._slot_waiter: asyncio.Future[None] | None = None
        self._observer = observer
        self.ws = ws
        self.info = info
        self.registration_status = registration_status
        self.replaced = False
        self._dispatcher = dispatcher
        self._tasks: set[asyncio.Task[None]] = set()
        self._call_lock: asyncio.Lock | None = None
        self._pending_id: str | None = None
        self._pending: asyncio.Future[framing.CallResult | framing.CallError] | None = None
        self._closed = False
        self._ctx: Context | None = None
        self._sending = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def calls_in_flight(self) -> int:
        """The charger's CALLs read and not yet answered (those running in tasks)."""
        return self._in_flight

    async def serve(self) -> None:
        """Read until the socket closes; then fail our pending call and stop handler tasks.

        Frames that need no ``await`` in this loop (results to our calls, and the SLOW
        actions, which are answered at once or in their own task) are taken straight from
        the socket by :meth:`_on_text` when the websocket offers it; this loop sees the
        rest, in order.
        """
        ws = self.ws
        if isinstance(ws, DirectTextConnection):
            self._ctx = copy_context()  # carries the charger's bound log context
            ws.on_text = self._on_text
        try:
            async for raw in self.ws:
                try:
                    frame = framing.parse(raw)
                except framing.FrameError as exc:
                    await self._bad_frame(exc)
                    continue
                except Exception:  # a bug of ours must not end the charger's session
                    self._faults.internal_errors += 1
                    log.error("ocpp.internal_error", cause="frame parsing failed", exc_info=True)
                    continue
                if type(frame) is framing.Call:
                    if frame.action in SLOW:
                        while self._in_flight >= self._max_in_flight:
                            await self._slot()  # meanwhile the library's queue fills and
                            # it stops reading the socket
                        RECEIVED_AT.set(monotonic())
                        out = self._answer_now(frame)
                        if out is not None:
                            await self._send(out)
                            continue
                        self._spawn_call(self._answer(frame, validated=True))
                    else:
                        RECEIVED_AT.set(monotonic())
                        await self._answer(frame)
                else:
                    self._resolve(frame)  # type: ignore[arg-type]
        except ConnectionClosed:
            pass
        finally:
            if isinstance(ws, DirectTextConnection):
                ws.on_text = None
            self._closed = True
            if self._slot_waiter is not None and not self._slot_waiter.done():
                self._slot_waiter.cancel()
            if self._pending is not None and not self._pending.done():
                self._pending.set_exception(errors.ChargerNotConnected(self.charger_id))
            for task in list(self._tasks):
                task.cancel()

    def _on_text(self, data: bytes) -> bool | None:
        """Handle one complete text frame inside ``data_received``; False leaves it to the
        read loop (bad frames, which it reports; actions it answers in order); HOLD stops
        reading until :meth:`_release` (an answer still waits for the socket to drain, so
        a charger that stops reading stops being read; or a CALL beyond the ones allowed
        in flight). Never raises into the transport."""
        if self._sending:
            return HOLD
        try:
            frame = framing.parse(data)
        except framing.FrameError:
            return False
        if type(frame) is framing.Call:
            if frame.action not in SLOW:
                return False
            if self._in_flight >= self._max_in_flight:
                return HOLD
            self._ctx.run(self._call_now, frame)  # type: ignore[union-attr]
        else:
            self._ctx.run(self._resolve, frame)  # type: ignore[union-attr, arg-type]
        return True

    def _call_now(self, frame: framing.Call) -> None:
        RECEIVED_AT.set(monotonic())
        try:
            out = self._answer_now(frame)
            if out is None:
                self._spawn_call(self._answer(frame, validated=True))
            elif not send_text_now(self.ws, out):
                self._sending += 1
                self._spawn(self._send_later(out))
        except Exception:  # a bug here must not close the transport from data_received
            self._internal_error(frame, "handler failed", exc_info=True)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn_call(self, coro: Any) -> None:
        """Answer a charger's CALL in a task, counted among its CALLs in flight."""
        self._in_flight += 1
        self._spawn(coro).add_done_callback(self._call_done)

    def _call_done(self, _: asyncio.Task[None]) -> None:
        self._in_flight -= 1
        waiter = self._slot_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._release()

    async def _slot(self) -> None:
        """Wait until a CALL in flight is answered."""
        waiter = self._slot_waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._slot_waiter = None

    def _release(self) -> None:
        """Let the socket's held frames be read again (see :class:`DirectTextConnection`)."""
        release = getattr(self.ws, "release", None)
        if release is not None:
            release()

    async def _send_later(self, data: bytes) -> None:
        try:
            await self._send(data)
        finally:
            self._sending -= 1
            if not self._sending:
                self._release()

    async def _bad_frame(self, exc: framing.FrameError) -> None:
        log.warning(
            "ocpp.bad_frame", code=exc.code, reason=exc.description, unique_id=exc.unique_id
        )
        if exc.reply:
            self._observer.answered("?", exc.code)
            await self._send(framing.error(exc.unique_id, exc.code, exc.description))
        elif self._pending_id == exc.unique_id and self._pending and not self._pending.done():
            self._pending.set_exception(
                errors.InvalidCallResult(self.charger_id, "?", exc.description)
            )

    def _resolve(self, frame: framing.CallResult | framing.CallError) -> None:
        if self._pending_id != frame.unique_id or self._pending is None or self._pending.done():
            log.warning("ocpp.unexpected_result", unique_id=frame.unique_id)
            return
        self._pending.set_result(frame)

    def _check_request(self, action: str, payload: Any) -> None:
        """Raise the OcppError a charger-initiated CALL earns before any handler runs."""
        if action not in CHARGER_INITIATED:
            if action in ALL_OCPP16:
                raise errors.OcppError(
                    errors.NOT_SUPPORTED, f"{action} is not accepted from a charge point"
                )
            raise errors.OcppError(errors.NOT_IMPLEMENTED, f"unknown action {action!r}")
        try:
            schemas.validate_request(action, payload)
        except schemas.SchemaViolation as exc:
            raise errors.OcppError(exc.code, exc.message) from None
        if action in schemas.INTEGER_ACTIONS and action != "StopTransaction":  # always kept
            for name, digits in unstorable_integers(payload).items():
                raise errors.OcppError(
                    errors.PROPERTY_CONSTRAINT_VIOLATION,
                    f"payload.{name} {digits} is outside the signed 64-bit range "
                    f"[{-(2**63)}, {2**63 - 1}] this central system stores",
                )

    def _result(self, call: framing.Call, response: Any) -> bytes:
        if type(response) is framing.Prepared:  # validated once, when it was prepared
            return framing.result_prepared(call.unique_id, response)
        try:
            schemas.validate_response(call.action, response)
        except schemas.SchemaViolation as exc:
            raise self._own_response_invalid(call, exc) from None
        return framing.result(call.unique_id, response)

    def _own_response_invalid(
        self, call: framing.Call, exc: schemas.SchemaViolation
    ) -> errors.OcppError:
        """Our answer broke its schema: a bug of ours, logged; the charger gets InternalError."""
        log.error("ocpp.invalid_own_response", action=call.action, reason=exc.message)
        return self._internal_error(call, "invalid own response", log_it=False)

    def _internal_error(
        self, call: framing.Call, cause: str, exc_info: bool = False, log_it: bool = True
    ) -> errors.OcppError:
        """Count one InternalError (see :class:`Faults`), log it once, return the error."""
        self._faults.internal_errors += 1
        if log_it:
            log.error(
                "ocpp.internal_error",
                action=call.action,
                unique_id=call.unique_id,
                cause=cause,
                exc_info=exc_info,
            )
        return errors.OcppError(errors.INTERNAL_ERROR, "internal error")

    def _error(self, call: framing.Call, exc: errors.OcppError) -> bytes:
        self._observer.answered(call.action, exc.code)
        if exc.code != errors.INTERNAL_ERROR:
            log.info(
                "ocpp.call_rejected", action=call.action, code=exc.code, reason=exc.description
            )
        return framing.error(call.unique_id, exc.code, exc.description, exc.details)

    def _answer_now(self, call: framing.Call) -> bytes | None:
        """The frame to send for a SLOW action when it needs no await (a bad payload, or a
        dispatcher that can decide from memory, e.g. an Authorize cache hit); else None and
        the caller runs :meth:`_answer` in a task. Saves a task per cache-hit Authorize."""
        try:
            self._check_request(call.action, call.payload)
            response = self._dispatcher.answer_now(self, call.action, call.payload)
            if response is None:
                return None
            out = framing.result_prepared(call.unique_id, response)
            self._observer.answered(call.action, None)
            return out
        except errors.OcppError as exc:
            return self._error(call, exc)
        except schemas.SchemaViolation as exc:  # a response the dispatcher prepared itself
            return self._error(call, self._own_response_invalid(call, exc))
        except Exception:
            return self._error(call, self._internal_error(call, "handler failed", exc_info=True))

    async def _answer(self, call: framing.Call, validated: bool = False) -> None:
        try:
            if not validated:
                self._check_request(call.action, call.payload)
            response = await self._dispatcher.handle(self, call.action, call.payload)
            out = self._result(call, response)
            self._observer.answered(call.action, None)
        except errors.OcppError as exc:
            out = self._error(call, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            out = self._error(call, self._internal_error(call, "handler failed", exc_info=True))
        await self._send(out)

    async def _send(self, data: bytes) -> None:
        try:
            if not send_text_now(self.ws, data):
                await self.ws.send(data, text=True)
        except (ConnectionClosed, OSError):
            log.debug("ocpp.send_after_close")

    async def call(self, action: str, payload: Any) -> framing.CallResult | framing.CallError:
        """Send one CALL and wait for its answer; OCPP-J allows one outstanding CALL, hence the
        lock. The caller bounds the whole wait (lock included) with its timeout."""
        if self._call_lock is None:
            self._call_lock = asyncio.Lock()
        async with self._call_lock:
            if self._closed:
                raise errors.ChargerNotConnected(self.charger_id)
            unique_id = str(uuid.uuid4())
            fut: asyncio.Future[framing.CallResult | framing.CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending_id, self._pending = unique_id, fut
            try:
                try:
                    await self.ws.send(framing.call(unique_id, action, payload), text=True)
                except ConnectionClosed:
                    raise errors.ChargerNotConnected(self.charger_id) from None
                return await fut
            finally:
                self._pending_id, self._pending = None, None

    async def close(self, reason: str) -> None:
        await self.ws.close(1000, reason)
