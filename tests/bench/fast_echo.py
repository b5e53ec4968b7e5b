"""The bare echo on the stack the CSMS itself runs on: websockets on uvloop, orjson.

Why beside ``csms-sim echo-server`` (websockets + the standard library's json on the
default loop, the yardstick the targets are stated against): the CSMS runs on uvloop and
parses with orjson, so this echo is the ceiling of what our own stack could answer; the
benchmark reports the CSMS's share of it too. No schema, no dispatch, no store.

Run: ``python -m tests.bench.fast_echo --port 0`` (prints ``listening on ws://...``).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, serve

ANSWER = orjson.Fragment(b'{"idTagInfo":{"status":"Accepted"}}')
EMPTY = orjson.Fragment(b"{}")


def booted() -> orjson.Fragment:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return orjson.Fragment(
        b'{"status":"Accepted","interval":300,"currentTime":"%b"}' % now.encode()
    )


async def echo(ws: ServerConnection) -> None:
    async for raw in ws:
        try:
            msg = orjson.loads(raw)
            kind, unique_id, action = msg[0], msg[1], msg[2]
        except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
            await ws.send('[4,"-1","FormationViolation","not an OCPP-J frame",{}]')
            continue
        if kind == 2:
            answer = ANSWER if action == "Authorize" else EMPTY
            if action == "BootNotification":
                answer = booted()
            await ws.send(orjson.dumps([3, unique_id, answer]).decode())


async def main(host: str, port: int) -> None:
    await listen(echo, host, port)


async def listen(
    handler: Callable[[ServerConnection], Awaitable[None]], host: str, port: int
) -> None:
    """Serve ``handler`` as the bench's bare servers do (no pings, no compression, a
    backlog for the storm) and print the URL the benchmark waits for."""
    server = await serve(
        handler,
        host,
        port,
        subprotocols=[websockets.Subprotocol("ocpp1.6")],
        ping_interval=None,
        compression=None,
        backlog=4096,
    )
    bound = next(iter(server.sockets)).getsockname()[1]
    print(f"listening on ws://{host}:{bound}/ocpp", flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(main(args.host, args.port))
