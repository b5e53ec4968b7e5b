"""The OCPP server's own frame path (``csms.ocpp16.wire``), over real sockets.

The server reads simple frames itself and feeds everything else to websockets; these
tests write raw bytes (coalesced, split, interleaved with control frames) through a real
client's transport and check every frame is answered as the library would answer it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from csms.authz.model import AuthRequest, AuthStatus, Decision, Source
from csms.ocpp16.wire import _text_header
from tests.support.waiting import wait_until

from .conftest import Connect, RawClient, StartServer


class MemoryAuthorizer:
    """Decides every tag from memory (the direct path) as Accepted."""

    def try_now(self, request: AuthRequest) -> Decision:
        return Decision(AuthStatus.ACCEPTED, Source.CACHE, expiry_date="2030-01-01T00:00:00Z")

    async def decide(self, request: AuthRequest) -> Decision:
        return self.try_now(request)


def masked(payload: bytes, opcode: Opcode = Opcode.TEXT, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin).serialize(mask=True, extensions=[])


def call(uid: str, action: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps([2, uid, action, body])


ACCEPTED = {"idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z"}}


async def booted(start_server: StartServer, connect_cp: Connect, **server: Any) -> RawClient:
    cp = await connect_cp(await start_server(authorizer=MemoryAuthorizer(), **server), "CP1")
    await cp.boot()
    return cp


async def answers(cp: RawClient, n: int) -> dict[str, list[Any]]:
    out = {}
    for _ in range(n):
        frame = await cp.recv()
        out[frame[1]] = frame
    return out


async def closes_with(cp: RawClient, raw: bytes) -> int | None:
    """Write ``raw`` and return the close code the server ends the connection with."""
    cp.ws.transport.write(raw)
    with pytest.raises(ConnectionClosed):
        await cp.recv()
    return cp.ws.close_code


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_bytes_match_the_library(size: int) -> None:
    data = b"x" * size
    ours = _text_header(size) + data
    assert ours == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])


async def test_coalesced_frames_are_all_answered(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """Three CALLs in one TCP write: two decided at once, a Heartbeat by the read loop."""
    srv = await start_server(authorizer=MemoryAuthorizer())
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    conn = srv.gateway.connection("CP1")
    assert conn is not None and conn.ws._scan is True  # the server reads frames itself
    raw = b"".join(
        [
            masked(call("a1", "Authorize", {"idTag": "T1"})),
            masked(call("h1", "Heartbeat", {})),
            masked(call("a2", "Authorize", {"idTag": "T2"}), Opcode.BINARY),
        ]
    )
    cp.ws.transport.write(raw)
    got = await answers(cp, 3)
    assert got["a1"] == [3, "a1", ACCEPTED] and got["a2"] == [3, "a2", ACCEPTED]
    assert got["h1"][0] == 3 and "currentTime" in got["h1"][2]


async def test_a_frame_split_into_single_bytes_is_answered(
    start_server: StartServer, connect_cp: Connect
) -> None:
    cp = await booted(start_server, connect_cp)
    # 16-bit length form, so the header itself is split too.
    raw = masked(call("s1", "Authorize", {"idTag": "T" * 20}) + b" " * 200)
    for i in range(len(raw)):
        cp.ws.transport.write(raw[i : i + 1])
        await asyncio.sleep(0)
    assert await cp.recv() == [3, "s1", ACCEPTED]


async def test_control_and_fragmented_frames_keep_the_library_path(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """A ping between CALLs gets its pong; a fragmented CALL is assembled and answered."""
    cp = await booted(start_server, connect_cp)
    first, rest = b'[2,"f1","Authorize",', b'{"idTag":"T3"}]'
    raw = b"".join(
        [
            masked(call("p1", "Authorize", {"idTag": "T1"})),
            masked(b"are-you-there", Opcode.PING),
            masked(first, Opcode.TEXT, fin=False),
            masked(rest, Opcode.CONT),
            masked(call("p2", "Authorize", {"idTag": "T2"})),
        ]
    )
    pong = await cp.ws.ping(b"client-ping")  # the client's own ping also works throughout
    cp.ws.transport.write(raw)
    got = await answers(cp, 3)
    assert set(got) == {"p1", "f1", "p2"} and all(f[2] == ACCEPTED for f in got.values())
    await asyncio.wait_for(pong, 5)


async def test_bad_json_and_bad_utf8_on_the_scanned_path(
    start_server: StartServer, connect_cp: Connect
) -> None:
    cp = await booted(start_server, connect_cp)
    cp.ws.transport.write(
        masked(b'[2,"x1","Authorize",{"idTag":') + masked(call("ok", "Authorize", {"idTag": "T"}))
    )
    got = await answers(cp, 2)
    assert got["-1"][0] == 4 and got["-1"][2] == "FormationViolation"
    assert got["ok"] == [3, "ok", ACCEPTED]
    assert await closes_with(cp, masked(b'[2,"u1","Authorize",{"idTag":"\xff"}]')) == 1007


async def test_a_frame_over_the_size_limit_is_refused_by_the_library(
    start_server: StartServer, connect_cp: Connect
) -> None:
    cp = await booted(start_server, connect_cp, max_message_bytes=1024)
    big = masked(call("big", "Authorize", {"idTag": "T"}) + b" " * 2000)
    assert await closes_with(cp, big) == 1009


async def test_an_unmasked_client_frame_is_a_protocol_error(
    start_server: StartServer, connect_cp: Connect
) -> None:
    cp = await booted(start_server, connect_cp)
    frame = Frame(Opcode.TEXT, call("n1", "Authorize", {"idTag": "T"}))
    assert await closes_with(cp, frame.serialize(mask=False, extensions=[])) == 1002


async def test_random_split_points_never_lose_or_repeat_a_call(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """200 CALLs of mixed sizes written in random-sized chunks: 200 answers, each once."""
    cp = await booted(start_server, connect_cp)
    frames = [
        masked(call(f"r{i}", "Authorize", {"idTag": f"T{i}"}) + b" " * (i * 7 % 300))
        for i in range(200)
    ]
    stream = b"".join(frames)
    pos = 0
    while pos < len(stream):
        step = 1 + os.urandom(1)[0] % 97
        cp.ws.transport.write(stream[pos : pos + step])
        pos += step
        if os.urandom(1)[0] < 64:
            await asyncio.sleep(0)
    got = await answers(cp, 200)
    assert sorted(got) == sorted(f"r{i}" for i in range(200))


async def test_keepalive_pongs_reach_the_library(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """The server's own pings are answered by the client's pongs, which the frame scanner
    hands to websockets: the ping is acknowledged (latency measured), the link stays up."""
    srv = await start_server(authorizer=MemoryAuthorizer(), ping_interval_s=0.1)
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    conn = srv.gateway.connection("CP1")
    assert conn is not None and conn.ws._scan is True
    await wait_until(lambda: conn.ws.latency > 0, timeout=2.5, what="a measured ping latency")
    assert await cp.ok("Authorize", {"idTag": "T1"}) == ACCEPTED


async def test_a_closed_connection_is_freed_without_the_cycle_collector(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """websockets parks its frame parser at a final ``yield`` whose frame holds the
    protocol; the server ends that generator on close, so reference counting alone frees
    the protocol (otherwise it waits for a full collection, a long pause under load)."""
    srv = await start_server(authorizer=MemoryAuthorizer())
    cp = await connect_cp(srv, "CP1")
    await cp.boot()
    conn = srv.gateway.connection("CP1")
    assert conn is not None
    protocol = weakref.ref(conn.ws.protocol)
    del conn
    gc.disable()
    try:
        await cp.ws.close()
        await wait_until(lambda: protocol() is None, timeout=2.0, what="the protocol freed")
    finally:
        gc.enable()
