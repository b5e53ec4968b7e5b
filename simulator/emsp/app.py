"""The sandbox's OCPI server (aiohttp): the middleware, versions and credentials, and the
routes of the tokens Sender (:mod:`~simulator.emsp.tokens_sender`) and the Receivers
(:mod:`~simulator.emsp.receivers`).

Auth (OCPI 2.2.1): ``Token <base64>`` or ``Token <raw>``; TOKEN_A only for versions and
credentials, anything else 401. Every request is recorded, even a refused one, and
every response echoes X-Request-ID/X-Correlation-ID.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from simulator.emsp import receivers, registration
from simulator.emsp.behaviour import DownMode
from simulator.emsp.client import OcpiClient
from simulator.emsp.handling import CLIENT, INBOUND, STATE, Inbound, OcpiError, state_of
from simulator.emsp.state import SandboxState
from simulator.emsp.tables import RecordedRequest
from simulator.emsp.tokens_sender import authorize, list_tokens
from simulator.emsp.wire import (
    CLIENT_ERROR,
    CREDENTIALS_PATH_SUFFIX,
    DETAILS_PATH,
    INVALID_PARAMS,
    MODULE_BASE,
    SERVER_ERROR,
    VERSION,
    VERSIONS_PATH,
    fmt_time,
    reply,
)

log = structlog.get_logger("simulator.emsp")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CREDENTIALS_PATH = CREDENTIALS_PATH_SUFFIX
CONFIG_PATHS = (VERSIONS_PATH, DETAILS_PATH, CREDENTIALS_PATH)


@web.middleware
async def ocpi_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = state_of(request)
    if state.behaviour.down == DownMode.HTTP_503:
        return web.Response(status=503, text="eMSP sandbox is down (simulated)")
    raw = await request.read()
    body: Any = None
    bad_json = False
    if raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
            bad_json = True
    auth = request.headers.get("Authorization")
    token, kind = state.authenticate(auth)
    state.record(
        RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            authorization=auth,
            token=token,
            body=body,
            received_at=time.time(),
        )
    )
    request[INBOUND] = Inbound(body=body, token=token, kind=kind)
    config_path = request.path in CONFIG_PATHS
    try:
        if kind is None:
            raise OcpiError(CLIENT_ERROR, "missing or unknown credentials token", 401)
        if kind == "token_a" and not config_path:
            raise OcpiError(CLIENT_ERROR, "TOKEN_A is only valid for versions/credentials", 401)
        if bad_json:
            raise OcpiError(INVALID_PARAMS, "request body is not valid JSON", 400)
        resp = await handler(request)
    except OcpiError as exc:
        if exc.status_code == INVALID_PARAMS:
            state.violation(request.method, request.path, exc.message)
        resp = reply(None, exc.status_code, exc.message, http_status=exc.http_status)
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("emsp_handler_failed", path=request.path)
        resp = reply(None, SERVER_ERROR, f"sandbox error: {type(exc).__name__}", http_status=500)
    _echo_headers(state, request, resp, functional=not config_path)
    return resp


def _echo_headers(
    state: SandboxState, request: web.Request, resp: web.StreamResponse, functional: bool
) -> None:
    if resp.prepared:
        return
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = request.headers.get(name)
        if value is not None:
            resp.headers[name] = value
    if functional:
        resp.headers["OCPI-from-country-code"] = state.party.country_code
        resp.headers["OCPI-from-party-id"] = state.party.party_id
        for src, dst in (
            ("OCPI-from-country-code", "OCPI-to-country-code"),
            ("OCPI-from-party-id", "OCPI-to-party-id"),
        ):
            value = request.headers.get(src)
            if value is not None:
                resp.headers[dst] = value


async def get_versions(request: web.Request) -> web.Response:
    return reply([{"version": VERSION, "url": state_of(request).party.base_url + DETAILS_PATH}])


async def get_details(request: web.Request) -> web.Response:
    return reply({"version": VERSION, "endpoints": state_of(request).party.endpoints()})


async def credentials(request: web.Request) -> web.Response:
    inbound = request[INBOUND]
    return await registration.handle_credentials(
        state_of(request),
        request.app[CLIENT],
        request.method,
        inbound.kind,
        inbound.token,
        inbound.body,
    )


def build_app(state: SandboxState, client: OcpiClient) -> web.Application:
    """The OCPI app over ``state``; ``client`` is for the callbacks of a registration.

    The tokens Sender handlers are looked up here, by this module's names, so a test can
    stand in for one of them (hold a page, say) before the sandbox starts.
    """
    app = web.Application(middlewares=[ocpi_middleware], client_max_size=16 * 1024 * 1024)
    app[STATE] = state
    app[CLIENT] = client
    r = app.router
    r.add_get(VERSIONS_PATH, get_versions)
    r.add_get(DETAILS_PATH, get_details)
    for method in ("GET", "POST", "PUT", "DELETE"):
        r.add_route(method, CREDENTIALS_PATH, credentials)
    r.add_get(f"{MODULE_BASE}/tokens", list_tokens)
    r.add_get(f"{MODULE_BASE}/tokens/", list_tokens)
    r.add_post(f"{MODULE_BASE}/tokens/{{uid}}/authorize", authorize)
    receivers.add_routes(r)
    return app


__all__ = ["MODULE_BASE", "OcpiError", "authorize", "build_app", "fmt_time", "list_tokens"]
