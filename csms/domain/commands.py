"""Remote commands an eMSP sent us over OCPI, and the reservations they made."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReceivedCommand:
    """A command as received and answered (``request``/``response``: JSON text)."""

    partner_key: str
    command: str
    request: str
    response: str
    created_at: str


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """How the charger answered a command and whether the eMSP got that result."""

    result: str
    delivered: bool
    error: str | None
    finished_at: str


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """An eMSP's reservation at one connector; ``reservation_id_norm`` is its key per
    partner (our own id is what the charger sees)."""

    partner_key: str
    reservation_id: str
    reservation_id_norm: str
    charger_id: str
    connector_id: int
    location_id: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """Our reservation id (sent to the charger) and the charger it was made at."""

    id: int
    charger_id: str


@dataclass(frozen=True, slots=True)
class SessionTarget:
    """What a StopSession needs: the session's owner and state and its transaction."""

    partner_key: str
    status: str
    transaction_id: int
    charger_id: str
