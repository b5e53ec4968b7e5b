"""Admin API routes for partner management and token sync (mounted on the CSMS admin API).

Why here and not in csms/admin: the operations are roaming's (handshake, rotation, sync);
the CSMS admin app only mounts the routes behind its bearer auth. Errors use the admin
API's body shape ``{"error": code, "message": ...}`` without importing csms.

Routes::

    GET  /api/partners                      list (no secrets)
    POST /api/partners/invite               {"country_code", "party_id"} -> TOKEN_A + versions URL
    POST /api/partners/register             {"versions_url", "token_a"}   (we initiate)
    GET  /api/partners/{key}                details + token counts + recent sync runs
    POST /api/partners/{key}/rotate         credentials PUT to them (new tokens both ways)
    POST /api/partners/{key}/unregister     DELETE to them, their tokens stop at once
    POST /api/tokens/sync                   {"partner"?: key, "incremental"?: bool, "wait"?: bool}
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from roaming import credentials
from roaming.context import RoamingContext
from roaming.partners import Partner
from roaming.sync import SyncAlreadyRunning, TokenSync


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _error(400, "malformed_json", f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "malformed_json", "request body must be a JSON object")
    return body


def admin_routes(ctx: RoamingContext, sync: TokenSync) -> web.RouteTableDef:
    routes = web.RouteTableDef()
    tasks: set[asyncio.Task[Any]] = set()

    async def _partner(request: web.Request) -> Partner | web.Response:
        key = request.match_info["key"].upper()
        partner = await ctx.store.partners.partner_by_key(key)
        if partner is None:
            return _error(404, "unknown_partner", f"no partner {key}")
        return partner

    async def _detail(partner: Partner) -> dict[str, Any]:
        out = partner.summary()
        out["tokens"] = await ctx.store.tokens.count_tokens(partner.id, removed=False)
        out["tokens_removed"] = await ctx.store.tokens.count_tokens(partner.id, removed=True)
        out["sync_runs"] = [r.to_json() for r in await ctx.store.token_syncs.sync_runs(partner.id)]
        return out

    @routes.get("/api/partners")
    async def list_partners(request: web.Request) -> web.Response:
        rows = []
        for p in await ctx.store.partners.list_partners():
            row = p.summary()
            runs = await ctx.store.token_syncs.sync_runs(p.id, limit=1)
            row["last_sync"] = runs[0].to_json() if runs else None
            rows.append(row)
        return _json(rows)

    @routes.post("/api/partners/invite")
    async def invite(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        cc, pid = body.get("country_code"), body.get("party_id")
        if not isinstance(cc, str) or not isinstance(pid, str):
            return _error(400, "invalid_request", "country_code and party_id are required strings")
        try:
            partner, token_a = await credentials.invite(ctx, cc, pid)
        except ValueError as exc:
            return _error(409 if "registered" in str(exc) else 400, "invalid_request", str(exc))
        return _json(
            {
                "key": partner.key,
                "token_a": token_a,
                "versions_url": ctx.settings.versions_url,
            },
            201,
        )

    @routes.post("/api/partners/register")
    async def register(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        url, token_a = body.get("versions_url"), body.get("token_a")
        if not isinstance(url, str) or not isinstance(token_a, str) or not token_a:
            return _error(400, "invalid_request", "versions_url and token_a are required strings")
        try:
            partner = await credentials.register_with(ctx, url, token_a)
        except credentials.RegistrationError as exc:
            return _error(502, "registration_failed", str(exc))
        return _json(partner.summary(), 201)

    @routes.get("/api/partners/{key}")
    async def show(request: web.Request) -> web.Response:
        partner = await _partner(request)
        if isinstance(partner, web.Response):
            return partner
        return _json(await _detail(partner))

    @routes.post("/api/partners/{key}/rotate")
    async def rotate(request: web.Request) -> web.Response:
        partner = await _partner(request)
        if isinstance(partner, web.Response):
            return partner
        try:
            updated = await credentials.rotate(ctx, partner)
        except credentials.RegistrationError as exc:
            return _error(502, "rotation_failed", str(exc))
        return _json(updated.summary())

    @routes.post("/api/partners/{key}/unregister")
    async def unregister(request: web.Request) -> web.Response:
        partner = await _partner(request)
        if isinstance(partner, web.Response):
            return partner
        remote_error = await credentials.unregister(ctx, partner)
        fresh = await ctx.store.partners.partner_by_key(partner.key)
        assert fresh is not None
        return _json({"partner": fresh.summary(), "remote_error": remote_error})

    @routes.post("/api/tokens/sync")
    async def sync_tokens(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        key = body.get("partner")
        incremental = bool(body.get("incremental", False))
        wait = bool(body.get("wait", False))
        if key is not None:
            partner = await ctx.store.partners.partner_by_key(str(key))
            if partner is None:
                return _error(404, "unknown_partner", f"no partner {key}")
            if not partner.registered:
                return _error(409, "not_registered", f"partner {partner.key} is not registered")
            partners = [partner]
        else:
            partners = await ctx.store.partners.registered_partners_with_tokens_sender()
        if not wait:
            started = []
            for p in partners:
                task = asyncio.get_running_loop().create_task(_quiet(sync, p, incremental))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                started.append(p.key)
            return _json({"started": started}, 202)
        results = []
        for p in partners:
            try:
                outcome = await sync.run(p, incremental=incremental)
                results.append(outcome.run.to_json())
            except SyncAlreadyRunning as exc:
                results.append({"partner": p.key, "status": "already_running", "error": str(exc)})
        return _json({"runs": results})

    return routes


async def _quiet(sync: TokenSync, partner: Partner, incremental: bool) -> None:
    try:
        await sync.run(partner, incremental=incremental)
    except SyncAlreadyRunning:
        pass
