"""Mounting the dashboard on the admin app (kept out of the package's ``__init__`` so
that importing :mod:`.ports` pulls in nothing else)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from . import auth, live, pages
from .render import TEMPLATES, environment

STATIC_DIR = Path(__file__).parent / "static"


def mount(app: web.Application) -> None:
    """Add the dashboard's routes, static files and stream shutdown to the admin app."""
    app[TEMPLATES] = environment()
    app.add_routes(auth.routes)
    app.add_routes(pages.routes)
    live.mount(app)
    app.router.add_static("/dashboard/static/", STATIC_DIR, name="dashboard-static")
