"""The dashboard's pages: fetch with the store's repositories, shape with
:mod:`.views`, render with Jinja2.

Every page first takes the versions of the topics it shows (:func:`.live.versions`)
and only then reads its data, so the live stream re-fetches the page if anything moved
in between (an update is never lost, at worst fetched twice).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from csms import datetimes
from csms.admin.context import AdminContext, context_of
from csms.store import authorizations as decisions_log
from csms.store import dashboard as queries
from csms.store.chargers import ChargerRepo, ConnectorRepo
from csms.store.transactions import TransactionRepo

from . import views
from .live import versions
from .render import render

routes = web.RouteTableDef()

RECENT_TRANSACTIONS = 50
DECISION_ROWS = 100
DECISION_SOURCES = ("local", "cache", "remote", "fallback", "reused", "command")
DECISION_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")


async def _page(
    request: web.Request, template: str, topics: tuple[str, ...], **values: Any
) -> web.Response:
    return render(
        request,
        template,
        topics=" ".join(topics),
        versions=await versions(context_of(request), topics),
        roaming_on=context_of(request).roaming_view is not None,
        **values,
    )


@routes.get("/")
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")


@routes.get("/dashboard")
async def dashboard_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")


@routes.get("/dashboard/")
async def overview(request: web.Request) -> web.Response:
    ctx = context_of(request)
    topics = ("chargers", "transactions", "authorizations", "roaming")
    seen = await versions(ctx, topics)
    await ctx.decisions.flush()
    since = datetimes.millis(datetime.now(UTC) - timedelta(hours=1))
    summary = views.summarize_decisions(await queries.decisions_since(ctx.db, since))
    backlog = None
    if ctx.roaming_view is not None:
        backlog = views.backlog(await ctx.roaming_view.outbox_counts())
    return render(
        request,
        "overview.html",
        topics=" ".join(topics),
        versions=seen,
        roaming_on=ctx.roaming_view is not None,
        online=len(await ctx.placed()),
        nodes=[] if ctx.cluster is None or not ctx.cluster.multi else await ctx.cluster.nodes(),
        registered=await queries.charger_count(ctx.db),
        active=await queries.active_transaction_count(ctx.db),
        summary=summary,
        error_rate=views.percent(summary.emsp_error_rate),
        backlog=backlog,
    )


async def _charger_rows(ctx: AdminContext, charger_id: str | None = None) -> list[dict[str, Any]]:
    connectors: dict[str, list[dict[str, Any]]] = {}
    for c in await ConnectorRepo(ctx.db).list(charger_id):
        connectors.setdefault(c.charger_id, []).append(
            {
                "connector_id": c.connector_id,
                "status": c.status,
                "error_code": c.error_code,
                "status_timestamp": c.status_timestamp,
                "received_at": c.received_at,
            }
        )
    repo = ChargerRepo(ctx.db)
    if charger_id is None:
        chargers = await repo.list()
    else:
        one = await repo.get(charger_id)
        chargers = [] if one is None else [one]
    placed = await ctx.placed()
    return [
        views.charger_row(
            c,
            c.id in placed or ctx.gateway.is_connected(c.id),
            connectors.get(c.id, []),
            placed.get(c.id) or None,
        )
        for c in chargers
    ]


@routes.get("/dashboard/chargers")
async def chargers(request: web.Request) -> web.Response:
    ctx = context_of(request)
    seen = await versions(ctx, ("chargers",))
    rows = await _charger_rows(ctx)
    return render(
        request,
        "chargers.html",
        topics="chargers",
        versions=seen,
        roaming_on=ctx.roaming_view is not None,
        chargers=rows,
    )


@routes.get("/dashboard/chargers/{charger_id}")
async def charger(request: web.Request) -> web.Response:
    ctx = context_of(request)
    charger_id = request.match_info["charger_id"]
    topics = ("chargers", "transactions")
    seen = await versions(ctx, topics)
    rows = await _charger_rows(ctx, charger_id)
    if not rows:
        return render(
            request,
            "missing.html",
            status=404,
            topics="",
            versions={},
            roaming_on=ctx.roaming_view is not None,
            message=f"No charger {charger_id!r} in the registry.",
        )
    running = await TransactionRepo(ctx.db).running_at(charger_id)
    readings = await queries.latest_energy_readings(ctx.db, [t.id for t in running])
    return render(
        request,
        "charger.html",
        topics=" ".join(topics),
        versions=seen,
        roaming_on=ctx.roaming_view is not None,
        charger=rows[0],
        running=[views.transaction_row(t, readings.get(t.id), None) for t in running],
        actions=views.ACTION_FORMS,
    )


@routes.get("/dashboard/transactions")
async def transactions(request: web.Request) -> web.Response:
    ctx = context_of(request)
    topics = ("transactions", "roaming")
    seen = await versions(ctx, topics)
    repo = TransactionRepo(ctx.db)
    active = await repo.list(1000, None, True)
    recent = await repo.list(RECENT_TRANSACTIONS, None, False)
    readings = await queries.latest_energy_readings(ctx.db, [t.id for t in active])
    deliveries = {}
    if ctx.roaming_view is not None:
        deliveries = await ctx.roaming_view.deliveries([t.id for t in (*active, *recent)])
    return render(
        request,
        "transactions.html",
        topics=" ".join(topics),
        versions=seen,
        roaming_on=ctx.roaming_view is not None,
        active=[views.transaction_row(t, readings.get(t.id), deliveries.get(t.id)) for t in active],
        recent=[views.transaction_row(t, None, deliveries.get(t.id)) for t in recent],
    )


@routes.get("/dashboard/authorizations")
async def authorizations(request: web.Request) -> web.Response:
    ctx = context_of(request)
    filters = {
        name: (request.query.get(name) or "").strip()
        for name in ("source", "status", "charger_id", "uid")
    }
    seen = await versions(ctx, ("authorizations",))
    await ctx.decisions.flush()
    rows = await decisions_log.latest(
        ctx.db, limit=DECISION_ROWS, **{k: v or None for k, v in filters.items()}
    )
    return render(
        request,
        "authorizations.html",
        topics="authorizations",
        versions=seen,
        roaming_on=ctx.roaming_view is not None,
        filters=filters,
        sources=DECISION_SOURCES,
        statuses=DECISION_STATUSES,
        decisions=[views.decision_row(r) for r in rows],
    )


@routes.get("/dashboard/roaming")
async def roaming(request: web.Request) -> web.Response:
    ctx = context_of(request)
    view = ctx.roaming_view
    if view is None:
        return await _page(request, "roaming.html", ("roaming",))
    seen = await versions(ctx, ("roaming",))
    open_items = await view.outbox_open()
    return render(
        request,
        "roaming.html",
        topics="roaming",
        versions=seen,
        roaming_on=True,
        partners=await view.partners(),
        counts=await view.outbox_counts(),
        open_items=open_items,
        waiting_cdrs=[m for m in open_items if m.module == "cdrs"],
    )


@routes.get("/dashboard/locations")
async def locations(request: web.Request) -> web.Response:
    ctx = context_of(request)
    view = ctx.roaming_view
    topics = ("chargers", "roaming")
    if view is None:
        return await _page(request, "locations.html", topics)
    seen = await versions(ctx, topics)
    return render(
        request,
        "locations.html",
        topics=" ".join(topics),
        versions=seen,
        roaming_on=True,
        evses=await view.evses(),
        unmapped=await view.unmapped(),
    )
