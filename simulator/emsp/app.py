"""The sandbox's OCPI server (aiohttp): versions, credentials, tokens SENDER, receivers.

Why it is strict where a real eMSP might be lenient: it is the reference peer for the
CPO's end-to-end tests, so a missing required field, a ``+00:00`` timestamp or a PATCH
without ``last_updated`` is answered 2001 *and* recorded in ``sandbox.violations``;
tests can assert that a whole scenario produced none.

Auth (digest 1.2): ``Token <base64>`` or ``Token <raw>``; TOKEN_A only for versions and
credentials, anything else 401. Every response echoes X-Request-ID/X-Correlation-ID.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web

from simulator.emsp import registration
from simulator.emsp.behaviour import AuthorizeMode, DownMode
from simulator.emsp.state import RecordedRequest
from simulator.emsp.wire import (
    CLIENT_ERROR,
    CREDENTIALS_PATH_SUFFIX,
    INVALID_PARAMS,
    OK,
    SERVER_ERROR,
    UNKNOWN_TOKEN,
    VERSION,
    dumps,
    envelope,
    fmt_time,
    parse_time,
    reply,
)

if TYPE_CHECKING:
    from simulator.emsp.sandbox import EmspSandbox

log = structlog.get_logger("simulator.emsp")

SANDBOX: web.AppKey[EmspSandbox] = web.AppKey("sandbox")
# Typed request-storage keys where aiohttp has them (3.13+), plain strings before.
_RequestKey: Any = getattr(web, "RequestKey", None)
BODY: Any = _RequestKey("body", object) if _RequestKey else "emsp_body"
TOKEN_KIND: Any = _RequestKey("token_kind", object) if _RequestKey else "emsp_token_kind"
TOKEN: Any = _RequestKey("token", object) if _RequestKey else "emsp_token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

VERSIONS_PATH = "/ocpi/versions"
DETAILS_PATH = f"/ocpi/{VERSION}"
CREDENTIALS_PATH = CREDENTIALS_PATH_SUFFIX
MODULE_BASE = f"/ocpi/emsp/{VERSION}"

REQUIRED: dict[str, tuple[str, ...]] = {
    "session": (
        "country_code", "party_id", "id", "start_date_time", "kwh", "cdr_token", "auth_method",
        "location_id", "evse_uid", "connector_id", "currency", "status", "last_updated",
    ),
    "cdr": (
        "country_code", "party_id", "id", "start_date_time", "end_date_time", "cdr_token",
        "auth_method", "cdr_location", "currency", "charging_periods", "total_cost",
        "total_energy", "total_time", "last_updated",
    ),
    "location": (
        "country_code", "party_id", "id", "publish", "address", "city", "country",
        "coordinates", "time_zone", "last_updated",
    ),
    "evse": ("uid", "status", "connectors", "last_updated"),
    "connector": (
        "id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated",
    ),
    "tariff": ("country_code", "party_id", "id", "currency", "elements", "last_updated"),
}  # fmt: skip
TIME_FIELDS = ("last_updated", "start_date_time", "end_date_time")


class OcpiError(Exception):
    """Answer with an envelope carrying ``status_code`` and HTTP ``http_status``."""

    def __init__(self, status_code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status


def _sb(request: web.Request) -> EmspSandbox:
    return request.app[SANDBOX]


# --------------------------------------------------------------------------- middleware


@web.middleware
async def ocpi_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sb = _sb(request)
    if sb.behaviour.down == DownMode.HTTP_503:
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
    token, kind = sb.authenticate(auth)
    sb.record(
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
    request[BODY] = body
    request[TOKEN_KIND] = kind
    request[TOKEN] = token
    config_path = request.path in (VERSIONS_PATH, DETAILS_PATH, CREDENTIALS_PATH)
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
            sb.violation(request, exc.message)
        resp = reply(None, exc.status_code, exc.message, http_status=exc.http_status)
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("emsp_handler_failed", path=request.path)
        resp = reply(None, SERVER_ERROR, f"sandbox error: {type(exc).__name__}", http_status=500)
    _echo_headers(sb, request, resp, functional=not config_path)
    return resp


def _echo_headers(
    sb: EmspSandbox, request: web.Request, resp: web.StreamResponse, functional: bool
) -> None:
    if resp.prepared:
        return
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = request.headers.get(name)
        if value is not None:
            resp.headers[name] = value
    if functional:
        resp.headers["OCPI-from-country-code"] = sb.country_code
        resp.headers["OCPI-from-party-id"] = sb.party_id
        for src, dst in (
            ("OCPI-from-country-code", "OCPI-to-country-code"),
            ("OCPI-from-party-id", "OCPI-to-party-id"),
        ):
            value = request.headers.get(src)
            if value is not None:
                resp.headers[dst] = value


# --------------------------------------------------------------------------- helpers


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OcpiError(INVALID_PARAMS, f"{what} body must be a JSON object")
    return body


def _check_object(sb: EmspSandbox, kind: str, obj: dict[str, Any]) -> None:
    if not sb.strict:
        return
    missing = [f for f in REQUIRED[kind] if f not in obj or obj[f] is None]
    if missing:
        raise OcpiError(INVALID_PARAMS, f"{kind} is missing required fields: {', '.join(missing)}")
    _check_times(obj, kind)


def _check_times(obj: dict[str, Any], kind: str) -> None:
    for name in TIME_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OcpiError(INVALID_PARAMS, f"{kind}.{name} must be a DateTime string")
        try:
            parse_time(value)
        except ValueError as exc:
            raise OcpiError(INVALID_PARAMS, f"{kind}.{name}: {exc}") from None


def _check_owner(request: web.Request, obj: dict[str, Any], id_field: str, url_id: str) -> None:
    cc, pid = request.match_info["cc"], request.match_info["pid"]
    if str(obj.get("country_code", "")).upper() != cc.upper() or (
        str(obj.get("party_id", "")).upper() != pid.upper()
    ):
        raise OcpiError(INVALID_PARAMS, "country_code/party_id in URL do not match the body")
    if str(obj.get(id_field, "")).upper() != url_id.upper():
        raise OcpiError(INVALID_PARAMS, f"{id_field} in URL does not match the body")


def _patch_body(sb: EmspSandbox, body: Any, kind: str) -> dict[str, Any]:
    obj = _require_object(body, kind)
    if "last_updated" not in obj:
        raise OcpiError(INVALID_PARAMS, f"PATCH of {kind} without last_updated")
    if sb.strict:
        _check_times(obj, kind)
    return obj


# --------------------------------------------------------------------------- versions


async def get_versions(request: web.Request) -> web.Response:
    sb = _sb(request)
    return reply([{"version": VERSION, "url": sb.base_url + DETAILS_PATH}])


async def get_details(request: web.Request) -> web.Response:
    return reply({"version": VERSION, "endpoints": _sb(request).endpoints()})


# --------------------------------------------------------------------------- credentials


async def credentials(request: web.Request) -> web.Response:
    return await registration.handle_credentials(
        _sb(request), request.method, request[TOKEN_KIND], request[TOKEN], request[BODY]
    )


# --------------------------------------------------------------------------- tokens SENDER


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OcpiError(INVALID_PARAMS, f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise OcpiError(INVALID_PARAMS, f"{name} must be >= 0")
    return value


def _time_param(request: web.Request, name: str) -> Any:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise OcpiError(INVALID_PARAMS, f"{name}: {exc}") from None


async def list_tokens(request: web.Request) -> web.StreamResponse:
    sb = _sb(request)
    offset = _int_param(request, "offset", 0)
    limit = min(_int_param(request, "limit", sb.page_limit) or sb.page_limit, sb.page_limit)
    date_from, date_to = _time_param(request, "date_from"), _time_param(request, "date_to")
    page_no = offset // limit + 1
    if sb.behaviour.fail_tokens_page == page_no:
        times = sb.behaviour.fail_tokens_page_times
        if times is None or times > 0:
            if times is not None:
                sb.behaviour.fail_tokens_page_times = times - 1
            return web.Response(status=500, text=f"sandbox: simulated failure on page {page_no}")
    page, total = sb.token_page(date_from, date_to, offset, limit)
    headers = {"X-Total-Count": str(total), "X-Limit": str(sb.page_limit)}
    if offset + len(page) < total:
        query = dict(request.query)
        query.update(offset=str(offset + len(page)), limit=str(limit))
        next_url = request.url.with_query(query)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return web.Response(
        body=dumps(envelope(page)), content_type="application/json", headers=headers
    )


# --------------------------------------------------------------------------- authorize


async def authorize(request: web.Request) -> web.StreamResponse:
    sb = _sb(request)
    uid = request.match_info["uid"]
    type_ = request.query.get("type", "RFID")
    sb.count_authorize(uid)
    b = sb.behaviour.for_uid(uid)
    if b.mode == AuthorizeMode.DELAY:
        await asyncio.sleep(b.delay_ms / 1000)
    elif b.mode == AuthorizeMode.HANG:
        await sb.behaviour.wait_released()
    elif b.mode == AuthorizeMode.HTTP_500:
        return web.Response(status=500, text="sandbox: simulated server error")
    elif b.mode == AuthorizeMode.MALFORMED:
        return web.Response(
            status=200, body=b'{"data": {"allowed": "ALLO', content_type="application/json"
        )
    elif b.mode == AuthorizeMode.NON_ENVELOPE:
        return web.json_response({"allowed": "ALLOWED", "uid": uid})
    elif b.mode == AuthorizeMode.DROP:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("sandbox dropped the connection on purpose")
    elif b.mode == AuthorizeMode.UNKNOWN:
        return reply(None, UNKNOWN_TOKEN, "unknown token", http_status=404)
    body = request[BODY]
    if body is not None and not isinstance(body, dict):
        raise OcpiError(INVALID_PARAMS, "authorize body must be LocationReferences")
    info = sb.authorize_answer(uid, type_, body)
    if info is None:
        return reply(None, UNKNOWN_TOKEN, "unknown token", http_status=404)
    return reply(info)


# --------------------------------------------------------------------------- sessions


async def session(request: web.Request) -> web.Response:
    sb = _sb(request)
    sid = request.match_info["id"]
    if request.method == "GET":
        found = sb.sessions.get(sid)
        if found is None:
            return reply(None, CLIENT_ERROR, "unknown session", http_status=404)
        return reply(found)
    if request.method == "PUT":
        obj = _require_object(request[BODY], "session")
        _check_object(sb, "session", obj)
        _check_owner(request, obj, "id", sid)
        created = sid not in sb.sessions
        sb.sessions[sid] = dict(obj)
        sb.changed("session", request.method, sid, obj)
        return reply(None, OK, "stored", http_status=201 if created else 200)
    obj = _patch_body(sb, request[BODY], "session")
    current = sb.sessions.get(sid)
    if current is None:
        return reply(None, INVALID_PARAMS, "PATCH of an unknown session", http_status=404)
    for key, value in obj.items():
        if key == "charging_periods":
            if value:
                current.setdefault("charging_periods", []).extend(value)
        else:
            current[key] = value
    sb.changed("session", request.method, sid, obj)
    return reply(None)


# --------------------------------------------------------------------------- cdrs


async def post_cdr(request: web.Request) -> web.Response:
    sb = _sb(request)
    obj = _require_object(request[BODY], "cdr")
    _check_object(sb, "cdr", obj)
    cid = str(obj.get("id", ""))
    if not cid:
        raise OcpiError(INVALID_PARAMS, "cdr without id")
    location = (
        f"{sb.base_url}{MODULE_BASE}/cdrs/{obj.get('country_code')}/{obj.get('party_id')}/{cid}"
    )
    sb.cdr_posts.append(dict(obj))
    if cid in sb.cdrs:
        sb.cdr_duplicates[cid] = sb.cdr_duplicates.get(cid, 0) + 1
        sb.changed("cdr", "POST-duplicate", cid, obj)
        return reply(None, OK, "duplicate CDR ignored", headers={"Location": location})
    sb.cdrs[cid] = dict(obj)
    sb.changed("cdr", "POST", cid, obj)
    return reply(None, OK, "stored", http_status=201, headers={"Location": location})


async def get_cdr(request: web.Request) -> web.Response:
    found = _sb(request).cdrs.get(request.match_info["id"])
    if found is None:
        return reply(None, CLIENT_ERROR, "unknown cdr", http_status=404)
    return reply(found)


# --------------------------------------------------------------------------- locations


async def location(request: web.Request) -> web.Response:
    sb = _sb(request)
    loc_id = request.match_info["loc"]
    evse_uid = request.match_info.get("evse")
    conn_id = request.match_info.get("conn")
    stored = sb.locations.get(loc_id)
    evse = _find(stored.get("evses", []), "uid", evse_uid) if stored and evse_uid else None
    conn = _find(evse.get("connectors", []), "id", conn_id) if evse and conn_id else None
    target = conn if conn_id else evse if evse_uid else stored
    if request.method == "GET":
        if target is None:
            return reply(None, CLIENT_ERROR, "unknown location object", http_status=404)
        return reply(target)
    level = "connector" if conn_id else "evse" if evse_uid else "location"
    if request.method == "PUT":
        obj = _require_object(request[BODY], level)
        _check_object(sb, level, obj)
        if level == "location":
            _check_owner(request, obj, "id", loc_id)
            created = stored is None
            sb.locations[loc_id] = dict(obj)
        else:
            if stored is None or (level == "connector" and evse is None):
                return reply(None, INVALID_PARAMS, "parent object unknown", http_status=404)
            parent, key, oid = (
                (evse, "connectors", conn_id) if conn_id else (stored, "evses", evse_uid)
            )
            assert parent is not None and oid is not None
            items = parent.setdefault(key, [])
            old = _find(items, "uid" if key == "evses" else "id", oid)
            created = old is None
            if old is None:
                items.append(dict(obj))
            else:
                items[items.index(old)] = dict(obj)
            _bump(obj.get("last_updated"), stored, evse if conn_id else None)
        sb.changed("location", "PUT", _loc_key(loc_id, evse_uid, conn_id), obj)
        return reply(None, OK, "stored", http_status=201 if created else 200)
    obj = _patch_body(sb, request[BODY], level)
    if target is None:
        return reply(None, INVALID_PARAMS, "PATCH of an unknown location object", http_status=404)
    target.update(obj)
    if level != "location":
        _bump(obj["last_updated"], stored, evse if conn_id else None)
    sb.changed("location", "PATCH", _loc_key(loc_id, evse_uid, conn_id), obj)
    return reply(None)


def _find(items: list[dict[str, Any]], key: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return next((i for i in items if str(i.get(key, "")).upper() == value.upper()), None)


def _bump(last_updated: Any, *parents: dict[str, Any] | None) -> None:
    """A child update moves its parents' last_updated (digest 7.1, receiver side)."""
    for p in parents:
        if p is not None and last_updated:
            p["last_updated"] = last_updated


