"""Jinja2 rendering for the dashboard: one environment per admin app, autoescaped.

Why the environment lives on the app (``TEMPLATES``) and not in a module global: the
admin app is built by the composition root, and everything it uses hangs off it.
Templates are package data (``csms/admin/dashboard/templates``), so an installed wheel
serves the same pages as a checkout.
"""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from csms.store.admin_sessions import AdminSession

# The dashboard login a request came with (set by :func:`.auth.session_of`): pages show
# its CSRF token and the logout button.
SESSION: web.RequestKey[AdminSession] = web.RequestKey("dashboard_session", AdminSession)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("dashboard_templates", jinja2.Environment)

NAV: tuple[tuple[str, str], ...] = (
    ("/dashboard/", "Overview"),
    ("/dashboard/chargers", "Chargers"),
    ("/dashboard/transactions", "Transactions"),
    ("/dashboard/authorizations", "Authorizations"),
    ("/dashboard/roaming", "Roaming"),
    ("/dashboard/locations", "Locations"),
)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("csms.admin.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(
    request: web.Request, template: str, *, status: int = 200, **values: Any
) -> web.Response:
    """The page ``template`` with the values every page uses (nav, CSRF token)."""
    session = request.get(SESSION)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            nav=NAV,
            path=request.path,
            csrf_token="" if session is None else session.csrf_token,
            logged_in=session is not None,
            **values,
        )
    )
    response = web.Response(text=page, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return response
