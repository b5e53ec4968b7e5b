"""Every outgoing OCPI call: authorize, token pages, credentials, and generic pushes.

Why one client: timeouts, the per-partner connection limit, the Authorization header
encoding, request/correlation ids and the mapping of failures to typed errors are the
same for every module; owning them once is what keeps "unreachable" meaning one thing
for the authorization fallback.

Error tree (all carry ``partner`` and ``url``)::

    RoamingError
    ├── PartnerUnreachable  timeout, connection error, HTTP 5xx, hub 4002/4003
    ├── PartnerRejected     a definite non-success answer (HTTP 4xx, OCPI 2xxx/3xxx/4000/4001);
    │                       carries ``http_status`` and ``status_code`` (None without envelope)
    └── InvalidResponse     a 2xx body that is not JSON or not an OCPI envelope

A 401 from the partner is ``PartnerRejected`` (a configuration error), never unreachable.

Connection pools: one ``aiohttp.ClientSession`` per partner key, each with a
``TCPConnector(limit=connection_limit_per_partner)``, so a slow partner can exhaust
only its own pool.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import orjson
import structlog

from roaming import auth, http11
from roaming.envelope import StatusCode
from roaming.models import (
    AuthorizationInfo,
    Credentials,
    InterfaceRole,
    LocationReferences,
    ModuleID,
    Token,
    ValidationError,
    Version,
    VersionDetails,
)

log = structlog.get_logger("roaming.client")


class RoamingError(Exception):
    def __init__(self, message: str, *, partner: str = "", url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.partner = partner
        self.url = url


class PartnerUnreachable(RoamingError):
    """No definite answer: the partner's view is unknown (fallback rules apply)."""


class PartnerRejected(RoamingError):
    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        status_code: int | None,
        partner: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message, partner=partner, url=url)
        self.http_status = http_status
        self.status_code = status_code


class InvalidResponse(RoamingError):
    """The partner answered, but not in OCPI: treat as a broken partner, not as a verdict."""


class CallTarget(Protocol):
    """Whom we call and how we authenticate: a :class:`~roaming.partners.Partner` fits."""

    @property
    def key(self) -> str: ...
    @property
    def token_out(self) -> str | None: ...
    @property
    def auth_encoding(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Peer:
    """A call target that is not (yet) a stored partner: registration with TOKEN_A."""

    key: str
    token_out: str | None = field(repr=False)
    auth_encoding: str = auth.BASE64


@dataclass(frozen=True, slots=True)
class OcpiResponse:
    http_status: int
    status_code: int
    status_message: str | None
    data: Any
    headers: Mapping[str, str]
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownToken:
    """The eMSP does not know the token (HTTP 404, or 200 with status 2004): a definite no."""

    http_status: int
    status_code: int | None


AuthorizeResult = AuthorizationInfo | UnknownToken


@dataclass(frozen=True, slots=True)
class TokenPage:
    """One page of a token list: the valid tokens, and the items that failed to parse."""

    tokens: list[Token]
    invalid: list[ValidationError]
    total_count: int | None
    next_url: str | None


SessionFactory = Callable[[aiohttp.TCPConnector], aiohttp.ClientSession]


def _default_session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
    )


# Per-request timers: the whole call runs under one ``asyncio.timeout``; aiohttp's own
# total/connect/read timers on top of it were three more timer handles per request.
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None)


class _Ids:
    """Request/correlation ids: UUID-shaped, unique per process (a random prefix drawn
    once, then a counter), without an ``os.urandom`` read per id (uuid4 showed at ~3 %
    of the server's main thread on the remote Authorize path)."""

    def __init__(self) -> None:
        head = uuid.uuid4().hex
        self._prefix = f"{head[:8]}-{head[8:12]}-{head[12:16]}-{head[16:20]}-"
        self._n = itertools.count(int(head[20:], 16))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._n) & 0xFFFFFFFFFFFF:012x}"


new_id = _Ids()


def join_url(base: str, *segments: str) -> str:
    """``base`` + percent-encoded segments, joined with exactly one ``/`` each."""
    out = base.rstrip("/")
    for seg in segments:
        out += "/" + quote(seg, safe="")
    return out


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        url_part, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            url = url_part.strip()
            if url.startswith("<") and url.endswith(">"):
                return url[1:-1]
    return None


