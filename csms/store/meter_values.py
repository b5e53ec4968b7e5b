"""``meter_values``: one row per sampledValue, charger timestamp as sent beside receive time."""

from __future__ import annotations

from typing import Any

from csms.ocpp16.events import MeterSample
from csms.store.db import Database, Executor


def samples_of(meter_value: list[dict[str, Any]]) -> list[MeterSample]:
    """Flatten a wire ``meterValue`` array (already schema-valid) into samples."""
    out = []
    for mv in meter_value:
        ts = mv["timestamp"]
        for sv in mv["sampledValue"]:
            out.append(
                MeterSample(
                    ts,
                    sv["value"],
                    sv.get("context"),
                    sv.get("format"),
                    sv.get("measurand"),
                    sv.get("phase"),
                    sv.get("location"),
                    sv.get("unit"),
                )
            )
    return out


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

    async def for_transaction(self, transaction_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT * FROM meter_values WHERE transaction_id = ? ORDER BY timestamp, id",
            (transaction_id,),
        )
        return [dict(r) for r in rows]

    async def for_charger(self, charger_id: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT * FROM meter_values WHERE charger_id = ? ORDER BY id DESC LIMIT ?",
            (charger_id, limit),
        )
        return [dict(r) for r in rows]
