"""``meter_values``: one row per sampled value, charger timestamp as sent beside receive time."""

from __future__ import annotations

from csms.domain.transactions import MeterSample, MeterSummary
from csms.store.db import Database, Executor


class MeterValueRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def add(
        ex: Executor,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        source: str,
        samples: list[MeterSample],
        received_at: str,
    ) -> None:
        await ex.executemany(
            "INSERT INTO meter_values (charger_id, connector_id, transaction_id, source, timestamp, "
            "received_at, value, context, format, measurand, phase, location, unit) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    charger_id,
                    connector_id,
                    transaction_id,
                    source,
                    s.timestamp,
                    received_at,
                    s.value,
                    s.context,
                    s.format,
                    s.measurand,
                    s.phase,
                    s.location,
                    s.unit,
                )
                for s in samples
            ],
        )

    @staticmethod
    async def of_transaction(
        ex: Executor, charger_id: str, transaction_id: int
    ) -> list[MeterSample]:
        """The transaction's samples from that charger, in reading order (as sent: the
        optional fields are None where the charger left them out)."""
        rows = await ex.fetchall(
            "SELECT timestamp, value, context, format, measurand, phase, location, unit "
            "FROM meter_values WHERE transaction_id = ? AND charger_id = ? ORDER BY timestamp, id",
            (transaction_id, charger_id),
        )
        return [MeterSample(*r) for r in rows]

    async def summary(self, transaction_id: int) -> MeterSummary:
        row = await self.db.fetchone(
            "SELECT count(*) AS n, max(timestamp) AS last FROM meter_values WHERE transaction_id = ?",
            (transaction_id,),
        )
        assert row is not None
        return MeterSummary(row["n"], row["last"])
