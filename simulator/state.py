"""What a charge point knows about itself: identity, connectors, transactions, lists.

Why one plain record shared by the parts: the charger-initiated flows and the answers to
the CSMS's calls read and change the same facts (a RemoteStop ends the transaction a
local start began, a reservation blocks a connector), so they share one state instead of
asking each other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.connector import Connector
from simulator.cpconfig import ConfigTable


@dataclass
class Tx:
    """A transaction as the charger knows it; ``id`` stays None until the CSMS numbers it."""

    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    id: int | None = None
    auth_status: str | None = None
    reservation_id: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QueuedMessage:
    """A transaction message sent while offline; its ``transactionId`` is filled at replay."""

    action: str
    payload: dict[str, Any]
    tx: Tx | None


@dataclass
class Identity:
    """What BootNotification says about the charger, and how it charges."""

    cp_id: str
    vendor: str
    model: str
    serial: str
    firmware: str
    power_w: float
    time_scale: float
    step_delay_s: float  # pause between the steps of a follow-up (reset, firmware...)


@dataclass
class ChargerState:
    """The live facts; connector 0 stands for the whole charge point."""

    identity: Identity
    config: ConfigTable
    connectors: dict[int, Connector]
    transactions: dict[int, Tx] = field(default_factory=dict)
    local_list: dict[str, dict[str, Any]] = field(default_factory=dict)
    local_list_version: int = 0
    auth_cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    reservations: dict[int, dict[str, Any]] = field(default_factory=dict)
    data_transfers: list[dict[str, Any]] = field(default_factory=list)
    offline_queue: list[QueuedMessage] = field(default_factory=list)
    boot_count: int = 0
    registration: str | None = None
    heartbeat_interval: int | None = None

    @classmethod
    def fresh(
        cls, identity: Identity, connectors: int, meter_interval_s: int, **config: Any
    ) -> ChargerState:
        """``config``: the list limits and feature profiles of :class:`ConfigTable`."""
        return cls(
            identity,
            ConfigTable(connectors, meter_s=meter_interval_s, **config),
            {i: Connector(i) for i in range(connectors + 1)},
        )

    def connector(self, connector: int) -> Connector:
        try:
            return self.connectors[connector]
        except KeyError:
            raise ValueError(f"no connector {connector} on {self.identity.cp_id}") from None
