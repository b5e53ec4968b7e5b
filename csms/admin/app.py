"""The admin aiohttp application: bearer auth, JSON errors, and the route tables.

Why the auth is a middleware with a constant-time compare: every route but
``/api/health`` (a liveness probe for load balancers, which carry no token) needs the
same check, and comparing with ``hmac.compare_digest`` does not leak the token's
prefix through response timing.

The web dashboard (:mod:`csms.admin.dashboard`) is mounted on the same app: its pages and
the API accept a browser session cookie besides the bearer token (see :func:`_auth`).

Roaming's routes (partners, token sync, locations, outbox) join through ``extra_routes``,
handed over by the composition root (:mod:`csms.system`); they get the same auth and
error rendering. Handlers reach what they may use through
:class:`csms.admin.context.AdminContext` (``request.app[ADMIN]``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from csms import logs
from csms.admin import (
    audit,
    authorizations,
    calls,
    chargers,
    nodes,
    openapi,
    security,
    tokens,
    transactions,
)
from csms.admin.context import ACTOR, ADMIN, AdminContext
from csms.admin.dashboard import auth as dashboard
from csms.admin.dashboard.mounting import mount as mount_dashboard
from csms.admin.http import ApiError, json_response

# Probes carry no token; /metrics checks its own (csms/observability/routes.py).
PUBLIC_PATHS = frozenset({"/api/health", "/api/ready", "/metrics"})

log = logs.get("csms.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def create_admin_app(
    context: AdminContext, extra_routes: Sequence[web.AbstractRouteDef] = ()
) -> web.Application:
    app = web.Application(
        middlewares=[
            _errors,
            _auth(context.config.admin.token),
            audit.audit_middleware(context.config.admin.token),
        ],
        client_max_size=1024 * 1024,
    )
    app[ADMIN] = context
    app.router.add_get("/api/health", health)
    app.add_routes(authorizations.routes)
    app.add_routes(chargers.routes)
    app.add_routes(tokens.routes)
    app.add_routes(transactions.routes)
    app.add_routes(calls.routes)
    app.add_routes(security.routes)
    app.add_routes(audit.routes)
    app.add_routes(nodes.routes)
    app.add_routes(openapi.routes)
    app.add_routes(list(extra_routes))
    mount_dashboard(app)
    return app


async def start_admin_api(
    context: AdminContext, extra_routes: Sequence[web.AbstractRouteDef] = ()
) -> tuple[web.AppRunner, int]:
    """Serve the admin API on ``admin.host``/``admin.port``; returns the runner and bound port."""
    cfg = context.config.admin
    runner = web.AppRunner(create_admin_app(context, extra_routes), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


def _auth(token: str) -> Any:
    """Bearer token (scripts, the CLI) or a dashboard session cookie (browsers).

    Either way ``request[ACTOR]`` (:data:`csms.admin.context.ACTOR`) names who is
    acting, for the audit trail: ``token`` or ``session:<short id>``. A request with an
    ``Authorization`` header is judged by it alone; one without is judged by its cookie
    (:func:`_cookie_session`); a page load with neither is sent to the login page.
    """
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or dashboard.is_public(request.path):
            return await handler(request)
        given = request.headers.get("Authorization")
        if given is None and await _cookie_session(request):
            return await handler(request)
        if not hmac.compare_digest((given or "").encode(), expected):
            if given is None and dashboard.is_page(request):
                raise dashboard.to_login(request)
            raise ApiError(
                401,
                "unauthorized",
                "missing or wrong bearer token (Authorization: Bearer <admin.token>)",
            )
        request[ACTOR] = "token"
        return await handler(request)

    return auth


async def _cookie_session(request: web.Request) -> bool:
    """True when the dashboard cookie names a live session; a write made with it must
    also carry the session's CSRF token (403 otherwise)."""
    session = await dashboard.session_of(request)
    if session is None:
        return False
    await dashboard.require_csrf(request, session)
    request[ACTOR] = f"session:{session.short_id}"
    return True


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        resp = json_response(exc.body(), status=exc.status)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="csms-admin"'
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status, "http_error"
        )
        resp = json_response({"error": code, "message": exc.reason}, status=exc.status)
        if "Allow" in exc.headers:  # a 405 names the methods the route has (RFC 9110)
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("admin_request_failed", method=request.method, path=request.path)
        return json_response(
            {"error": "internal", "message": "internal error; see the server log"}, status=500
        )
