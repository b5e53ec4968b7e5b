"""Which partner-supplied URLs we may call, checked on the addresses we actually connect to.

Why: every URL we call comes from a partner (the versions URL in a credentials POST/PUT,
the endpoint URLs in version details, a CDR's ``Location``, a command's
``response_url``, a list's ``Link``). Called unchecked, a partner, or whoever holds a
TOKEN_A, could make the CPO send requests, with our credentials token in the header, to
cloud metadata services or internal hosts (server-side request forgery).

The rule (:class:`UrlPolicy`):

* only ``http`` and ``https`` URLs with a host;
* link-local and metadata addresses are always refused: ``169.254.0.0/16``,
  ``fe80::/10``, ``fd00:ec2::254`` (and the IPv4-mapped/compatible forms of each);
* loopback, private, shared (CGNAT), unspecified, multicast and reserved ranges are
  refused unless ``allow_private`` (``ocpi.allow_private_partner_urls``) is on, which a
  single-machine setup (the quickstart, the sandbox, the tests) needs;
* the check applies to the resolved addresses: a host name is resolved, every address
  it resolves to is checked, and the connection goes to a checked address (both HTTP
  stacks resolve through :meth:`UrlPolicy.resolve`), so DNS cannot swap in an internal
  address between check and connect;
* redirects are never followed (neither stack follows them).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALWAYS_REFUSED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class UnsafeUrl(OSError):
    """A partner URL we refuse to call; no request is sent. An ``OSError`` so that it can
    leave an aiohttp resolver; the client turns it into a clear refusal."""


def _plain(ip: IpAddress) -> IpAddress:
    """The IPv4 address inside an IPv4-mapped / 6to4-free form, else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        packed = ip.packed
        if packed[:12] == bytes(12) and packed[12:] != bytes(4) and int(ip) > 1:
            return ipaddress.IPv4Address(packed[12:])  # IPv4-compatible ::a.b.c.d
    return ip


def address_refusal(address: str | IpAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be called (None when it may)."""
    try:
        ip = _plain(ipaddress.ip_address(address))
    except ValueError:
        return f"{address!r} is not an IP address"
    if any(ip in net for net in _ALWAYS_REFUSED if net.version == ip.version):
        return f"{ip} is a link-local or cloud metadata address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address (ocpi.allow_private_partner_urls is off)"
    if ip.is_multicast or not ip.is_global:  # private, shared, reserved, unspecified...
        return f"{ip} is a private or reserved address (ocpi.allow_private_partner_urls is off)"
    return None


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """The partner URL rule; ``allow_private`` is ``ocpi.allow_private_partner_urls``."""

    allow_private: bool = False

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL we may call, before any resolution; raises
        :class:`UnsafeUrl` for another scheme, no host, or a refused literal address."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsafeUrl(f"refused partner URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UnsafeUrl(f"refused partner URL: scheme {scheme!r} is not http(s)")
        host = parts.hostname
        if not host:
            raise UnsafeUrl("refused partner URL: no host")
        if port is None:
            port = 443 if scheme == "https" else 80
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return scheme, host, port  # a name: checked once resolved
        reason = address_refusal(host, allow_private=self.allow_private)
        if reason is not None:
            raise UnsafeUrl(f"refused partner URL {_short(url)}: {reason}")
        return scheme, host, port

    def addresses_refusal(self, host: str, addresses: list[str]) -> str | None:
        """Why ``host`` may not be called, given every address it resolved to (None when
        it may). One bad address refuses the host: we would not know which one we get."""
        if not addresses:
            return f"refused partner host {host!r}: it resolves to no address"
        for address in addresses:
            reason = address_refusal(address.split("%", 1)[0], allow_private=self.allow_private)
            if reason is not None:
                return f"refused partner host {host!r}: resolves to {reason}"
        return None

    def check_addresses(self, host: str, addresses: list[str]) -> None:
        """:meth:`addresses_refusal` as an exception (:class:`UnsafeUrl`)."""
        reason = self.addresses_refusal(host, addresses)
        if reason is not None:
            raise UnsafeUrl(reason)

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC
    ) -> list[tuple[int, tuple[Any, ...]]]:
        """``(family, sockaddr)`` for ``host``, every address checked; raises UnsafeUrl
        (refused) or ``OSError`` (cannot resolve)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        self.check_addresses(host, [str(info[4][0]) for info in infos])
        return [(int(info[0]), tuple(info[4])) for info in infos]


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."
