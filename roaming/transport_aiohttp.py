"""The general HTTP stack of the OCPI client: aiohttp, one connection pool per partner.

Why aiohttp here: token pages, credentials and pushes need what a full client does
(query parameters, compressed answers); they are not hot enough for its
per-request cost to matter (see :mod:`roaming.http11` for the one call where it does).

Connection pools: one ``aiohttp.ClientSession`` per partner key, each with a
``TCPConnector(limit=limit)``, so a slow partner can exhaust only its own pool.

Partner URLs (:mod:`roaming.urlcheck`): the URL is checked before the request, and every
connector resolves host names through :class:`CheckedResolver`, so the address aiohttp
connects to is one the policy allowed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult

from roaming.transport import Answer, Call, failed, refused
from roaming.urlcheck import UnsafeUrl, UrlPolicy

SessionFactory = Callable[[aiohttp.TCPConnector], aiohttp.ClientSession]


def default_session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
    )


# Per-request timers: the whole call runs under the caller's one ``asyncio.timeout``;
# aiohttp's own total/connect/read timers on top of it were three more timer handles
# per request.
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None)


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver port over :meth:`UrlPolicy.resolve`: a host name that resolves
    to any refused address fails with :class:`UnsafeUrl` before a connection is made."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        out: list[ResolveResult] = []
        for fam, sockaddr in await self.policy.resolve(host, port, family):
            out.append(
                ResolveResult(
                    hostname=host,
                    host=str(sockaddr[0]),
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return out

    async def close(self) -> None:
        return None


class AiohttpTransport:
    """:class:`~roaming.transport.Transport` over aiohttp; redirects are never followed."""

    def __init__(
        self,
        limit: int,
        session_factory: SessionFactory | None = None,
        policy: UrlPolicy | None = None,
    ) -> None:
        self.limit = limit
        self.policy = policy or UrlPolicy()
        self._factory = session_factory or default_session
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, key: str) -> aiohttp.ClientSession:
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.limit,
                limit_per_host=self.limit,
                resolver=CheckedResolver(self.policy),
            )
            session = self._factory(connector)
            self._sessions[key] = session
        return session

    async def send(self, call: Call) -> Answer:
        try:
            self.policy.check_url(call.url)
        except UnsafeUrl as exc:
            raise refused(call, str(exc)) from None
        session = self._session(call.key)
        try:
            async with session.request(
                call.method,
                call.url,
                data=call.data,
                params=call.params,
                headers=call.headers,
                timeout=_NO_AIOHTTP_TIMEOUT,
                allow_redirects=False,
            ) as resp:
                return Answer(resp.status, dict(resp.headers), await resp.read())
        except TimeoutError:
            raise  # the caller's deadline (an aiohttp timeout error is one too)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, UnsafeUrl):
                raise refused(call, str(exc.os_error)) from None
            raise failed(call, exc, exc.errno) from None
        except aiohttp.ClientError as exc:
            raise failed(call, exc, exc.errno if isinstance(exc, OSError) else None) from None

    async def forget(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is not None:
            await session.close()

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            await s.close()
