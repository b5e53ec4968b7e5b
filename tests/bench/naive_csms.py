"""The yardstick CSMS: what one writes straight from the ``ocpp`` library's README.

Why it exists: the issue's targets are relative ("3x the naive CSMS"), so the bench
starts this next to the real server and measures both in the same run. It is kept as
naive as the README shows on purpose: ``ChargePoint`` subclass with ``@on`` handlers,
one ``cp.start()`` per connection, stdlib logging at INFO (the library logs every frame),
no uvloop, no orjson. Authorize accepts every idTag (no store).

Run: ``python -m tests.bench.naive_csms --port 0`` prints ``listening on ws://...``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as BaseChargePoint
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ChargePoint(BaseChargePoint):
    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted))


async def on_connect(websocket: Any) -> None:
    """Per connection, as in the README: check the subprotocol, then ``cp.start()``."""
    requested = websocket.request.headers.get("Sec-WebSocket-Protocol")
    if not requested or websocket.subprotocol is None:
        logging.info("client did not request a supported subprotocol; closing")
        await websocket.close()
        return
    charge_point_id = websocket.request.path.strip("/").rsplit("/", 1)[-1]
    cp = ChargePoint(charge_point_id, websocket)
    try:
        await cp.start()
    except websockets.ConnectionClosed:
        pass


async def main(host: str, port: int) -> None:
    server = await websockets.serve(
        on_connect,
        host,
        port,
        subprotocols=[websockets.Subprotocol("ocpp1.6")],
        ping_interval=None,
        backlog=4096,
    )
    bound = next(iter(server.sockets)).getsockname()[1]
    print(f"listening on ws://{host}:{bound}/ocpp", flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-file", default=None, help="where the INFO frame log goes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, filename=args.log_file)
    asyncio.run(main(args.host, args.port))
