"""Live updates: ``GET /dashboard/events`` streams Server-Sent Events when what a page
shows has changed.

Why fingerprints and not pushed facts: the OCPP server and the outbox already commit
every fact to the store; asking the store about once a second "did the chargers /
transactions / decisions / roaming change?" (one aggregate query per topic, see
:mod:`csms.store.dashboard`) adds no coupling to the hot paths, and a page that misses
an event (a reconnect) catches up from the next fingerprint. Each event names a topic
and its new version; the page script re-fetches itself and swaps its live regions.

A page carries the versions it was rendered at, so a change between the render and the
stream's first event is not lost. Streams end when the app shuts down (``on_shutdown``),
when the session ends (logout, expiry) or when the browser goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import UTC, datetime

import orjson
from aiohttp import web

from csms.admin.context import AdminContext, context_of
from csms.admin.http import ApiError
from csms.store import dashboard as queries
from csms.store.admin_sessions import AdminSessionRepo

from .render import SESSION

TOPICS = ("chargers", "transactions", "authorizations", "roaming")
INTERVAL_S = 0.5
KEEPALIVE_S = 15.0

STOPPING: web.AppKey[asyncio.Event] = web.AppKey("dashboard_stopping", asyncio.Event)

routes = web.RouteTableDef()


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


async def version(ctx: AdminContext, topic: str) -> str:
    """The current version of one topic (changes whenever its pages would)."""
    if topic == "chargers":
        # Every node's chargers (presence), so a charger moving between nodes shows too.
        placed = sorted((await ctx.placed()).items())
        return _digest(await queries.chargers_fingerprint(ctx.db), placed)
    if topic == "transactions":
        return _digest(await queries.transactions_fingerprint(ctx.db))
    if topic == "authorizations":
        return _digest(await queries.authorizations_fingerprint(ctx.db))
    if topic == "roaming":
        view = ctx.roaming_view
        return _digest(None if view is None else await view.fingerprint())
    raise ValueError(topic)


async def versions(ctx: AdminContext, topics: tuple[str, ...]) -> dict[str, str]:
    return {t: await version(ctx, t) for t in topics}


def parse_topics(raw: str) -> tuple[str, ...]:
    topics = tuple(t for t in raw.split(",") if t)
    unknown = sorted(set(topics) - set(TOPICS))
    if unknown or not topics:
        raise ApiError(
            400,
            "invalid_query",
            f"query 'topics' must name some of {', '.join(TOPICS)}; got {raw!r}",
        )
    return topics


@routes.get("/dashboard/events")
async def events(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    topics = parse_topics(request.query.get("topics", ""))
    session = request.get(SESSION)
    stopping = request.app[STOPPING]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    sent: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    sessions = AdminSessionRepo(ctx.db)
    with contextlib.suppress(ConnectionResetError):
        await response.write(b"retry: 2000\n\n")
        while not stopping.is_set():
            if (
                session is not None
                and await sessions.find_by_hash(session.id_hash, datetime.now(UTC)) is None
            ):
                await response.write(b"event: ended\ndata: {}\n\n")
                break
            for topic, value in (await versions(ctx, topics)).items():
                if sent.get(topic) != value:
                    sent[topic] = value
                    data = orjson.dumps({"topic": topic, "version": value})
                    await response.write(b"event: change\ndata: " + data + b"\n\n")
                    last_write = loop.time()
            if loop.time() - last_write >= KEEPALIVE_S:
                await response.write(b": keepalive\n\n")  # finds a browser that went away
                last_write = loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INTERVAL_S):
                    await stopping.wait()
    return response


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()


def mount(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)
    app.add_routes(routes)