def _loc_key(loc: str, evse: str | None, conn: str | None) -> str:
    return "/".join(x for x in (loc, evse, conn) if x)


# --------------------------------------------------------------------------- tariffs


async def tariff(request: web.Request) -> web.Response:
    sb = _sb(request)
    tid = request.match_info["id"]
    if request.method == "GET":
        found = sb.tariffs.get(tid)
        if found is None:
            return reply(None, CLIENT_ERROR, "unknown tariff", http_status=404)
        return reply(found)
    if request.method == "DELETE":
        if sb.tariffs.pop(tid) is None:
            return reply(None, CLIENT_ERROR, "unknown tariff", http_status=404)
        sb.changed("tariff", "DELETE", tid, None)
        return reply(None)
    obj = _require_object(request[BODY], "tariff")
    _check_object(sb, "tariff", obj)
    _check_owner(request, obj, "id", tid)
    created = tid not in sb.tariffs
    sb.tariffs[tid] = dict(obj)
    sb.changed("tariff", "PUT", tid, obj)
    return reply(None, OK, "stored", http_status=201 if created else 200)


# --------------------------------------------------------------------------- command results


async def command_result(request: web.Request) -> web.Response:
    sb = _sb(request)
    obj = _require_object(request[BODY], "CommandResult")
    if "result" not in obj:
        raise OcpiError(INVALID_PARAMS, "CommandResult without result")
    ref = request.match_info["ref"]
    sb.command_results[ref] = dict(obj)
    sb.changed("command_result", request.match_info["command"], ref, obj)
    return reply(None)


