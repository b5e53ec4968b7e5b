"""Calls to chargers from any node, end to end: real ``csms serve`` processes on one
PostgreSQL database, the real simulator connected to node B, and every request made of
node A (its admin API, or OCPI commands from the eMSP sandbox registered with it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from csms.store.db import Database
from simulator.chargepoint import SimulatedChargePoint, Tx
from simulator.emsp import EmspSandbox
from tests.e2e.roaming.conftest import FAST, LOCATIONS_TOML
from tests.support.csms import ADMIN_TOKEN
from tests.support.nodes import Node, csms_nodes
from tests.support.waiting import scaled, wait_until

SERVER = {"unknown_chargers": "accept", "call_timeout_s": 5.0}


@asynccontextmanager
async def admin(node: Node) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(base_url=node.admin_url, headers=headers) as session:
        yield session


async def post(node: Node, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with admin(node) as session, session.post(path, json=body) as r:
        return r.status, await r.json()


def charger(node: Node, cp_id: str, **kw: Any) -> Any:
    kw = {"heartbeat": False, "step_delay_s": 0, "meter_interval_s": 3600, **kw}
    return SimulatedChargePoint.connect(node.ocpp_url, cp_id, **kw)


def started(cp: SimulatedChargePoint, connector: int) -> Tx | None:
    """The charger's transaction on ``connector`` once the CSMS numbered it."""
    tx = cp.transactions.get(connector)
    return tx if tx is not None and tx.id is not None else None


async def wait_present(db: Database, charger_id: str, node: Node) -> None:
    """Until the presence table places ``charger_id`` on ``node`` (what every node reads)."""

    async def there() -> bool:
        row = await db.fetchone(
            "SELECT node_id FROM charger_presence WHERE charger_id = ?", (charger_id,)
        )
        return row is not None and row["node_id"] == node.node_id

    await wait_until(there, timeout=10, what=f"{charger_id} present on {node.node_id}")


async def test_remote_start_asked_of_node_a_starts_the_charge_on_node_b(
    tmp_path: Path, postgres_url: str
) -> None:
    db = await Database.open(postgres_url)
    try:
        async with csms_nodes(tmp_path, postgres_url, 2, config={"server": SERVER}) as (a, b):
            status, _ = await post(b, "/api/tokens", {"id_tag": "REMOTE01"})
            assert status == 201
            async with charger(b, "ROUTE-1") as cp:
                assert (await cp.boot())["status"] == "Accepted"
                await wait_present(db, "ROUTE-1", b)

                status, answer = await post(
                    a,
                    "/api/chargers/ROUTE-1/calls/RemoteStartTransaction",
                    {"connectorId": 1, "idTag": "REMOTE01"},
                )

                assert (status, answer) == (200, {"status": "Accepted"})
                tx = await wait_until(lambda: started(cp, 1), timeout=10, what="the charge started")
                assert tx.auth_status == "Accepted"
                row = await db.fetchone(
                    "SELECT charger_id, id_tag FROM transactions WHERE id = ?", (tx.id,)
                )
                assert tuple(row) == ("ROUTE-1", "REMOTE01")
                assert ("RemoteStartTransaction", {"connectorId": 1, "idTag": "REMOTE01"}) in (
                    cp.received_calls
                )
    finally:
        await db.close()


async def test_ocpi_start_session_received_by_node_a_starts_the_charger_on_node_b(
    tmp_path: Path, postgres_url: str
) -> None:
    locations = tmp_path / "locations.toml"
    locations.write_text(LOCATIONS_TOML.replace('"CP1"', '"ROUTE-2"'))
    config = {
        "server": SERVER,
        "ocpi": {"country_code": "NL", "party_id": "CPO", "http_timeout_s": 2.0},
        "ocpi_cpo": {**FAST, "locations_file": str(locations)},
    }
    db = await Database.open(postgres_url)
    try:
        async with (
            EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp,
            csms_nodes(tmp_path, postgres_url, 2, ocpi=True, config=config) as (a, b),
        ):
            status, invite = await post(
                a, "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"}
            )
            assert status in (200, 201), invite
            await emsp.register_with(invite["versions_url"], invite["token_a"])
            emsp.add_token("C0FFEE42", whitelist="NEVER")  # real-time auth but for the command
            assert all(r.status_code == 1000 for r in await emsp.push_tokens())
            async with charger(b, "ROUTE-2") as cp:
                assert (await cp.boot(announce=True))["status"] == "Accepted"
                await wait_present(db, "ROUTE-2", b)

                sent = await emsp.start_session(
                    "LOC-1", "LOC-1-CP1-2", uid="C0FFEE42", authorization_reference="Route-7"
                )

                assert sent.reply.status_code == 1000 and sent.result == "ACCEPTED"
                result = await emsp.wait_command_result(sent.ref, timeout=scaled(10))
                assert result["result"] == "ACCEPTED"
                assert ("RemoteStartTransaction", {"connectorId": 2, "idTag": "C0FFEE42"}) in (
                    cp.received_calls
                )
                tx = await wait_until(lambda: started(cp, 2), timeout=10, what="charge started")
                assert tx.auth_status == "Accepted"
                await emsp.wait_until(lambda: len(emsp.sessions) == 1, timeout=scaled(10))
                [session] = list(emsp.sessions.values())
                # The command's pre-authorization reached node B with the call: the charger's
                # start was decided from it, not by asking the eMSP.
                assert session["authorization_reference"] == "Route-7"
                assert session["auth_method"] == "COMMAND"
                assert emsp.authorizations == []
    finally:
        await db.close()


async def test_a_charger_moving_from_node_a_to_node_b_is_then_called_on_b(
    tmp_path: Path, postgres_url: str
) -> None:
    db = await Database.open(postgres_url)
    try:
        async with (
            csms_nodes(tmp_path, postgres_url, 2, config={"server": SERVER}) as (a, b),
            charger(a, "ROUTE-3") as first,
        ):
            assert (await first.boot())["status"] == "Accepted"
            await wait_present(db, "ROUTE-3", a)
            async with charger(b, "ROUTE-3") as second:
                assert (await second.boot())["status"] == "Accepted"
                await wait_present(db, "ROUTE-3", b)
                # Node A closed its socket when told the charger is on node B now.
                await wait_until(lambda: not first.connected, timeout=10, what="old socket closed")

                status, answer = await post(
                    a,
                    "/api/chargers/ROUTE-3/calls/ChangeConfiguration",
                    {"key": "HeartbeatInterval", "value": "123"},
                )

                assert (status, answer) == (200, {"status": "Accepted"})
                assert second.config.get("HeartbeatInterval") == "123"
                assert all(c != "ChangeConfiguration" for c, _ in first.received_calls)
    finally:
        await db.close()
