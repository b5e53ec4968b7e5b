"""A bare OCPP-J peer whose every answer the test decides, including never answering.

Why beside the simulator: the simulator behaves like a correct charger; error paths
(a CALLERROR reply, a charger that hangs) need a peer that misbehaves on command.
``reply`` gets ``(action, payload)`` and returns one of :class:`Result`,
:class:`Error` or :data:`HANG`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


@dataclass(frozen=True)
class Result:
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


HANG = object()
Reply = Callable[[str, dict[str, Any]], Any]


class RawChargePoint:
    def __init__(self, ws: ClientConnection, reply: Reply) -> None:
        self.ws = ws
        self.reply = reply
        self.received: list[tuple[str, dict[str, Any]]] = []
        # Answers to frames sent by :meth:`flood` (nobody waits on them), by kind.
        self.flood_results = 0
        self.flood_errors: dict[str, int] = {}
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._n = 0
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, base_url: str, cp_id: str, reply: Reply, password: str | None = None
    ) -> RawChargePoint:
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        ws = await websockets.connect(
            f"{base_url}/{cp_id}",
            subprotocols=["ocpp1.6"],
            additional_headers=headers,  # type: ignore[list-item]
        )
        return cls(ws, reply)

    async def call(self, action: str, payload: dict[str, Any], timeout: float = 5.0) -> list[Any]:
        self._n += 1
        uid = f"raw-{self._n}"
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[uid] = fut
        await self.ws.send(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(fut, timeout)

    async def flood(self, action: str, payloads: Iterable[dict[str, Any]]) -> int:
        """Pipeline one CALL per payload without waiting for any answer (as a hostile or
        broken charger would); returns how many were sent. The answers are counted in
        ``flood_results`` / ``flood_errors``. Each send waits only for the socket to
        take the bytes, so a server that stops reading holds the flood back here."""
        sent = 0
        for payload in payloads:
            sent += 1
            await self.ws.send(json.dumps([2, f"flood-{sent}", action, payload]))
        return sent

    @property
    def flood_answered(self) -> int:
        return self.flood_results + sum(self.flood_errors.values())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    _, uid, action, payload = frame
                    self.received.append((action, payload))
                    answer = self.reply(action, payload)
                    if isinstance(answer, Result):
                        await self.ws.send(json.dumps([3, uid, answer.payload]))
                    elif isinstance(answer, Error):
                        await self.ws.send(
                            json.dumps([4, uid, answer.code, answer.description, answer.details])
                        )
                elif frame[1] in self._pending:
                    self._pending.pop(frame[1]).set_result(frame)
                elif str(frame[1]).startswith("flood-"):
                    if frame[0] == 3:
                        self.flood_results += 1
                    else:
                        self.flood_errors[frame[2]] = self.flood_errors.get(frame[2], 0) + 1
        except websockets.ConnectionClosed:
            pass

    async def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a flooder's close frame
        would wait behind everything it sent that the server has not read yet)."""
        self.ws.transport.abort()
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass
