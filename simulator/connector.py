"""Connector status as a transition table (OCPP 1.6 section 4.9, the status diagram).

Why a table: the automatic flows (start, stop, remote start, reservation, availability)
must never send a status sequence a real charger could not produce, and one table is
easier to check against the spec than transitions scattered through handlers. An illegal
move raises :class:`IllegalTransition`; the explicit ``cp.status(..., force=True)`` escape
hatch exists for fault tests that *want* to send nonsense.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


_S = Status
#: from-status -> statuses it may move to (Faulted is reachable from everywhere).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.AVAILABLE: frozenset(
        {_S.PREPARING, _S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE, _S.RESERVED, _S.UNAVAILABLE}
    ),
    _S.PREPARING: frozenset(
        {_S.AVAILABLE, _S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE, _S.FINISHING}
    ),
    _S.CHARGING: frozenset(
        {_S.AVAILABLE, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE, _S.FINISHING, _S.UNAVAILABLE}
    ),
    _S.SUSPENDED_EV: frozenset(
        {_S.AVAILABLE, _S.CHARGING, _S.SUSPENDED_EVSE, _S.FINISHING, _S.UNAVAILABLE}
    ),
    _S.SUSPENDED_EVSE: frozenset(
        {_S.AVAILABLE, _S.CHARGING, _S.SUSPENDED_EV, _S.FINISHING, _S.UNAVAILABLE}
    ),
    _S.FINISHING: frozenset({_S.AVAILABLE, _S.PREPARING, _S.UNAVAILABLE}),
    _S.RESERVED: frozenset({_S.AVAILABLE, _S.PREPARING, _S.UNAVAILABLE}),
    _S.UNAVAILABLE: frozenset(
        {_S.AVAILABLE, _S.PREPARING, _S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE}
    ),
    _S.FAULTED: frozenset(
        {
            _S.AVAILABLE,
            _S.PREPARING,
            _S.CHARGING,
            _S.SUSPENDED_EV,
            _S.SUSPENDED_EVSE,
            _S.FINISHING,
            _S.RESERVED,
            _S.UNAVAILABLE,
        }
    ),
}


class IllegalTransition(ValueError):
    """A status change the 1.6 state diagram does not allow; carries both ends."""

    def __init__(self, connector_id: int, current: Status, target: Status) -> None:
        super().__init__(f"connector {connector_id}: {current} -> {target} is not allowed")
        self.connector_id = connector_id
        self.current = current
        self.target = target


def allowed(current: Status, target: Status) -> bool:
    return target == current or target is Status.FAULTED or target in TRANSITIONS[current]


@dataclass
class Connector:
    """One connector's live state; connector 0 stands for the whole charge point."""

    id: int
    status: Status = Status.AVAILABLE
    meter_wh: float = 0.0  # fractional Wh accumulate between samples; reported as int
    transaction_id: int | None = None
    id_tag: str | None = None
    reservation_id: int | None = None
    unavailable_after_tx: bool = False
    profiles: dict[int, dict] = field(default_factory=dict)

    def move(self, target: Status, *, force: bool = False) -> Status:
        """Change status; returns the previous one so callers can log the edge."""
        if not force and not allowed(self.status, target):
            raise IllegalTransition(self.id, self.status, target)
        previous, self.status = self.status, target
        return previous

    @property
    def busy(self) -> bool:
        return self.transaction_id is not None
