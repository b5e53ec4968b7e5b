"""The one interface both HTTP stacks of the OCPI client serve: a call in, an answer out.

Why two stacks behind one interface: real-time authorize is the one hot outgoing call
and goes through the lean HTTP/1.1 stack (:mod:`roaming.transport_http11`, see
:mod:`roaming.http11` for the measurement); every other call (token pages, credentials,
pushes) keeps aiohttp (:mod:`roaming.transport_aiohttp`). Neither can serve alone
without a loss: aiohttp for authorize loses the measured main-thread share, and the lean
stack sends no query parameters and accepts no compressed answers (token pages are the
large ones). The client picks a stack per call; what a stack returns and raises is the
same.

A stack sends the request and reads the whole answer; it does not read the answer's
meaning (that is :mod:`roaming.answers`). It raises :class:`PartnerUnreachable` of kind
CONNECTION or TIMEOUT (from :func:`failed`), :class:`PartnerNotCallable` for a URL the
partner URL policy refuses (from :func:`refused`; :mod:`roaming.urlcheck`, checked on
the resolved addresses, no request sent), and lets ``TimeoutError`` through: the caller
bounds the whole exchange with one ``asyncio.timeout``.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from roaming.errors import ErrorKind, PartnerNotCallable, PartnerUnreachable


@dataclass(frozen=True, slots=True)
class Call:
    """One outgoing HTTP request, headers complete (auth, ids, routing)."""

    method: str
    key: str  # the partner key: each partner has its own connection pool
    url: str
    headers: dict[str, str]
    data: bytes | None = None
    params: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The partner's HTTP answer, body read completely."""

    status: int
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    async def send(self, call: Call) -> Answer:
        """The answer to ``call``; raises :class:`PartnerUnreachable` (see module doc)."""
        ...

    async def forget(self, key: str) -> None:
        """Drop the connections kept for partner ``key`` (after unregistering it)."""
        ...

    async def close(self) -> None:
        """Release every connection; the transport is not used afterwards."""
        ...


def failed(call: Call, exc: BaseException, os_errno: int | None) -> PartnerUnreachable:
    """No usable answer below HTTP (refused, reset, closed early, not HTTP).

    ``os_errno`` is the socket error behind ``exc``, if any: a connection the kernel gave
    up on (``ETIMEDOUT``) is a timeout, like our own deadline, since both mean the
    partner did not answer in time.
    """
    timed_out = os_errno == errno.ETIMEDOUT
    return PartnerUnreachable(
        f"{call.method} failed: {type(exc).__name__}: {exc}",
        kind=ErrorKind.TIMEOUT if timed_out else ErrorKind.CONNECTION,
        partner=call.key,
        url=call.url,
    )


def refused(call: Call, reason: str) -> PartnerNotCallable:
    """A partner URL the URL policy refuses: nothing was sent, and nothing will be until
    the partner gives another URL (or the operator allows private addresses)."""
    return PartnerNotCallable(reason, partner=call.key, url=call.url)
