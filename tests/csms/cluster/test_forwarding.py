"""Calls to a charger connected to another node: two real CSMS systems on one PostgreSQL
database, the real simulator (or the bare peer for a CALLERROR and a charger that never
answers) connected to node B, every call asked of the gateway of node A."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from csms.authz.model import AuthStatus, Decision, Source
from csms.cluster.forwarding import NOTIFY_LIMIT
from csms.ocpp16 import errors
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import admin_session, ocpp_url, running_csms
from tests.support.nodes import csms_nodes
from tests.support.raw_cp import HANG, Error, RawChargePoint
from tests.support.waiting import scaled, wait_until


@asynccontextmanager
async def two_nodes(tmp_path: Path, store_url: str, **sections: Any) -> AsyncIterator[list[System]]:
    """Nodes A and B (node ids unique to the test: the database's channels are shared)."""
    tag = uuid.uuid4().hex[:8]
    systems: list[System] = []
    async with contextlib.AsyncExitStack() as stack:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            system = await stack.enter_async_context(
                running_csms(
                    tmp_path / name,
                    store={"url": store_url},
                    server={"unknown_chargers": "accept", "call_timeout_s": 5.0},
                    cluster={"node_id": f"fwd-{name}-{tag}"},
                    **sections,
                )
            )
            systems.append(system)
        yield systems


async def located(asking: System, charger_id: str, holder: System) -> None:
    """Wait until ``asking`` sees ``charger_id`` on ``holder`` (its presence row)."""

    async def there() -> bool:
        return await asking.cluster.presence.locate(charger_id) == holder.cluster.node_id

    await wait_until(there, what=f"{charger_id} located on {holder.cluster.node_id}")


def simulated(node: System, cp_id: str, **kw: Any) -> Any:
    return simulated_at(ocpp_url(node), cp_id, **kw)


def simulated_at(url: str, cp_id: str, **kw: Any) -> Any:
    kw = {"heartbeat": False, "step_delay_s": 0, "meter_interval_s": 3600, **kw}
    return SimulatedChargePoint.connect(url, cp_id, **kw)


async def test_a_call_asked_of_a_reaches_the_charger_on_b_and_is_counted_once(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_nodes(tmp_path, postgres_url) as (a, b), simulated(b, "FWD1") as cp:
        await cp.boot()
        await located(a, "FWD1", b)
        assert not a.gateway.is_connected("FWD1")
        assert await a.gateway.reachable("FWD1")
        seen_a: list[tuple[str, str]] = []
        seen_b: list[tuple[str, str]] = []
        a.gateway.observer = lambda action, outcome: seen_a.append((action, outcome))
        b.gateway.observer = lambda action, outcome: seen_b.append((action, outcome))

        answer = await a.gateway.call(
            "FWD1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "77"}
        )

        assert answer == {"status": "Accepted"}
        assert cp.config.get("HeartbeatInterval") == "77"
        assert seen_a == [("ChangeConfiguration", "ok")] and seen_b == []


async def test_a_callerror_comes_back_with_its_code_description_and_details(
    tmp_path: Path, postgres_url: str
) -> None:
    def reply(action: str, payload: dict[str, Any]) -> Any:
        return Error("NotSupported", "no resets here", {"hint": "x"})

    async with two_nodes(tmp_path, postgres_url) as (a, b):
        raw = await RawChargePoint.connect(ocpp_url(b), "FWD2", reply)
        try:
            await located(a, "FWD2", b)
            with pytest.raises(errors.CallErrorReceived) as caught:
                await a.gateway.call("FWD2", "Reset", {"type": "Soft"})
        finally:
            await raw.close()
    exc = caught.value
    assert (exc.charger_id, exc.action, exc.code) == ("FWD2", "Reset", "NotSupported")
    assert exc.description == "no resets here" and exc.details == {"hint": "x"}


async def test_a_charger_that_never_answers_times_out_within_the_callers_timeout(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_nodes(tmp_path, postgres_url) as (a, b):
        raw = await RawChargePoint.connect(ocpp_url(b), "FWD3", lambda action, payload: HANG)
        try:
            await located(a, "FWD3", b)
            started = time.monotonic()
            with pytest.raises(errors.CallTimeout) as caught:
                await a.gateway.call("FWD3", "ClearCache", {}, timeout=0.5)
            took = time.monotonic() - started
        finally:
            await raw.close()
    assert caught.value.timeout == 0.5 and caught.value.action == "ClearCache"
    assert 0.45 <= took < 0.5 + scaled(1.0)


async def test_a_charger_connected_nowhere_is_not_connected(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_nodes(tmp_path, postgres_url) as (a, b):
        async with simulated(b, "FWD4") as cp:
            await cp.boot()
            await located(a, "FWD4", b)

        async def gone() -> bool:
            return await a.cluster.presence.locate("FWD4") is None

        await wait_until(gone, what="FWD4's presence removed")
        assert not await a.gateway.reachable("FWD4")
        for name in ("FWD4", "NEVER-SEEN"):
            started = time.monotonic()
            with pytest.raises(errors.ChargerNotConnected) as caught:
                await a.gateway.call(name, "ClearCache", {})
            assert caught.value.charger_id == name
            assert time.monotonic() - started < scaled(1.0)  # told, not timed out


async def test_an_invalid_request_is_refused_on_the_asking_node(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_nodes(tmp_path, postgres_url) as (a, b), simulated(b, "FWD5") as cp:
        await cp.boot()
        await located(a, "FWD5", b)
        with pytest.raises(errors.InvalidCallPayload):
            await a.gateway.call("FWD5", "Reset", {"type": "Sideways"})
        assert [c for c, _ in cp.received_calls if c == "Reset"] == []
        # Before the charger is even looked up: a charger connected nowhere is not the error.
        with pytest.raises(errors.InvalidCallPayload):
            await a.gateway.call("NOWHERE", "Reset", {"type": "Sideways"})


async def test_a_payload_too_large_for_a_notification_travels_through_the_table(
    tmp_path: Path, postgres_url: str
) -> None:
    entries = [{"idTag": f"TAG{i:05d}", "idTagInfo": {"status": "Accepted"}} for i in range(300)]
    request = {"listVersion": 5, "updateType": "Full", "localAuthorizationList": entries}
    assert len(str(request)) > NOTIFY_LIMIT
    async with (
        two_nodes(tmp_path, postgres_url) as (a, b),
        simulated(b, "FWD6", send_local_list_max_length=500) as cp,
    ):
        await cp.boot()
        await located(a, "FWD6", b)

        answer = await a.gateway.call("FWD6", "SendLocalList", request)

        assert answer == {"status": "Accepted"}
        assert len(cp.local_list) == 300 and cp.local_list_version == 5
        # Rows were written (the table's identity advanced) and their readers took them.
        sequence = await a.db.fetchone("SELECT last_value, is_called FROM cluster_calls_id_seq")
        assert sequence["is_called"] and sequence["last_value"] >= 1
        assert await a.db.fetchall("SELECT id FROM cluster_calls") == []

        # A large answer comes back the same way.
        keys = await a.gateway.call("FWD6", "GetConfiguration", {})
        assert {k["key"] for k in keys["configurationKey"]} >= {"HeartbeatInterval"}


async def test_concurrent_calls_to_chargers_on_both_nodes_each_get_their_own_answer(
    tmp_path: Path, postgres_url: str
) -> None:
    async with (
        two_nodes(tmp_path, postgres_url) as (a, b),
        simulated(a, "FWD7") as on_a,
        simulated(b, "FWD8") as on_b,
    ):
        await asyncio.gather(on_a.boot(), on_b.boot())
        await located(a, "FWD8", b)
        await located(b, "FWD7", a)

        async def set_value(node: System, cp_id: str, n: int) -> dict[str, Any]:
            return await node.gateway.call(
                cp_id, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": str(n)}
            )

        answers = await asyncio.gather(
            *(set_value(a, "FWD8", n) for n in range(10)),
            *(set_value(b, "FWD7", n) for n in range(10)),
        )
        assert answers == [{"status": "Accepted"}] * 20
        for cp in (on_a, on_b):
            values = [p["value"] for c, p in cp.received_calls if c == "ChangeConfiguration"]
            assert sorted(values, key=int) == [str(n) for n in range(10)]


async def test_a_command_pre_authorization_rides_with_the_call_to_the_node_holding_the_charger(
    tmp_path: Path, postgres_url: str
) -> None:
    async with (
        two_nodes(tmp_path, postgres_url, ocpi={"enabled": True}) as (a, b),
        simulated(b, "FWD9") as cp,
    ):
        await cp.boot()
        await located(a, "FWD9", b)
        forwarder = a.forwarder
        assert forwarder is not None
        commands = forwarder.carrying(a.authorization.service)
        decision = Decision(
            AuthStatus.ACCEPTED,
            Source.COMMAND,
            partner_id="NL-EMS",
            authorization_reference="Ref-9",
        )
        # No own card, no eMSP: node B refuses it unless it holds the pre-authorization.
        commands.preauthorize("FWD9", "EMSP0009", decision, ttl_s=60)

        answer = await a.gateway.call(
            "FWD9", "RemoteStartTransaction", {"connectorId": 1, "idTag": "EMSP0009"}
        )

        assert answer == {"status": "Accepted"}
        await wait_until(lambda: 1 in cp.transactions, what="the charge started on node B")

        async def decided_by_command() -> bool:
            rows = await b.db.fetchall(
                "SELECT source, authorization_reference FROM authorizations"
                " WHERE charger_id = ? AND uid_norm = ?",
                ("FWD9", "EMSP0009"),
            )
            return ("command", "Ref-9") in [tuple(r) for r in rows]

        await wait_until(decided_by_command, what="node B's decision from the pre-authorization")


async def test_the_charger_of_a_dead_node_is_not_connected(
    tmp_path: Path, postgres_url: str
) -> None:
    """Node B is a real process killed with SIGKILL: its presence row stays behind, and
    once its lease has run out node A no longer believes it (no wait for an answer)."""
    async with (
        csms_nodes(tmp_path / "procs", postgres_url, 1) as [b],
        two_nodes(tmp_path, postgres_url) as (a, _),
    ):
        async with simulated_at(b.ocpp_url, "FWD10") as cp:
            await cp.boot()

            async def on_b() -> bool:
                return await a.cluster.presence.locate("FWD10") == b.node_id

            await wait_until(on_b, what="FWD10 located on the process node")
            await b.kill()
            await wait_until(lambda: not cp.connected, what="the charger's socket gone with B")
        row = await a.db.fetchone(
            "SELECT node_id FROM charger_presence WHERE charger_id = ?", ("FWD10",)
        )
        assert row is not None and row["node_id"] == b.node_id  # nobody cleaned up

        async def forgotten() -> bool:
            return await a.cluster.presence.locate("FWD10") is None

        await wait_until(forgotten, timeout=15, what="node B's lease to run out")
        assert not await a.gateway.reachable("FWD10")
        started = time.monotonic()
        with pytest.raises(errors.ChargerNotConnected):
            await a.gateway.call("FWD10", "ClearCache", {}, timeout=5.0)
        assert time.monotonic() - started < scaled(1.0)


async def test_removing_or_demoting_a_charger_on_node_a_closes_its_session_on_node_b(
    tmp_path: Path, postgres_url: str
) -> None:
    async with (
        two_nodes(tmp_path, postgres_url) as (a, b),
        simulated(b, "FWD11") as demoted,
        simulated(b, "FWD12") as removed,
        admin_session(a) as admin,
    ):
        await asyncio.gather(demoted.boot(), removed.boot())
        await located(a, "FWD11", b)
        await located(a, "FWD12", b)

        async with admin.post("/api/chargers/FWD11/registration", json={"status": "Pending"}) as r:
            assert r.status == 200 and (await r.json())["disconnected"] is True
        await wait_until(lambda: not demoted.connected, what="the demoted charger's socket closed")

        async with admin.delete("/api/chargers/FWD12") as r:
            assert r.status == 200
            assert await r.json() == {"id": "FWD12", "removed": True, "disconnected": True}
        await wait_until(lambda: not removed.connected, what="the removed charger's socket closed")
        assert not b.gateway.is_connected("FWD12")
