"""The sandbox's tokens Sender interface: the paginated token list and real-time authorize.

Why the misbehaviour switches sit right in these handlers: the CPO's deadline, fallback
and retry code is only exercised by a peer that hangs, drops or fails a page, and these
are the two calls the CPO makes to an eMSP in a hurry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from simulator.emsp.behaviour import AuthorizeMode
from simulator.emsp.handling import OcpiError, body_of, state_of
from simulator.emsp.own_tokens import token_page
from simulator.emsp.state import AuthorizeRecord, SandboxState
from simulator.emsp.wire import INVALID_PARAMS, UNKNOWN_TOKEN, dumps, envelope, parse_time, reply

T = TypeVar("T")
_REF_ALPHABET = "0123456789abcdefABCDEF"


# --------------------------------------------------------------------------- the token list


def _param(request: web.Request, name: str, parse: Callable[[str, str], T]) -> T | None:
    """The query parameter ``name`` parsed, None when absent or empty."""
    raw = request.query.get(name)
    return parse(name, raw) if raw else None


def _count(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise OcpiError(INVALID_PARAMS, f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise OcpiError(INVALID_PARAMS, f"{name} must be >= 0")
    return value


def _moment(name: str, raw: str) -> datetime:
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise OcpiError(INVALID_PARAMS, f"{name}: {exc}") from None


def _failing_page(state: SandboxState, page_no: int) -> bool:
    """Whether the fail-page switch hits this page (and count one use of it)."""
    behaviour = state.behaviour
    if behaviour.fail_tokens_page != page_no:
        return False
    times = behaviour.fail_tokens_page_times
    if times is not None and times <= 0:
        return False
    if times is not None:
        behaviour.fail_tokens_page_times = times - 1
    return True


async def list_tokens(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    page_limit = state.page_limit
    offset = _param(request, "offset", _count) or 0
    limit = min(_param(request, "limit", _count) or page_limit, page_limit)
    date_from, date_to = _param(request, "date_from", _moment), _param(request, "date_to", _moment)
    page_no = offset // limit + 1
    if _failing_page(state, page_no):
        return web.Response(status=500, text=f"sandbox: simulated failure on page {page_no}")
    page, total = token_page(state, date_from, date_to, offset, limit)
    headers = {"X-Total-Count": str(total), "X-Limit": str(page_limit)}
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
    state = state_of(request)
    uid = request.match_info["uid"]
    type_ = request.query.get("type", "RFID")
    key = uid.upper()
    state.authorize_counts[key] = state.authorize_counts.get(key, 0) + 1
    b = state.behaviour.for_uid(uid)
    if b.mode == AuthorizeMode.DELAY:
        await asyncio.sleep(b.delay_ms / 1000)
    elif b.mode == AuthorizeMode.HANG:
        await state.behaviour.wait_released()
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
    body = body_of(request)
    if body is not None and not isinstance(body, dict):
        raise OcpiError(INVALID_PARAMS, "authorize body must be LocationReferences")
    info = authorize_answer(state, uid, type_, body)
    if info is None:
        return reply(None, UNKNOWN_TOKEN, "unknown token", http_status=404)
    return reply(info)


def new_reference(state: SandboxState) -> str:
    """``Ref-`` + 8 chars of mixed case, so case-folding bugs at the CPO show up."""
    rng = state.rng
    chars = [rng.choice(_REF_ALPHABET) for _ in range(8)]
    chars[1] = rng.choice("abcdef")
    chars[3] = rng.choice("ABCDEF")
    return "Ref-" + "".join(chars)


def authorize_answer(state: SandboxState, uid: str, type_: str, body: Any) -> dict[str, Any] | None:
    """The AuthorizationInfo for a token of our table (recorded), None when unknown."""
    rec = state.tokens.get(uid, type_)
    if rec is None:
        state.say(f"authorize {uid} ({type_}) -> unknown")
        return None
    ref = new_reference(state)
    info: dict[str, Any] = {
        "allowed": rec.allowed,
        "token": rec.token,
        "authorization_reference": ref,
    }
    location = None
    if isinstance(body, dict) and body.get("location_id"):
        location = {"location_id": body["location_id"]}
        if body.get("evse_uids"):
            location["evse_uids"] = list(body["evse_uids"])
        if rec.allowed == "ALLOWED":
            info["location"] = location
    state.authorizations.append(AuthorizeRecord(rec.uid, rec.type, rec.allowed, ref, location))
    state.say(f"authorize {uid} ({type_}) -> {rec.allowed} {ref}")
    return info
