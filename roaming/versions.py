"""Versions module: the versions list and the 2.2.1 version details.

Every module passed to the app factory is listed with its role and public URL, built
from ``public_base_url`` (not from the request's Host: behind a proxy they differ).
"""

from __future__ import annotations

from aiohttp import web

from roaming.context import MODULES_KEY, RoamingContext, ctx_of
from roaming.envelope import ok
from roaming.models import VERSION, Endpoint, InterfaceRole, ModuleID, VersionDetails
from roaming.settings import CREDENTIALS_PATH, DETAILS_PATH, VERSIONS_PATH


def version_details(request: web.Request) -> VersionDetails:
    ctx = ctx_of(request)
    s = ctx.settings
    endpoints = [
        Endpoint(ModuleID.CREDENTIALS.value, InterfaceRole.SENDER, s.url(CREDENTIALS_PATH))
    ]
    for m in request.app[MODULES_KEY]:
        endpoints.append(Endpoint(str(m.identifier), m.role, s.url(m.path)))
    return VersionDetails(VERSION, tuple(endpoints))


async def get_versions(request: web.Request) -> web.Response:
    s = ctx_of(request).settings
    return ok([{"version": VERSION, "url": s.url(DETAILS_PATH)}])


async def get_details(request: web.Request) -> web.Response:
    return ok(version_details(request).to_json())


def add_routes(app: web.Application, ctx: RoamingContext) -> None:
    app.router.add_get(VERSIONS_PATH, get_versions)
    app.router.add_get(DETAILS_PATH, get_details)
