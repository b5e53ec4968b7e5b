"""A bare-bones OCPP-J WebSocket client on an asyncio Protocol, for the connection storm.

Why not ``websockets.connect``: a storm of 5,000 handshakes must measure the server, and
the library's client spent about 0.55 ms of CPU per connect+BootNotification, i.e. close
to the whole 3 s budget on the generator's core. Here a handshake is one pre-built
request and a status-line check, and a frame is a header plus the payload under a zero
mask (valid per RFC 6455 §5.3: the key is arbitrary; XOR with zeros leaves the bytes).
Only what the storm needs: text frames under 64 KiB, one CALL in flight, no pings.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from typing import Any

import orjson


class RawCharger(asyncio.Protocol):
    def __init__(self, host: str, port: int, path: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.open = False
        self.waiter: asyncio.Future[Any] | None = None
        self.n = 0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            if not head.startswith(b"HTTP/1.1 101"):
                self._wake(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.open = True
            self._wake(None)
        while len(self.buf) >= 2:
            n = self.buf[1] & 0x7F
            start = 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, start = struct.unpack(">H", self.buf[2:4])[0], 4
            if len(self.buf) < start + n:
                return
            opcode, payload = self.buf[0] & 0x0F, self.buf[start : start + n]
            self.buf = self.buf[start + n :]
            if opcode == 1:
                msg = orjson.loads(payload)
                if msg[0] == 2:  # the CSMS asks something (a probe at connect): not our answer
                    self._answer(msg[1])
                    continue
                self._wake(msg)
            elif opcode == 8:
                self._wake(ConnectionError("closed by server"))

    def _answer(self, message_id: str) -> None:
        """``[3, id, {}]``, as the load generator answers: a storm charger that stayed
        silent would leave the CSMS's call to time out, and taking the CALL for the
        answer it waits for failed its boot (15 of 15,000 in one run)."""
        assert self.transport is not None
        body = orjson.dumps([3, message_id, {}])
        n = len(body)
        head = struct.pack(">BB", 0x81, 0x80 | n) if n < 126 else struct.pack(">BBH", 0x81, 0xFE, n)
        self.transport.write(head + b"\x00\x00\x00\x00" + body)

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake(ConnectionError(f"connection lost: {exc}"))

    def _wake(self, value: Any) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            if isinstance(value, Exception):
                w.set_exception(value)
            else:
                w.set_result(value)

    # -- API
    async def opened(self, timeout: float = 10.0) -> None:
        if not self.open:
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, timeout)

    async def call(self, action: str, payload_json: bytes, timeout: float = 10.0) -> Any:
        """Send ``[2, id, action, payload]`` and return the decoded answer frame."""
        assert self.transport is not None
        self.n += 1
        body = b'[2,"%d","%s",%s]' % (self.n, action.encode(), payload_json)
        n = len(body)
        head = struct.pack(">BB", 0x81, 0x80 | n) if n < 126 else struct.pack(">BBH", 0x81, 0xFE, n)
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(head + b"\x00\x00\x00\x00" + body)
        return await asyncio.wait_for(waiter, timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000
            self.transport.close()


async def connect(
    host: str, port: int, path: str, timeout: float = 10.0, source: str | None = None
) -> RawCharger:
    """``source``: the local address to connect from (127.0.0.x spreads many connections
    over several loopback addresses, each with its own ephemeral port range)."""
    loop = asyncio.get_running_loop()
    local = (source, 0) if source is not None else None
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: RawCharger(host, port, path), host, port, local_addr=local),
        timeout,
    )
    await proto.opened(timeout)
    return proto
