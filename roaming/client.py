"""Every outgoing OCPI call: authorize, token pages, versions, credentials, and pushes.

Why one client: timeouts, the per-partner connection limit, the Authorization header
encoding, request/correlation ids and the reading of answers are the same for every
module; owning them once is what keeps "unreachable" meaning one thing for the
authorization fallback. What can go wrong is :mod:`roaming.errors`; what an answer
means is :mod:`roaming.answers`.

Two HTTP stacks behind one interface (:mod:`roaming.transport`): real-time authorize
takes the lean HTTP/1.1 stack (:mod:`roaming.transport_http11`; at 1,000 authorizes a
second aiohttp's request machinery was the largest share of the CSMS main thread, see
:mod:`roaming.http11`); every other call takes aiohttp
(:mod:`roaming.transport_aiohttp`), which the lean stack cannot replace (query
parameters, compressed token pages).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from roaming import auth
from roaming.answers import OcpiResponse, read_answer
from roaming.envelope import StatusCode
from roaming.errors import (
    ErrorKind,
    InvalidResponse,
    PartnerNotCallable,
    PartnerUnreachable,
    RoamingError,
)
from roaming.models.authorization import AuthorizationInfo, LocationReferences
from roaming.models.credentials import Credentials
from roaming.models.enums import InterfaceRole, ModuleID
from roaming.models.fields import ValidationError
from roaming.models.tokens import Token
from roaming.models.versions import Version, VersionDetails
from roaming.observer import CallObserver, NoCallObserver
from roaming.transport import Call, Transport
from roaming.transport_aiohttp import AiohttpTransport, SessionFactory
from roaming.transport_http11 import Http11Transport
from roaming.urlcheck import UrlPolicy


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


class RemoteParty(CallTarget, Protocol):
    """A partner we call by module (tokens): a :class:`~roaming.partners.Partner` fits."""

    @property
    def country_code(self) -> str: ...
    @property
    def party_id(self) -> str: ...
    def endpoint(self, module: str | ModuleID, role: InterfaceRole | None = None) -> str | None:
        """The partner's URL for ``module`` in ``role``, if it has one."""
        ...


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
    """Created once per process; ``close()`` releases every partner's connections."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        connection_limit_per_partner: int = 512,
        session_factory: SessionFactory | None = None,
        from_country_code: str | None = None,
        from_party_id: str | None = None,
        lean_authorize: bool | None = None,
        observer: CallObserver | None = None,
        allow_private_urls: bool = False,
    ) -> None:
        self.timeout_s = timeout_s
        self.observer: CallObserver = observer or NoCallObserver()
        self.limit = connection_limit_per_partner
        # Every URL we call came from a partner: checked by both stacks (roaming.urlcheck).
        self.url_policy = UrlPolicy(allow_private=allow_private_urls)
        self._general = AiohttpTransport(self.limit, session_factory, self.url_policy)
        # Real-time authorize over the lean stack; a caller that injects its own aiohttp
        # session factory gets aiohttp for every call, authorize included.
        if session_factory is None if lean_authorize is None else lean_authorize:
            self._lean: Http11Transport | None = Http11Transport(
                self.limit, self._general, self.url_policy
            )
        else:
            self._lean = None
        self._auth_values: dict[tuple[str, str], str] = {}
        self.from_country_code = from_country_code
        self.from_party_id = from_party_id

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

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
        await self._general.close()

    async def forget(self, key: str) -> None:
        """Drop a partner's connections (after unregistering it)."""
        if self._lean is not None:
            await self._lean.forget(key)
        await self._general.forget(key)

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

        ``lean`` (real-time authorize only) sends a POST through the lean HTTP/1.1 stack
        instead of aiohttp; the response's header names are then lower-case.

        ``allow_statuses`` lists HTTP statuses returned as-is instead of raising (e.g.
        404 for authorize); their body may then be anything, ``body`` is ``{}`` if not JSON.
        """
        if target.token_out is None:
            raise PartnerNotCallable(
                "no token to call this partner (not registered)", partner=target.key, url=url
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
        call = Call(method, target.key, url, headers, data, params)
        transport: Transport = self._lean if lean and self._lean is not None else self._general
        timeout = self.timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        outcome = "ok"
        try:
            try:
                async with asyncio.timeout(timeout):
                    answer = await transport.send(call)
            except TimeoutError:
                raise PartnerUnreachable(
                    f"{method} timed out after {timeout:g} s",
                    kind=ErrorKind.TIMEOUT,
                    partner=target.key,
                    url=url,
                ) from None
            return read_answer(call, answer, allow_statuses)
        except RoamingError as exc:
            outcome = exc.kind.value
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            self.observer.call_finished(target.key, method, outcome, time.monotonic() - started)

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
        partner: RemoteParty,
        uid: str,
        token_type: str,
        location: LocationReferences | None,
        deadline_s: float,
        request_id: str | None = None,
        correlation_id: str | None = None,
    ) -> AuthorizeResult:
        """Real-time authorization at the eMSP's tokens SENDER, within ``deadline_s``.

        Returns the AuthorizationInfo exactly as sent, or :class:`UnknownToken`. Raises
        ``PartnerUnreachable`` (no answer in time, 5xx, hub 4002/4003), ``InvalidResponse``,
        ``PartnerRejected`` (401, 2001, 2002, ...) or ``PartnerNotCallable``.
        """
        base = partner.endpoint(ModuleID.TOKENS, InterfaceRole.SENDER)
        if base is None:
            raise PartnerNotCallable("partner has no tokens SENDER endpoint", partner=partner.key)
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

    def _routing(self, partner: RemoteParty) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.from_country_code and self.from_party_id:
            out["OCPI-from-country-code"] = self.from_country_code
            out["OCPI-from-party-id"] = self.from_party_id
        out["OCPI-to-country-code"] = partner.country_code
        out["OCPI-to-party-id"] = partner.party_id
        return out

    async def iter_token_pages(
        self,
        partner: RemoteParty,
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
            raise PartnerNotCallable("partner has no tokens SENDER endpoint", partner=partner.key)
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
