"""Tokens module, Receiver interface: eMSPs PUT, PATCH and GET their tokens at the CPO.

URL: ``{TOKENS_PATH}/{country_code}/{party_id}/{token_uid}[?type=RFID]``.

Ownership: only a partner whose credentials roles include the URL's
country_code/party_id may touch those tokens; anyone else gets HTTP 404 (OCPI §1.10
allows it, and it does not reveal whether such a token exists).

Identity: (country_code, party_id, upper-cased uid, type); the spelling of the last PUT
is stored and sent back, so ``04a1…`` and ``04A1…`` are one token.
"""

from __future__ import annotations

from aiohttp import web

from roaming.context import OcpiModule, RoamingContext, ctx_of, partner_of
from roaming.envelope import InvalidParameters, NotFound, StatusCode, ok, read_json_object
from roaming.models import (
    InterfaceRole,
    ModuleID,
    Token,
    TokenType,
    ValidationError,
    cistring,
    enum_value,
    norm,
)
from roaming.settings import TOKENS_PATH


def _url_key(request: web.Request) -> tuple[str, str, str, TokenType]:
    m = request.match_info
    try:
        cc = cistring(m["country_code"], "country_code (URL)", 2)
        pid = cistring(m["party_id"], "party_id (URL)", 3)
        uid = cistring(m["token_uid"], "token_uid (URL)", 36)
        ttype = enum_value(TokenType, request.query.get("type", "RFID"), "type (URL)")
    except ValidationError as exc:
        raise InvalidParameters(str(exc)) from None
    partner = partner_of(request)
    if not partner.owns(cc, pid):
        raise NotFound(
            f"{cc}/{pid} is not one of your credentials roles",
            status_code=StatusCode.CLIENT_ERROR,
        )
    return cc, pid, uid, ttype


async def get_token(request: web.Request) -> web.Response:
    cc, pid, uid, ttype = _url_key(request)
    stored = await ctx_of(request).store.tokens.find_token(cc, pid, uid, ttype.value)
    if stored is None:
        raise NotFound("unknown token", status_code=StatusCode.UNKNOWN_TOKEN)
    return ok(stored.token.to_json())


def _check_ids(token: Token, cc: str, pid: str, uid: str, ttype: TokenType) -> None:
    for name, body, url in (
        ("country_code", token.country_code, cc),
        ("party_id", token.party_id, pid),
        ("uid", token.uid, uid),
    ):
        if norm(body) != norm(url):
            raise InvalidParameters(f"{name}: body value {body!r} does not match the URL ({url!r})")
    if token.type is not ttype:
        raise InvalidParameters(
            f"type: body value {token.type.value!r} does not match the URL type ({ttype.value!r})"
        )


async def put_token(request: web.Request) -> web.Response:
    cc, pid, uid, ttype = _url_key(request)
    body = await read_json_object(request)
    token = Token.from_json(body)
    _check_ids(token, cc, pid, uid, ttype)
    created = await ctx_of(request).store.tokens.upsert_token(partner_of(request).id, token)
    return ok(status=201 if created else 200)


async def patch_token(request: web.Request) -> web.Response:
    cc, pid, uid, ttype = _url_key(request)
    body = await read_json_object(request)
    store = ctx_of(request).store
    stored = await store.tokens.find_token(cc, pid, uid, ttype.value, include_removed=True)
    if stored is None:
        raise NotFound("unknown token: PUT it first", status_code=StatusCode.UNKNOWN_TOKEN)
    token = stored.token.patched(body)
    _check_ids(token, cc, pid, uid, ttype)
    await store.tokens.upsert_token(partner_of(request).id, token)
    return ok()


def add_routes(app: web.Application, ctx: RoamingContext) -> None:
    path = TOKENS_PATH + "/{country_code}/{party_id}/{token_uid}"
    app.router.add_get(path, get_token)
    app.router.add_put(path, put_token)
    app.router.add_patch(path, patch_token)


MODULE = OcpiModule(
    identifier=ModuleID.TOKENS,
    role=InterfaceRole.RECEIVER,
    path=TOKENS_PATH,
    add_routes=add_routes,
)
