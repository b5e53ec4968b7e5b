"""The fast Authorize path (``try_now``) answers exactly as ``decide`` would.

An authorizer answers ``try_now(request) -> Decision | NEED_IO``; the connection then
answers a memory-decidable Authorize without a task. These tests pin that the answer,
the error handling and the continuation with ``decide`` are the same as on the task path.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
import pytest
import structlog.testing
from websockets.exceptions import ConnectionClosed

from csms.authz.model import NEED_IO, AuthRequest, AuthStatus, Decision, NeedIO, Source
from csms.ocpp16.events import NoEvents
from csms.store.chargers import ChargerRepo
from csms.store.db import Database

from .conftest import Connect, StartServer


class TwoPathAuthorizer:
    """Decides ``NOW*`` tags from memory, everything else only through ``decide``."""

    def __init__(self, raise_now: bool = False) -> None:
        self.now_calls: list[str] = []
        self.async_calls: list[str] = []
        self.raise_now = raise_now

    def try_now(self, request: AuthRequest) -> Decision | Literal[NeedIO.NEED_IO]:
        self.now_calls.append(request.uid)
        if self.raise_now:
            raise RuntimeError("cache exploded")
        if request.uid.startswith("NOW"):
            return Decision(AuthStatus.BLOCKED, Source.CACHE, reason="from memory")
        return NEED_IO

    async def decide(self, request: AuthRequest) -> Decision:
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


async def test_need_io_continues_with_decide(
    start_server: StartServer, connect_cp: Connect
) -> None:
    authz = TwoPathAuthorizer()
    cp = await connect_cp(await start_server(authorizer=authz), "CP1")
    await cp.boot()
    info = (await cp.ok("Authorize", {"idTag": "REMOTE1"}))["idTagInfo"]
    assert info == {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z"}
    assert authz.now_calls == ["REMOTE1"] and authz.async_calls == ["REMOTE1"]


async def test_raising_try_now_means_invalid_and_the_socket_stays_up(
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


class GatedStatus(NoEvents):
    """Holds every StatusNotification until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def statuses_changed(self, *args: Any) -> None:
        self.entered.set()
        await self.gate.wait()


async def test_memory_authorize_is_answered_while_the_read_loop_waits(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """Frames that need no await are taken straight off the socket (DirectTextConnection):
    a cache-hit Authorize overtakes a StatusNotification still waiting on its handler."""
    events = GatedStatus()
    authz = TwoPathAuthorizer()
    cp = await connect_cp(await start_server(authorizer=authz, events=events), "CP1")
    await cp.boot()
    status = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
    try:
        await cp.ws.send(orjson.dumps([2, "s1", "StatusNotification", status]))
        await asyncio.wait_for(events.entered.wait(), 5)
        await cp.ws.send(orjson.dumps([2, "a1", "Authorize", {"idTag": "NOW1"}]))
        first = await cp.recv()
    finally:
        events.gate.set()  # a failure must not leave the handler (and teardown) hanging
    assert first == [3, "a1", {"idTagInfo": {"status": "Blocked"}}]
    assert await cp.recv() == [3, "s1", {}]


async def test_fragmented_authorize_is_still_answered(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """A message split over continuation frames takes the library's path, same answer."""
    cp = await connect_cp(await start_server(authorizer=TwoPathAuthorizer()), "CP1")
    await cp.boot()
    await cp.ws.send([b'[2,"f1","Authorize",', b'{"idTag":"NOW1"}]'], text=True)
    assert await cp.recv() == [3, "f1", {"idTagInfo": {"status": "Blocked"}}]


async def test_invalid_json_on_the_direct_path_gets_a_callerror(
    start_server: StartServer, connect_cp: Connect
) -> None:
    cp = await connect_cp(await start_server(authorizer=TwoPathAuthorizer()), "CP1")
    await cp.boot()
    reply = await cp.send_text(b'[2,"x1","Authorize",{"idTag":')
    assert reply[0] == 4 and reply[2] == "FormationViolation", reply
    assert await cp.ok("Authorize", {"idTag": "NOW2"}) == {"idTagInfo": {"status": "Blocked"}}


async def test_invalid_utf8_text_frame_closes_with_1007(
    start_server: StartServer, connect_cp: Connect
) -> None:
    """The library's UTF-8 check still applies to frames the direct path declines."""
    cp = await connect_cp(await start_server(authorizer=TwoPathAuthorizer()), "CP1")
    await cp.boot()
    await cp.ws.send(b'[2,"u1","Authorize",{"idTag":"\xff\xfe"}]', text=True)
    with pytest.raises(ConnectionClosed):
        await cp.recv()
    assert cp.ws.close_code == 1007


class FixedDecisionAuthorizer:
    """Returns one and the same Decision object from memory, as the token memo does."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def try_now(self, request: AuthRequest) -> Decision:
        return self.decision

    async def decide(self, request: AuthRequest) -> Decision:  # pragma: no cover
        raise AssertionError("the memory path decides")


async def test_one_decision_is_validated_and_encoded_once_for_every_charger(
    start_server: StartServer, connect_cp: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    from csms.ocpp16 import schemas

    prepared: list[Any] = []
    real = schemas.prepare_response

    def counting(action: str, payload: Any) -> Any:
        prepared.append(payload)
        return real(action, payload)

    monkeypatch.setattr(schemas, "prepare_response", counting)
    decision = Decision(
        AuthStatus.ACCEPTED,
        Source.CACHE,
        parent_id_tag="GROUP1",
        expiry_date="2030-01-01T00:00:00Z",
    )
    srv = await start_server(authorizer=FixedDecisionAuthorizer(decision))
    answers = []
    for name in ("CP1", "CP2"):
        cp = await connect_cp(srv, name)
        await cp.boot()
        for _ in range(3):
            answers.append(await cp.ok("Authorize", {"idTag": "card"}))
    expected = {
        "idTagInfo": {
            "status": "Accepted",
            "expiryDate": "2030-01-01T00:00:00Z",
            "parentIdTag": "GROUP1",
        }
    }
    assert answers == [expected] * 6
    assert prepared == [expected]  # validated once, then the same bytes six times


async def test_a_prepared_answer_that_breaks_its_schema_is_internal_error(
    start_server: StartServer, connect_cp: Connect
) -> None:
    too_long = Decision(AuthStatus.ACCEPTED, Source.CACHE, parent_id_tag="G" * 21)
    cp = await connect_cp(await start_server(authorizer=FixedDecisionAuthorizer(too_long)), "CP1")
    await cp.boot()
    with structlog.testing.capture_logs() as logged:
        reply = await cp.call("Authorize", {"idTag": "card"})
    assert reply[:3] == [4, reply[1], "InternalError"]
    assert [e["event"] for e in logged if e["log_level"] == "error"] == [
        "ocpp.invalid_own_response"  # the same report as an unprepared invalid answer
    ]
    assert (await cp.ok("Heartbeat", {}))["currentTime"]  # the socket stays up
