"""A lean HTTP/1.1 keep-alive client for the one hot outgoing call: real-time authorize.

Why not aiohttp for this call: at 1,000 real-time Authorizes a second the aiohttp
request machinery (request/response objects, multidicts, URL objects, its own timers
and stream readers) was the largest share of the CSMS main thread, more than the OCPP
side of the same Authorize (py-spy, ``python -m tests.bench authorize``). An authorize
call is one small JSON POST and one small JSON answer on a kept-alive connection; that
needs an asyncio Protocol, one bytes write and a small response parser.

Scope, deliberately narrow: one origin per :class:`Pool`; requests carry a small body;
responses are framed by Content-Length, chunked transfer coding, or connection close;
redirects are not followed (OCPI calls never follow them); no compression is offered
(no Accept-Encoding), so none is received. Everything else of the OCPI client (token
pages, credentials, pushes) still goes through aiohttp; :mod:`roaming.transport` says
how the client chooses, and :mod:`roaming.transport_http11` serves this pool to it.

Errors: every failure below the HTTP answer (refused, reset, closed early, a response
that is not HTTP/1.x) raises :class:`HttpError`; the caller decides what it means. A
kept-alive connection the server closed while idle is retried once on a new one, but
only when nothing of the answer had arrived. The caller bounds the whole exchange with
its own timeout; a cancelled exchange closes its connection (never reused half-read).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Linux only: ACK at once instead of delaying (see :meth:`_Conn.data_received`).
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
RESOLVE_TTL_S = 60.0


class HttpError(Exception):
    """No usable HTTP answer: connection failed, closed early, or not HTTP/1.x.

    ``errno`` is the socket error when the connection could not be opened (so the caller
    can tell a kernel timeout from a refusal without reading the message), else None.
    """

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class Refused(HttpError):
    """The pool's address check refused every connection to this host (no bytes sent)."""


AddressCheck = Callable[[str, list[str]], str | None]


class _Stale(HttpError):
    """A reused connection ended before any byte of the answer (safe to retry once)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-case; a repeated header keeps its last value
    body: bytes


def _dechunk(buf: bytearray | bytes) -> tuple[bytes, int] | None:
    """(body, bytes consumed) of a complete chunked body at the start of ``buf``."""
    out = bytearray()
    pos = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_field = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise HttpError(f"bad chunk size {size_field[:20]!r}") from None
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n", pos)  # trailers end with an empty line
            while end >= 0 and end != pos:
                pos = end + 2
                end = buf.find(b"\r\n", pos)
            if end < 0:
                return None
            return bytes(out), end + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2
        if len(out) > MAX_BODY:
            raise HttpError("chunked body too large")


class _Conn(asyncio.Protocol):
    """One TCP (or TLS) connection: one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self._head: tuple[int, dict[str, str], bool] | None = None  # status, headers, keep
        self._framing = ""  # "length" | "chunked" | "close"
        self._length = 0
        self._eof = False
        self._sock: Any = None  # for TCP_QUICKACK

    # ---------------------------------------------------------------- protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if QUICKACK is not None:
            self._sock = transport.get_extra_info("socket")

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is not ours to trust
            return
        self._quickack()
        self._buf += data
        self._advance()

    def _quickack(self) -> None:
        """ACK what just arrived now, not ~40 ms later.

        Why: on a kept-alive connection Linux delays ACKs (it expects to piggyback them
        on our next request). An eMSP whose server writes the response head and body
        as two segments with Nagle on holds the body until the head is ACKed, so every
        answer after the first would arrive a delayed ACK late (measured 92-96 ms for a
        50 ms eMSP). The kernel clears the flag by itself, hence once per read; setting
        it also sends the pending ACK at once. Set after the request is written too, so
        the kernel ACKs the head on arrival, without waiting for a busy loop to read it
        (under load that wait showed as a p50 of 74-106 ms). One setsockopt, ~1 µs.
        """
        sock = self._sock
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:  # closing under us, or not TCP: nothing to ACK faster
                self._sock = None

    def eof_received(self) -> bool:
        self._eof = True
        self._advance()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        w = self._waiter
        if w is not None and not w.done():
            self._advance()
            if not w.done():
                if not self._buf and self._head is None:
                    w.set_exception(_Stale("connection closed before the answer"))
                else:
                    w.set_exception(HttpError("connection closed in the middle of the answer"))

    # ---------------------------------------------------------------- exchange

    async def exchange(self, request: bytes) -> tuple[Response, bool]:
        """Send ``request``; the answer and whether the connection may be reused."""
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise _Stale("connection already closed")
        self._buf.clear()
        self._head, self._eof = None, False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        self._quickack()  # armed before the answer comes: the kernel ACKs its head itself
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _advance(self) -> None:
        w = self._waiter
        if w is None or w.done():
            return
        try:
            result = self._parse()
        except HttpError as exc:
            w.set_exception(exc)
            return
        if result is not None:
            w.set_result(result)

    def _parse(self) -> tuple[Response, bool] | None:
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise HttpError("response head too large")
                return None
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise HttpError(f"not an HTTP/1.x response: {lines[0][:60]!r}")
            status = int(parts[1])
            if 100 <= status < 200:
                continue  # interim answer (we never send Expect, but be lenient)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise HttpError(f"bad header line {line[:60]!r}")
                headers[name.strip().lower()] = value.strip()
            keep = parts[0] != "HTTP/1.0" and "close" not in headers.get("connection", "").lower()
            if status in (204, 304):
                self._framing, self._length = "length", 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._framing = "chunked"
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"])
                except ValueError:
                    raise HttpError("bad Content-Length") from None
                if not 0 <= self._length <= MAX_BODY:
                    raise HttpError("Content-Length out of range")
                self._framing = "length"
            else:
                self._framing, keep = "close", False
            self._head = (status, headers, keep)
        status, headers, keep = self._head
        if self._framing == "length":
            if len(buf) < self._length:
                if self._eof:
                    raise HttpError("connection closed in the middle of the answer")
                return None
            body = bytes(buf[: self._length])
            extra = len(buf) > self._length
            return Response(status, headers, body), keep and not extra
        if self._framing == "chunked":
            done = _dechunk(buf)
            if done is None:
                if self._eof:
                    raise HttpError("connection closed in the middle of the answer")
                return None
            body, used = done
            return Response(status, headers, body), keep and used == len(buf)
        if not self._eof:  # read to close
            if len(buf) > MAX_BODY:
                raise HttpError("body too large")
            return None
        return Response(status, headers, bytes(buf)), False


