"""roaming.http11, the lean keep-alive client for real-time authorize, against real servers.

An aiohttp server for the well-behaved cases; small asyncio servers that we control
for what a real server does only sometimes (chunked answers, closing an idle kept-alive
connection, answering with garbage or not at all).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from roaming import http11
from tests.support.servers import serving
from tests.support.waiting import wait_until


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[int, list[str]]]:
    peers: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        peers.append(str(request.transport.get_extra_info("peername")) if request.transport else "")
        body = await request.read()
        return web.json_response(
            {
                "path": request.path_qs,
                "body": body.decode(),
                "auth": request.headers.get("Authorization"),
            },
            status=404 if request.path.endswith("/missing") else 200,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with serving(app) as port:
        yield port, peers


async def raw_server(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], object],
) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(answer, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


async def test_post_reuses_one_kept_alive_connection(echo_server: tuple[int, list[str]]) -> None:
    port, peers = echo_server
    pool = http11.Pool("127.0.0.1", port, limit=4)
    try:
        for n in range(3):
            resp = await pool.request(
                "POST", f"/t/UID{n}/authorize?type=RFID", [("Authorization", "Token x")], b'{"a":1}'
            )
            assert resp.status == 200
            assert resp.headers["content-type"].startswith("application/json")
            assert b'"/t/UID%d/authorize?type=RFID"' % n in resp.body
            assert b'"Token x"' in resp.body
        missing = await pool.request("POST", "/t/missing", [], None)
        assert missing.status == 404
    finally:
        pool.close()
    assert len(set(peers)) == 1  # every exchange on the same client socket
    assert len(peers) == 4


async def test_chunked_answer_is_reassembled_and_the_connection_kept() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'4\r\n{"a"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n'
            )
        writer.close()

    server, port = await raw_server(answer)
    pool = http11.Pool("127.0.0.1", port)
    try:
        first = await pool.request("POST", "/", [], b"{}")
        second = await pool.request("POST", "/", [], b"{}")
        assert first.body == second.body == b'{"a":1}'
    finally:
        pool.close()
        server.close()


async def test_an_idle_connection_the_server_closed_is_replaced_once() -> None:
    connections = 0
    closed = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # the server ends keep-alive without saying so
        await writer.wait_closed()
        closed.set()

    server, port = await raw_server(answer)
    pool = http11.Pool("127.0.0.1", port)
    try:
        assert (await pool.request("POST", "/", [], b"{}")).body == b"ok"
        # Whether the close has reached the idle connection yet or not (then the write
        # on it finds it stale), the next exchange opens exactly one new connection.
        await wait_until(closed.is_set, what="the server closing the kept-alive connection")
        assert (await pool.request("POST", "/", [], b"{}")).body == b"ok"
        assert connections == 2
    finally:
        pool.close()
        server.close()


async def test_read_to_close_answer_and_connection_close_header() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nplease retry")
        await writer.drain()
        writer.close()

    server, port = await raw_server(answer)
    pool = http11.Pool("127.0.0.1", port)
    try:
        resp = await pool.request("POST", "/", [], None)
        assert (resp.status, resp.body) == (503, b"please retry")
        assert pool.idle == 0  # not kept
    finally:
        pool.close()
        server.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closed mid-body
        b"",  # closed without a byte
    ],
)
async def test_broken_answers_raise_http_error(reply: bytes) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server, port = await raw_server(answer)
    pool = http11.Pool("127.0.0.1", port)
    try:
        with pytest.raises(http11.HttpError):
            await pool.request("POST", "/", [], b"{}")
    finally:
        pool.close()
        server.close()


async def test_refused_connection_raises_http_error() -> None:
    server, port = await raw_server(lambda r, w: None)
    server.close()
    await server.wait_closed()
    pool = http11.Pool("127.0.0.1", port)
    with pytest.raises(http11.HttpError, match="cannot connect") as caught:
        await pool.request("POST", "/", [], None)
    assert caught.value.errno == errno.ECONNREFUSED  # the kind is read from this, not the text


async def test_a_cancelled_exchange_closes_its_connection() -> None:
    hung, closed = asyncio.Event(), asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        hung.set()
        await reader.read()  # never answers; returns when the client closes its end
        writer.close()
        closed.set()

    server, port = await raw_server(answer)
    pool = http11.Pool("127.0.0.1", port)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await pool.request("POST", "/", [], b"{}")
        assert hung.is_set() and pool.idle == 0
        await wait_until(closed.is_set, what="the cancelled exchange's connection closed")
    finally:
        pool.close()
        server.close()


async def test_header_injection_is_refused() -> None:
    pool = http11.Pool("127.0.0.1", 9)
    with pytest.raises(http11.HttpError, match="line break"):
        await pool.request("POST", "/", [("X-Request-ID", "a\r\nEvil: 1")], None)
