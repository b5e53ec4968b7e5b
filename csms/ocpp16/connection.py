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
from csms.ocpp16.wire import DirectTextConnection, send_text_now

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


class ChargerConnection:
    # Slots, and a call lock made on first use: thousands of mostly idle connections each
    # carry this object, so its size shows in RSS per connection.
    __slots__ = (
        "_call_lock",
        "_closed",
        "_ctx",
        "_dispatcher",
        "_observer",
        "_pending",
        "_pending_id",
        "_sending",
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
        observer: MessageObserver = NO_OBSERVER,
    ) -> None:
        self.charger_id = charger_id
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
                if type(frame) is framing.Call:
                    RECEIVED_AT.set(monotonic())
                    if frame.action in SLOW:
                        out = self._answer_now(frame)
                        if out is not None:
                            await self._send(out)
                            continue
                        self._spawn(self._answer(frame, validated=True))
                    else:
                        await self._answer(frame)
                else:
                    self._resolve(frame)  # type: ignore[arg-type]
        except ConnectionClosed:
            pass
        finally:
            if isinstance(ws, DirectTextConnection):
                ws.on_text = None
            self._closed = True
            if self._pending is not None and not self._pending.done():
                self._pending.set_exception(errors.ChargerNotConnected(self.charger_id))
            for task in list(self._tasks):
                task.cancel()

    def _on_text(self, data: bytes) -> bool:
        """Handle one complete text frame inside ``data_received``; False leaves it to the
        read loop (bad frames, which it reports; actions it answers in order; and every
        frame while a direct answer is still waiting for the socket to drain, so a charger
        that stops reading stops being read). Never raises into the transport."""
        if self._sending:
            return False
        try:
            frame = framing.parse(data)
        except framing.FrameError:
            return False
        if type(frame) is framing.Call:
            if frame.action not in SLOW:
                return False
            self._ctx.run(self._call_now, frame)  # type: ignore[union-attr]
        else:
            self._ctx.run(self._resolve, frame)  # type: ignore[union-attr, arg-type]
        return True

    def _call_now(self, frame: framing.Call) -> None:
        RECEIVED_AT.set(monotonic())
        try:
            out = self._answer_now(frame)
            if out is None:
                self._spawn(self._answer(frame, validated=True))
            elif not send_text_now(self.ws, out):
                self._sending += 1
                self._spawn(self._send_later(out))
        except Exception:  # a bug here must not close the transport from data_received
            log.exception("ocpp.handler_failed", action=frame.action, unique_id=frame.unique_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_later(self, data: bytes) -> None:
        try:
            await self._send(data)
        finally:
            self._sending -= 1

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
            log.exception("ocpp.handler_failed", action=call.action, unique_id=call.unique_id)
            self._observer.answered(call.action, errors.INTERNAL_ERROR)
            return framing.error(call.unique_id, errors.INTERNAL_ERROR, "internal error")

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
            log.exception("ocpp.handler_failed", action=call.action, unique_id=call.unique_id)
            self._observer.answered(call.action, errors.INTERNAL_ERROR)
            out = framing.error(call.unique_id, errors.INTERNAL_ERROR, "internal error")
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
