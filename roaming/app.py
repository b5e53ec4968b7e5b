"""The OCPI aiohttp application factory: routes, auth middleware, envelope on every answer.

Why a module list: each OCPI module (tokens here; locations, sessions, ... by others)
is an :class:`OcpiModule` that adds its own routes; the version-details document is
built from the same list, so what we advertise is exactly what we serve.

Authentication (middleware, before any handler):

* no/unknown ``Authorization`` → 401 (envelope);
* a partner still in the handshake (TOKEN_A, or our TOKEN_B before their answer) may
  only reach versions, version details and credentials → 401 elsewhere;
* otherwise the :class:`~roaming.partners.Partner` is attached as ``request["partner"]``.

``X-Request-ID`` / ``X-Correlation-ID`` are echoed (generated when absent) on every
response, errors included, and bound to the log context.

Request bodies with ``Content-Encoding`` are decoded by their own middleware (after
authentication), not by aiohttp's parser: see :mod:`roaming.content_coding`.

Nothing escapes as a bare aiohttp error page: the outermost middleware answers any
exception that got past the others with an OCPI envelope (HTTP 500, status 3000) and
logs it; every refusal the modules raise is an envelope from the OCPI middleware.

Routing headers (``OCPI-from-*`` / ``OCPI-to-*``, OCPI 2.2.1 message routing: mandatory on
requests and responses of functional modules) are set on every response of a functional
module, errors included, swapped relative to the request, so a hub can route our answer
back: the request's TO is our FROM, its FROM our TO. A request without them (peer to
peer) gets ours as FROM and the authenticated partner's as TO. Versions and credentials
answers carry none (the spec forbids them there).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from aiohttp import web

from roaming import auth, content_coding, credentials, versions
from roaming.context import (
    CORRELATION_ID,
    CTX_KEY,
    MODULES_KEY,
    PARTNER,
    PRESENTED,
    REQUEST_ID,
    OcpiModule,
    RoamingContext,
)
from roaming.envelope import (
    DECODED_BODY,
    BadRequestBody,
    OcpiError,
    StatusCode,
    Unauthorized,
    envelope,
    error_response,
    json_response,
)
from roaming.partners import PartnerStatus
from roaming.settings import CREDENTIALS_PATH, DETAILS_PATH, VERSIONS_PATH

log = structlog.get_logger("roaming.app")

CONFIG_PATHS = frozenset({VERSIONS_PATH, DETAILS_PATH, CREDENTIALS_PATH})

_ids_rng = random.Random()  # seeded from os.urandom
_UUID4_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)  # version and variant bits
_UUID4_BITS = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A random version-4 UUID string for a peer that sent no id.

    Why not ``uuid.uuid4()``: that reads os.urandom per call; a request id needs to be
    unique, not unguessable, and this is about half the cost.
    """
    bits = _ids_rng.getrandbits(128) & _UUID4_MASK | _UUID4_BITS
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ids(request: web.Request) -> tuple[str, str]:
    headers = request.headers
    rid = headers.get("X-Request-ID") or new_request_id()
    cid = headers.get("X-Correlation-ID") or new_request_id()
    return rid, cid


async def _authenticate(request: web.Request, ctx: RoamingContext) -> None:
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("missing Authorization header (expected 'Token <token>')")
    partner = None
    presented = None
    for cand, token_hash in auth.hashed_candidates(header):
        partner = await ctx.store.partners.partner_by_token_hash(token_hash)
        if partner is not None:
            presented = cand
            break
    if partner is None or presented is None:
        raise Unauthorized("unknown credentials token")
    if partner.status is PartnerStatus.UNREGISTERED:
        raise Unauthorized("credentials token is no longer valid")
    if not partner.registered and request.path.rstrip("/") not in CONFIG_PATHS:
        raise Unauthorized(
            "this token may only be used for versions and credentials until registration completes"
        )
    request[PARTNER] = partner
    request[PRESENTED] = presented


