"""The lean HTTP stack of the OCPI client: :mod:`roaming.http11` pools for authorize.

Why a fallback: the lean pool serves only a POST to a plain http(s) URL without extra
query parameters (what real-time authorize sends); anything else it hands, unchanged,
to the general stack it wraps, so the client can route every authorize call here
without checking each URL itself.

Partner URLs (:mod:`roaming.urlcheck`): checked before the request, and each pool checks
the addresses it resolved before it connects. The check's verdict depends only on the
URL's scheme and authority, so it is kept per (scheme, authority): ``urlsplit`` and the
address parse cost ~8 µs a call in isolation and ~7 % of the server's samples on the
remote authorize path at 1,000 calls/s.
"""

from __future__ import annotations

import ssl

from roaming import http11
from roaming.transport import Answer, Call, Transport, failed, refused
from roaming.urlcheck import UnsafeUrl, UrlPolicy

Origin = tuple[str, str, int]  # scheme, host, port


def lean_target(call: Call) -> tuple[Origin, str] | None:
    """(origin, path?query) when ``call`` may take the lean pool, else None."""
    if call.method != "POST" or call.params:
        return None
    scheme, sep, rest = call.url.partition("://")
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
    return (scheme, host, port), target


class Http11Transport:
    """:class:`~roaming.transport.Transport` over one :class:`http11.Pool` per partner
    and origin; calls it cannot serve go to ``fallback``."""

    def __init__(self, limit: int, fallback: Transport, policy: UrlPolicy | None = None) -> None:
        self.limit = limit
        self.fallback = fallback
        self.policy = policy or UrlPolicy()
        self._pools: dict[tuple[str, Origin], http11.Pool] = {}
        self._tls: ssl.SSLContext | None = None
        self._passed: set[tuple[str, str]] = set()  # (scheme, authority) checked and allowed

    def _pool(self, key: str, origin: Origin) -> http11.Pool:
        pool = self._pools.get((key, origin))
        if pool is None:
            scheme, host, port = origin
            tls = None
            if scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                tls = self._tls
            pool = http11.Pool(
                host, port, tls=tls, limit=self.limit, address_check=self.policy.addresses_refusal
            )
            self._pools[(key, origin)] = pool
        return pool

    async def send(self, call: Call) -> Answer:
        lean = lean_target(call)
        if lean is None:
            return await self.fallback.send(call)
        origin, path = lean
        try:
            self._check(call.url, origin[0])
        except UnsafeUrl as exc:
            raise refused(call, str(exc)) from None
        pool = self._pool(call.key, origin)
        try:
            resp = await pool.request(call.method, path, list(call.headers.items()), call.data)
        except http11.Refused as exc:
            raise refused(call, str(exc)) from None
        except http11.HttpError as exc:
            raise failed(call, exc, exc.errno) from None
        return Answer(resp.status, resp.headers, resp.body)

    def _check(self, url: str, scheme: str) -> None:
        """:meth:`UrlPolicy.check_url` on ``url``, skipped when a URL with the same scheme
        and authority (the text between ``://`` and the first ``/``, ``?`` or ``#``: all
        the check reads) passed before. Only passes are kept: a refusal is checked and
        worded afresh each time, naming its own URL. Bounded; partners' endpoints share a
        few authorities."""
        start = len(scheme) + 3
        end = len(url)
        for sep in "/?#":
            at = url.find(sep, start)
            if 0 <= at < end:
                end = at
        key = (scheme, url[start:end])
        if key in self._passed:
            return
        self.policy.check_url(url)
        if len(self._passed) >= 1024:
            self._passed.clear()
        self._passed.add(key)

    async def forget(self, key: str) -> None:
        """Drop this partner's lean pools (the fallback is the owner's to forget)."""
        for pool_key in [k for k in self._pools if k[0] == key]:
            self._pools.pop(pool_key).close()

    async def close(self) -> None:
        """Close the lean pools (the fallback is the owner's to close)."""
        pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            p.close()
