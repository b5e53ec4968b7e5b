"""Outbox delivery against a real aiohttp eMSP we control: per-object order, rejection,
dead letters, and no second CDR after an ambiguous failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from csms.store.db import Database
from roaming import outbox
from roaming.client import OcpiClient
from roaming.models import Endpoint, InterfaceRole
from roaming.outbox import OcpiTransport, OutboxWorker, RetryPolicy, backoff
from roaming.partners import Partner, PartnerStatus
from roaming.store import schema as roaming_schema
from roaming.store.outbox import OutboxStore
from tests.support.waiting import wait_until


class FlakyEmsp:
    """Stores what it gets; ``fail_after_store`` answers 500 AFTER storing a CDR once."""

    def __init__(self) -> None:
        self.cdrs: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.seen: list[tuple[str, str]] = []
        self.fail_after_store = False
        self.down = False
        self.reject_paths: set[str] = set()
        self.accepted: list[Any] = []  # session bodies answered 1000, in arrival order

    def app(self) -> web.Application:
        async def post_cdr(request: web.Request) -> web.Response:
            body = await request.json()
            self.posts += 1
            self.seen.append(("POST", request.path))
            if self.down:
                return web.Response(status=503, text="down")
            self.cdrs[body["id"]] = body
            if self.fail_after_store:
                self.fail_after_store = False
                return web.Response(status=500, text="oops, lost the answer")
            return web.json_response(
                {"status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"},
                status=201,
                headers={"Location": f"http://emsp/cdrs/NL/CPO/{body['id']}"},
            )

        async def get_cdr(request: web.Request) -> web.Response:
            self.seen.append(("GET", request.path))
            cdr = self.cdrs.get(request.match_info["id"])
            if cdr is None:
                return web.json_response(
                    {"status_code": 2000, "timestamp": "2024-01-01T00:00:00Z"}, status=404
                )
            return web.json_response(
                {"data": cdr, "status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"}
            )

        async def session(request: web.Request) -> web.Response:
            self.seen.append((request.method, request.path))
            if self.down:
                return web.Response(status=503, text="down")
            if request.method == "PUT" and request.path in self.reject_paths:
                return web.json_response(
                    {
                        "status_code": 2001,
                        "status_message": "bad",
                        "timestamp": "2024-01-01T00:00:00Z",
                    }
                )
            self.accepted.append((await request.json())["n"])
            return web.json_response({"status_code": 1000, "timestamp": "2024-01-01T00:00:00Z"})

        app = web.Application()
        app.router.add_post("/cdrs", post_cdr)
        app.router.add_get("/cdrs/{cc}/{pid}/{id}", get_cdr)
        app.router.add_route("*", "/sessions/{cc}/{pid}/{id}", session)
        return app


class Partners:
    """The partner directory the transport reads (one registered eMSP)."""

    def __init__(self, base: str) -> None:
        self.partner = Partner(
            id=1,
            key="NL-EMS",
            country_code="NL",
            party_id="EMS",
            status=PartnerStatus.REGISTERED,
            initiated_by="them",
            token_out="token-c",
            endpoints=(
                Endpoint("cdrs", InterfaceRole.RECEIVER, f"{base}/cdrs"),
                Endpoint("sessions", InterfaceRole.RECEIVER, f"{base}/sessions"),
            ),
        )

    async def partner_by_key(self, key: str) -> Partner | None:
        return self.partner if key == "NL-EMS" else None

    async def list_partners(self) -> list[Partner]:
        return [self.partner]


@pytest.fixture
async def rig(tmp_path):
    emsp = FlakyEmsp()
    runner = web.AppRunner(emsp.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    db = await Database.open(str(tmp_path / "o.sqlite3"))
    await roaming_schema.migrate(db)
    client = OcpiClient(
        timeout_s=1.0, from_country_code="NL", from_party_id="CPO", allow_private_urls=True
    )
    store = OutboxStore(db)
    worker = OutboxWorker(
        store,
        OcpiTransport(Partners(base), client),
        policy=RetryPolicy(initial_s=0.01, max_s=0.02, max_attempts=3),
    )
    yield emsp, db, store, worker
    await client.close()
    await db.close()
    await runner.cleanup()


async def put(db: Database, method: str, path: list[str], body: dict, key: str, module: str) -> int:
    async with db.transaction() as tx:
        return await outbox.enqueue(
            tx,
            partner_key="NL-EMS",
            module=module,
            method=method,
            path=path,
            body=body,
            object_key=key,
        )


async def drain_until(worker: OutboxWorker, done: Callable[[], Awaitable[bool]], what: str) -> None:
    """Run delivery rounds until ``done`` (retries wait out their short backoff)."""

    async def round_then_check() -> bool:
        await worker.run_once()
        return await done()

    await wait_until(round_then_check, interval=0.005, what=what)


async def test_ambiguous_cdr_failure_is_not_posted_twice(rig):
    emsp, db, store, worker = rig
    emsp.fail_after_store = True
    await put(db, "POST", [], {"id": "CDR-1", "x": 1}, "cdr:CDR-1", "cdrs")
    await worker.run_once()
    [msg] = await store.waiting()
    assert msg.status == "pending" and msg.attempts == 1 and "HTTP 500" in (msg.last_error or "")

    async def finished() -> bool:
        return not await store.waiting()

    await drain_until(worker, finished, "the CDR to be delivered")
    assert emsp.posts == 1  # the retry found it with a GET instead of POSTing again
    assert ("GET", "/cdrs/NL/CPO/CDR-1") in emsp.seen
    [done] = await store.waiting(include_finished=True)
    assert done.status == "delivered"


async def test_per_object_order_rejection_and_dead_letters(rig):
    emsp, db, store, worker = rig
    emsp.reject_paths.add("/sessions/NL/CPO/S1")
    a = await put(db, "PUT", ["NL", "CPO", "S1"], {"n": 1}, "session:S1", "sessions")
    b = await put(db, "PATCH", ["NL", "CPO", "S2"], {"n": 2}, "session:S2", "sessions")
    c = await put(db, "PATCH", ["NL", "CPO", "S1"], {"n": 3}, "session:S1", "sessions")
    heads = await store.heads(outbox.utcnow(), 10)
    assert [m.id for m in heads] == [a, b]  # c waits behind a (same object)

    async def nothing_waiting() -> bool:
        return not await store.waiting()

    await drain_until(worker, nothing_waiting, "the three messages to be handled")
    status = {m.id: m.status for m in await store.waiting(include_finished=True)}
    assert status == {a: "rejected", b: "delivered", c: "delivered"}  # rejection moves on

    emsp.down = True
    d = await put(db, "PATCH", ["NL", "CPO", "S3"], {"n": 4}, "session:S3", "sessions")
    e = await put(db, "PATCH", ["NL", "CPO", "S3"], {"n": 5}, "session:S3", "sessions")

    async def d_is_dead() -> bool:
        return any(m.id == d and m.status == "dead" for m in await store.waiting())

    await drain_until(worker, d_is_dead, "the PATCH to run out of attempts")
    await worker.run_once()  # a dead message keeps blocking its object
    status = {m.id: (m.status, m.attempts) for m in await store.waiting()}
    assert status == {d: ("dead", 3), e: ("pending", 0)}  # the dead one blocks its object
    emsp.down = False
    assert await store.retry(d)
    await drain_until(worker, nothing_waiting, "the retried PATCH and the next to go")
    assert (await store.counts()).get("delivered") == 4
    assert [n for n in emsp.accepted if n in (4, 5)] == [4, 5]  # order kept across the outage


def test_backoff_doubles_and_caps():
    assert [backoff(n, 2.0, 10.0) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
