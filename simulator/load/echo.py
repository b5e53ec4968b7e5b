"""The load generator's yardstick (``csms-sim echo-server``): a bare OCPP echo server.

Why a separate process for calibration: the echo server and the generator must not share
a core, or the calibration would measure both of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve

from simulator.wire import SUBPROTOCOL, utc_now


class EchoServer:
    """The yardstick: answers every CALL at once with a plausible CALLRESULT."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.port: int = server.sockets[0].getsockname()[1] if server.sockets else 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


def _echo_payload(action: str, tx: itertools.count[int]) -> dict[str, Any]:
    """A plausible answer; only StartTransaction and the time-bearing ones vary."""
    if action in ("Authorize", "StartTransaction"):
        info: dict[str, Any] = {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            info["transactionId"] = next(tx)
        return info
    if action in ("BootNotification", "Heartbeat"):
        now = utc_now().isoformat(timespec="seconds").replace("+00:00", "Z")
        if action == "Heartbeat":
            return {"currentTime": now}
        return {"status": "Accepted", "interval": 300, "currentTime": now}
    return {}


async def _echo_handler(ws: ServerConnection) -> None:
    """The yardstick the issue names: websockets and the standard library's json, no
    schema, no dispatch table. (Until the generator took its direct frame path it only
    cut the id out of the text, because a JSON round trip made it slower than the
    generator could drive; with the lean generator that is no longer so.)"""
    tx = itertools.count(1)
    while True:
        try:
            raw = await ws.recv()
        except websockets.ConnectionClosed:
            return
        try:
            msg = json.loads(raw)
            kind, unique_id, action = msg[0], msg[1], msg[2]
        except (ValueError, IndexError, KeyError, TypeError):
            await ws.send('[4,"-1","FormationViolation","not an OCPP-J frame",{}]')
            continue
        if kind != 2:
            continue  # an answer to a CALL we never make
        await ws.send(json.dumps([3, unique_id, _echo_payload(action, tx)]))


async def start_echo_server(host: str = "127.0.0.1", port: int = 0) -> EchoServer:
    server = await serve(
        _echo_handler,
        host,
        port,
        subprotocols=[SUBPROTOCOL],
        ping_interval=None,
        compression=None,
        backlog=4096,
    )
    return EchoServer(server)


async def serve_echo(host: str, port: int) -> int:
    server = await start_echo_server(host, port)
    print(f"echo server listening on ws://{host}:{server.port}/ocpp", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
    return 0


@contextlib.asynccontextmanager
async def echo_subprocess() -> AsyncIterator[str]:
    """An echo server in its own process (own core), so calibration measures only us."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator.cli",
        "echo-server",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        if not url.startswith("ws://"):
            raise RuntimeError(f"echo server did not start: {line!r}")
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
