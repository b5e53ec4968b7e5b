"""``transactions`` (ids from the durable AUTOINCREMENT sequence) and ``stop_records``.

Why the start is looked up by content before inserting: a charger that lost our answer
resends the same StartTransaction under a new message id; the UNIQUE key over
(charger, connector, idTag, timestamp, meterStart) makes it the same transaction, so it
gets the same id back instead of a phantom second session.
"""

from __future__ import annotations

import builtins
from typing import Any

import orjson

from csms.ocpp16.events import TransactionRecord
from csms.store.db import Database, Executor

_START_COLUMNS = (
    "charger_id",
    "connector_id",
    "id_tag",
    "id_tag_norm",
    "meter_start",
    "start_timestamp",
    "start_received_at",
    "reservation_id",
    "start_status",
    "parent_id_tag",
    "authorization_reference",
    "partner_id",
    "token_type",
    "token_country_code",
    "token_party_id",
    "contract_id",
    "auth_method",
)
_INSERT_START = (
    f"INSERT INTO transactions ({', '.join(_START_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _START_COLUMNS)}) "
    "ON CONFLICT (charger_id, connector_id, id_tag_norm, start_timestamp, meter_start) DO NOTHING"
)
_FIND_START = (
    "SELECT * FROM transactions WHERE charger_id = ? AND connector_id = ? AND id_tag_norm = ? "
    "AND start_timestamp = ? AND meter_start = ?"
)


class TransactionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, transaction_id: int) -> TransactionRecord | None:
        row = await self.db.fetchone("SELECT * FROM transactions WHERE id = ?", (transaction_id,))
        return TransactionRecord.from_row(row) if row else None

    async def list(
        self, limit: int = 100, charger_id: str | None = None, active_only: bool = False
    ) -> list[TransactionRecord]:
        sql, params = "SELECT * FROM transactions WHERE 1=1", []
        if charger_id is not None:
            sql += " AND charger_id = ?"
            params.append(charger_id)
        if active_only:
            sql += " AND stop_received_at IS NULL"
        rows = await self.db.fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [TransactionRecord.from_row(r) for r in rows]

    async def find_start(
        self,
        ex: Executor,
        charger_id: str,
        connector_id: int,
        id_tag_norm: str,
        timestamp: str,
        meter_start: int,
    ) -> TransactionRecord | None:
        row = await ex.fetchone(
            _FIND_START, (charger_id, connector_id, id_tag_norm, timestamp, meter_start)
        )
        return TransactionRecord.from_row(row) if row else None

    async def insert_start(
        self, ex: Executor, values: dict[str, Any]
    ) -> tuple[TransactionRecord, bool]:
        """Insert (columns of :data:`_START_COLUMNS`); returns (record, created). A row with
        the same content already there is returned with ``created=False``."""
        n = await ex.execute(_INSERT_START, tuple(values[c] for c in _START_COLUMNS))
        row = await ex.fetchone(
            _FIND_START,
            (
                values["charger_id"],
                values["connector_id"],
                values["id_tag_norm"],
                values["start_timestamp"],
                values["meter_start"],
            ),
        )
        assert row is not None
        return TransactionRecord.from_row(row), n > 0

    @staticmethod
    async def get_in(ex: Executor, transaction_id: int) -> TransactionRecord | None:
        row = await ex.fetchone("SELECT * FROM transactions WHERE id = ?", (transaction_id,))
        return TransactionRecord.from_row(row) if row else None

    @staticmethod
    async def stop(
        ex: Executor,
        transaction_id: int,
        meter_stop: int,
        timestamp: str,
        received_at: str,
        reason: str | None,
        id_tag: str | None,
    ) -> TransactionRecord:
        await ex.execute(
            "UPDATE transactions SET meter_stop = ?, stop_timestamp = ?, stop_received_at = ?, "
            "stop_reason = ?, stop_id_tag = ? WHERE id = ?",
            (meter_stop, timestamp, received_at, reason, id_tag, transaction_id),
        )
        row = await ex.fetchone("SELECT * FROM transactions WHERE id = ?", (transaction_id,))
        assert row is not None
        return TransactionRecord.from_row(row)

    @staticmethod
    async def add_stop_record(
        ex: Executor, charger_id: str, kind: str, payload: dict[str, Any], received_at: str
    ) -> int:
        data = payload.get("transactionData")
        return await ex.insert(
            "INSERT INTO stop_records (charger_id, transaction_id, kind, id_tag, meter_stop, "
            "stop_timestamp, reason, transaction_data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                charger_id,
                payload["transactionId"],
                kind,
                payload.get("idTag"),
                payload["meterStop"],
                payload["timestamp"],
                payload.get("reason"),
                orjson.dumps(data).decode() if data is not None else None,
                received_at,
            ),
        )

    async def stop_records(
        self, charger_id: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        if charger_id is None:
            rows = await self.db.fetchall(
                "SELECT * FROM stop_records ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM stop_records WHERE charger_id = ? ORDER BY id DESC LIMIT ?",
                (charger_id, limit),
            )
        return [dict(r) for r in rows]
