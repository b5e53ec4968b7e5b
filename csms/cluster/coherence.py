"""The caches of one node follow the writes made on the others.

Each node keeps copies of shared rows in memory so that the hot path (a cache-hit
Authorize, the caller of an OCPI request) never waits on the database: the roaming
token memo, the operator's own cards, the partner memo. On PostgreSQL another node may
write those rows at any time, so:

* every local write is announced on the bus, per :class:`Topic` (payload: the keys
  written, or "all" when they do not fit a few notifications), and every other node
  drops those keys from its caches;
* a notification can be lost (the writer died between its commit and its NOTIFY, or
  this node's listening connection dropped). So no cache serves an entry read longer
  than ``cluster.cache_bound_s`` ago (each cache bounds its entries' age, or verifies
  its full copy on :meth:`Coherence.every`), and a gap of the bus flushes every cache
  at once.

On SQLite the node is alone: nothing is announced, nothing is checked, the caches keep
their own (longer) lifetimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from csms import logs

log = logs.get("csms.cluster")

Keys = Collection[str] | None
"""What changed: the (normalised) keys written, or None for "anything may have"."""

Follower = Callable[[Keys], None]

# The topics: roaming tokens (by normalised uid), own cards, OCPI partners.
TOKENS = "tokens"
OWN_CARDS = "own_cards"
PARTNERS = "partners"

# A notification payload must stay under PostgreSQL's 8000 bytes; keys beyond what
# fits a few notifications are announced as "all" (receivers flush that cache).
PAYLOAD_BYTES = 7000
MAX_NOTIFICATIONS = 8


class CacheBus(Protocol):
    """What coherence needs of the cluster's bus (:class:`csms.cluster.bus.Bus`)."""

    async def notify(self, channel: str, payload: str) -> None: ...
    def listen(self, channel: str, callback: Callable[[str], None]) -> None: ...
    def on_gap(self, callback: Callable[[], None]) -> None: ...


def payloads(node_id: str, keys: Keys) -> list[str]:
    """The notifications announcing ``keys``: chunks of at most :data:`PAYLOAD_BYTES`,
    or one "all" when that takes more than :data:`MAX_NOTIFICATIONS`."""
    everything = [json.dumps({"n": node_id, "all": True})]
    if keys is None:
        return everything
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for key in sorted(keys):
        cost = len(key.encode()) + 4  # quotes, comma, slack for escapes
        if chunk and size + cost > PAYLOAD_BYTES - 100:
            out.append(json.dumps({"n": node_id, "k": chunk}))
            chunk, size = [], 0
        chunk.append(key)
        size += cost
    if chunk:
        out.append(json.dumps({"n": node_id, "k": chunk}))
    return everything if len(out) > MAX_NOTIFICATIONS else out


def parse(payload: str) -> tuple[str, Keys]:
    """(sender node, keys); raises ValueError for a payload no node sends."""
    told = json.loads(payload)
    if not isinstance(told, dict) or not isinstance(told.get("n"), str):
        raise ValueError("no sender")
    if told.get("all"):
        return told["n"], None
    keys = told.get("k")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("no keys")
    return told["n"], keys


class OwnCardsHolder(Protocol):
    """What follows a write to the own cards (the authorizer's copy, the local lists)."""

    async def own_cards_changed(self) -> None: ...


class VerifiedCopy(Protocol):
    """A full in-memory copy that can tell whether its table changed since it was read."""

    async def changed(self) -> bool: ...


class Announce:
    """An :class:`OwnCardsHolder` that announces the write to the other nodes."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic

    async def own_cards_changed(self) -> None:
        self.topic.publish(None)


class Topic:
    """One kind of cached row (tokens, own cards, partners) and its channel."""

    def __init__(self, owner: Coherence, name: str) -> None:
        self.owner = owner
        self.name = name
        self.channel = f"csms_cache_{name}"
        self.followers: list[Follower] = []
        self.received = 0  # notifications from other nodes acted upon
        self.published = 0  # notifications sent

    def publish(self, keys: Keys) -> None:
        """Announce a committed local write (synchronous: sent in the background)."""
        self.owner.queue(self, keys)

    def follow(self, follower: Follower) -> None:
        """``follower(keys)`` on every other node's write and on every gap of the bus."""
        self.followers.append(follower)

    def tell(self, keys: Keys) -> None:
        for follower in tuple(self.followers):
            try:
                follower(keys)
            except Exception:  # one broken cache must not keep the others stale
                log.exception("cluster.cache_follower_failed", topic=self.name)

    def _received(self, payload: str) -> None:
        try:
            sender, keys = parse(payload)
        except (ValueError, TypeError):
            log.warning("cluster.bad_cache_notification", topic=self.name)
            self.tell(None)
            return
        if sender == self.owner.node_id:
            return
        self.received += 1
        self.tell(keys)


