"""``/api/tokens``: the local id_tags table the default authorizer answers from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from csms.admin.http import ApiError, field, json_response, read_object
from csms.authz.model import AuthStatus, normalise
from csms.authz.service import AuthorizationService

routes = web.RouteTableDef()

TOKEN_COLUMNS = ("id_tag", "status", "expiry_date", "parent_id_tag", "created_at", "updated_at")
# ConcurrentTx describes a moment, not a card: it is never a stored status.
STORABLE = tuple(s.value for s in AuthStatus if s is not AuthStatus.CONCURRENT_TX)
ID_TAG_MAX = 20  # OCPP 1.6 IdToken is CiString20


def _app(request: web.Request) -> Any:
    from csms.admin.app import CSMS_APP

    return request.app[CSMS_APP]


def _repo(csms_app: Any) -> Any:
    from csms.store.id_tags import IdTagRepo

    return IdTagRepo(csms_app.db)


async def _load(db: Any, id_tag: str) -> dict[str, Any] | None:
    row = await db.fetchone(
        f"SELECT {', '.join(TOKEN_COLUMNS)} FROM id_tags WHERE id_tag_norm = ?",
        (normalise(id_tag),),
    )
    return None if row is None else {c: row[c] for c in TOKEN_COLUMNS}


def _id_tag(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_body", f"field {name!r} must be a non-empty string")
    if len(value) > ID_TAG_MAX:
        raise ApiError(
            400, "invalid_body", f"field {name!r} is longer than {ID_TAG_MAX} characters"
        )
    return value


def _expiry(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "invalid_body", f"field 'expiry_date' is not an ISO-8601 date-time: {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(
            400,
            "invalid_body",
            "field 'expiry_date' must carry a time zone, e.g. 2030-01-01T00:00:00Z",
        )
    return value


@routes.get("/api/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    rows = await _app(request).db.fetchall(
        f"SELECT {', '.join(TOKEN_COLUMNS)} FROM id_tags ORDER BY id_tag_norm"
    )
    return json_response({"tokens": [{c: r[c] for c in TOKEN_COLUMNS} for r in rows]})


@routes.get("/api/tokens/{id_tag}")
async def get_token(request: web.Request) -> web.Response:
    id_tag = request.match_info["id_tag"]
    doc = await _load(_app(request).db, id_tag)
    if doc is None:
        raise ApiError(404, "unknown_token", f"no id_tag {id_tag!r}")
    return json_response(doc)


@routes.post("/api/tokens")
async def add_token(request: web.Request) -> web.Response:
    csms_app = _app(request)
    doc = await read_object(request)
    unknown = sorted(set(doc) - {"id_tag", "status", "expiry_date", "parent_id_tag"})
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
    id_tag = _id_tag(doc.get("id_tag"), "id_tag")
    status = field(doc, "status", str, default=AuthStatus.ACCEPTED.value)
    if status not in STORABLE:
        raise ApiError(
            400,
            "invalid_body",
            f"field 'status' must be one of {', '.join(STORABLE)}, got {status!r}",
        )
    expiry = _expiry(field(doc, "expiry_date", str))
    parent = doc.get("parent_id_tag")
    if parent is not None:
        parent = _id_tag(parent, "parent_id_tag")
    existed = await _load(csms_app.db, id_tag) is not None
    await _repo(csms_app).add(id_tag, status=status, expiry_date=expiry, parent_id_tag=parent)
    await _own_cards_changed(csms_app)
    saved = await _load(csms_app.db, id_tag)
    return json_response(saved, status=200 if existed else 201)


@routes.post("/api/tokens/{id_tag}/block")
async def block_token(request: web.Request) -> web.Response:
    csms_app = _app(request)
    id_tag = request.match_info["id_tag"]
    if await _load(csms_app.db, id_tag) is None:
        raise ApiError(404, "unknown_token", f"no id_tag {id_tag!r}")
    await _repo(csms_app).block(id_tag)
    await _own_cards_changed(csms_app)
    return json_response(await _load(csms_app.db, id_tag))


async def _own_cards_changed(csms_app: Any) -> None:
    """Tell the authorizer, which may hold the own cards in memory; an authorizer the
    app was started with instead does not read ``id_tags``."""
    authorizer = csms_app.authorizer
    if isinstance(authorizer, AuthorizationService):
        await authorizer.own_cards_changed()