def build_app(sb: EmspSandbox) -> web.Application:
    app = web.Application(middlewares=[ocpi_middleware], client_max_size=16 * 1024 * 1024)
    app[SANDBOX] = sb
    r = app.router
    r.add_get(VERSIONS_PATH, get_versions)
    r.add_get(DETAILS_PATH, get_details)
    for method in ("GET", "POST", "PUT", "DELETE"):
        r.add_route(method, CREDENTIALS_PATH, credentials)
    r.add_get(f"{MODULE_BASE}/tokens", list_tokens)
    r.add_get(f"{MODULE_BASE}/tokens/", list_tokens)
    r.add_post(f"{MODULE_BASE}/tokens/{{uid}}/authorize", authorize)
    for method in ("GET", "PUT", "PATCH"):
        r.add_route(method, f"{MODULE_BASE}/sessions/{{cc}}/{{pid}}/{{id}}", session)
        base = f"{MODULE_BASE}/locations/{{cc}}/{{pid}}/{{loc}}"
        r.add_route(method, base, location)
        r.add_route(method, base + "/{evse}", location)
        r.add_route(method, base + "/{evse}/{conn}", location)
    r.add_post(f"{MODULE_BASE}/cdrs", post_cdr)
    r.add_post(f"{MODULE_BASE}/cdrs/", post_cdr)
    r.add_get(f"{MODULE_BASE}/cdrs/{{cc}}/{{pid}}/{{id}}", get_cdr)
    for method in ("GET", "PUT", "DELETE"):
        r.add_route(method, f"{MODULE_BASE}/tariffs/{{cc}}/{{pid}}/{{id}}", tariff)
    r.add_post(f"{MODULE_BASE}/commands/{{command}}/{{ref}}", command_result)
    return app


__all__ = ["MODULE_BASE", "OcpiError", "build_app", "fmt_time"]
