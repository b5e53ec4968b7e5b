"""The cluster core on a real PostgreSQL database: two Systems in this process share
one schema, as two nodes would. Presence follows the charger's socket, the node that
lost a charger closes its older socket, dead nodes hold nothing, jobs run on one node
at a time, and the bus survives the loss of its listening connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from csms.cluster.bus import PgBus, namespace_of
from csms.cluster.jobs import lock_key
from csms.cluster.presence import stamp, utc_now
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.support.csms import ocpp_url, running_csms
from tests.support.waiting import wait_until


@pytest.fixture
async def two(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[System, System]]:
    async with AsyncExitStack() as stack:
        systems = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            systems.append(
                await stack.enter_async_context(
                    running_csms(
                        tmp_path / name,
                        store={"url": postgres_url, "pool_size": 4},
                        server={"unknown_chargers": "accept"},
                        cluster={"node_id": f"node-{name}", "heartbeat_s": 0.2, "lease_s": 1.0},
                    )
                )
            )
        yield systems[0], systems[1]


async def test_both_nodes_are_listed_alive_with_their_chargers(two):
    a, b = two
    async with SimulatedChargePoint.connect(ocpp_url(b), "CP-B1") as cp:
        await cp.boot()
        await wait_until(lambda: b.cluster.presence.locate("CP-B1"), what="CP-B1 located")
        assert await a.cluster.presence.locate("CP-B1") == "node-b"
        views = {v.node_id: v for v in await a.cluster.nodes()}
        assert set(views) == {"node-a", "node-b"}
        assert views["node-a"].this and not views["node-b"].this
        assert views["node-a"].alive and views["node-b"].alive
        assert (views["node-a"].chargers, views["node-b"].chargers) == (0, 1)
    await wait_until(
        lambda: _none(a.cluster.presence.locate("CP-B1")), what="presence gone on disconnect"
    )


async def _none(pending) -> bool:
    return (await pending) is None


async def test_a_charger_reconnecting_elsewhere_closes_its_older_socket(two):
    a, b = two
    async with SimulatedChargePoint.connect(ocpp_url(a), "CP-MOVE") as old:
        await old.boot()
        assert await b.cluster.presence.locate("CP-MOVE") == "node-a"
        async with SimulatedChargePoint.connect(ocpp_url(b), "CP-MOVE") as new:
            await new.boot()
            await wait_until(lambda: not old.connected, what="node a to close the older socket")
            assert await a.cluster.presence.locate("CP-MOVE") == "node-b"
            assert not a.gateway.is_connected("CP-MOVE")
            assert b.gateway.is_connected("CP-MOVE")
            # The node that lost it does not report the charger disconnected: it is not.
            row = await a.db.fetchone(
                "SELECT last_disconnected_at FROM chargers WHERE id = ?", ("CP-MOVE",)
            )
            assert row["last_disconnected_at"] is None
        await wait_until(lambda: _none(a.cluster.presence.locate("CP-MOVE")), what="presence gone")


async def test_a_dead_nodes_chargers_are_nowhere_and_forgotten(two):
    a, _b = two
    now = utc_now()
    await a.db.execute(
        "INSERT INTO cluster_nodes (node_id, version, started_at, heartbeat_at, lease_until)"
        " VALUES ('node-gone', 'x', ?, ?, ?)",
        (stamp(now), stamp(now), stamp(now)),  # lease already over
    )
    await a.db.execute(
        "INSERT INTO charger_presence VALUES ('CP-ORPHAN', 'node-gone', ?, '')", (stamp(now),)
    )
    assert await a.cluster.presence.locate("CP-ORPHAN") is None
    gone = {v.node_id: v for v in await a.cluster.nodes()}["node-gone"]
    assert not gone.alive
    await a.cluster.forget_the_dead()
    assert await a.cluster.presence.chargers_of("node-gone") == []


async def test_a_stopped_node_is_listed_stopped(tmp_path: Path, postgres_url: str):
    sections = {"store": {"url": postgres_url, "pool_size": 3}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with running_csms(tmp_path / "a", cluster={"node_id": "node-a"}, **sections) as a:
        async with running_csms(tmp_path / "b", cluster={"node_id": "node-b"}, **sections):
            pass
        views = {v.node_id: v for v in await a.cluster.nodes()}
        assert views["node-b"].stopped_at is not None and not views["node-b"].alive
        assert views["node-a"].alive


async def test_a_job_runs_on_one_node_at_a_time(two):
    a, b = two
    async with a.cluster.exclusive("token_sync:NL-EMS") as mine:
        assert mine
        async with b.cluster.exclusive("token_sync:NL-EMS") as theirs:
            assert not theirs
        async with b.cluster.exclusive("retention") as other_job:
            assert other_job
    async with b.cluster.exclusive("token_sync:NL-EMS") as theirs:
        assert theirs


async def test_a_job_lock_dies_with_its_holders_connection(two, postgres_url: str):
    a, b = two
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with a.cluster.exclusive("purge") as mine:
            assert mine
            held.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await held.wait()
    # The holder's session ends as if its node died: PostgreSQL frees the lock.
    conn = await asyncpg.connect(postgres_url)
    try:
        key = lock_key(f"{namespace_of(postgres_url)}:purge") & 0xFFFF_FFFF_FFFF_FFFF
        ended = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
            key >> 32,
            key & 0xFFFF_FFFF,
        )
        assert ended == 1
    finally:
        await conn.close()

    async def free() -> bool:
        async with b.cluster.exclusive("purge") as theirs:
            return theirs

    await wait_until(free, timeout=15, what="the lock freed by the holder's end")
    release.set()
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await task


async def test_the_bus_tells_of_a_gap_and_listens_again(two, postgres_url: str):
    a, b = two
    bus = a.cluster.bus
    assert isinstance(bus, PgBus)
    gaps: list[bool] = []
    heard: list[str] = []
    bus.on_gap(lambda: gaps.append(bus.healthy))
    bus.listen("csms_test", heard.append)
    await bus.settled()
    await b.cluster.bus.notify("csms_test", "one")
    await wait_until(lambda: heard == ["one"], what="the first notification")

    conn = await asyncpg.connect(postgres_url)
    try:
        assert bus._conn is not None
        await conn.execute("SELECT pg_terminate_backend($1)", bus._conn.get_server_pid())
    finally:
        await conn.close()
    await wait_until(lambda: len(gaps) >= 2 and bus.healthy, timeout=10, what="lost, then back")
    assert gaps[0] is False and gaps[-1] is True
    await b.cluster.bus.notify("csms_test", "two")
    await wait_until(lambda: heard[-1:] == ["two"], what="notifications after the gap")


async def test_on_sqlite_the_node_is_alone(tmp_path: Path):
    async with running_csms(tmp_path, cluster={"node_id": "solo"}) as app:
        assert not app.cluster.multi
        [view] = await app.cluster.nodes()
        assert (view.node_id, view.alive, view.this) == ("solo", True, True)
        async with app.cluster.exclusive("job") as mine:
            assert mine
            async with app.cluster.exclusive("job") as again:
                assert not again


async def test_a_node_deaf_to_the_bus_is_not_ready(two):
    a, _b = two
    url = f"http://127.0.0.1:{a.admin_port}/api/ready"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"]["cluster"] is True
        bus = a.cluster.bus
        assert isinstance(bus, PgBus)
        await bus.close()  # as if its listening connection could not be opened again
        async with http.get(url) as resp:
            assert resp.status == 503
            assert (await resp.json())["checks"]["cluster"] is False
