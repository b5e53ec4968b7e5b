"""Which node holds each charger's socket.

Why a table with the node's lease and not a lease per charger: a node renews one row
per heartbeat whatever the number of its chargers (15,000 chargers would otherwise be
15,000 writes per heartbeat), and a charger's row is believed only while its node's
lease runs (:data:`ALIVE`). A charger that connects to another node simply takes the
row over; the node that held it learns it from the ``csms_presence`` notification and
closes its older socket (:class:`csms.cluster.node.Cluster`).

On SQLite the node is alone: :class:`LocalPresence` answers from the gateway's sockets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from csms.cluster.bus import Bus
from csms.store.db import Database

PRESENCE_CHANNEL = "csms_presence"
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"

# SQL: the node ``n`` is alive at the bound time ``?``.
ALIVE = "n.stopped_at IS NULL AND n.lease_until > ?"


def stamp(moment: datetime) -> str:
    """The text form of node times: lexically ordered like the instants."""
    return moment.astimezone(UTC).strftime(_STAMP)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Presence(Protocol):
    async def connected(self, charger_id: str, since: str, remote: str) -> None:
        """This node now holds ``charger_id``'s socket, opened at ``since``."""
        ...

    async def disconnected(self, charger_id: str, since: str) -> None:
        """The socket opened at ``since`` closed (forgotten only if it is still ours)."""
        ...

    async def locate(self, charger_id: str) -> str | None:
        """The node id of a live node holding the charger, or None."""
        ...

    async def chargers_of(self, node_id: str) -> list[str]: ...

    async def placed(self) -> dict[str, str]:
        """Every charger held by a live node, with that node's id (one query, for lists)."""
        ...


class LocalPresence:
    """The one node of a SQLite store: the connected chargers are this node's."""

    def __init__(self, node_id: str, connected: Callable[[], list[str]]) -> None:
        self.node_id = node_id
        self._connected = connected

    async def connected(self, charger_id: str, since: str, remote: str) -> None:
        """The gateway already knows."""

    async def disconnected(self, charger_id: str, since: str) -> None:
        """The gateway already knows."""

    async def locate(self, charger_id: str) -> str | None:
        return self.node_id if charger_id in self._connected() else None

    async def chargers_of(self, node_id: str) -> list[str]:
        return sorted(self._connected()) if node_id == self.node_id else []

    async def placed(self) -> dict[str, str]:
        return dict.fromkeys(self._connected(), self.node_id)


class TablePresence:
    """``charger_presence`` rows, shared by every node of a PostgreSQL store."""

    def __init__(
        self, db: Database, bus: Bus, node_id: str, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.db = db
        self.bus = bus
        self.node_id = node_id
        self.clock = clock

    async def connected(self, charger_id: str, since: str, remote: str) -> None:
        await self.db.execute(
            "INSERT INTO charger_presence (charger_id, node_id, connected_since, remote_address)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (charger_id) DO UPDATE SET"
            " node_id = excluded.node_id, connected_since = excluded.connected_since,"
            " remote_address = excluded.remote_address",
            (charger_id, self.node_id, since, remote),
        )
        payload = json.dumps({"charger": charger_id, "node": self.node_id, "since": since})
        await self.bus.notify(PRESENCE_CHANNEL, payload)

    async def disconnected(self, charger_id: str, since: str) -> None:
        await self.db.execute(
            "DELETE FROM charger_presence WHERE charger_id = ? AND node_id = ?"
            " AND connected_since = ?",
            (charger_id, self.node_id, since),
        )

    async def locate(self, charger_id: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT p.node_id FROM charger_presence p JOIN cluster_nodes n"
            f" ON n.node_id = p.node_id WHERE p.charger_id = ? AND {ALIVE}",
            (charger_id, stamp(self.clock())),
        )
        return None if row is None else str(row["node_id"])

    async def chargers_of(self, node_id: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT charger_id FROM charger_presence WHERE node_id = ? ORDER BY charger_id",
            (node_id,),
        )
        return [str(r["charger_id"]) for r in rows]

    async def placed(self) -> dict[str, str]:
        rows = await self.db.fetchall(
            "SELECT p.charger_id, p.node_id FROM charger_presence p JOIN cluster_nodes n"
            f" ON n.node_id = p.node_id WHERE {ALIVE}",
            (stamp(self.clock()),),
        )
        return {str(r["charger_id"]): str(r["node_id"]) for r in rows}

    async def forget_node(self, node_id: str) -> None:
        """Drop every row of ``node_id`` (its earlier life, or its clean stop)."""
        await self.db.execute("DELETE FROM charger_presence WHERE node_id = ?", (node_id,))
