"""The ``[cluster]`` section of the configuration (:mod:`csms.config`): how nodes sharing
a PostgreSQL database tell each other they are alive, and how stale a cache may be."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterConfig:
    """Only PostgreSQL stores run several nodes; on SQLite these keys change nothing but
    the node's name in ``csms nodes list``."""

    # Empty: "<hostname>-<pid>", unique per process. A fixed name lets a restarted node
    # take back its own outbox claims at once instead of after its lease.
    node_id: str = ""
    heartbeat_s: float = 2.0
    # A node whose lease was not renewed for this long is dead: its chargers' presence
    # and its outbox claims are free for the others. Several heartbeats, so one slow
    # database round trip does not make a live node look dead.
    lease_s: float = 10.0
    # No cache answers from data older than this behind another node's write, even
    # when a notification is lost (PostgreSQL only).
    cache_bound_s: float = 5.0


def validate_cluster(c: ClusterConfig, error: Callable[[str, str], Exception]) -> None:
    """Raise ``error(key, message)`` for the first bad ``[cluster]`` key."""
    for key, value in (
        ("cluster.heartbeat_s", c.heartbeat_s),
        ("cluster.lease_s", c.lease_s),
        ("cluster.cache_bound_s", c.cache_bound_s),
    ):
        if value <= 0:
            raise error(key, f"must be greater than 0, got {value}")
    if c.lease_s < 2 * c.heartbeat_s:
        raise error(
            "cluster.lease_s",
            f"must be at least twice cluster.heartbeat_s ({c.heartbeat_s}), got {c.lease_s}",
        )
    if len(c.node_id) > 64 or any(ch.isspace() for ch in c.node_id):
        raise error("cluster.node_id", "must be at most 64 characters without spaces")
