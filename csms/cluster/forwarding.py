"""Calls to a charger whose socket another node holds, forwarded over the bus.

Why the bus and not HTTP between nodes: the nodes already share PostgreSQL and listen on
it (:mod:`csms.cluster.bus`); a second transport would need its own addresses,
authentication and failure handling. Node A, asked to call a charger that presence
places on node B, notifies B's channel (``channel_of("csms_node", B)``) with
``{kind: "call", id, reply_to, charger, action, payload, timeout}``; B runs the call on
its own socket (:meth:`ChargerGateway.call_here`) and notifies A's channel with
``{kind: "answer", id, result}`` or ``{kind: "answer", id, error: {type, ...}}``, which A
raises as the same :mod:`csms.ocpp16.errors` type a local call would, so callers cannot
tell the difference. A's caller waits at most its own call timeout; the request is
validated on A before it leaves (the gateway does that), so a bad payload never travels.
A charger removed or demoted through A's admin API has its session on B closed the same
way (``{kind: "close", id, reply_to, charger, reason, if_accepted}``, answered
``{closed}``).

A message larger than a notification may carry (a big SendLocalList, a long
GetConfiguration answer) is written to ``cluster_calls`` and the notification carries
only ``{kind, id, row}``; the reader deletes the row. Rows nobody read (the caller had
given up, the node died) are swept after :data:`ROW_KEEP_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, Protocol

import orjson

from csms import logs
from csms.authz.ports import Preauthorizer
from csms.cluster.bus import MAX_PAYLOAD_BYTES, Bus, channel_of
from csms.cluster.forwarding_preauth import Carried, CarryingPreauthorizer, apply
from csms.ocpp16 import errors
from csms.ocpp16.gateway import ChargerGateway
from csms.store.db import Database

log = logs.get("csms.cluster")

CHANNEL_PREFIX = "csms_node"
# A message longer than this goes through ``cluster_calls`` (the bus refuses it).
NOTIFY_LIMIT = MAX_PAYLOAD_BYTES
# A row in cluster_calls nobody read after this long is deleted by the next writer.
ROW_KEEP_S = 600.0
# How long closing a session on another node may take before it counts as not closed.
CLOSE_TIMEOUT_S = 5.0

Message = dict[str, Any]


class Locator(Protocol):
    """Where a charger's socket is (:class:`csms.cluster.presence.Presence` has it)."""

    async def locate(self, charger_id: str) -> str | None: ...


