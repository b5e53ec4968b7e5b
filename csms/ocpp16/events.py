"""The event seam towards roaming (OCPI Sessions, CDRs, EVSE status) and any outbox.

Why the callbacks receive the store transaction's :class:`Executor`: a consumer that
writes an outbox row in the SAME transaction as the OCPP fact makes "persisted but never
announced" impossible. Callbacks run inside that transaction, so they must be quick,
only use ``tx`` for SQL (never ``db``: its lock is held), and not call out to the
network. An exception in a callback rolls the whole fact back and the charger gets an
InternalError (it will retry), so raise only for real failures.

Order within one StopTransaction: ``meter_values`` (its transactionData, if any) then
``transaction_stopped``. The records are :mod:`csms.domain` records, never payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from csms.domain.chargers import StatusReport
from csms.domain.transactions import MeterReport, TransactionRecord

if TYPE_CHECKING:
    from csms.store.db import Executor


class ChargerEvents(Protocol):
    """Called inside the store transaction that persisted the fact; ``tx`` is that transaction."""

    async def transaction_started(self, tx: Executor, txn: TransactionRecord) -> None: ...

    async def transaction_stopped(self, tx: Executor, txn: TransactionRecord) -> None: ...

    async def meter_values(self, tx: Executor, charger_id: str, report: MeterReport) -> None: ...

    async def statuses_changed(
        self, tx: Executor, reports: Sequence[tuple[str, StatusReport]]
    ) -> None:
        """``reports``: (charger id, report) of one committed batch, in arrival order (one
        call per batch, so a listener can read what it needs for all of them at once)."""


class NoEvents:
    """The default: nobody listens."""

    async def transaction_started(self, tx: Executor, txn: TransactionRecord) -> None:
        return None

    async def transaction_stopped(self, tx: Executor, txn: TransactionRecord) -> None:
        return None

    async def meter_values(self, tx: Executor, charger_id: str, report: MeterReport) -> None:
        return None

    async def statuses_changed(
        self, tx: Executor, reports: Sequence[tuple[str, StatusReport]]
    ) -> None:
        return None
