"""Browser logins for the dashboard: the login page, the session cookie, CSRF, logout.

Why a cookie session next to the bearer token: a browser cannot be made to send an
``Authorization`` header on page loads and Server-Sent Events. The operator proves they
hold the admin token once, on the login page; the server keeps the session (table
``admin_sessions``, see :mod:`csms.store.admin_sessions`) and the browser a random
cookie that is HttpOnly (scripts cannot read it), SameSite=Strict (other sites cannot
make the browser send it) and Secure (``admin.session_cookie_secure``).

Why a CSRF token on top of SameSite: defence in depth for every write made with the
cookie. Each session has its own token, put in the pages (``<meta name="csrf-token">``)
and sent back as the ``X-CSRF-Token`` header (fetch) or the ``csrf_token`` form field; a
non-GET request authenticated by the cookie without it is refused with 403.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from aiohttp import web

from csms import logs
from csms.admin.context import context_of
from csms.admin.http import ApiError
from csms.store.admin_sessions import AdminSession, AdminSessionRepo

from .render import SESSION, render

log = logs.get("csms.admin.dashboard")

SECURE_COOKIE = "__Host-csms_session"  # the prefix makes browsers insist on Secure, Path=/
PLAIN_COOKIE = "csms_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

routes = web.RouteTableDef()


def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE if context_of(request).config.admin.session_cookie_secure else PLAIN_COOKIE


def is_public(path: str) -> bool:
    """The login page and the stylesheet/script need no session."""
    return path == "/login" or path.startswith("/dashboard/static/")


def is_page(request: web.Request) -> bool:
    """A browser page load (redirected to the login page when not logged in)."""
    return request.method in SAFE_METHODS and (
        request.path == "/" or request.path.startswith("/dashboard")
    )


def to_login(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")


async def session_of(request: web.Request) -> AdminSession | None:
    """The live session the request's cookie names, or None."""
    cookie = request.cookies.get(cookie_name(request))
    if not cookie:
        return None
    session = await AdminSessionRepo(context_of(request).db).find(cookie, datetime.now(UTC))
    if session is not None:
        request[SESSION] = session
    return session


async def require_csrf(request: web.Request, session: AdminSession) -> None:
    """Refuse (403) a write made with the cookie that does not carry the session's token."""
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        log.warning(
            "dashboard_csrf_refused",
            session=session.short_id,
            method=request.method,
            path=request.path,
        )
        raise ApiError(
            403,
            "csrf_failed",
            f"a write made with the dashboard session needs its {CSRF_HEADER} header",
        )


def _safe_next(value: str | None) -> str:
    """Only a path on this server (no scheme, no host, no ``//``): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/dashboard/"
    parts = urlsplit(value)
    return "/dashboard/" if parts.scheme or parts.netloc else value


def _same_origin(request: web.Request) -> bool:
    """A login form posted from another site is refused (login CSRF)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_safe_next(request.query.get("next")), error=None)


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    form = await request.post()
    target = _safe_next(str(form.get("next") or ""))
    given = form.get("token")
    if not _same_origin(request):
        log.warning("dashboard_login_refused", reason="cross-origin", remote=request.remote)
        return render(
            request, "login.html", next=target, error="cross-site login refused", status=403
        )
    if not isinstance(given, str) or not hmac.compare_digest(
        given.encode(), ctx.config.admin.token.encode()
    ):
        log.warning("dashboard_login_refused", reason="wrong token", remote=request.remote)
        return render(request, "login.html", next=target, error="wrong admin token", status=401)
    repo = AdminSessionRepo(ctx.db)
    now = datetime.now(UTC)
    await repo.purge_expired(now)
    ttl = ctx.config.admin.session_ttl_s
    cookie, session = await repo.create(now, timedelta(seconds=ttl), request.remote)
    log.info("dashboard_login", session=session.short_id, remote=request.remote)
    response = web.Response(status=303, headers={"Location": target})
    response.set_cookie(
        cookie_name(request),
        cookie,
        max_age=int(ttl),
        path="/",
        secure=ctx.config.admin.session_cookie_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """Ends the session server-side (the cookie is dead even if a copy survives)."""
    session = request.get(SESSION)
    if session is not None:
        await AdminSessionRepo(context_of(request).db).delete(session.id_hash)
        log.info("dashboard_logout", session=session.short_id)
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(cookie_name(request), path="/")
    return response
