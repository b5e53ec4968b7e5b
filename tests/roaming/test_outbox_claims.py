"""One outbox delivered by several nodes: each message once, in order per object.

Each node is an :class:`OutboxStore` with its own node id and its own connection pool
(as two processes have), with the liveness rule the CSMS wires in
(:func:`csms.ocpi.cpo.outbox_claims`: a claim holds while its node's row in
``cluster_nodes`` has a lease that has not run out). A node's death is its lease
running out (the row is written here, as the node's heartbeat would); a crash
mid-request is a worker cancelled while the eMSP holds its request. The eMSP is a real
aiohttp server on 127.0.0.1 that records what arrives, in arrival order.

The concurrent drain needs PostgreSQL (nodes share a database there); the claim rules
run on both engines, SQLite included, where the same statements run without the row
locks.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from csms.cluster.config import ClusterConfig
from csms.cluster.node import Cluster
from csms.ocpi.cpo import outbox_claims
from csms.ocpi.locations import load_catalog, sync_catalog
from csms.ocpp16.gateway import ChargerGateway
from csms.store.db import Database
from roaming import outbox
from roaming.client import OcpiClient
from roaming.outbox import OcpiTransport, OutboxWorker, RetryPolicy
from roaming.sessions import SessionService
from roaming.store import schema as roaming_schema
from roaming.store.locations import LocationStore
from roaming.store.outbox import OutboxStore, Status
from roaming.store.sessions import SessionStore
from tests.e2e.roaming.test_outbox import Partners
from tests.support.waiting import wait_until

NODE_A, NODE_B = "node-a", "node-b"
OK = {"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}


class RecordingEmsp:
    """Session PUT/PATCHes and CDR POSTs, recorded as they arrive: (method, id, n).

    Answers after a random 0-3 ms so that deliveries from two nodes interleave.
    ``hold_cdr``: the next CDR POST is stored, then its answer waits for ``released``.
    """

    def __init__(self, seed: int = 7) -> None:
        self.arrivals: list[tuple[str, str, int]] = []
        self.cdrs: dict[str, dict[str, Any]] = {}
        self.lookups: list[str] = []
        self.rng = random.Random(seed)
        self.hold_cdr = False
        self.held = 0
        self.released = asyncio.Event()

    async def _jitter(self) -> None:
        await asyncio.sleep(self.rng.random() * 0.003)

    def app(self) -> web.Application:
        async def session(request: web.Request) -> web.Response:
            body = await request.json()
            self.arrivals.append((request.method, request.match_info["id"], body["n"]))
            await self._jitter()
            return web.json_response(OK)

        async def post_cdr(request: web.Request) -> web.Response:
            body = await request.json()
            self.arrivals.append(("POST", body["session_id"], body["n"]))
            self.cdrs[body["id"]] = body
            if self.hold_cdr:
                self.hold_cdr = False
                self.held += 1
                await self.released.wait()
            await self._jitter()
            return web.json_response(OK, status=201)

        async def get_cdr(request: web.Request) -> web.Response:
            self.lookups.append(request.match_info["id"])
            cdr = self.cdrs.get(request.match_info["id"])
            if cdr is None:
                return web.json_response({**OK, "status_code": 2000}, status=404)
            return web.json_response({**OK, "data": cdr})

        app = web.Application()
        app.router.add_route("*", "/sessions/{cc}/{pid}/{id}", session)
        app.router.add_post("/cdrs", post_cdr)
        app.router.add_get("/cdrs/{cc}/{pid}/{id}", get_cdr)
        return app

    def posts_of(self, cdr_id: str) -> int:
        return sum(1 for m, _, n in self.arrivals if m == "POST" and f"CDR-{n}" == cdr_id)


@dataclass
class Rig:
    emsp: RecordingEmsp
    base: str
    url: str
    dbs: list[Database] = field(default_factory=list)
    clients: list[OcpiClient] = field(default_factory=list)

    async def database(self) -> Database:
        """A connection pool of its own, as each node process has."""
        db = await Database.open(self.url)
        await roaming_schema.migrate(db)
        self.dbs.append(db)
        return db

    async def node(self, node_id: str, db: Database | None = None, **kw: Any) -> OutboxWorker:
        """A node's outbox worker (its store claims as ``node_id``)."""
        db = db or await self.database()
        client = OcpiClient(
            timeout_s=1.0, from_country_code="NL", from_party_id="CPO", allow_private_urls=True
        )
        self.clients.append(client)
        return OutboxWorker(
            OutboxStore(db, outbox_claims(node_id, multi=True)),
            OcpiTransport(Partners(self.base), client),
            policy=RetryPolicy(initial_s=0.01, max_s=0.05, max_attempts=50),
            **kw,
        )


