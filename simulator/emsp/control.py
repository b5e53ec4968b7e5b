"""The sandbox's control API: flip behaviour switches and read its tables over HTTP.

Why on its own listener: the "refuse" outage switch closes the OCPI listener, and a
control endpoint on that same port would lock itself out. Plain JSON, no OCPI envelope,
no auth: it binds to 127.0.0.1 by default and is a test instrument, not a product API.

Errors: bad input answers HTTP 400 ``{"error": "..."}``; nothing is half-applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.emsp.registration import RegistrationError

if TYPE_CHECKING:
    from simulator.emsp.sandbox import EmspSandbox

CTRL: web.AppKey[EmspSandbox] = web.AppKey("sandbox")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadControl(Exception):
    pass


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


def _reply_json(r: Any) -> dict[str, Any]:
    return {"http_status": r.http_status, "body": r.body}


async def state(request: web.Request) -> web.Response:
    return web.json_response(request.app[CTRL].summary())


async def behaviour(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    if "mode" not in body:
        raise BadControl("mode is required")
    sb.set_authorize_behaviour(str(body["mode"]), int(body.get("delay_ms", 0)), body.get("uid"))
    return web.json_response(sb.behaviour.describe())


async def release(request: web.Request) -> web.Response:
    sb = request.app[CTRL]
    sb.release_hung()
    return web.json_response(sb.behaviour.describe())


async def down(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    await sb.set_down(str(body.get("mode", "up")))
    return web.json_response(sb.behaviour.describe())


async def fail_page(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    page = body.get("page")
    times = body.get("times")
    sb.fail_tokens_page(None if page is None else int(page), None if times is None else int(times))
    return web.json_response(sb.behaviour.describe())


async def add_token(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    if not body.get("uid"):
        raise BadControl("uid is required")
    tok = sb.add_token(
        str(body["uid"]),
        type=str(body.get("type", "RFID")),
        whitelist=str(body.get("whitelist", "ALLOWED")),
        valid=bool(body.get("valid", True)),
        allowed=body.get("allowed"),
    )
    return web.json_response(tok)


async def set_allowed(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    sb.set_allowed(request.match_info["uid"], str(body["allowed"]), str(body.get("type", "RFID")))
    return web.json_response({"ok": True})


async def push_tokens(request: web.Request) -> web.Response:
    replies = await request.app[CTRL].push_tokens()
    ok = sum(1 for r in replies if r.ok)
    return web.json_response({"pushed": len(replies), "ok": ok})


async def block(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    r = await sb.block_token(request.match_info["uid"], str(body.get("type", "RFID")))
    return web.json_response(_reply_json(r))


async def token_a(request: web.Request) -> web.Response:
    sb = request.app[CTRL]
    return web.json_response({"token_a": sb.issue_token_a(), "versions_url": sb.versions_url})


async def register(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    if not body.get("versions_url") or not body.get("token_a"):
        raise BadControl("versions_url and token_a are required")
    peer = await sb.register_with(str(body["versions_url"]), str(body["token_a"]))
    return web.json_response({"registered": True, "roles": peer.roles})


async def command(request: web.Request) -> web.Response:
    sb, body = request.app[CTRL], await _body(request)
    name = request.match_info["command"].upper()
    if name == "START_SESSION":
        sent = await sb.start_session(
            str(body["location_id"]),
            body.get("evse_uid"),
            body.get("uid"),
            body.get("authorization_reference"),
            connector_id=body.get("connector_id"),
            token_type=str(body.get("type", "RFID")),
        )
    elif name == "STOP_SESSION":
        sent = await sb.stop_session(str(body["session_id"]))
    elif name == "UNLOCK_CONNECTOR":
        sent = await sb.unlock_connector(
            str(body["location_id"]), str(body["evse_uid"]), str(body["connector_id"])
        )
    elif name == "CANCEL_RESERVATION":
        sent = await sb.cancel_reservation(str(body["reservation_id"]))
    else:
        raise BadControl(f"unsupported command {name}")
    return web.json_response(
        {"ref": sent.ref, "response_url": sent.response_url, **_reply_json(sent.reply)}
    )


async def table(request: web.Request) -> web.Response:
    sb = request.app[CTRL]
    name = request.match_info["name"]
    limit = int(request.query.get("limit", "100"))
    data: Any
    if name == "requests":
        data = [
            {**asdict(r), "headers": {k: v for k, v in r.headers.items() if k != "Authorization"}}
            for r in sb.requests[-limit:]
        ]
        for row in data:
            row.pop("authorization", None)
    elif name == "sessions":
        data = sb.sessions.values()
    elif name == "cdrs":
        data = sb.cdrs.values()
    elif name == "locations":
        data = sb.locations.values()
    elif name == "tariffs":
        data = sb.tariffs.values()
    elif name == "command-results":
        data = sb.command_results
    elif name == "authorizations":
        data = [asdict(a) for a in sb.authorizations[-limit:]]
    elif name == "tokens":
        data = [{**r.token, "_allowed": r.allowed} for r in sb.tokens.records()[:limit]]
    else:
        raise web.HTTPNotFound(text=f"no table {name}")
    return web.json_response(data)


def build_control_app(sb: EmspSandbox) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[CTRL] = sb
    r = app.router
    r.add_get("/control/state", state)
    r.add_post("/control/behaviour", behaviour)
    r.add_post("/control/release", release)
    r.add_post("/control/down", down)
    r.add_post("/control/fail-page", fail_page)
    r.add_post("/control/tokens", add_token)
    r.add_post("/control/tokens/{uid}/allowed", set_allowed)
    r.add_post("/control/tokens/{uid}/block", block)
    r.add_post("/control/push-tokens", push_tokens)
    r.add_post("/control/token-a", token_a)
    r.add_post("/control/register", register)
    r.add_post("/control/commands/{command}", command)
    r.add_get("/control/{name}", table)
    return app
