"""The sandbox's control API: flip behaviour switches and read its tables over HTTP.

Why on its own listener: the "refuse" outage switch closes the OCPI listener, and a
control endpoint on that same port would lock itself out. Plain JSON, no OCPI envelope,
no auth: it binds to 127.0.0.1 by default and is a test instrument, not a product API.

Errors: bad input answers HTTP 400 ``{"error": "..."}``; nothing is half-applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol

from aiohttp import web

from simulator.emsp import own_tokens, registration
from simulator.emsp.behaviour import DownMode
from simulator.emsp.client import OcpiReply
from simulator.emsp.peer_calls import PeerCalls
from simulator.emsp.registration import RegistrationError
from simulator.emsp.state import SandboxState


class Outage(Protocol):
    """The outage switch: it closes and reopens the OCPI listener, which the state cannot."""

    async def set_down(self, mode: DownMode | str) -> None: ...


STATE: web.AppKey[SandboxState] = web.AppKey("control_state", SandboxState)
CALLS: web.AppKey[PeerCalls] = web.AppKey("control_calls", PeerCalls)
OUTAGE: web.AppKey[Outage] = web.AppKey("control_outage")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = web.RouteTableDef()


class BadControl(Exception):
    """Input the control API cannot act on; answered HTTP 400 with the message."""


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (BadControl, ValueError, KeyError, TypeError) as exc:
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
    except RegistrationError as exc:
        return web.json_response({"error": exc.message, "status_code": exc.status_code}, status=502)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise BadControl("body must be JSON") from None
    if not isinstance(body, dict):
        raise BadControl("body must be a JSON object")
    return body


def _reply_json(r: OcpiReply) -> dict[str, Any]:
    return {"http_status": r.http_status, "body": r.body}


@routes.get("/control/state")
async def summary(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].summary())


@routes.post("/control/behaviour")
async def behaviour(request: web.Request) -> web.Response:
    state, body = request.app[STATE], await _body(request)
    if "mode" not in body:
        raise BadControl("mode is required")
    state.set_authorize_behaviour(str(body["mode"]), int(body.get("delay_ms", 0)), body.get("uid"))
    return web.json_response(state.behaviour.describe())


@routes.post("/control/release")
async def release(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.behaviour.release()
    return web.json_response(state.behaviour.describe())


@routes.post("/control/down")
async def down(request: web.Request) -> web.Response:
    body = await _body(request)
    await request.app[OUTAGE].set_down(str(body.get("mode", "up")))
    return web.json_response(request.app[STATE].behaviour.describe())


@routes.post("/control/fail-page")
async def fail_page(request: web.Request) -> web.Response:
    behaviour, body = request.app[STATE].behaviour, await _body(request)
    page, times = body.get("page"), body.get("times")
    behaviour.fail_page(None if page is None else int(page), None if times is None else int(times))
    return web.json_response(behaviour.describe())


@routes.post("/control/tokens")
async def add_token(request: web.Request) -> web.Response:
    body = await _body(request)
    if not body.get("uid"):
        raise BadControl("uid is required")
    tok = own_tokens.add_token(
        request.app[STATE],
        str(body["uid"]),
        type=str(body.get("type", "RFID")),
        whitelist=str(body.get("whitelist", "ALLOWED")),
        valid=bool(body.get("valid", True)),
        allowed=body.get("allowed"),
    )
    return web.json_response(tok)


@routes.post("/control/tokens/{uid}/allowed")
async def set_allowed(request: web.Request) -> web.Response:
    state, body = request.app[STATE], await _body(request)
    uid, type_ = request.match_info["uid"], str(body.get("type", "RFID"))
    own_tokens.set_allowed(state, uid, str(body["allowed"]), type_)
    return web.json_response({"ok": True})


@routes.post("/control/tokens/{uid}/block")
async def block(request: web.Request) -> web.Response:
    body = await _body(request)
    uid, type_ = request.match_info["uid"], str(body.get("type", "RFID"))
    return web.json_response(_reply_json(await request.app[CALLS].block_token(uid, type_)))


@routes.post("/control/push-tokens")
async def push_tokens(request: web.Request) -> web.Response:
    replies = await request.app[CALLS].push_tokens()
    ok = sum(1 for r in replies if r.ok)
    return web.json_response({"pushed": len(replies), "ok": ok})


@routes.post("/control/token-a")
async def token_a(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {"token_a": state.issue_token_a(), "versions_url": state.party.versions_url}
    )


@routes.post("/control/register")
async def register(request: web.Request) -> web.Response:
    body = await _body(request)
    if not body.get("versions_url") or not body.get("token_a"):
        raise BadControl("versions_url and token_a are required")
    peer = await registration.register_with(
        request.app[STATE],
        request.app[CALLS].client,
        str(body["versions_url"]),
        str(body["token_a"]),
    )
    return web.json_response({"registered": True, "roles": peer.roles})


@routes.post("/control/commands/{command}")
async def command(request: web.Request) -> web.Response:
    calls, body = request.app[CALLS], await _body(request)
    name = request.match_info["command"].upper()
    if name == "START_SESSION":
        sent = await calls.start_session(
            str(body["location_id"]),
            body.get("evse_uid"),
            body.get("uid"),
            body.get("authorization_reference"),
            connector_id=body.get("connector_id"),
            token_type=str(body.get("type", "RFID")),
        )
    elif name == "STOP_SESSION":
        sent = await calls.stop_session(str(body["session_id"]))
    elif name == "UNLOCK_CONNECTOR":
        sent = await calls.unlock_connector(
            str(body["location_id"]), str(body["evse_uid"]), str(body["connector_id"])
        )
    elif name == "CANCEL_RESERVATION":
        sent = await calls.cancel_reservation(str(body["reservation_id"]))
    else:
        raise BadControl(f"unsupported command {name}")
    return web.json_response(
        {"ref": sent.ref, "response_url": sent.response_url, **_reply_json(sent.reply)}
    )


def _table(state: SandboxState, name: str, limit: int) -> Any:
    """The rows of one table as JSON, credentials left out of the recorded requests."""
    if name == "requests":
        rows = [
            {**asdict(r), "headers": {k: v for k, v in r.headers.items() if k != "Authorization"}}
            for r in state.requests[-limit:]
        ]
        for row in rows:
            row.pop("authorization", None)
        return rows
    if name == "authorizations":
        return [asdict(a) for a in state.authorizations[-limit:]]
    if name == "tokens":
        return [{**r.token, "_allowed": r.allowed} for r in state.tokens.records()[:limit]]
    if name == "command-results":
        return state.command_results
    received = {
        "sessions": state.sessions,
        "cdrs": state.cdrs,
        "locations": state.locations,
        "tariffs": state.tariffs,
    }.get(name)
    if received is None:
        raise web.HTTPNotFound(text=f"no table {name}")
    return received.values()


@routes.get("/control/{name}")
async def table(request: web.Request) -> web.Response:
    limit = int(request.query.get("limit", "100"))
    return web.json_response(_table(request.app[STATE], request.match_info["name"], limit))


def build_control_app(state: SandboxState, calls: PeerCalls, outage: Outage) -> web.Application:
    """The control API over ``state``; ``calls`` reach the peer, ``outage`` the listener."""
    app = web.Application(middlewares=[errors])
    app[STATE] = state
    app[CALLS] = calls
    app[OUTAGE] = outage
    app.add_routes(routes)
    return app
