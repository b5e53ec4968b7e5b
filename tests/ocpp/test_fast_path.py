"""The synchronous Authorize path (``authorize_now``) answers exactly as the async one would.

An authorizer may offer ``authorize_now(request) -> Decision | None``; the connection
then answers a memory-decidable Authorize without a task. These tests pin that the
answer, the error handling and the fall-back to ``authorize`` are the same as before.
"""

from __future__ import annotations

from typing import Any

import pytest

from csms.authz.model import AuthRequest, AuthStatus, Decision, Source
from csms.store.chargers import ChargerRepo
from csms.store.db import Database

from .conftest import Connect, StartServer


class TwoPathAuthorizer:
    """Decides ``NOW*`` tags synchronously, everything else only through ``authorize``."""

    def __init__(self, raise_now: bool = False) -> None:
        self.now_calls: list[str] = []
        self.async_calls: list[str] = []
        self.raise_now = raise_now

    def authorize_now(self, request: AuthRequest) -> Decision | None:
        self.now_calls.append(request.uid)
        if self.raise_now:
            raise RuntimeError("cache exploded")
        if request.uid.startswith("NOW"):
            return Decision(AuthStatus.BLOCKED, Source.CACHE, reason="from memory")
        return None

    async def authorize(self, request: AuthRequest) -> Decision:
        self.async_calls.append(request.uid)
        return Decision(AuthStatus.ACCEPTED, Source.REMOTE, expiry_date="2030-01-01T00:00:00Z")


async def test_memory_decision_answers_without_the_async_path(
    start_server: StartServer, connect_cp: Connect
) -> None:
    authz = TwoPathAuthorizer()
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    await cp.boot()
    assert await cp.ok("Authorize", {"idTag": "NOW1"}) == {"idTagInfo": {"status": "Blocked"}}
    assert authz.now_calls == ["NOW1"] and authz.async_calls == []


async def test_none_from_memory_falls_back_to_authorize(
    start_server: StartServer, connect_cp: Connect
) -> None:
    authz = TwoPathAuthorizer()
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    await cp.boot()
    info = (await cp.ok("Authorize", {"idTag": "REMOTE1"}))["idTagInfo"]
    assert info == {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z"}
    assert authz.now_calls == ["REMOTE1"] and authz.async_calls == ["REMOTE1"]


async def test_raising_authorize_now_means_invalid_and_the_socket_stays_up(
    start_server: StartServer, connect_cp: Connect
) -> None:
    authz = TwoPathAuthorizer(raise_now=True)
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    await cp.boot()
    assert await cp.ok("Authorize", {"idTag": "NOW1"}) == {"idTagInfo": {"status": "Invalid"}}
    assert (await cp.ok("Heartbeat", {}))["currentTime"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [({}, "ProtocolError"), ({"idTag": "X" * 21}, "PropertyConstraintViolation")],
)
async def test_bad_payload_is_refused_before_any_authorizer(
    start_server: StartServer, connect_cp: Connect, payload: dict[str, Any], code: str
) -> None:
    authz = TwoPathAuthorizer()
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    await cp.boot()
    reply = await cp.call("Authorize", payload)
    assert reply[0] == 4 and reply[2] == code
    assert authz.now_calls == [] and authz.async_calls == []


async def test_pending_charger_takes_the_async_path_and_is_refused(
    start_server: StartServer, connect_cp: Connect, db: Database
) -> None:
    await ChargerRepo(db).add("CP1", registration_status="Pending")
    authz = TwoPathAuthorizer()
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    reply = await cp.call("Authorize", {"idTag": "NOW1"})
    assert reply[0] == 4 and reply[2] == "SecurityError"
    assert authz.now_calls == [] and authz.async_calls == []
