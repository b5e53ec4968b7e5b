"""Notifications between nodes: PostgreSQL's LISTEN/NOTIFY, or in-process on SQLite.

Why LISTEN/NOTIFY: every node already holds connections to the database, notifications
ride on them with about a millisecond of latency, and PostgreSQL delivers a NOTIFY
issued inside a transaction only when that transaction commits. What it does not give:
delivery to a node whose listening connection was down at the time. So the bus tells
its users about every such gap (:meth:`Bus.on_gap`), and whoever caches must bound the
age of what it serves (``cluster.cache_bound_s``) instead of trusting every
notification to arrive.

Every node also receives its own notifications; payloads carry the sender's node id
where the receiver must tell them apart. Channels are per database *and schema*
(:func:`namespace_of`): notifications are database-wide in PostgreSQL, and two systems
in two schemas of one database (a staging copy, a test run) must not hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg

from csms import logs

log = logs.get("csms.cluster")

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; what is larger goes
# through a table and the notification carries its key.
MAX_PAYLOAD_BYTES = 7500

Listener = Callable[[str], None]


def channel_of(prefix: str, name: str) -> str:
    """A valid channel name for ``name`` (node ids may hold any character): lower-case
    ASCII, at most 63 bytes, the same on every node."""
    digest = hashlib.blake2b(name.encode(), digest_size=10).hexdigest()
    return f"{prefix}_{digest}"


def namespace_of(url: str) -> str:
    """A short tag of the database and settings (``search_path``) a store URL names."""
    parts = urlsplit(url)
    return hashlib.blake2b(f"{parts.path}?{parts.query}".encode(), digest_size=4).hexdigest()


class Bus(Protocol):
    healthy: bool
    healthy_since: float

    async def notify(self, channel: str, payload: str) -> None:
        """Deliver ``payload`` to every node listening on ``channel`` (this one too)."""
        ...

    def listen(self, channel: str, callback: Listener) -> None:
        """``callback(payload)`` for each notification: synchronous, quick, never raising."""
        ...

    def on_gap(self, callback: Callable[[], None]) -> None:
        """``callback()`` when notifications may have been missed, and again once
        listening resumes."""
        ...

    async def settled(self) -> None:
        """Returns once the channels given to :meth:`listen` so far are listened to
        (a notification sent before that may not be heard)."""
        ...


class _Listeners:
    def __init__(self) -> None:
        self.by_channel: dict[str, list[Listener]] = {}
        self.gaps: list[Callable[[], None]] = []

    def dispatch(self, channel: str, payload: str) -> None:
        for callback in self.by_channel.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("cluster.listener_failed", channel=channel)

    def gap(self) -> None:
        for callback in self.gaps:
            try:
                callback()
            except Exception:
                log.exception("cluster.gap_listener_failed")


class LocalBus:
    """The one node of a SQLite store: notifications go to this process's listeners,
    on the next turn of the loop (as a database notification would, never inline)."""

    healthy = True

    def __init__(self) -> None:
        self._listeners = _Listeners()
        self.healthy_since = time.monotonic()

    async def notify(self, channel: str, payload: str) -> None:
        asyncio.get_running_loop().call_soon(self._listeners.dispatch, channel, payload)

    def listen(self, channel: str, callback: Listener) -> None:
        self._listeners.by_channel.setdefault(channel, []).append(callback)

    def on_gap(self, callback: Callable[[], None]) -> None:
        self._listeners.gaps.append(callback)

    async def start(self) -> None:
        """Nothing to connect."""

    async def settled(self) -> None:
        """Listening starts at once."""

    async def check(self) -> None:
        """Always up."""

    async def close(self) -> None:
        """Nothing to close."""


class PgBus:
    """One dedicated connection LISTENs; NOTIFY goes out on the shared pool.

    The listening connection is checked every heartbeat (a dead TCP peer sends no FIN);
    when lost, :meth:`on_gap` listeners hear of it and a task reconnects with backoff.
    """

    def __init__(self, url: str, pool: asyncpg.Pool, *, retry_max_s: float = 5.0) -> None:
        self.url = url
        self.pool = pool
        self.retry_max_s = retry_max_s
        self._ns = namespace_of(url)
        self._names: dict[str, str] = {}  # wire channel -> the name listeners use
        self._adding: set[asyncio.Future[None]] = set()
        self._op = asyncio.Lock()
        self.healthy = False
        self.healthy_since = 0.0
        self._listeners = _Listeners()
        self._conn: asyncpg.Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    async def notify(self, channel: str, payload: str) -> None:
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"notification of {len(payload.encode())} bytes on {channel}")
        await self.pool.execute("SELECT pg_notify($1, $2)", self._wire(channel), payload)

    def _wire(self, channel: str) -> str:
        return f"{channel}_{self._ns}"[:63]

    def listen(self, channel: str, callback: Listener) -> None:
        self._names[self._wire(channel)] = channel
        fresh = channel not in self._listeners.by_channel
        self._listeners.by_channel.setdefault(channel, []).append(callback)
        if fresh and self._conn is not None and not self._conn.is_closed():
            task = asyncio.ensure_future(self._add(self._conn, channel))
            self._adding.add(task)
            task.add_done_callback(self._added)

    async def _add(self, conn: asyncpg.Connection, channel: str) -> None:
        # One operation at a time on the listening connection: asyncpg refuses a LISTEN
        # while the heartbeat's check is running on it ("another operation is in progress").
        async with self._op:
            await conn.add_listener(self._wire(channel), self._received)

    def _added(self, task: asyncio.Future[None]) -> None:
        self._adding.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._lost(f"LISTEN failed: {task.exception()}")

    async def settled(self) -> None:
        """Returns once every channel given to :meth:`listen` so far is listened to."""
        if self._adding:
            await asyncio.gather(*self._adding, return_exceptions=True)

    def on_gap(self, callback: Callable[[], None]) -> None:
        self._listeners.gaps.append(callback)

    def _received(self, _conn: Any, _pid: int, wire: str, payload: str) -> None:
        self._listeners.dispatch(self._names.get(wire, wire), payload)

    async def start(self) -> None:
        """Connect and LISTEN; raises when the database cannot be reached."""
        await self._connect()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            for channel in list(self._listeners.by_channel):
                await conn.add_listener(self._wire(channel), self._received)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self.healthy = True
        self.healthy_since = time.monotonic()

    def _terminated(self, _conn: Any) -> None:
        self._lost("the listening connection closed")

    def _lost(self, why: str) -> None:
        if self._closed or not self.healthy:
            return
        self.healthy = False
        log.warning("cluster.bus_lost", reason=why)
        self._listeners.gap()
        if self._conn is not None and not self._conn.is_closed():
            self._conn.terminate()
        self._conn = None
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cluster.bus_reconnect_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            log.info("cluster.bus_resumed")
            # Whatever was notified while nobody listened is lost: tell the caches again.
            self._listeners.gap()
            return

    async def check(self, timeout_s: float = 2.0) -> None:
        """One round trip on the listening connection; a failure counts as lost."""
        conn = self._conn
        if conn is None or self._closed:
            return
        try:
            async with asyncio.timeout(timeout_s), self._op:
                await conn.fetchval("SELECT 1")
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._lost(f"check failed: {exc or type(exc).__name__}")

    async def close(self) -> None:
        self._closed = True
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await conn.close()
            if not conn.is_closed():
                conn.terminate()
        self.healthy = False
