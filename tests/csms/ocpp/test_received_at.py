"""The authorization deadline counts from the CALL's arrival: every AuthRequest the OCPP
server builds carries ``received_at`` (``time.monotonic()`` when the frame was read),
on the fast path (``try_now``), the task path, and for StartTransaction."""

from __future__ import annotations

import time
from typing import Literal

from csms.authz.model import NEED_IO, AuthRequest, AuthStatus, Decision, NeedIO, Source

from .conftest import Connect, StartServer


class Recording:
    """Answers Accepted; keeps (trigger, received_at, monotonic when asked)."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.seen: list[tuple[str, float | None, float]] = []

    def try_now(self, request: AuthRequest) -> Decision | Literal[NeedIO.NEED_IO]:
        if not self.sync:
            return NEED_IO
        self.seen.append((request.trigger, request.received_at, time.monotonic()))
        return Decision(AuthStatus.ACCEPTED, Source.CACHE)

    async def decide(self, request: AuthRequest) -> Decision:
        self.seen.append((request.trigger, request.received_at, time.monotonic()))
        return Decision(AuthStatus.ACCEPTED, Source.REMOTE)


async def check(start_server: StartServer, connect_cp: Connect, sync: bool) -> None:
    authz = Recording(sync)
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    await cp.boot()
    before = time.monotonic()
    await cp.ok("Authorize", {"idTag": "TAG1"})
    await cp.ok(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    )
    after = time.monotonic()
    assert [s[0] for s in authz.seen] == ["Authorize", "StartTransaction"]
    for _, received_at, asked_at in authz.seen:
        assert received_at is not None
        assert before <= received_at <= asked_at <= after
    assert authz.seen[0][1] < authz.seen[1][1]  # each request its own frame's time


async def test_received_at_on_the_synchronous_path(
    start_server: StartServer, connect_cp: Connect
) -> None:
    await check(start_server, connect_cp, sync=True)


async def test_received_at_on_the_task_path(start_server: StartServer, connect_cp: Connect) -> None:
    await check(start_server, connect_cp, sync=False)
