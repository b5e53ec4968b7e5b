"""Outbox delivery against a real aiohttp eMSP we control: per-object order, rejection,
dead letters, and no second CDR after an ambiguous failure or a crash mid-request.

A crash is a worker stopped (cancelled) while the eMSP holds its request: no outcome is
recorded, exactly as when the process dies; a new worker on the same store takes over."""

from __future__ import annotations

import asyncio
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
        # hold: "cdr-before" (hold a CDR POST, then drop it unstored), "cdr-after" (store
        # it, then hold the answer), "session-put" (hold a session PUT, then drop it).
        self.hold: str | None = None
        self.held = 0
        self.released = asyncio.Event()
        self.get_down = False  # GET of a CDR answers 503

    def app(self) -> web.Application:
        async def post_cdr(request: web.Request) -> web.Response:
            body = await request.json()
            self.posts += 1
            self.seen.append(("POST", request.path))
            if self.down:
                return web.Response(status=503, text="down")
            if self.hold == "cdr-before":
                self.held += 1
                await self.released.wait()
                return web.Response(status=503, text="lost before storing")
            self.cdrs[body["id"]] = body
            if self.hold == "cdr-after":
                self.held += 1
                await self.released.wait()
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
            if self.get_down:
                return web.Response(status=503, text="down")
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
            if request.method == "PUT" and self.hold == "session-put":
                self.held += 1
                await self.released.wait()
                return web.Response(status=503, text="lost")
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
async def rig(store_url):  # each store engine in turn
    emsp = FlakyEmsp()
    runner = web.AppRunner(emsp.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    db = await Database.open(store_url)
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


# --------------------------------------------------------------------------- crashes


async def crash_mid_request(emsp: FlakyEmsp, worker: OutboxWorker, hold: str) -> None:
    """Run ``worker`` until the eMSP holds one request, then stop it (nothing recorded)."""
    emsp.hold = hold
    worker.start()
    await wait_until(lambda: emsp.held == 1, what="the eMSP to hold the request")
    await worker.stop()
    emsp.hold = None
    emsp.released.set()  # the eMSP finishes (or drops) the request of the dead worker


def restarted(worker: OutboxWorker) -> OutboxWorker:
    """A new worker on the same store, as after a restart."""
    return OutboxWorker(worker.store, worker.transport, policy=worker.policy)


async def test_a_cdr_in_flight_at_a_crash_is_found_at_the_emsp_not_posted_again(rig):
    emsp, db, store, worker = rig
    await put(db, "POST", [], {"id": "CDR-9", "country_code": "NL", "party_id": "CPO"},
              "cdr:CDR-9", "cdrs")  # fmt: skip
    await crash_mid_request(emsp, worker, "cdr-after")
    [msg] = await store.waiting()
    assert msg.status == "pending" and msg.attempts == 0  # no outcome was recorded
    assert msg.in_flight_at is not None and msg.ambiguous  # ... but it had left
    again = restarted(worker)
    await again.run_once()  # too early to ask: the eMSP may still be storing it
    [msg] = await store.waiting()
    assert emsp.seen == [("POST", "/cdrs")] and msg.attempts == 0
    assert msg.ambiguous and "in flight when the process stopped" in (msg.last_error or "")

    async def finished() -> bool:
        return not await store.waiting()

    await drain_until(again, finished, "the in-flight CDR to be settled")
    assert emsp.posts == 1 and list(emsp.cdrs) == ["CDR-9"]
    assert emsp.seen[-1] == ("GET", "/cdrs/NL/CPO/CDR-9")  # looked up, not POSTed
    [done] = await store.waiting(include_finished=True)
    assert done.status == "delivered" and done.in_flight_at is None
    row = await db.fetchone("SELECT location FROM ocpi_outbox WHERE id = ?", (done.id,))
    assert row["location"].endswith("/cdrs/NL/CPO/CDR-9")


async def test_a_cdr_lost_in_flight_is_posted_once_after_the_lookup_misses(rig):
    emsp, db, store, worker = rig
    await put(db, "POST", [], {"id": "CDR-8"}, "cdr:CDR-8", "cdrs")
    await crash_mid_request(emsp, worker, "cdr-before")
    assert not emsp.cdrs

    async def finished() -> bool:
        return not await store.waiting()

    await drain_until(restarted(worker), finished, "the lost CDR to be sent again")
    assert list(emsp.cdrs) == ["CDR-8"]
    posts = [i for i, (method, _) in enumerate(emsp.seen) if method == "POST"]
    gets = [i for i, (method, _) in enumerate(emsp.seen) if method == "GET"]
    assert len(posts) == 2 and gets and posts[0] < min(gets) and max(gets) < posts[1]


async def test_no_cdr_post_while_the_lookup_has_no_answer(rig):
    emsp, db, store, worker = rig
    await put(db, "POST", [], {"id": "CDR-7"}, "cdr:CDR-7", "cdrs")
    await crash_mid_request(emsp, worker, "cdr-after")
    emsp.get_down = True
    again = restarted(worker)

    async def looked_up() -> bool:
        [msg] = await store.waiting()
        return "looking the CDR up" in (msg.last_error or "")

    await drain_until(again, looked_up, "a lookup that gets no answer")
    [msg] = await store.waiting()
    assert emsp.posts == 1  # the lookup got a 503: nothing is sent on a guess
    assert msg.status == "pending" and msg.ambiguous and msg.in_flight_at is None
    assert "looking the CDR up" in (msg.last_error or "")
    emsp.get_down = False

    async def finished() -> bool:
        return not await store.waiting()

    await drain_until(again, finished, "the CDR to be found once the eMSP answers")
    assert emsp.posts == 1 and list(emsp.cdrs) == ["CDR-7"]


async def test_a_patch_never_overtakes_a_put_that_was_in_flight_at_a_crash(rig):
    emsp, db, store, worker = rig
    a = await put(db, "PUT", ["NL", "CPO", "S9"], {"n": 1}, "session:S9", "sessions")
    b = await put(db, "PATCH", ["NL", "CPO", "S9"], {"n": 2}, "session:S9", "sessions")
    await crash_mid_request(emsp, worker, "session-put")
    assert [m.id for m in await store.heads(outbox.utcnow(), 10)] == [a]  # b still waits

    async def finished() -> bool:
        return not await store.waiting()

    await drain_until(restarted(worker), finished, "the PUT again, then the PATCH")
    assert emsp.accepted == [1, 2]
    methods = [m for m, path in emsp.seen if path.endswith("/S9")]
    assert methods == ["PUT", "PUT", "PATCH"]  # the PUT re-sent first (PUT is idempotent)
    status = {m.id: m.status for m in await store.waiting(include_finished=True)}
    assert status == {a: "delivered", b: "delivered"}
