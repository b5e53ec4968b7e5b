"""A connector's live state, moved only along the OCPP 1.6 status diagram (section 4.9).

Why the table lives in ``csms.lifecycle``: the automatic flows (start, stop, remote start,
reservation, availability) must never send a status sequence a real charger could not
produce, and the CSMS warns about exactly the sequences that table forbids; one table
means both ends agree. That pure module is the only ``csms`` code we import. An illegal
move raises :class:`IllegalTransition`; the explicit ``cp.status(..., force=True)`` escape
hatch exists for fault tests that *want* to send nonsense.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from csms.lifecycle import may_move


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


class IllegalTransition(ValueError):
    """A status change the 1.6 state diagram does not allow; carries both ends."""

    def __init__(self, connector_id: int, current: Status, target: Status) -> None:
        super().__init__(f"connector {connector_id}: {current} -> {target} is not allowed")
        self.connector_id = connector_id
        self.current = current
        self.target = target


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
        if not force and not may_move(self.status, target):
            raise IllegalTransition(self.id, self.status, target)
        previous, self.status = self.status, target
        return previous

    @property
    def busy(self) -> bool:
        return self.transaction_id is not None
