"""The load generator's direct frame path (simulator/fastws.py) against real sockets.

A raw asyncio server plays the CSMS so each test decides exactly how frames reach the
generator: coalesced, split byte by byte, fragmented, with pings in between, or not at
all (a hung CSMS). Every CALL must be answered once and counted once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import websockets

from simulator.fastws import masked_text_frame
from simulator.load import LoadConfig, run_load, start_echo_server
from simulator.load.charger import LeanCharger

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Writer = Callable[[asyncio.StreamWriter, list[bytes]], Awaitable[None]]


def server_frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((first, n)) + payload
    return bytes((first, 126)) + n.to_bytes(2, "big") + payload


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    assert b1 & 0x80, "a client frame must be masked"
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def fake_csms(write: Writer, *, answer: bool = True) -> tuple[asyncio.Server, str]:
    """A CSMS on raw sockets: accepts the handshake, answers BootNotification normally,
    then answers each CALL through ``write`` (which chooses how the bytes travel)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        )
        try:
            while True:
                opcode, data = await read_client_frame(reader)
                if opcode == 8:
                    writer.write(server_frame(data, 8))
                    break
                if opcode != 1:
                    continue
                msg = orjson.loads(data)
                if msg[0] != 2:
                    continue
                if msg[2] == "BootNotification":
                    body = {
                        "status": "Accepted",
                        "interval": 300,
                        "currentTime": "2026-01-01T00:00:00Z",
                    }
                    writer.write(server_frame(orjson.dumps([3, msg[1], body])))
                elif answer:
                    reply = orjson.dumps([3, msg[1], {"idTagInfo": {"status": "Accepted"}}])
                    await write(writer, [reply])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/ocpp"


async def whole(writer: asyncio.StreamWriter, replies: list[bytes]) -> None:
    writer.write(b"".join(server_frame(r) for r in replies))


async def byte_by_byte(writer: asyncio.StreamWriter, replies: list[bytes]) -> None:
    for r in replies:
        for i, b in enumerate(server_frame(r)):
            writer.write(bytes((b,)))
            await writer.drain()
            if i % 7 == 0:
                await asyncio.sleep(0)


async def ping_first(writer: asyncio.StreamWriter, replies: list[bytes]) -> None:
    for r in replies:
        writer.write(server_frame(b"are you there", 9) + server_frame(r))


async def fragmented(writer: asyncio.StreamWriter, replies: list[bytes]) -> None:
    for r in replies:
        half = len(r) // 2
        writer.write(server_frame(r[:half], 1, fin=False) + server_frame(r[half:], 0, fin=True))


async def long_and_short(writer: asyncio.StreamWriter, replies: list[bytes]) -> None:
    # a CSMS CALL of 300 bytes (16-bit length) first, then the answer, in one write
    ask = orjson.dumps([2, "csms-1", "DataTransfer", {"vendorId": "x" * 250}])
    for r in replies:
        writer.write(server_frame(ask) + server_frame(r))


@pytest.mark.parametrize("write", [whole, byte_by_byte, ping_first, fragmented, long_and_short])
async def test_every_call_is_answered_and_counted_once(write: Writer) -> None:
    server, url = await fake_csms(write)
    try:
        report = await run_load(
            LoadConfig(url=url, chargers=3, calls=30, mix="Authorize", timeout=5)
        )
    finally:
        server.close()
    assert (report.calls_done, report.errors, report.connect_failures) == (30, 0, 0)
    assert report.actions["Authorize"].count == 30
    assert report.actions["Authorize"].rejected == 0


async def test_a_hung_csms_costs_timeouts_not_a_hang() -> None:
    server, url = await fake_csms(whole, answer=False)
    try:
        report = await asyncio.wait_for(
            run_load(LoadConfig(url=url, chargers=2, calls=4, mix="Authorize", timeout=0.3)),
            10,
        )
    finally:
        server.close()
    assert report.errors == 4
    assert report.error_kinds == {"timeout": 4}


async def test_a_csms_closing_the_socket_ends_the_run_with_errors() -> None:
    async def close_instead(writer: asyncio.StreamWriter, replies: list[bytes]) -> None:
        writer.write(server_frame(b"\x03\xe8", 8))
        writer.close()

    server, url = await fake_csms(close_instead)
    try:
        report = await asyncio.wait_for(
            run_load(LoadConfig(url=url, chargers=1, calls=5, mix="Authorize", timeout=5)), 10
        )
    finally:
        server.close()
    assert report.calls_done == 5 and report.errors == 5
    assert report.error_kinds == {"connection_closed": 5}


def test_masked_frame_matches_the_library_serialisation() -> None:
    from websockets.frames import Frame, Opcode

    data = orjson.dumps([2, "1", "Authorize", {"idTag": "x" * 200}])
    mask = b"\x01\x02\x03\x04"
    ours = masked_text_frame(data, mask)
    theirs = Frame(Opcode.TEXT, data).serialize(mask=True, extensions=[])
    # the library draws its own mask: compare header, then the unmasked payload
    assert ours[:4] == theirs[:4] and len(ours) == len(theirs)
    unmasked = bytes(b ^ mask[i % 4] for i, b in enumerate(ours[8:]))
    assert unmasked == data


async def test_echo_server_answers_with_json_and_reports_bad_frames() -> None:
    echo = await start_echo_server()
    try:
        async with websockets.connect(echo.url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await ws.send('[2,"a","StartTransaction",{"connectorId":1}]')
            first: Any = orjson.loads(await ws.recv())
            await ws.send('[2,"b","StartTransaction",{"connectorId":1}]')
            second: Any = orjson.loads(await ws.recv())
            await ws.send("not json")
            bad: Any = orjson.loads(await ws.recv())
    finally:
        await echo.close()
    assert first[:2] == [3, "a"] and second[:2] == [3, "b"]
    assert second[2]["transactionId"] == first[2]["transactionId"] + 1
    assert bad[0] == 4 and bad[2] == "FormationViolation"


@pytest.mark.parametrize(("write", "direct"), [(whole, True), (fragmented, False)])
async def test_simple_frames_skip_the_library_and_fragments_take_it(
    write: Writer, direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths: list[str] = []
    real = LeanCharger._on_frame

    def spy(self: Any, raw: bytes) -> None:
        # data_received runs as a plain callback; the library path runs in the reader task
        paths.append("library" if asyncio.current_task() is not None else "direct")
        real(self, raw)

    monkeypatch.setattr(LeanCharger, "_on_frame", spy)
    server, url = await fake_csms(write)
    try:
        report = await run_load(LoadConfig(url=url, chargers=2, calls=10, mix="Authorize"))
    finally:
        server.close()
    assert report.errors == 0
    assert paths == ["direct" if direct else "library"] * 10