class Pool:
    """Kept-alive connections to one origin; at most ``limit`` exchanges at once (so at
    most ``limit`` connections, since an exchange opens one only when none is idle)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        limit: int = 512,
        idle_timeout_s: float = 15.0,
        connect_timeout_s: float | None = None,
        address_check: AddressCheck | None = None,
    ) -> None:
        self.host = host
        self.address_check = address_check
        self.port = port
        self.tls = tls
        self.idle_timeout_s = idle_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._gate = asyncio.Semaphore(limit)
        self._idle: collections.deque[_Conn] = collections.deque()
        self._closed = False
        self._addresses: list[tuple[int, int, int, Any]] | None = None
        self._resolved_until = 0.0
        default_port = 443 if tls is not None else 80
        self.host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # an IPv6 literal
            self.host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> Response:
        """One exchange; ``target`` is the path and query, already percent-encoded."""
        head = [f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        for name, value in headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise HttpError(f"header {name!r} contains a line break")
            head.append(f"{name}: {value}\r\n")
        head.append(f"Content-Length: {len(body) if body else 0}\r\n\r\n")
        data = "".join(head).encode("latin-1") + (body or b"")
        async with self._gate:
            for attempt in range(2):
                conn, reused = await self._acquire()
                try:
                    response, keep = await conn.exchange(data)
                except _Stale:
                    conn.close()
                    if reused and attempt == 0:
                        continue
                    raise HttpError("connection closed before the answer") from None
                except BaseException:  # cancelled or failed: never reuse a half-read stream
                    conn.close()
                    raise
                if keep and not self._closed and not conn.closed:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self) -> tuple[_Conn, bool]:
        if self._closed:
            raise HttpError("pool closed")
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: least likely to be stale
            if conn.closed or now - conn.idle_since > self.idle_timeout_s:
                conn.close()
                continue
            return conn, True
        try:
            if self.connect_timeout_s is not None:
                async with asyncio.timeout(self.connect_timeout_s):
                    conn = await self._connect()
            else:
                conn = await self._connect()
        except OSError as exc:
            raise HttpError(
                f"cannot connect to {self.host_header}: {exc}", errno=exc.errno
            ) from None
        return conn, False

    async def _connect(self) -> _Conn:
        """A new connection to the first address that answers. Addresses are resolved
        once per ``RESOLVE_TTL_S``: a resolver round trip (a thread hop even for an IP
        literal) per connection showed when a hung eMSP makes every call open one."""
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if self._addresses is None or now >= self._resolved_until:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            if not infos:
                raise OSError(f"no address for {self.host}")
            if self.address_check is not None:
                # Checked on what we connect to (``Refused`` is not an OSError: it is
                # not a connection failure and passes the caller's OSError handler).
                reason = self.address_check(self.host, [str(i[4][0]) for i in infos])
                if reason is not None:
                    raise Refused(reason)
            self._addresses = [(i[0], i[1], i[2], i[4]) for i in infos]
            self._resolved_until = now + RESOLVE_TTL_S
        error: OSError | None = None
        for family, kind, proto, address in self._addresses:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
                _, conn = await loop.create_connection(
                    _Conn,
                    sock=sock,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls is not None else None,
                )
                return conn
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        self._addresses = None  # resolve again next time
        assert error is not None
        raise error

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