@pytest.fixture
async def rig_at() -> AsyncIterator[Callable[[str], Awaitable[Rig]]]:
    emsp = RecordingEmsp()
    runner = web.AppRunner(emsp.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rigs: list[Rig] = []

    async def make(url: str) -> Rig:
        rig = Rig(emsp, f"http://127.0.0.1:{runner.addresses[0][1]}", url)
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        emsp.released.set()
        for rig in rigs:
            for client in rig.clients:
                await client.close()
            for db in rig.dbs:
                await db.close()
        await runner.cleanup()


def lease_stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def lease(db: Database, node_id: str, seconds: float, *, stopped: bool = False) -> None:
    """The node's row as its heartbeat writes it: alive for ``seconds`` more (negative:
    its lease ran out that long ago); ``stopped``: it said goodbye."""
    now = datetime.now(UTC)
    until = lease_stamp(now + timedelta(seconds=seconds))
    stopped_at = lease_stamp(now) if stopped else None
    async with db.transaction() as tx:
        n = await tx.execute(
            "UPDATE cluster_nodes SET heartbeat_at = ?, lease_until = ?, stopped_at = ?"
            " WHERE node_id = ?",
            (lease_stamp(now), until, stopped_at, node_id),
        )
        if not n:
            await tx.execute(
                "INSERT INTO cluster_nodes"
                " (node_id, started_at, heartbeat_at, lease_until, stopped_at, version)"
                " VALUES (?, ?, ?, ?, ?, 'test')",
                (node_id, lease_stamp(now), lease_stamp(now), until, stopped_at),
            )


async def session_push(db: Database, sid: str, method: str, n: int) -> int:
    async with db.transaction() as tx:
        return await outbox.enqueue(
            tx,
            partner_key="NL-EMS",
            module="sessions",
            method=method,
            path=["NL", "CPO", sid],
            body={"n": n},
            object_key=f"session:{sid}",
        )


async def cdr_push(db: Database, sid: str, n: int) -> int:
    async with db.transaction() as tx:
        return await outbox.enqueue(
            tx,
            partner_key="NL-EMS",
            module="cdrs",
            method="POST",
            path=[],
            body={"id": f"CDR-{n}", "session_id": sid, "n": n},
            object_key=f"session:{sid}",  # after the Session's own pushes, as the CPO does
        )


async def drain(worker: OutboxWorker, done: Callable[[], Awaitable[bool]], what: str) -> None:
    async def round_then_check() -> bool:
        await worker.run_once()
        return await done()

    await wait_until(round_then_check, timeout=15, interval=0.01, what=what)


async def status_of(db: Database, msg_id: int) -> tuple[str, str | None]:
    row = await db.fetchone("SELECT status, claimed_by FROM ocpi_outbox WHERE id = ?", (msg_id,))
    return row["status"], row["claimed_by"]


# --------------------------------------------------------------------------- two nodes at once


async def test_two_nodes_drain_one_outbox_each_message_once_in_object_order(
    rig_at: Callable[[str], Awaitable[Rig]], postgres_url: str
) -> None:
    rig = await rig_at(postgres_url)
    db = await rig.database()
    objects, per_object = 40, 5  # a PUT, three PATCHes and the CDR of each Session
    for node in (NODE_A, NODE_B):
        await lease(db, node, 600)
    expected: dict[str, list[int]] = {f"S{i}": [] for i in range(objects)}
    for k in range(per_object):  # interleaved: every object's k-th push, then the next k
        for i in range(objects):
            sid, n = f"S{i}", i * 100 + k
            if k == per_object - 1:
                await cdr_push(db, sid, n)
            else:
                await session_push(db, sid, "PUT" if k == 0 else "PATCH", n)
            expected[sid].append(n)
    total = objects * per_object
    workers = [
        await rig.node(node, batch=8, concurrency=4, poll_interval_s=0.05)
        for node in (NODE_A, NODE_B)
    ]
    for w in workers:
        w.start()

    async def delivered() -> bool:
        return (await OutboxStore(db).counts()).get("delivered") == total

    try:
        await wait_until(delivered, timeout=60, interval=0.05, what="both nodes to drain")
    finally:
        for w in workers:
            await w.stop()

    arrivals = rig.emsp.arrivals
    sent = Counter(n for _, _, n in arrivals)
    assert [n for n, c in sent.items() if c > 1] == [], "delivered more than once"
    assert len(sent) == total, "a message was lost"
    by_object: dict[str, list[int]] = {sid: [] for sid in expected}
    for _, sid, n in arrivals:
        by_object[sid].append(n)
    assert by_object == expected  # per object: the PUT, its PATCHes in order, then the CDR
    rows = await db.fetchall(
        "SELECT claimed_by, count(*) AS n FROM ocpi_outbox GROUP BY claimed_by"
    )
    shares = {r["claimed_by"]: r["n"] for r in rows}
    # Both took part (so the rules above held under contention), and nothing else did.
    assert set(shares) == {NODE_A, NODE_B} and min(shares.values()) > 0, shares
    print(f"delivered={total} shares={shares}")


# --------------------------------------------------------------------------- claims and liveness


async def test_a_message_claimed_by_a_live_node_is_not_taken(
    rig_at: Callable[[str], Awaitable[Rig]], store_url: str
) -> None:
    rig = await rig_at(store_url)
    db = await rig.database()
    await lease(db, NODE_B, 600)
    msg_id = await session_push(db, "S1", "PUT", 1)
    b = OutboxStore(db, outbox_claims(NODE_B, multi=True))
    assert [m.id for m in await b.claim(outbox.utcnow(), 10)] == [msg_id]
    a = await rig.node(NODE_A, db)

    assert await a.run_once() == 0  # node B is delivering it
    assert await a.store.next_due() is None  # so node A does not wake for it, either
    assert rig.emsp.arrivals == [] and await status_of(db, msg_id) == ("pending", NODE_B)

    await lease(db, NODE_B, 600, stopped=True)  # B stopped without finishing it
    assert await a.run_once() == 1
    assert rig.emsp.arrivals == [("PUT", "S1", 1)]
    assert await status_of(db, msg_id) == ("delivered", NODE_A)


async def test_a_cdr_in_flight_on_a_dead_node_is_taken_over_and_looked_up(
    rig_at: Callable[[str], Awaitable[Rig]], store_url: str
) -> None:
    rig = await rig_at(store_url)
    emsp = rig.emsp
    db = await rig.database()
    await lease(db, NODE_B, 600)
    msg_id = await cdr_push(db, "S9", 9)
    b = await rig.node(NODE_B, db)
    emsp.hold_cdr = True  # stored at the eMSP; the answer never reaches node B
    b.start()
    await wait_until(lambda: emsp.held == 1, what="the eMSP to hold node B's CDR POST")
    await b.stop()  # B dies mid-request: no outcome recorded
    [row] = await db.fetchall("SELECT in_flight_at, claimed_by FROM ocpi_outbox")
    assert row["in_flight_at"] is not None and row["claimed_by"] == NODE_B

    a = await rig.node(NODE_A, db)
    assert await a.run_once() == 0  # B's lease has not run out: not A's to take

    await lease(db, NODE_B, -1)  # B's lease ran out

    async def delivered() -> bool:
        return (await status_of(db, msg_id))[0] == "delivered"

    await drain(a, delivered, "node A to take the CDR over")
    assert emsp.posts_of("CDR-9") == 1  # found by a lookup, not POSTed again
    assert emsp.lookups == ["CDR-9"]
    assert await status_of(db, msg_id) == ("delivered", NODE_A)


async def test_a_nodes_own_claims_from_an_earlier_life_are_free_at_its_start(
    rig_at: Callable[[str], Awaitable[Rig]], store_url: str
) -> None:
    rig = await rig_at(store_url)
    db = await rig.database()
    await lease(db, NODE_A, 600)  # renewed by the node's new life at once
    msg_id = await cdr_push(db, "S3", 3)
    earlier = OutboxStore(db, outbox_claims(NODE_A, multi=True))
    [msg] = await earlier.claim(outbox.utcnow(), 10)
    assert await earlier.mark_in_flight(msg.id, outbox.utcnow())  # then the process died

    again = await rig.node(NODE_A)  # a new process: its own pool, the same node id
    [taken] = await again.store.claim(outbox.utcnow() + timedelta(seconds=5), 10)
    assert taken.id == msg_id and taken.ambiguous  # in flight: looked up before a POST


async def test_a_late_outcome_of_a_node_taken_over_is_not_recorded(
    rig_at: Callable[[str], Awaitable[Rig]], store_url: str
) -> None:
    rig = await rig_at(store_url)
    db = await rig.database()
    await lease(db, NODE_B, 600)
    msg_id = await session_push(db, "S4", "PUT", 4)
    b = OutboxStore(db, outbox_claims(NODE_B, multi=True))
    a = OutboxStore(db, outbox_claims(NODE_A, multi=True))
    [mb] = await b.claim(outbox.utcnow(), 10)
    await lease(db, NODE_B, -1)  # B stalls past its lease; A takes the message over
    [ma] = await a.claim(outbox.utcnow(), 10)
    assert ma.id == mb.id == msg_id and await a.mark_in_flight(msg_id, outbox.utcnow())

    assert not await b.mark_in_flight(msg_id, outbox.utcnow())  # B must not send it now
    await a.mark_delivered(ma, 1, outbox.utcnow(), None)
    await b.reschedule(msg_id, 1, outbox.utcnow(), "late timeout", ambiguous=True, dead=False)
    await b.mark_finished(msg_id, Status.REJECTED, 1, outbox.utcnow(), "late")
    assert await status_of(db, msg_id) == ("delivered", NODE_A)  # B's answers changed nothing


# --------------------------------------------------------------------------- held pushes


async def test_held_pushes_are_released_on_one_node_at_a_time(
    rig_at: Callable[[str], Awaitable[Rig]], postgres_url: str
) -> None:
    rig = await rig_at(postgres_url)
    db_a, db_b = await rig.database(), await rig.database()
    cluster_a = Cluster(ClusterConfig(node_id=NODE_A), db_a, ChargerGateway(5.0))
    cluster_b = Cluster(ClusterConfig(node_id=NODE_B), db_b, ChargerGateway(5.0))
    releases: list[str] = []

    async def release(now: datetime) -> int:
        releases.append(NODE_A)
        return 0

    a = await rig.node(NODE_A, db_a, release_held=release, jobs=cluster_a)
    async with cluster_b.exclusive("outbox_release") as held:
        assert held  # node B is releasing now
        await a.run_once()
        assert releases == []  # so node A skips it this round
    await a.run_once()
    assert releases == [NODE_A]


LOCATIONS = """
[[tariffs]]
id = "AC-STD"
currency = "EUR"
energy_price = 0.40

[[locations]]
id = "LOC-1"
name = "Depot"
address = "Hafenstraat 1"
city = "Amsterdam"
postal_code = "1011AB"
country = "NLD"
latitude = "52.37403"
longitude = "4.88969"
time_zone = "Europe/Amsterdam"

[[locations.evses]]
uid = "EVSE-9"
evse_id = "NL*CPO*E9"
charger_id = "CP9"
connector_id = 1
standard = "IEC_62196_T2"
format = "SOCKET"
power_type = "AC_3_PHASE"
max_voltage = 230
max_amperage = 32
tariff_ids = ["AC-STD"]
"""


async def test_a_session_waiting_on_another_node_is_released_here(
    rig_at: Callable[[str], Awaitable[Rig]], postgres_url: str, tmp_path: Path
) -> None:
    rig = await rig_at(postgres_url)
    db_a, db_b = await rig.database(), await rig.database()
    here = SessionService(db_a, LocationStore(db_a, "NL", "CPO"), country_code="NL", party_id="CPO")
    here.shared_store = True  # as the CSMS wires it when nodes share the store
    assert await here.release_waiting(outbox.utcnow()) == 0  # nothing waits anywhere yet

    # Node B starts a Session on a connector no EVSE maps (then it may die): the Session
    # waits, its PUT is held. Node A never saw it start.
    body = {"id": "S-9", "status": "ACTIVE", "kwh": 0.0, "last_updated": "2026-01-01T00:00:00Z"}
    meta = {"charger_id": "CP9", "connector_id": 1, "meter_start_wh": 0}
    reason = "waiting for location: CP9 connector 1 has no EVSE"
    async with db_b.transaction() as tx:
        await SessionStore(db_b).insert(
            tx,
            session_id="S-9",
            transaction_id=9,
            partner_key="NL-EMS",
            body={**body, "_meta": meta},
            now=outbox.utcnow(),
            waiting_for=reason,
        )
        put_id = await outbox.enqueue(
            tx,
            partner_key="NL-EMS",
            module="sessions",
            method="PUT",
            path=["NL", "CPO", "S-9"],
            body=body,
            object_key="session:S-9",
            held_reason=reason,
        )
    file = tmp_path / "locations.toml"
    file.write_text(LOCATIONS)  # the operator maps the connector (through node A)
    catalog = load_catalog(str(file), country_code="NL", party_id="CPO")
    await sync_catalog(db_a, here.locations, catalog)

    assert await here.release_waiting(outbox.utcnow()) == 1
    row = await db_a.fetchone("SELECT held_reason, body FROM ocpi_outbox WHERE id = ?", (put_id,))
    assert row["held_reason"] is None and '"location_id":"LOC-1"' in row["body"]
