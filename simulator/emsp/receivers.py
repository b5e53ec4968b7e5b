"""The sandbox's Receiver interfaces: what the CPO pushes (sessions, CDRs, locations,
tariffs) and the command results it posts back.

Every object is stored exactly as sent (see :mod:`simulator.emsp.tables` for why), and
every change is announced through :meth:`SandboxState.changed` so tests can wait on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from simulator.emsp.handling import (
    OcpiError,
    body_of,
    check_object,
    check_owner,
    patch_body,
    require_object,
    state_of,
)
from simulator.emsp.tables import CiMap
from simulator.emsp.wire import CLIENT_ERROR, INVALID_PARAMS, MODULE_BASE, OK, reply


def _stored_or_404(table: CiMap[dict[str, Any]], oid: str, what: str) -> web.Response:
    found = table.get(oid)
    if found is None:
        return reply(None, CLIENT_ERROR, f"unknown {what}", http_status=404)
    return reply(found)


def _stored(created: bool) -> web.Response:
    return reply(None, OK, "stored", http_status=201 if created else 200)


def _put(request: web.Request, table: CiMap[dict[str, Any]], kind: str) -> web.Response:
    """Store a whole object as sent under its URL id (a PUT replaces it)."""
    state = state_of(request)
    oid = request.match_info["id"]
    obj = require_object(body_of(request), kind)
    check_object(state, kind, obj)
    check_owner(request, obj, "id", oid)
    created = oid not in table
    table[oid] = dict(obj)
    state.changed(kind, "PUT", oid, obj)
    return _stored(created)


# --------------------------------------------------------------------------- sessions


async def get_session(request: web.Request) -> web.Response:
    return _stored_or_404(state_of(request).sessions, request.match_info["id"], "session")


async def put_session(request: web.Request) -> web.Response:
    return _put(request, state_of(request).sessions, "session")


async def patch_session(request: web.Request) -> web.Response:
    """Fields replace, except charging_periods, which are appended (OCPI sessions PATCH)."""
    state = state_of(request)
    sid = request.match_info["id"]
    obj = patch_body(state, body_of(request), "session")
    current = state.sessions.get(sid)
    if current is None:
        return reply(None, INVALID_PARAMS, "PATCH of an unknown session", http_status=404)
    for key, value in obj.items():
        if key == "charging_periods":
            if value:
                current.setdefault("charging_periods", []).extend(value)
        else:
            current[key] = value
    state.changed("session", "PATCH", sid, obj)
    return reply(None)


# --------------------------------------------------------------------------- cdrs


async def post_cdr(request: web.Request) -> web.Response:
    """Store a CDR once by id; a second POST of the same id is counted as a duplicate and
    answered like the first (with its Location), as a lenient eMSP would.

    ``cdr_post_counts`` counts every POST per id, so a test can tell "stored once" from
    "POSTed once"; ``cdr_posts_open`` is how many are being handled right now.
    """
    state = state_of(request)
    obj = require_object(body_of(request), "cdr")
    check_object(state, "cdr", obj)
    cid = str(obj.get("id", ""))
    if not cid:
        raise OcpiError(INVALID_PARAMS, "cdr without id")
    location = f"{state.party.base_url}{MODULE_BASE}/cdrs/{obj.get('country_code')}/{obj.get('party_id')}/{cid}"
    state.cdr_posts.append(dict(obj))
    state.cdr_post_counts[cid] = state.cdr_post_counts.get(cid, 0) + 1
    state.cdr_posts_open += 1
    try:
        max_ms = state.behaviour.cdr_delay_ms
        delay_s = state.rng.uniform(0, max_ms) / 2000 if max_ms > 0 else 0.0
        if delay_s:
            await asyncio.sleep(delay_s)
        if cid in state.cdrs:
            state.cdr_duplicates[cid] = state.cdr_duplicates.get(cid, 0) + 1
            state.changed("cdr", "POST-duplicate", cid, obj)
            return reply(None, OK, "duplicate CDR ignored", headers={"Location": location})
        state.cdrs[cid] = dict(obj)
        state.changed("cdr", "POST", cid, obj)
        if delay_s:
            await asyncio.sleep(delay_s)
        return reply(None, OK, "stored", http_status=201, headers={"Location": location})
    finally:
        state.cdr_posts_open -= 1


async def get_cdr(request: web.Request) -> web.Response:
    return _stored_or_404(state_of(request).cdrs, request.match_info["id"], "cdr")


# --------------------------------------------------------------------------- locations


async def location(request: web.Request) -> web.Response:
    state = state_of(request)
    loc_id = request.match_info["loc"]
    evse_uid = request.match_info.get("evse")
    conn_id = request.match_info.get("conn")
    stored = state.locations.get(loc_id)
    evse = _find(stored.get("evses", []), "uid", evse_uid) if stored and evse_uid else None
    conn = _find(evse.get("connectors", []), "id", conn_id) if evse and conn_id else None
    target = conn if conn_id else evse if evse_uid else stored
    if request.method == "GET":
        if target is None:
            return reply(None, CLIENT_ERROR, "unknown location object", http_status=404)
        return reply(target)
    level = "connector" if conn_id else "evse" if evse_uid else "location"
    key = _loc_key(loc_id, evse_uid, conn_id)
    if request.method == "PUT":
        obj = require_object(body_of(request), level)
        check_object(state, level, obj)
        if level == "location":
            check_owner(request, obj, "id", loc_id)
            created = stored is None
            state.locations[loc_id] = dict(obj)
        else:
            if stored is None or (level == "connector" and evse is None):
                return reply(None, INVALID_PARAMS, "parent object unknown", http_status=404)
            parent, items_key, oid = (
                (evse, "connectors", conn_id) if conn_id else (stored, "evses", evse_uid)
            )
            assert parent is not None and oid is not None
            items = parent.setdefault(items_key, [])
            old = _find(items, "uid" if items_key == "evses" else "id", oid)
            created = old is None
            if old is None:
                items.append(dict(obj))
            else:
                items[items.index(old)] = dict(obj)
            _bump(obj.get("last_updated"), stored, evse if conn_id else None)
        state.changed("location", "PUT", key, obj)
        return _stored(created)
    obj = patch_body(state, body_of(request), level)
    if target is None:
        return reply(None, INVALID_PARAMS, "PATCH of an unknown location object", http_status=404)
    target.update(obj)
    if level != "location":
        _bump(obj["last_updated"], stored, evse if conn_id else None)
    state.changed("location", "PATCH", key, obj)
    return reply(None)


def _find(items: list[dict[str, Any]], key: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return next((i for i in items if str(i.get(key, "")).upper() == value.upper()), None)


def _bump(last_updated: Any, *parents: dict[str, Any] | None) -> None:
    """A child update moves its parents' last_updated (OCPI locations, Receiver side)."""
    for p in parents:
        if p is not None and last_updated:
            p["last_updated"] = last_updated