@web.middleware
async def _ocpi_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    rid, cid = _ids(request)
    request[REQUEST_ID], request[CORRELATION_ID] = rid, cid
    ctx = request.app[CTX_KEY]
    with structlog.contextvars.bound_contextvars(request_id=rid, correlation_id=cid):
        try:
            await _authenticate(request, ctx)
            resp = await handler(request)
        except Exception as exc:
            resp, unexpected = error_response(exc)
            if unexpected:
                log.exception("ocpi.handler_error", method=request.method, path=request.path)
            elif resp.status >= 400 or isinstance(exc, Exception):
                log.info(
                    "ocpi.refused",
                    method=request.method,
                    path=request.path,
                    http_status=resp.status,
                    reason=str(exc)[:200],
                )
    resp.headers["X-Request-ID"] = rid
    resp.headers["X-Correlation-ID"] = cid
    return resp


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever escaped the OCPI middleware (a bug there) is still an OCPI envelope."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # aiohttp's own answers (never raised past the OCPI middleware today)
    except Exception:
        log.exception("ocpi.unhandled_error", method=request.method, path=request.path)
        body = envelope(None, StatusCode.SERVER_ERROR, "internal server error")
        return json_response(body, status=500)


class _UnsupportedEncoding(OcpiError):
    status_code = StatusCode.INVALID_PARAMETERS
    http_status = 415


class _DecodedTooLarge(OcpiError):
    status_code = StatusCode.INVALID_PARAMETERS
    http_status = 413


@web.middleware
async def _content_encoding(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Decode a ``Content-Encoding`` body once, for :func:`roaming.envelope.read_body`.

    Runs inside the OCPI middleware (after authentication, so a stranger's body is never
    inflated), whose error table answers the refusals raised here.
    """
    header = request.headers.get("Content-Encoding")
    if header is None:
        return await handler(request)
    try:
        applied = content_coding.codings(header)
    except content_coding.UnsupportedCoding as exc:
        raise _UnsupportedEncoding(str(exc)) from None
    if applied:
        raw = await request.read()
        try:
            request[DECODED_BODY] = content_coding.decode(raw, applied, request.client_max_size)
        except content_coding.UndecodableBody as exc:
            raise BadRequestBody(str(exc)) from None
        except content_coding.DecodedTooLarge as exc:
            raise _DecodedTooLarge(str(exc)) from None
    return await handler(request)


# aiohttp must not decode bodies itself (see roaming.content_coding for why).
SERVER_ARGS = {"auto_decompress": False}

FROM_CC, FROM_PID = "OCPI-from-country-code", "OCPI-from-party-id"
TO_CC, TO_PID = "OCPI-to-country-code", "OCPI-to-party-id"
NOT_ROUTED = frozenset({"credentials", "versions", "hubclientinfo"})


def _pair(headers: Mapping[str, str], cc: str, pid: str) -> tuple[str, str] | None:
    country, party = headers.get(cc, "").strip(), headers.get(pid, "").strip()
    return (country, party) if country and party else None


def response_routing(
    request_headers: Mapping[str, str],
    ours: tuple[str, str],
    partner: tuple[str, str] | None,
) -> dict[str, str]:
    """The routing headers of our answer: the request's swapped; where the request has
    none, FROM is ``ours`` and TO the authenticated ``partner`` (omitted when unknown)."""
    sender = _pair(request_headers, TO_CC, TO_PID) or ours
    receiver = _pair(request_headers, FROM_CC, FROM_PID) or partner
    out = {FROM_CC: sender[0], FROM_PID: sender[1]}
    if receiver is not None:
        out[TO_CC], out[TO_PID] = receiver
    return out


def _functional(request: web.Request) -> bool:
    """Whether the request is for a functional module we serve (by the module's path)."""
    path = request.path.rstrip("/")
    for module in request.app[MODULES_KEY]:
        if str(module.identifier) in NOT_ROUTED:
            continue
        base = module.path.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return True
    return False


@web.middleware
async def _routing_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Routing headers on every answer of a functional module (see the module docstring).

    Outside the OCPI middleware, so it also sees the error envelopes that one makes."""
    resp = await handler(request)
    if resp.prepared or not _functional(request):
        return resp
    settings = request.app[CTX_KEY].settings
    partner = request.get(PARTNER)
    resp.headers.update(
        response_routing(
            request.headers,
            (settings.country_code, settings.party_id),
            (partner.country_code, partner.party_id) if partner is not None else None,
        )
    )
    return resp


def create_ocpi_app(ctx: RoamingContext, modules: Sequence[OcpiModule]) -> web.Application:
    """The OCPI server application: versions, credentials and every module in ``modules``."""
    app = web.Application(
        middlewares=[_last_resort, _routing_middleware, _ocpi_middleware, _content_encoding],
        client_max_size=4 * 1024 * 1024,
        handler_args=SERVER_ARGS,
    )
    app[CTX_KEY] = ctx
    app[MODULES_KEY] = tuple(modules)
    versions.add_routes(app, ctx)
    credentials.add_routes(app, ctx)
    for module in modules:
        module.add_routes(app, ctx)
    return app
