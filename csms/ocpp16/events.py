"""The event seam towards roaming (OCPI Sessions, CDRs, EVSE status) and any outbox.

Why the callbacks receive the store transaction's :class:`Executor`: a consumer that
writes an outbox row in the SAME transaction as the OCPP fact makes "persisted but never
announced" impossible. Callbacks run inside that transaction, so they must be quick,
only use ``tx`` for SQL (never ``db``: its lock is held), and not call out to the
network. An exception in a callback rolls the whole fact back and the charger gets an
InternalError (it will retry), so raise only for real failures.

Order within one StopTransaction: ``meter_values`` (its transactionData, if any) then
``transaction_stopped``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from csms.store.db import Executor

# Defaults OCPP 1.6 gives a sampledValue field that the charger left out.
SAMPLE_DEFAULTS = {
    "context": "Sample.Periodic",
    "format": "Raw",
    "measurand": "Energy.Active.Import.Register",
    "location": "Outlet",
    "unit": "Wh",
}


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """One row of ``transactions`` (times: charger-reported as sent; ``*_received_at`` ours)."""

    id: int
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
    meter_stop: int | None
    stop_timestamp: str | None
    stop_received_at: str | None
    stop_reason: str | None
    stop_id_tag: str | None

    @property
    def active(self) -> bool:
        return self.stop_received_at is None

    @classmethod
    def from_row(cls, row: Any) -> TransactionRecord:
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampledValue with its meterValue timestamp; optional fields as the charger sent them
    (``None`` when absent; see :meth:`effective` for the OCPP default)."""

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


class ChargerEvents(Protocol):
    """Called inside the store transaction that persisted the fact; ``tx`` is that transaction."""

    async def transaction_started(self, tx: Executor, txn: TransactionRecord) -> None: ...

    async def transaction_stopped(self, tx: Executor, txn: TransactionRecord) -> None: ...

    async def meter_values(
        self,
        tx: Executor,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        samples: list[MeterSample],
    ) -> None: ...

    async def status_changed(
        self,
        tx: Executor,
        charger_id: str,
        connector_id: int,
        status: str,
        error_code: str,
        timestamp: str | None,
    ) -> None: ...


class NoEvents:
    """The default: nobody listens."""

    async def transaction_started(self, tx: Executor, txn: TransactionRecord) -> None:
        return None

    async def transaction_stopped(self, tx: Executor, txn: TransactionRecord) -> None:
        return None

    async def meter_values(
        self,
        tx: Executor,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        samples: list[MeterSample],
    ) -> None:
        return None

    async def status_changed(
        self,
        tx: Executor,
        charger_id: str,
        connector_id: int,
        status: str,
        error_code: str,
        timestamp: str | None,
    ) -> None:
        return None