class Coherence:
    """The topics of one node, the sender of their notifications and the periodic
    checks of caches that hold full copies. :meth:`start` it with the system."""

    def __init__(self, bus: CacheBus, node_id: str, *, multi: bool, bound_s: float) -> None:
        self.bus = bus
        self.node_id = node_id
        self.multi = multi
        self.bound_s = bound_s
        self.topics: dict[str, Topic] = {}
        self._pending: dict[str, tuple[Topic, set[str] | None]] = {}
        self._wake = asyncio.Event()
        self._checks: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        if multi:
            bus.on_gap(self._gap)

    @property
    def max_age_s(self) -> float | None:
        """How old a cached entry may be (None: as old as the cache likes, alone)."""
        return self.bound_s if self.multi else None

    def topic(self, name: str) -> Topic:
        found = self.topics.get(name)
        if found is None:
            found = self.topics[name] = Topic(self, name)
            if self.multi:
                self.bus.listen(found.channel, found._received)
        return found

    def share(
        self,
        name: str,
        add_listener: Callable[[Follower], object],
        tell_local: Follower,
    ) -> Topic:
        """Wire a cache owner's write listeners to the topic ``name``: what it writes
        (heard through ``add_listener``) is announced; what others write is told to
        ``tell_local``, without being announced again."""
        topic = self.topic(name)
        relaying = False

        def local(keys: Keys) -> None:
            if not relaying:
                topic.publish(keys)

        def remote(keys: Keys) -> None:
            nonlocal relaying
            relaying = True
            try:
                tell_local(keys)
            finally:
                relaying = False

        add_listener(local)
        topic.follow(remote)
        return topic

    def follow_async(self, name: str, reload: Callable[[], Awaitable[None]]) -> Topic:
        """Another node's write to ``name`` runs ``reload`` (once at a time; a write
        heard while it runs runs it once more)."""
        topic = self.topic(name)
        state = {"running": False, "again": False}

        async def run() -> None:
            try:
                while True:
                    state["again"] = False
                    try:
                        await reload()
                    except Exception:
                        log.exception("cluster.cache_reload_failed", topic=name)
                    if not state["again"]:
                        return
            finally:
                state["running"] = False

        def heard(_keys: Keys) -> None:
            if state["running"]:
                state["again"] = True
                return
            state["running"] = True
            self.spawn(run())

        topic.follow(heard)
        return topic

    def every(self, check: Callable[[], Awaitable[None]]) -> None:
        """Run ``check`` every half bound while the node runs (PostgreSQL only): a cache
        holding a full copy verifies it is still current, so a lost notification costs
        at most the bound."""
        if self.multi:
            self._checks.append(check)

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    def share_own_cards(
        self, followers: OwnCardsHolder, copy: VerifiedCopy | None
    ) -> OwnCardsHolder:
        """The own cards: another node's write runs ``followers`` here; ``copy`` (the
        authorizer's full copy, if held) is verified every half bound and a difference
        runs them too. Returns the holder that announces this node's writes."""
        topic = self.follow_async(OWN_CARDS, followers.own_cards_changed)
        if copy is not None:
            held = copy

            async def verify() -> None:
                if await held.changed():
                    log.info("cluster.own_cards_changed_elsewhere")
                    await followers.own_cards_changed()

            self.every(verify)
        return Announce(topic)

    # ------------------------------------------------------------------ sending

    def queue(self, topic: Topic, keys: Keys) -> None:
        if not self.multi:
            return
        held = self._pending.get(topic.name)
        if held is None:
            self._pending[topic.name] = (topic, None if keys is None else set(keys))
        elif held[1] is not None:
            if keys is None:
                self._pending[topic.name] = (topic, None)
            else:
                held[1].update(keys)
        self._wake.set()

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for topic, keys in pending.values():
            for payload in payloads(self.node_id, keys):
                try:
                    await self.bus.notify(topic.channel, payload)
                    topic.published += 1
                except Exception as exc:  # the others' bound covers what is lost
                    log.warning(
                        "cluster.cache_notify_failed",
                        topic=topic.name,
                        error=str(exc) or type(exc).__name__,
                    )

    async def _check(self, check: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self.bound_s / 2)
            try:
                await check()
            except Exception as exc:  # the cache's own age bound keeps it honest
                log.warning("cluster.cache_check_failed", error=str(exc) or type(exc).__name__)

    def _gap(self) -> None:
        """Notifications may have been missed: every cache starts over."""
        log.info("cluster.caches_flushed")
        for topic in tuple(self.topics.values()):
            topic.tell(None)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if not self.multi or self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._send(), name="cache-notify"))
        for check in self._checks:
            self._tasks.append(asyncio.create_task(self._check(check), name="cache-check"))

    async def stop(self) -> None:
        """Send what is still queued (briefly), then stop the background work."""
        if self._tasks and self._pending:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._flush()
        tasks, self._tasks = self._tasks + list(self._spawned), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
