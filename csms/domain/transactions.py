"""Charging transactions and the meter readings taken during them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Defaults OCPP 1.6 gives a sampledValue field that the charger left out.
SAMPLE_DEFAULTS = {
    "context": "Sample.Periodic",
    "format": "Raw",
    "measurand": "Energy.Active.Import.Register",
    "location": "Outlet",
    "unit": "Wh",
}


@dataclass(frozen=True, slots=True)
class TransactionStart:
    """A transaction to record: what the charger reported (``start_timestamp`` as sent,
    ``start_received_at`` ours) and how its token was decided (``start_status`` on)."""

    charger_id: str
    connector_id: int
    id_tag: str
    id_tag_norm: str
    meter_start: int
    start_timestamp: str
    start_received_at: str
    reservation_id: int | None
    start_status: str
    parent_id_tag: str | None
    authorization_reference: str | None
    partner_id: str | None
    token_type: str | None
    token_country_code: str | None
    token_party_id: str | None
    contract_id: str | None
    auth_method: str | None
    # The token uid as its eMSP spells it (pushed, synced, answered in real time or sent
    # in a command), when the decision knew it; ``id_tag`` is the charger's spelling.
    token_uid: str | None


@dataclass(frozen=True, slots=True)
class TransactionRecord(TransactionStart):
    """A stored transaction: its start as recorded, its id, and its stop once reported
    (``stop_timestamp`` as the charger sent it, ``stop_received_at`` ours)."""

    id: int
    meter_stop: int | None
    stop_timestamp: str | None
    stop_received_at: str | None
    stop_reason: str | None
    stop_id_tag: str | None

    @property
    def active(self) -> bool:
        return self.stop_received_at is None


@dataclass(frozen=True, slots=True)
class TransactionStop:
    """What one StopTransaction says (``timestamp`` as the charger sent it).

    ``transaction_data`` is the message's meter data as sent, kept verbatim when the
    stop matches no live transaction (its samples are stored as :class:`MeterSample`
    rows otherwise).
    """

    transaction_id: int
    meter_stop: int
    timestamp: str
    reason: str | None
    id_tag: str | None
    transaction_data: Any


@dataclass(frozen=True, slots=True)
class MeterReport:
    """The samples one MeterValues (or a StopTransaction's transactionData) reported for
    one connector, and the transaction they belong to (None outside a transaction)."""

    connector_id: int
    transaction_id: int | None
    samples: list[MeterSample]


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampled value with its reading's timestamp; optional fields as the charger
    sent them (``None`` when absent; see :meth:`effective` for the OCPP default)."""

    timestamp: str
    value: str
    context: str | None = None
    format: str | None = None
    measurand: str | None = None
    phase: str | None = None
    location: str | None = None
    unit: str | None = None

    def effective(self, field: str) -> str:
        """The field's value, or the OCPP 1.6 default when the charger omitted it."""
        value = getattr(self, field)
        return value if value is not None else SAMPLE_DEFAULTS[field]


@dataclass(frozen=True, slots=True)
class MeterSummary:
    """How many samples a transaction has and the newest sample's timestamp."""

    count: int
    last_timestamp: str | None
