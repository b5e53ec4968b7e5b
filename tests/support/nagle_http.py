"""An HTTP/1.1 server that answers like some eMSPs' Python web stacks do: the response
head and body in two writes, with Nagle's algorithm left on.

Why a test needs it: with Nagle on, the body (the second small segment) waits until the
client ACKs the head; a client in delayed-ACK mode holds that ACK ~40 ms. On a kept-alive
connection (the lean authorize pool's normal case) every answer after the first would then
arrive ~40 ms late. Requests are framed by Content-Length; every answer is the same JSON.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

BODY = b'{"status_code":1000,"data":{"allowed":"ALLOWED"}}'


class NagleHttp(asyncio.Protocol):
    """One connection: answers each request after ``delay_s``, head and body apart."""

    def __init__(self, delay_s: float, connections: list[object]) -> None:
        self.delay_s = delay_s
        self.connections = connections
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # asyncio turned it on
        self.connections.append(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            asyncio.get_running_loop().call_later(self.delay_s, self._answer)

    def _answer(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(BODY)
        )
        self.transport.write(BODY)


@asynccontextmanager
async def nagle_server(delay_s: float = 0.05) -> AsyncIterator[tuple[int, list[object]]]:
    """(port, accepted connections) of a running :class:`NagleHttp` on 127.0.0.1."""
    connections: list[object] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: NagleHttp(delay_s, connections), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        await server.wait_closed()
