"""This node among the others: :class:`Cluster`, one per running system.

What it keeps true, on PostgreSQL:

* the node's row in ``cluster_nodes`` carries a lease renewed every
  ``cluster.heartbeat_s``; a node whose lease ran out is dead for everyone else (its
  chargers' presence and its outbox claims are free);
* when another node takes one of our chargers (the charger reconnected there), our
  older socket is closed, marked *replaced* so that the charger is not reported
  disconnected;
* after the node could not renew its lease for longer than the lease (a database
  outage), it announces its chargers again, since the others may have dropped them.

On SQLite the node is alone: the same interface answers from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from csms import __version__, logs
from csms.cluster.bus import Bus, LocalBus, PgBus, namespace_of
from csms.cluster.config import ClusterConfig
from csms.cluster.jobs import LocalExclusive, pg_exclusive
from csms.cluster.presence import (
    ALIVE,
    PRESENCE_CHANNEL,
    LocalPresence,
    Presence,
    TablePresence,
    stamp,
    utc_now,
)
from csms.ocpp16.gateway import ChargerGateway
from csms.store.db import Database
from csms.store.pg import PgDatabase

log = logs.get("csms.cluster")

# Rows of nodes stopped or dead this long ago leave ``cluster_nodes``.
FORGET_NODES_AFTER = timedelta(days=7)


def default_node_id() -> str:
    """Unique per process on one machine, readable in ``csms nodes list``."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class NodeView:
    node_id: str
    version: str
    started_at: str
    heartbeat_at: str
    lease_until: str
    stopped_at: str | None
    alive: bool
    this: bool
    chargers: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Cluster:
    """Build with the store and the gateway; :meth:`start` after the store is migrated."""

    def __init__(
        self,
        config: ClusterConfig,
        db: Database,
        gateway: ChargerGateway,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.node_id = config.node_id or default_node_id()
        self.config = config
        self.cache_bound_s = config.cache_bound_s
        self.db = db
        self.gateway = gateway
        self.clock = clock
        self.started_at = stamp(clock())
        self.bus: Bus
        self.presence: Presence
        if isinstance(db, PgDatabase):
            self.multi = True
            self._pg: PgDatabase | None = db
            self._pg_bus: PgBus | None = PgBus(db.url, db.pool)
            self.bus = self._pg_bus
            self._table: TablePresence | None = TablePresence(db, self.bus, self.node_id, clock)
            self.presence = self._table
        else:
            self.multi = False
            self._pg = None
            self._pg_bus = None
            self._table = None
            self.bus = LocalBus()
            self.presence = LocalPresence(self.node_id, self._local_chargers)
        self._local_exclusive = LocalExclusive()
        self._beat: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._renewed_at = time.monotonic()
        self.bus.listen(PRESENCE_CHANNEL, self._charger_taken)

    def _local_chargers(self) -> list[str]:
        return [conn.charger_id for conn in self.gateway.all()]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._pg_bus is None or self._table is None:
            return
        await self._pg_bus.start()
        await self._register()
        # Rows of this node id's earlier life (killed, not stopped) are stale.
        await self._table.forget_node(self.node_id)
        self._renewed_at = time.monotonic()
        self._beat = asyncio.create_task(self._heartbeat(), name="cluster-heartbeat")
        log.info("cluster.joined", node_id=self.node_id, lease_s=self.config.lease_s)

    async def stop(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        for task in list(self._background):
            task.cancel()
        if self._pg_bus is None or self._table is None:
            return
        now = stamp(self.clock())
        try:
            await self.db.execute(
                "UPDATE cluster_nodes SET stopped_at = ?, lease_until = ? WHERE node_id = ?",
                (now, now, self.node_id),
            )
            await self._table.forget_node(self.node_id)
        except Exception:
            log.exception("cluster.leave_failed")
        await self._pg_bus.close()
        log.info("cluster.left", node_id=self.node_id)

    async def _register(self) -> None:
        now = self.clock()
        await self.db.execute(
            "INSERT INTO cluster_nodes (node_id, version, started_at, heartbeat_at, lease_until,"
            " stopped_at) VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (node_id) DO UPDATE SET"
            " version = excluded.version, started_at = excluded.started_at,"
            " heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until,"
            " stopped_at = NULL",
            (self.node_id, __version__, self.started_at, stamp(now), self._lease_end(now)),
        )

    def _lease_end(self, now: datetime) -> str:
        return stamp(now + timedelta(seconds=self.config.lease_s))

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            beats += 1
            try:
                await self.renew()
                if self._pg_bus is not None:
                    await self._pg_bus.check()
                if beats % 15 == 0:
                    await self.forget_the_dead()
            except Exception as exc:
                log.warning("cluster.heartbeat_failed", error=str(exc) or type(exc).__name__)

    async def renew(self) -> None:
        """Extend this node's lease; after a lapse, announce the chargers again."""
        now = self.clock()
        changed = await self.db.execute(
            "UPDATE cluster_nodes SET heartbeat_at = ?, lease_until = ?"
            " WHERE node_id = ? AND stopped_at IS NULL",
            (stamp(now), self._lease_end(now), self.node_id),
        )
        if not changed:
            await self._register()
        lapsed = time.monotonic() - self._renewed_at > self.config.lease_s
        self._renewed_at = time.monotonic()
        if lapsed:
            log.warning("cluster.lease_lapsed", node_id=self.node_id)
            for conn in self.gateway.all():
                await self.presence.connected(
                    conn.charger_id, conn.info.connected_at, conn.info.remote_address
                )

    async def forget_the_dead(self) -> None:
        """Presence rows of dead nodes, and nodes gone for a week (any node may do it)."""
        now = self.clock()
        await self.db.execute(
            "DELETE FROM charger_presence WHERE node_id NOT IN"
            f" (SELECT n.node_id FROM cluster_nodes n WHERE {ALIVE})",
            (stamp(now),),
        )
        await self.db.execute(
            "DELETE FROM cluster_nodes WHERE lease_until < ?",
            (stamp(now - FORGET_NODES_AFTER),),
        )

    # ------------------------------------------------------------------ sockets

    def _charger_taken(self, payload: str) -> None:
        """Another node holds the charger now: close our older socket of it."""
        try:
            told = json.loads(payload)
            charger_id, node, since = str(told["charger"]), str(told["node"]), str(told["since"])
        except (ValueError, KeyError, TypeError):
            log.warning("cluster.bad_presence_notification")
            return
        if node == self.node_id:
            return
        conn = self.gateway.connection(charger_id)
        if conn is None or conn.info.connected_at > since:
            return
        conn.replaced = True
        log.info("ocpp.replaced_elsewhere", charge_point_id=charger_id, node=node)
        task = asyncio.ensure_future(conn.close(f"replaced by a connection on node {node}"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ jobs and views

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """True inside the block when this node runs job ``name``; False: skip it."""
        if self._pg is not None:
            # Advisory locks are database-wide: qualified by the schema like the bus.
            return pg_exclusive(self._pg.pool, f"{namespace_of(self._pg.url)}:{name}")
        return self._local_exclusive(name)

    async def nodes(self) -> list[NodeView]:
        now = stamp(self.clock())
        if not self.multi:
            alone = NodeView(
                node_id=self.node_id,
                version=__version__,
                started_at=self.started_at,
                heartbeat_at=now,
                lease_until=now,
                stopped_at=None,
                alive=True,
                this=True,
                chargers=len(self.gateway.all()),
            )
            return [alone]
        rows = await self.db.fetchall(
            "SELECT n.*, (SELECT count(*) FROM charger_presence p"
            " WHERE p.node_id = n.node_id) AS chargers FROM cluster_nodes n ORDER BY n.node_id"
        )
        return [
            NodeView(
                node_id=str(r["node_id"]),
                version=str(r["version"]),
                started_at=str(r["started_at"]),
                heartbeat_at=str(r["heartbeat_at"]),
                lease_until=str(r["lease_until"]),
                stopped_at=r["stopped_at"],
                alive=r["stopped_at"] is None and str(r["lease_until"]) > now,
                this=r["node_id"] == self.node_id,
                chargers=int(r["chargers"]),
            )
            for r in rows
        ]


@contextlib.asynccontextmanager
async def joined(cluster: Cluster) -> AsyncIterator[Cluster]:
    """Started for the block, stopped after (tests)."""
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()
