"""What the dashboard reads of roaming, as plain records behind one protocol.

Why a port: :mod:`csms.admin` may not import :mod:`roaming` (import-linter), yet the
Roaming, Locations and Transactions pages show partners, the outbox, EVSEs and Session /
CDR delivery. The composition root hands the admin context a :class:`RoamingView`
built in :mod:`csms.ocpi.dashboard` when OCPI is enabled, and None when it is not (the
pages then say "roaming off").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Outbox statuses after which a message no longer waits for anything. Every other status
# (pending, dead, waiting for a location, and any added later) counts as backlog and is
# listed, so a new state shows up without a dashboard change.
FINISHED_OUTBOX_STATUSES = frozenset({"delivered", "rejected", "skipped", "expanded", "dropped"})


@dataclass(frozen=True, slots=True)
class PartnerSummary:
    key: str
    country_code: str
    party_id: str
    status: str
    roles: tuple[str, ...]
    versions_url: str | None
    version: str | None
    registered_at: str | None
    endpoints: tuple[tuple[str, str, str], ...]  # (module, role, url)
    tokens: int
    last_sync_at: str | None
    last_sync_status: str | None
    outbox: dict[str, int] = field(default_factory=dict)  # status -> messages
    failing: int = 0  # open messages whose last attempt failed

    @property
    def backlog(self) -> int:
        return sum(n for s, n in self.outbox.items() if s not in FINISHED_OUTBOX_STATUSES)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    partner: str
    module: str
    method: str
    object_key: str
    status: str
    attempts: int
    last_error: str | None
    created_at: str
    held_reason: str | None = None  # why a held push waits (e.g. for a location)


@dataclass(frozen=True, slots=True)
class EvseMapping:
    location_id: str
    location_name: str | None
    evse_uid: str
    evse_id: str | None
    charger_id: str
    connector_id: int
    status: str
    published: bool = True  # the Location's ``publish`` (false: kept from eMSPs' lists)


@dataclass(frozen=True, slots=True)
class Unmapped:
    charger_id: str
    connector_id: int
    status: str
    reported_at: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """How far a roaming transaction's Session and CDR got towards the eMSP."""

    session_id: str | None = None
    session_status: str | None = None
    session_delivery: str | None = None  # status of the newest outbox message of the Session
    session_waiting_for: str | None = None  # why the Session waits (no location yet)
    cdr_id: str | None = None
    cdr_delivery: str | None = None


class RoamingView(Protocol):
    """Read-only roaming facts for the dashboard (implemented in csms.ocpi.dashboard)."""

    async def partners(self) -> list[PartnerSummary]: ...

    async def outbox_counts(self) -> dict[str, int]: ...

    async def outbox_open(self, limit: int = 200) -> list[OutboxItem]: ...

    async def evses(self) -> list[EvseMapping]: ...

    async def unmapped(self) -> list[Unmapped]: ...

    async def deliveries(self, transaction_ids: Sequence[int]) -> dict[int, Delivery]: ...

    async def fingerprint(self) -> tuple[Any, ...]: ...