def _loc_key(loc: str, evse: str | None, conn: str | None) -> str:
    return "/".join(x for x in (loc, evse, conn) if x)


# --------------------------------------------------------------------------- tariffs


async def get_tariff(request: web.Request) -> web.Response:
    return _stored_or_404(state_of(request).tariffs, request.match_info["id"], "tariff")


async def put_tariff(request: web.Request) -> web.Response:
    return _put(request, state_of(request).tariffs, "tariff")


async def delete_tariff(request: web.Request) -> web.Response:
    state = state_of(request)
    tid = request.match_info["id"]
    if state.tariffs.pop(tid) is None:
        return reply(None, CLIENT_ERROR, "unknown tariff", http_status=404)
    state.changed("tariff", "DELETE", tid, None)
    return reply(None)


# --------------------------------------------------------------------------- command results


async def command_result(request: web.Request) -> web.Response:
    state = state_of(request)
    obj = require_object(body_of(request), "CommandResult")
    if "result" not in obj:
        raise OcpiError(INVALID_PARAMS, "CommandResult without result")
    ref = request.match_info["ref"]
    state.command_results[ref] = dict(obj)
    state.changed("command_result", request.match_info["command"], ref, obj)
    return reply(None)


def add_routes(router: web.UrlDispatcher) -> None:
    """The Receiver URLs: sessions, cdrs, locations, tariffs, and the commands' callbacks."""
    session, tariff = (f"{MODULE_BASE}/{m}/{{cc}}/{{pid}}/{{id}}" for m in ("sessions", "tariffs"))
    router.add_route("GET", session, get_session)
    router.add_route("PUT", session, put_session)
    router.add_route("PATCH", session, patch_session)
    base = f"{MODULE_BASE}/locations/{{cc}}/{{pid}}/{{loc}}"
    for method in ("GET", "PUT", "PATCH"):
        for suffix in ("", "/{evse}", "/{evse}/{conn}"):
            router.add_route(method, base + suffix, location)
    for path in (f"{MODULE_BASE}/cdrs", f"{MODULE_BASE}/cdrs/"):
        router.add_post(path, post_cdr)
    router.add_route("GET", f"{MODULE_BASE}/cdrs/{{cc}}/{{pid}}/{{id}}", get_cdr)
    router.add_route("GET", tariff, get_tariff)
    router.add_route("PUT", tariff, put_tariff)
    router.add_route("DELETE", tariff, delete_tariff)
    router.add_post(f"{MODULE_BASE}/commands/{{command}}/{{ref}}", command_result)