class OcpiClient:
    """Created once per process; ``close()`` releases every partner's pool."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        connection_limit_per_partner: int = 512,
        session_factory: SessionFactory | None = None,
        from_country_code: str | None = None,
        from_party_id: str | None = None,
        lean_authorize: bool | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.limit = connection_limit_per_partner
        self._factory = session_factory or _default_session
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        # Real-time authorize over roaming.http11 (see there why); a caller that injects
        # its own aiohttp session factory gets aiohttp for every call, authorize included.
        self.lean_authorize = session_factory is None if lean_authorize is None else lean_authorize
        self._pools: dict[tuple[str, str, str, int], http11.Pool] = {}
        self._tls: ssl.SSLContext | None = None
        self._auth_values: dict[tuple[str, str], str] = {}
        self.from_country_code = from_country_code
        self.from_party_id = from_party_id
        self._closed = False

    def _auth_header(self, token: str, encoding: str) -> str:
        """The Authorization value, encoded once per (token, encoding) and kept in memory
        only (tokens change on credentials updates; the map is small and bounded)."""
        key = (token, encoding)
        value = self._auth_values.get(key)
        if value is None:
            if len(self._auth_values) > 1000:
                self._auth_values.clear()
            value = self._auth_values[key] = auth.header_value(token, encoding)
        return value

    def _session(self, key: str) -> aiohttp.ClientSession:
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=self.limit)
            session = self._factory(connector)
            self._sessions[key] = session
        return session

    def _pool(self, key: str, scheme: str, host: str, port: int) -> http11.Pool:
        pool = self._pools.get((key, scheme, host, port))
        if pool is None:
            tls = None
            if scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                tls = self._tls
            pool = http11.Pool(host, port, tls=tls, limit=self.limit)
            self._pools[(key, scheme, host, port)] = pool
        return pool

    async def close(self) -> None:
        self._closed = True
        pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            p.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            await s.close()

    async def forget(self, key: str) -> None:
        """Drop a partner's pool (after unregistering it)."""
        for pool_key in [k for k in self._pools if k[0] == key]:
            self._pools.pop(pool_key).close()
        session = self._sessions.pop(key, None)
        if session is not None:
            await session.close()

    # ------------------------------------------------------------------ generic calls

    async def request(
        self,
        method: str,
        target: CallTarget,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        request_id: str | None = None,
        correlation_id: str | None = None,
        routing: Mapping[str, str] | None = None,
        allow_statuses: frozenset[int] = frozenset(),
        lean: bool = False,
    ) -> OcpiResponse:
        """One OCPI call; returns the parsed envelope on OCPI success (1xxx).

        ``lean`` (real-time authorize only) sends a POST through :mod:`roaming.http11`
        instead of aiohttp; the response's header names are then lower-case.

        ``allow_statuses`` lists HTTP statuses returned as-is instead of raising (e.g.
        404 for authorize); their body may then be anything, ``body`` is ``{}`` if not JSON.
        """
        if target.token_out is None:
            raise PartnerRejected(
                "no token to call this partner (not registered)",
                http_status=0,
                status_code=None,
                partner=target.key,
                url=url,
            )
        headers = {
            "Authorization": self._auth_header(target.token_out, target.auth_encoding),
            "X-Request-ID": request_id or new_id(),
            "X-Correlation-ID": correlation_id or new_id(),
        }
        if routing:
            headers.update(routing)
        data: bytes | None = None
        if json is not None:
            data = orjson.dumps(json)
            headers["Content-Type"] = "application/json"
        timeout = self.timeout_s if timeout_s is None else timeout_s
        origin = self._lean_target(method, url, params) if lean and self.lean_authorize else None
        if origin is not None:
            return await self._lean_request(
                method, target, url, origin, headers, data, timeout, allow_statuses
            )
        session = self._session(target.key)
        try:
            async with asyncio.timeout(timeout):
                async with session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=_NO_AIOHTTP_TIMEOUT,
                    allow_redirects=False,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    resp_headers = dict(resp.headers)
        except TimeoutError:
            raise PartnerUnreachable(
                f"{method} timed out after {timeout:g} s", partner=target.key, url=url
            ) from None
        except aiohttp.ClientError as exc:
            raise PartnerUnreachable(
                f"{method} failed: {type(exc).__name__}: {exc}", partner=target.key, url=url
            ) from None
        return self._interpret(method, target.key, url, status, raw, resp_headers, allow_statuses)

    @staticmethod
    def _lean_target(
        method: str, url: str, params: Mapping[str, str] | None
    ) -> tuple[str, str, int, str] | None:
        """(scheme, host, port, path?query) when this call may take roaming.http11: a
        POST (real-time authorize) to a plain http/https URL without extra params."""
        if method != "POST" or params:
            return None
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("http", "https") or "@" in rest.split("/", 1)[0]:
            return None
        hostport, slash, path = rest.partition("/")
        target = "/" + path if slash else "/"
        if "#" in target or " " in target:
            return None
        host, port = hostport, 443 if scheme == "https" else 80
        if hostport.startswith("["):  # [v6]:port
            close = hostport.find("]")
            host = hostport[1:close]
            if hostport[close + 1 : close + 2] == ":":
                port_text = hostport[close + 2 :]
                if not port_text.isdigit():
                    return None
                port = int(port_text)
        elif ":" in hostport:
            host, _, port_text = hostport.rpartition(":")
            if not port_text.isdigit():
                return None
            port = int(port_text)
        if not host:
            return None
        return scheme, host, port, target

    async def _lean_request(
        self,
        method: str,
        target: CallTarget,
        url: str,
        lean: tuple[str, str, int, str],
        headers: dict[str, str],
        data: bytes | None,
        timeout: float,
        allow_statuses: frozenset[int],
    ) -> OcpiResponse:
        scheme, host, port, path = lean
        pool = self._pool(target.key, scheme, host, port)
        try:
            async with asyncio.timeout(timeout):
                resp = await pool.request(method, path, list(headers.items()), data)
        except TimeoutError:
            raise PartnerUnreachable(
                f"{method} timed out after {timeout:g} s", partner=target.key, url=url
            ) from None
        except http11.HttpError as exc:
            raise PartnerUnreachable(
                f"{method} failed: {type(exc).__name__}: {exc}", partner=target.key, url=url
            ) from None
        return self._interpret(
            method, target.key, url, resp.status, resp.body, resp.headers, allow_statuses
        )

    @staticmethod
    def _interpret(
        method: str,
        key: str,
        url: str,
        status: int,
        raw: bytes,
        headers: dict[str, str],
        allow_statuses: frozenset[int],
    ) -> OcpiResponse:
        body: Any
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        envelope_ok = (
            isinstance(body, dict)
            and isinstance(body.get("status_code"), int)
            and not isinstance(body.get("status_code"), bool)
        )
        code = body["status_code"] if envelope_ok else None
        message = body.get("status_message") if envelope_ok else None
        if status in allow_statuses:
            return OcpiResponse(
                status,
                code or 0,
                message,
                body.get("data") if envelope_ok else None,
                headers,
                body if envelope_ok else {},
            )
        if status >= 500:
            raise PartnerUnreachable(
                f"{method} answered HTTP {status}" + (f" ({code}: {message})" if code else ""),
                partner=key,
                url=url,
            )
        if code in (StatusCode.HUB_TIMEOUT, StatusCode.HUB_CONNECTION_PROBLEM):
            raise PartnerUnreachable(
                f"hub reports the receiver unreachable ({code}: {message})", partner=key, url=url
            )
        if status >= 300:
            raise PartnerRejected(
                f"{method} answered HTTP {status}" + (f" ({code}: {message})" if code else ""),
                http_status=status,
                status_code=code,
                partner=key,
                url=url,
            )
        if not envelope_ok:
            raise InvalidResponse(
                f"{method} answered HTTP {status} without an OCPI envelope", partner=key, url=url
            )
        assert code is not None  # envelope_ok
        if not 1000 <= code < 2000:
            raise PartnerRejected(
                f"{method} answered OCPI status {code}: {message or ''}".rstrip(": "),
                http_status=status,
                status_code=code,
                partner=key,
                url=url,
            )
        return OcpiResponse(status, code, message, body.get("data"), headers, body)

    async def get(self, target: CallTarget, url: str, **kw: Any) -> OcpiResponse:
        return await self.request("GET", target, url, **kw)

    async def put(self, target: CallTarget, url: str, json: Any, **kw: Any) -> OcpiResponse:
        return await self.request("PUT", target, url, json=json, **kw)

    async def patch(self, target: CallTarget, url: str, json: Any, **kw: Any) -> OcpiResponse:
        return await self.request("PATCH", target, url, json=json, **kw)

    async def post(self, target: CallTarget, url: str, json: Any = None, **kw: Any) -> OcpiResponse:
        return await self.request("POST", target, url, json=json, **kw)

    async def delete(self, target: CallTarget, url: str, **kw: Any) -> OcpiResponse:
        return await self.request("DELETE", target, url, **kw)

    # ------------------------------------------------------------------ configuration

    async def get_versions(self, target: CallTarget, url: str) -> list[Version]:
        resp = await self.get(target, url)
        try:
            return Version.list_from_json(resp.data)
        except ValidationError as exc:
            raise InvalidResponse(f"versions: {exc}", partner=target.key, url=url) from None

    async def get_version_details(self, target: CallTarget, url: str) -> VersionDetails:
        resp = await self.get(target, url)
        try:
            return VersionDetails.from_json(resp.data)
        except ValidationError as exc:
            raise InvalidResponse(f"version details: {exc}", partner=target.key, url=url) from None

    async def send_credentials(
        self, method: str, target: CallTarget, url: str, credentials: Credentials | None
    ) -> Credentials | None:
        """POST/PUT our credentials (returns theirs) or DELETE (returns None)."""
        body = credentials.to_json() if credentials is not None else None
        resp = await self.request(method, target, url, json=body)
        if method == "DELETE":
            return None
        try:
            return Credentials.from_json(resp.data)
        except ValidationError as exc:
            raise InvalidResponse(f"credentials: {exc}", partner=target.key, url=url) from None

    # ------------------------------------------------------------------ tokens

    async def authorize(
        self,
        partner: Any,
        uid: str,
        token_type: str,
        location: LocationReferences | None,
        deadline_s: float,
        request_id: str | None = None,
        correlation_id: str | None = None,
    ) -> AuthorizeResult:
        """Real-time authorization at the eMSP's tokens SENDER, within ``deadline_s``.

        Returns the AuthorizationInfo exactly as sent, or :class:`UnknownToken`. Raises
        ``PartnerUnreachable`` (no answer in time, 5xx, hub 4002/4003), ``InvalidResponse``
        or ``PartnerRejected`` (401, 2001, 2002, ...).
        """
        base = partner.endpoint(ModuleID.TOKENS, InterfaceRole.SENDER)
        if base is None:
            raise PartnerRejected(
                "partner has no tokens SENDER endpoint",
                http_status=0,
                status_code=None,
                partner=partner.key,
            )
        url = join_url(base, uid, "authorize") + "?type=" + quote(token_type, safe="")
        resp = await self.request(
            "POST",
            partner,
            url,
            json=location.to_json() if location is not None else None,
            timeout_s=deadline_s,
            request_id=request_id,
            correlation_id=correlation_id,
            routing=self._routing(partner),
            allow_statuses=frozenset({404}),
            lean=True,
        )
        if resp.http_status == 404:
            return UnknownToken(404, resp.status_code or None)
        if resp.status_code == StatusCode.UNKNOWN_TOKEN:
            return UnknownToken(resp.http_status, resp.status_code)
        try:
            return AuthorizationInfo.from_json(resp.data)
        except ValidationError as exc:
            raise InvalidResponse(f"authorize: {exc}", partner=partner.key, url=url) from None

    def _routing(self, partner: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.from_country_code and self.from_party_id:
            out["OCPI-from-country-code"] = self.from_country_code
            out["OCPI-from-party-id"] = self.from_party_id
        out["OCPI-to-country-code"] = partner.country_code
        out["OCPI-to-party-id"] = partner.party_id
        return out

    async def iter_token_pages(
        self,
        partner: Any,
        date_from: str | None = None,
        page_size: int = 1000,
        *,
        timeout_s: float | None = None,
    ) -> AsyncIterator[TokenPage]:
        """Yield the eMSP's token list page by page, following ``Link`` verbatim.

        Only one page is held at a time. Invalid items are reported in the page, not
        raised, so one broken token does not stop a sync; a failed page raises.
        """
        base = partner.endpoint(ModuleID.TOKENS, InterfaceRole.SENDER)
        if base is None:
            raise PartnerRejected(
                "partner has no tokens SENDER endpoint",
                http_status=0,
                status_code=None,
                partner=partner.key,
            )
        params: dict[str, str] | None = {"offset": "0", "limit": str(page_size)}
        assert params is not None
        if date_from is not None:
            params["date_from"] = date_from
        url: str | None = base
        routing = self._routing(partner)
        while url is not None:
            resp = await self.request(
                "GET", partner, url, params=params, timeout_s=timeout_s, routing=routing
            )
            data = resp.data
            if not isinstance(data, list):
                raise InvalidResponse(
                    "token list: data is not a list", partner=partner.key, url=url
                )
            tokens: list[Token] = []
            invalid: list[ValidationError] = []
            for i, item in enumerate(data):
                try:
                    tokens.append(Token.from_json(item, f"data[{i}]."))
                except ValidationError as exc:
                    invalid.append(exc)
            total = resp.headers.get("X-Total-Count")
            next_url = _next_link(resp.headers.get("Link"))
            yield TokenPage(
                tokens=tokens,
                invalid=invalid,
                total_count=int(total) if total and total.isdigit() else None,
                next_url=next_url,
            )
            url, params = next_url, None
