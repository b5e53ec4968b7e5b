"""Credentials module: the handshake in both directions, rotation and unregistering.

Who holds which token (see :mod:`roaming.partners`):

* They initiate (we are Responder): ``invite`` issues TOKEN_A (stored hashed). Their POST
  carries TOKEN_B; *during* the POST we GET their versions and details with TOKEN_B
  (3001 if that fails, 3002 without 2.2.1, 3003 without the endpoints we need), issue
  TOKEN_C, and in one write store hash(TOKEN_C) as ``token_in`` and TOKEN_B as
  ``token_out``: TOKEN_A is dead from that instant.
* We initiate (``register_with``): GET their versions/details with TOKEN_A, POST our
  credentials with a fresh TOKEN_B (accepted for versions/credentials while they call
  us back), then keep their TOKEN_C as ``token_out``.

``405`` rules: POST by a registered partner; PUT or DELETE by one not registered.
Outgoing Authorization encoding: base64 first; on a 401 while registering we retry once
raw and remember what worked for this partner.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from roaming import auth
from roaming.client import CallTarget, Peer
from roaming.context import PRESENTED, RoamingContext, ctx_of, partner_of
from roaming.envelope import (
    ClientApiUnusable,
    MethodNotAllowed,
    NoMatchingEndpoints,
    UnsupportedVersion,
    ok,
    read_json_object,
)
from roaming.errors import PartnerRejected, RoamingError
from roaming.models import (
    VERSION,
    BusinessDetails,
    Credentials,
    CredentialsRole,
    InterfaceRole,
    ModuleID,
    Role,
    VersionDetails,
    party_key,
)
from roaming.partners import Partner, PartnerStatus, TokenKind
from roaming.settings import CREDENTIALS_PATH

log = structlog.get_logger("roaming.credentials")

T = TypeVar("T")

# What a CPO needs from an eMSP: the token list and /authorize (tokens SENDER).
REQUIRED_ENDPOINTS: tuple[tuple[str, InterfaceRole], ...] = (
    (ModuleID.TOKENS.value, InterfaceRole.SENDER),
)


def our_credentials(ctx: RoamingContext, token: str) -> Credentials:
    s = ctx.settings
    return Credentials(
        token=token,
        url=s.versions_url,
        roles=(
            CredentialsRole(
                role=Role.CPO,
                business_details=BusinessDetails(s.business_name, s.business_website or None),
                party_id=s.party_id,
                country_code=s.country_code,
            ),
        ),
    )


class RegistrationError(Exception):
    """An outgoing registration/rotation that did not complete; nothing was changed."""


async def _with_encoding_fallback(
    target: CallTarget, call: Callable[[CallTarget], Awaitable[T]]
) -> tuple[T, str]:
    """Run ``call``; on HTTP 401 retry once with the other header encoding."""
    try:
        return await call(target), target.auth_encoding
    except PartnerRejected as exc:
        if exc.http_status != 401:
            raise
        other = auth.RAW if target.auth_encoding == auth.BASE64 else auth.BASE64
        retry = Peer(target.key, target.token_out, other)
        log.info("ocpi.auth_encoding_retry", partner=target.key, encoding=other)
        return await call(retry), other


async def fetch_partner_api(
    ctx: RoamingContext, target: CallTarget, versions_url: str
) -> tuple[VersionDetails, str]:
    """Their 2.2.1 version details (and the header encoding that worked).

    Raises UnsupportedVersion / NoMatchingEndpoints (3002 / 3003) or RoamingError.
    """
    versions, encoding = await _with_encoding_fallback(
        target, lambda t: ctx.client.get_versions(t, versions_url)
    )
    chosen = next((v for v in versions if v.version == VERSION), None)
    if chosen is None:
        offered = ", ".join(v.version for v in versions) or "none"
        raise UnsupportedVersion(f"no common version: we speak {VERSION}, partner offers {offered}")
    peer = Peer(target.key, target.token_out, encoding)
    details = await ctx.client.get_version_details(peer, chosen.url)
    missing = [
        f"{ident} {role.value}"
        for ident, role in REQUIRED_ENDPOINTS
        if details.find(ident, role) is None
    ]
    if missing:
        raise NoMatchingEndpoints(f"partner version details lack: {', '.join(missing)}")
    return details, encoding


async def _fetch_as_server(
    ctx: RoamingContext, key: str, creds: Credentials
) -> tuple[VersionDetails, str]:
    """fetch_partner_api inside a POST/PUT handler: call failures become 3001."""
    try:
        return await fetch_partner_api(ctx, Peer(key, creds.token), creds.url)
    except RoamingError as exc:
        raise ClientApiUnusable(f"could not use your versions/details API: {exc.message}") from None


def _check_roles(partner: Partner, creds: Credentials) -> None:
    if not any(partner.key == r.key for r in creds.roles):
        log.warning(
            "ocpi.roles_mismatch",
            partner=partner.key,
            roles=[r.key for r in creds.roles],
        )


# ---------------------------------------------------------------------- server side


async def get_credentials(request: web.Request) -> web.Response:
    """Our credentials for the caller: the token they used to reach us (we keep only hashes)."""
    presented = request[PRESENTED]
    return ok(our_credentials(ctx_of(request), presented.token).to_json())


async def _accept(ctx: RoamingContext, partner: Partner, creds: Credentials) -> tuple[Partner, str]:
    """Their credentials, received by POST or PUT: fetch their API with their token,
    issue a fresh TOKEN_C, store both. Returns the updated partner and the new token."""
    details, encoding = await _fetch_as_server(ctx, partner.key, creds)
    token_c = auth.generate_token()
    partner = await ctx.store.partners.complete_registration(
        partner.id,
        roles=creds.roles,
        token_in_hash=auth.hash_token(token_c),
        token_in_kind=TokenKind.C,
        token_out=creds.token,
        auth_encoding=encoding,
        versions_url=creds.url,
        version=details.version,
        endpoints=details.endpoints,
    )
    return partner, token_c


async def post_credentials(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    partner = partner_of(request)
    if partner.registered or partner.token_in_kind is not TokenKind.A:
        raise MethodNotAllowed("already registered: use PUT to update or DELETE to unregister")
    creds = Credentials.from_json(await read_json_object(request))
    _check_roles(partner, creds)
    partner, token_c = await _accept(ctx, partner, creds)
    log.info("ocpi.partner_registered", partner=partner.key, initiated_by="them")
    await ctx.registered(partner)
    return ok(our_credentials(ctx, token_c).to_json())


async def put_credentials(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    partner = partner_of(request)
    if not partner.registered:
        raise MethodNotAllowed("not registered: POST credentials first")
    creds = Credentials.from_json(await read_json_object(request))
    _check_roles(partner, creds)
    partner, token_c = await _accept(ctx, partner, creds)
    log.info("ocpi.partner_credentials_updated", partner=partner.key)
    return ok(our_credentials(ctx, token_c).to_json())


async def delete_credentials(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    partner = partner_of(request)
    if not partner.registered:
        raise MethodNotAllowed("not registered")
    await ctx.store.partners.unregister(partner.id)
    await ctx.client.forget(partner.key)
    log.info("ocpi.partner_unregistered", partner=partner.key, by="them")
    return ok()


def add_routes(app: web.Application, ctx: RoamingContext) -> None:
    app.router.add_get(CREDENTIALS_PATH, get_credentials)
    app.router.add_post(CREDENTIALS_PATH, post_credentials)
    app.router.add_put(CREDENTIALS_PATH, put_credentials)
    app.router.add_delete(CREDENTIALS_PATH, delete_credentials)


# ---------------------------------------------------------------------- our side


async def invite(ctx: RoamingContext, country_code: str, party_id: str) -> tuple[Partner, str]:
    """A fresh TOKEN_A for a partner who will register with us (printed once, kept hashed)."""
    if len(country_code) != 2 or not 1 <= len(party_id) <= 3:
        raise ValueError("country_code must be 2 characters and party_id 1 to 3")
    token_a = auth.generate_token()
    key = party_key(country_code, party_id)
    partner = await ctx.store.partners.create_invited(
        key,
        country_code.upper(),
        party_id.upper(),
        auth.hash_token(token_a),
        kind=TokenKind.A,
        initiated_by="them",
    )
    log.info("ocpi.partner_invited", partner=key)
    return partner, token_a


async def register_with(ctx: RoamingContext, versions_url: str, token_a: str) -> Partner:
    """We initiate: their versions/details with TOKEN_A, POST ours with a new TOKEN_B."""
    host = urlsplit(versions_url).netloc or versions_url
    peer = Peer(f"register:{host}", token_a)
    try:
        details, encoding = await fetch_partner_api(ctx, peer, versions_url)
    except RoamingError as exc:
        raise RegistrationError(f"could not read the partner's versions: {exc.message}") from exc
    except (UnsupportedVersion, NoMatchingEndpoints) as exc:
        raise RegistrationError(exc.message) from exc
    cred_ep = details.find(ModuleID.CREDENTIALS.value)
    if cred_ep is None:
        raise RegistrationError("partner version details lack the credentials endpoint")
    token_b = auth.generate_token()
    provisional = await ctx.store.partners.create_invited(
        f"PENDING-{uuid.uuid4().hex[:12]}",
        "",
        "",
        auth.hash_token(token_b),
        kind=TokenKind.B,
        initiated_by="us",
        versions_url=versions_url,
    )
    try:
        theirs = await ctx.client.send_credentials(
            "POST", Peer(peer.key, token_a, encoding), cred_ep.url, our_credentials(ctx, token_b)
        )
    except RoamingError as exc:
        await ctx.store.partners.delete_partner_row(provisional.id)
        raise RegistrationError(f"credentials POST failed: {exc.message}") from exc
    assert theirs is not None
    role = next((r for r in theirs.roles if r.role is Role.EMSP), theirs.roles[0])
    partner = await ctx.store.partners.complete_registration(
        provisional.id,
        key=role.key,
        roles=theirs.roles,
        token_in_hash=auth.hash_token(token_b),
        token_in_kind=TokenKind.B,
        token_out=theirs.token,
        auth_encoding=encoding,
        versions_url=theirs.url,
        version=details.version,
        endpoints=details.endpoints,
    )
    await ctx.client.forget(peer.key)
    log.info("ocpi.partner_registered", partner=partner.key, initiated_by="us")
    await ctx.registered(partner)
    return partner


async def rotate(ctx: RoamingContext, partner: Partner) -> Partner:
    """PUT fresh credentials to the partner: new token for them, theirs replaces ours."""
    if not partner.registered:
        raise RegistrationError(f"partner {partner.key} is not registered")
    url = partner.endpoint(ModuleID.CREDENTIALS)
    if url is None:
        raise RegistrationError(f"partner {partner.key} has no credentials endpoint")
    new_token = auth.generate_token()
    new_hash = auth.hash_token(new_token)
    # They may call our versions with the new token while processing the PUT.
    await ctx.store.partners.set_next_token(partner.id, new_hash)
    try:
        theirs = await ctx.client.send_credentials(
            "PUT", partner, url, our_credentials(ctx, new_token)
        )
        assert theirs is not None
        peer = Peer(partner.key, theirs.token, partner.auth_encoding)
        details, encoding = await fetch_partner_api(ctx, peer, theirs.url)
    except (RoamingError, UnsupportedVersion, NoMatchingEndpoints) as exc:
        await ctx.store.partners.set_next_token(partner.id, None)
        message = getattr(exc, "message", str(exc))
        raise RegistrationError(f"credentials PUT failed: {message}") from exc
    kind = partner.token_in_kind if partner.token_in_kind is not TokenKind.A else TokenKind.C
    updated = await ctx.store.partners.complete_registration(
        partner.id,
        roles=theirs.roles,
        token_in_hash=new_hash,
        token_in_kind=kind or TokenKind.C,
        token_out=theirs.token,
        auth_encoding=encoding,
        versions_url=theirs.url,
        version=details.version,
        endpoints=details.endpoints,
    )
    log.info("ocpi.partner_credentials_rotated", partner=partner.key)
    return updated


async def unregister(ctx: RoamingContext, partner: Partner, *, notify: bool = True) -> str | None:
    """Stop the partner's tokens now; tell them with DELETE when registered.

    Returns the remote error message if the DELETE failed (local unregistering stands).
    """
    remote_error = None
    url = partner.endpoint(ModuleID.CREDENTIALS)
    if notify and partner.status is PartnerStatus.REGISTERED and url is not None:
        try:
            await ctx.client.send_credentials("DELETE", partner, url, None)
        except RoamingError as exc:
            remote_error = exc.message
            log.warning("ocpi.unregister_remote_failed", partner=partner.key, error=exc.message)
    await ctx.store.partners.unregister(partner.id)
    await ctx.client.forget(partner.key)
    log.info("ocpi.partner_unregistered", partner=partner.key, by="us")
    return remote_error