def node_channel(node_id: str) -> str:
    """The channel node ``node_id`` listens on for calls and answers."""
    return channel_of(CHANNEL_PREFIX, node_id)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Forwarder:
    """Both ends of a forwarded call on one node: :meth:`call` asks the node holding a
    charger, and what another node asks of this one is run here and answered.

    Implements :class:`csms.ocpp16.gateway.RemoteCalls` (``gateway.remote``).
    """

    def __init__(
        self,
        node_id: str,
        bus: Bus,
        presence: Locator,
        db: Database,
        gateway: ChargerGateway,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.node_id = node_id
        self.bus = bus
        self.presence = presence
        self.db = db
        self.gateway = gateway
        self.clock = clock
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        # Command pre-authorizations riding on the next call to their charger
        # (csms.cluster.forwarding_preauth), and what holds those sent to this node (the
        # authorization service its chargers ask; set by the composition root).
        self.carried = Carried()
        self.preauthorizer: Preauthorizer | None = None

    def carrying(self, local: Preauthorizer) -> CarryingPreauthorizer:
        """The pre-authorizer for OCPI commands on this node: ``local`` holds what it is
        given, and what is meant for a charger on another node goes there too."""
        return CarryingPreauthorizer(local, self.carried, self.gateway.is_connected)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on this node's channel; returns once listening (the bus is up)."""
        if self._running:
            return
        self._running = True
        self.bus.listen(node_channel(self.node_id), self._received)
        self.bus.on_gap(self._gap)
        await self.bus.settled()

    async def stop(self) -> None:
        """Stop answering; calls being run for other nodes are abandoned (they time out
        there, as they would if this node died)."""
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _gap(self) -> None:
        if self._pending:
            # An answer sent meanwhile is lost: those callers get CallTimeout.
            log.warning("cluster.forward_gap", waiting=len(self._pending))

    # ------------------------------------------------------------------ asking

    async def reachable(self, charger_id: str) -> bool:
        node = await self.presence.locate(charger_id)
        return node is not None and node != self.node_id

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """The answer of the node holding ``charger_id``, within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout) as scope:
                deadline = scope.when()
                assert deadline is not None
                return await self._call(charger_id, action, payload, deadline)
        except TimeoutError:
            log.warning(
                "ocpp.call_timeout", charge_point_id=charger_id, action=action, forwarded=True
            )
            raise errors.CallTimeout(charger_id, action, timeout) from None

    async def _call(
        self, charger_id: str, action: str, payload: dict[str, Any], deadline: float
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        node = await self.presence.locate(charger_id)
        if node is None or node == self.node_id:
            raise errors.ChargerNotConnected(charger_id)
        try:
            return await self._ask(node, charger_id, action, payload, deadline)
        except errors.ChargerNotConnected:
            # The charger may have moved between our lookup and that node's answer (it
            # reconnected elsewhere): look once more, and ask where it is now.
            again = await self.presence.locate(charger_id)
            if again == self.node_id and self.gateway.is_connected(charger_id):
                return await self.gateway.call_here(
                    charger_id, action, payload, max(0.0, deadline - loop.time())
                )
            if again is None or again in (node, self.node_id):
                raise
            return await self._ask(again, charger_id, action, payload, deadline)

    async def _ask(
        self,
        node: str,
        charger_id: str,
        action: str,
        payload: dict[str, Any],
        deadline: float,
    ) -> dict[str, Any]:
        request = {
            "kind": "call",
            "charger": charger_id,
            "action": action,
            "payload": payload,
            "timeout": max(0.0, deadline - asyncio.get_running_loop().time()),
        }
        carried = self.carried.take(charger_id)
        if carried:
            request["preauthorize"] = carried
        answer = await self._exchange(node, request)
        if "error" in answer:
            _raise(answer["error"], charger_id, action, node)
        result: dict[str, Any] = answer["result"]
        return result

    async def disconnect(self, charger_id: str, reason: str, *, if_accepted: bool) -> bool:
        """Close the charger's session on the node holding it; True when one was closed
        (False too when that node does not answer within :data:`CLOSE_TIMEOUT_S`)."""
        node = await self.presence.locate(charger_id)
        if node is None or node == self.node_id:
            return False
        close = {"kind": "close", "charger": charger_id, "reason": reason}
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                answer = await self._exchange(node, {**close, "if_accepted": if_accepted})
        except TimeoutError:
            log.warning("cluster.close_unanswered", charge_point_id=charger_id, node=node)
            return False
        return bool((answer.get("result") or {}).get("closed"))

    async def _exchange(self, node: str, message: Message) -> Message:
        """Send ``message`` to ``node`` and wait for its answer (the caller bounds the wait)."""
        message_id = uuid.uuid4().hex
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        try:
            await self._send(node, {**message, "id": message_id, "reply_to": self.node_id})
            return await future
        finally:
            self._pending.pop(message_id, None)

    # ------------------------------------------------------------------ answering

    def _received(self, text: str) -> None:
        """The bus's callback: quick, never raising; the work runs in tasks."""
        if not self._running:
            return
        try:
            message = orjson.loads(text)
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("cluster.forward_unreadable", size=len(text))
            return
        if "row" in message:
            self._spawn(self._from_row(message))
        else:
            self._handle(message)

    def _handle(self, message: Message) -> None:
        kind = message.get("kind")
        if kind == "answer":
            future = self._pending.get(str(message.get("id")))
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "call":
            self._spawn(self._serve(message))
        elif kind == "close":
            self._spawn(self._serve_close(message))

    async def _from_row(self, note: Message) -> None:
        body = await self._take_row(int(note["row"]))
        if body is None:
            log.warning("cluster.forward_row_missing", row=note["row"], kind=note.get("kind"))
            return
        self._handle(orjson.loads(body))

    async def _serve(self, message: Message) -> None:
        """Run a call another node forwarded, on this node's socket, and answer it."""
        reply_to = str(message["reply_to"])
        charger_id = str(message["charger"])
        action = str(message["action"])
        answer: Message = {"kind": "answer", "id": message["id"]}
        carried = message.get("preauthorize")
        if carried and self.preauthorizer is not None:
            try:
                apply(self.preauthorizer, charger_id, carried)
            except Exception:  # the call still goes out; the token is then asked in real time
                log.exception("cluster.preauthorize_failed", charge_point_id=charger_id)
        try:
            answer["result"] = await self.gateway.call_here(
                charger_id, action, message["payload"], float(message["timeout"])
            )
        except errors.GatewayError as exc:
            answer["error"] = _encode(exc)
        except Exception as exc:  # a bug here must still reach the caller, not a timeout
            log.exception("cluster.forward_serve_failed", charge_point_id=charger_id)
            answer["error"] = {"type": "Failed", "message": repr(exc)}
        try:
            await self._send(reply_to, answer)
        except Exception:
            log.exception("cluster.forward_answer_failed", node=reply_to, action=action)

    async def _serve_close(self, message: Message) -> None:
        """Close a session another node asked to close (a charger removed or demoted there)."""
        closed = await self.gateway.disconnect_here(
            str(message["charger"]),
            str(message["reason"]),
            if_accepted=bool(message["if_accepted"]),
        )
        answer = {"kind": "answer", "id": message["id"], "result": {"closed": closed}}
        await self._send(str(message["reply_to"]), answer)

    # ------------------------------------------------------------------ transport

    async def _send(self, node: str, message: Message) -> None:
        body = orjson.dumps(message)
        if len(body) > NOTIFY_LIMIT:
            row = await self._put_row(body.decode())
            body = orjson.dumps({"kind": message["kind"], "id": message["id"], "row": row})
        await self.bus.notify(node_channel(node), body.decode())

    async def _put_row(self, body: str) -> int:
        now = self.clock()
        await self.db.execute(
            "DELETE FROM cluster_calls WHERE created_at < ?",
            (_stamp(now - timedelta(seconds=ROW_KEEP_S)),),
        )
        return await self.db.insert(
            "INSERT INTO cluster_calls (body, created_at) VALUES (?, ?)", (body, _stamp(now))
        )

    async def _take_row(self, row: int) -> str | None:
        found = await self.db.fetchone("SELECT body FROM cluster_calls WHERE id = ?", (row,))
        if found is None:
            return None
        await self.db.execute("DELETE FROM cluster_calls WHERE id = ?", (row,))
        return str(found["body"])

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cluster.forward_task_failed", error=repr(task.exception()))


def _encode(exc: errors.GatewayError) -> Message:
    """A gateway error as the fields that rebuild it on the asking node."""
    doc: Message = {"type": type(exc).__name__}
    if isinstance(exc, errors.CallErrorReceived):
        doc.update(code=exc.code, description=exc.description, details=exc.details)
    elif isinstance(exc, errors.InvalidCallPayload | errors.InvalidCallResult):
        doc["message"] = exc.message
    return doc


def _raise(doc: Message, charger_id: str, action: str, node: str) -> NoReturn:
    """Raise the error the node holding the charger met, as the same type."""
    kind = doc.get("type")
    if kind == "ChargerNotConnected":
        raise errors.ChargerNotConnected(charger_id)
    if kind == "CallTimeout":
        raise TimeoutError  # reported with the caller's own timeout by Forwarder.call
    if kind == "CallErrorReceived":
        raise errors.CallErrorReceived(
            charger_id,
            action,
            str(doc.get("code")),
            str(doc.get("description", "")),
            doc.get("details") or {},
        )
    if kind == "InvalidCallPayload":
        raise errors.InvalidCallPayload(action, str(doc.get("message", "")))
    message = str(doc.get("message", ""))
    if kind != "InvalidCallResult":
        message = f"node {node} could not run the call: {message}"
    raise errors.InvalidCallResult(charger_id, action, message)
