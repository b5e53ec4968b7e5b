"""The remote path's floor: a bare WebSocket server that answers each Authorize only
after one HTTP/1.1 POST to the eMSP's authorize endpoint, on the stack the CSMS runs on
(websockets on uvloop, orjson, keep-alive connections over asyncio protocols).

Why: the remote target is a CPU figure per call, and most of a real-time authorize is
what any server pays for it: a WebSocket frame in and out, an HTTP request out and its
answer in, each a wake of the event loop and a loopback write. This server does only
that (no schema, no policy, no store, no log), so the benchmark can report the CSMS's
CPU per remote call beside what the bare exchange costs on the same machine in the same
run.

Run: ``python -m tests.bench.remote_echo --emsp http://127.0.0.1:PORT/ocpi/2.2.1/tokens``
(prints ``listening on ws://...``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection

from tests.bench.fast_echo import booted, listen

EMPTY = orjson.Fragment(b"{}")  # every other CALL the generator sends


class _Http(asyncio.Protocol):
    """One keep-alive connection; one request at a time, answers framed by Content-Length."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.waiter: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("eMSP closed"))
        self.pool.lost(self)


class Pool:
    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.idle: deque[_Http] = deque()

    def lost(self, conn: _Http) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    async def post(self, uid: str) -> bytes:
        conn = self.idle.pop() if self.idle else None
        if conn is None:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(lambda: _Http(self), self.host, self.port)
        assert conn.transport is not None
        conn.waiter = asyncio.get_running_loop().create_future()
        conn.transport.write(
            f"POST {self.prefix}/{uid}/authorize?type=RFID HTTP/1.1\r\nHost: {self.host}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        body = await conn.waiter
        self.idle.append(conn)
        return body


async def main(host: str, port: int, emsp: str) -> None:
    rest = emsp.split("://", 1)[1]
    hostport, _, prefix = rest.partition("/")
    e_host, _, e_port = hostport.rpartition(":")
    pool = Pool(e_host, int(e_port), "/" + prefix)

    async def answer(ws: ServerConnection, unique_id: str, uid: str) -> None:
        info = orjson.loads(await pool.post(uid))
        allowed = (info.get("data") or {}).get("allowed") == "ALLOWED"
        status = "Accepted" if allowed else "Invalid"
        await ws.send(orjson.dumps([3, unique_id, {"idTagInfo": {"status": status}}]).decode())

    async def handler(ws: ServerConnection) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async for raw in ws:
            msg = orjson.loads(raw)
            if msg[0] != 2:
                continue
            if msg[2] == "Authorize":
                task = asyncio.create_task(answer(ws, msg[1], msg[3]["idTag"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                continue
            reply = booted() if msg[2] == "BootNotification" else EMPTY
            await ws.send(orjson.dumps([3, msg[1], reply]).decode())

    await listen(handler, host, port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--emsp", required=True, help="the eMSP's tokens endpoint URL")
    args = parser.parse_args()
    uvloop.run(main(args.host, args.port, args.emsp))
