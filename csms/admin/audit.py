"""The admin audit trail: every write through the admin API, logged and stored.

Why a middleware: every write route, including those other packages mount (roaming's
partners, the locations and outbox routes, the dashboard's forms), passes through it,
so no route can forget to audit. It runs behind the auth check: only authenticated
writes are admin writes. A request refused with 401 never reaches it; a write to a
public route (a login form) by someone not yet authenticated is logged with actor
``anonymous`` but not stored, so anyone who can reach the port cannot fill the table.

What a row holds: ``actor`` (the dashboard session ``session:<short id>`` the auth put
in :data:`csms.admin.context.ACTOR`, or for the bearer token its id
``token:<first 12 hex of its SHA-256>``, never the token);
``action`` (the method and the route pattern); ``target`` (the route's path parameters
and a fixed list of identifier fields of a JSON body: never passwords, tokens or keys,
because only the listed fields are read); ``status`` (the HTTP status answered; a
request cut off by the client is 499). The same facts go to the log as one
``admin.audit`` event, with idTags masked as in every log line.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from csms import logs
from csms.admin.context import ACTOR, context_of
from csms.admin.http import ApiError, json_response, query_int
from csms.store.audit import AuditEntry, AuditLog

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Body fields that name what a write acts on. A closed list: a field is stored only if
# named here, so secrets in a body (password, token_a, auth keys) can never be stored.
TARGET_FIELDS = (
    "id",
    "charger_id",
    "id_tag",
    "partner",
    "country_code",
    "party_id",
    "connector_id",
    "transaction_id",
)
MAX_BODY_FOR_TARGET = 64 * 1024
MAX_VALUE_LEN = 100

log = logs.get("csms.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_actor(token: str) -> str:
    """A stable, non-secret name for a bearer token."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]


def audit_middleware(admin_token: str) -> Any:
    """The middleware; who acted is what the auth set in :data:`ACTOR` (``token`` becomes
    the token's id; nothing set means a public route, so ``anonymous``)."""
    bearer_actor = token_actor(admin_token)

    def actor_of(request: web.Request) -> str | None:
        actor = request.get(ACTOR)
        return bearer_actor if actor == "token" else actor

    @web.middleware
    async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in WRITE_METHODS:
            return await handler(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except ApiError as exc:
            status = exc.status
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499
            raise
        finally:
            await _record(request, status, actor_of(request))

    return audit


async def _record(request: web.Request, status: int, actor: str | None) -> None:
    route = request.match_info.route.resource
    pattern = route.canonical if route is not None else "(no route)"
    parts = await _target(request)
    entry = AuditEntry(
        actor=actor or "anonymous",
        method=request.method,
        action=f"{request.method} {pattern}",
        path=request.path,
        target=_join(parts),
        status=status,
        remote=request.remote,
    )
    log.info(
        "admin.audit",
        actor=entry.actor,
        action=entry.action,
        target=_join([(k, logs.mask(v) if k == "id_tag" else v) for k, v in parts]),
        status=entry.status,
        remote=entry.remote,
    )
    if actor is None:
        return
    try:
        await AuditLog(context_of(request).db).append(entry)
    except Exception:  # the answer is already made; the log line above still holds it
        log.exception("admin.audit_store_failed", action=entry.action)


async def _target(request: web.Request) -> list[tuple[str, str]]:
    """(name, value) of the route's path parameters and the body's identifier fields."""
    parts = [(k, _short(v)) for k, v in request.match_info.items()]
    body = await _body_object(request)
    for name in TARGET_FIELDS:
        value = body.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            parts.append((name, _short(str(value))))
    return parts


def _join(parts: Sequence[tuple[str, str | None]]) -> str | None:
    """The stored row keeps ids whole (operators look them up); the log masks idTags."""
    return " ".join(f"{k}={v}" for k, v in parts) or None


async def _body_object(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body and request.content_length in (None, 0):
        return {}
    if (request.content_length or 0) > MAX_BODY_FOR_TARGET:
        return {}
    try:
        raw = await request.read()  # aiohttp keeps the body: the handler read the same bytes
        doc = orjson.loads(raw) if raw.strip() else {}
    except Exception:
        return {}
    return doc if isinstance(doc, dict) else {}


def _short(value: str) -> str:
    return value if len(value) <= MAX_VALUE_LEN else value[:MAX_VALUE_LEN] + "…"


routes = web.RouteTableDef()


@routes.get("/api/audit")
async def list_audit(request: web.Request) -> web.Response:
    """Newest first; ``limit`` (1..1000, default 100), ``actor``, ``before`` (an entry id)."""
    limit = query_int(request, "limit", 100)
    if limit is None or not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_query", "query 'limit' must be 1..1000")
    before = query_int(request, "before")
    entries = await AuditLog(context_of(request).db).latest(
        limit=limit, actor=request.query.get("actor") or None, before_id=before
    )
    return json_response({"entries": [e.to_json() for e in entries]})
