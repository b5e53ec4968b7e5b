"""``transactions`` (ids from the durable AUTOINCREMENT sequence) and ``stop_records``.

Why the start is looked up by content before inserting: a charger that lost our answer
resends the same StartTransaction under a new message id; the UNIQUE key over
(charger, connector, idTag, timestamp, meterStart) makes it the same transaction, so it
gets the same id back instead of a phantom second session.
"""

from __future__ import annotations

import builtins
from dataclasses import astuple, fields
from typing import Any

import orjson

from csms.domain.transactions import TransactionRecord, TransactionStart, TransactionStop
from csms.store.db import Database, Executor

# The records' fields are named after the columns.
_START_COLUMNS = tuple(f.name for f in fields(TransactionStart))
_RECORD_COLUMNS = tuple(f.name for f in fields(TransactionRecord))
_INSERT_START = (
    f"INSERT INTO transactions ({', '.join(_START_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _START_COLUMNS)}) "
    "ON CONFLICT (charger_id, connector_id, id_tag_norm, start_timestamp, meter_start) DO NOTHING"
)
_FIND_START = (
    "SELECT * FROM transactions WHERE charger_id = ? AND connector_id = ? AND id_tag_norm = ? "
    "AND start_timestamp = ? AND meter_start = ?"
)
_SELECT_ONE = "SELECT * FROM transactions WHERE id = ?"


def _record(row: Any) -> TransactionRecord:
    return TransactionRecord(**{name: row[name] for name in _RECORD_COLUMNS})


class TransactionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, transaction_id: int) -> TransactionRecord | None:
        return await self.get_in(self.db, transaction_id)

    async def list(
        self, limit: int = 100, charger_id: str | None = None, active: bool | None = None
    ) -> list[TransactionRecord]:
        """Newest first; ``active`` True/False keeps only running/finished ones."""
        where: list[str] = []
        params: list[Any] = []
        if charger_id is not None:
            where.append("charger_id = ?")
            params.append(charger_id)
        if active is True:
            where.append("stop_received_at IS NULL")
        elif active is False:
            where.append("stop_received_at IS NOT NULL")
        sql = "SELECT * FROM transactions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.db.fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_record(r) for r in rows]

    async def running_at(self, charger_id: str) -> builtins.list[TransactionRecord]:
        """The charger's transactions not yet stopped, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM transactions WHERE charger_id = ? AND stop_received_at IS NULL "
            "ORDER BY id",
            (charger_id,),
        )
        return [_record(r) for r in rows]

    async def active_for(self, id_tag_norm: str) -> builtins.list[tuple[str, int]]:
        """(charger id, connector id) of every running transaction of one token."""
        rows = await self.db.fetchall(
            "SELECT charger_id, connector_id FROM transactions "
            "WHERE id_tag_norm = ? AND stop_received_at IS NULL",
            (id_tag_norm,),
        )
        return [(r["charger_id"], int(r["connector_id"])) for r in rows]

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
        return _record(row) if row else None

    async def insert_start(
        self, ex: Executor, start: TransactionStart
    ) -> tuple[TransactionRecord, bool]:
        """Insert ``start``; returns (record, created). A row with the same content
        already there is returned with ``created=False``."""
        n = await ex.execute(_INSERT_START, astuple(start))
        row = await ex.fetchone(
            _FIND_START,
            (
                start.charger_id,
                start.connector_id,
                start.id_tag_norm,
                start.start_timestamp,
                start.meter_start,
            ),
        )
        assert row is not None
        return _record(row), n > 0

    @staticmethod
    async def get_in(
        ex: Executor, transaction_id: int, *, for_update: bool = False
    ) -> TransactionRecord | None:
        """``for_update``: on PostgreSQL the row stays locked until ``ex``'s transaction
        ends. Why: a StopTransaction replayed on another node while the first node is
        still handling it must wait and then see the transaction stopped, or both would
        stop it and queue two CDRs. (SQLite's single writer already serialises them.)"""
        sql = _SELECT_ONE
        if for_update and ex.dialect == "postgresql":
            sql += " FOR UPDATE"
        row = await ex.fetchone(sql, (transaction_id,))
        return _record(row) if row else None

    @staticmethod
    async def stop(
        ex: Executor, stop: TransactionStop, received_at: str, meter_stop_raw: str | None = None
    ) -> TransactionRecord:
        """Stop the transaction. ``meter_stop_raw``: the meterStop as decimal text when it
        does not fit the column (``meter_stop`` is then NULL, as for a stop without one)."""
        await ex.execute(
            "UPDATE transactions SET meter_stop = ?, stop_timestamp = ?, stop_received_at = ?, "
            "stop_reason = ?, stop_id_tag = ?, meter_stop_raw = ? WHERE id = ?",
            (
                stop.meter_stop if meter_stop_raw is None else None,
                stop.timestamp,
                received_at,
                stop.reason,
                stop.id_tag,
                meter_stop_raw,
                stop.transaction_id,
            ),
        )
        row = await ex.fetchone(_SELECT_ONE, (stop.transaction_id,))
        assert row is not None
        return _record(row)

    @staticmethod
    async def add_stop_record(
        ex: Executor,
        charger_id: str,
        kind: str,
        stop: TransactionStop,
        received_at: str,
        raw_integers: dict[str, str] | None = None,
    ) -> int:
        """Keep a stop that stopped nothing (``kind``: "orphan" or "duplicate") as sent.
        ``raw_integers``: fields whose value no integer column holds, as exact decimal
        text (``stop`` then carries 0 for them)."""
        data = stop.transaction_data
        return await ex.insert(
            "INSERT INTO stop_records (charger_id, transaction_id, kind, id_tag, meter_stop, "
            "stop_timestamp, reason, transaction_data, received_at, raw_integers) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                charger_id,
                stop.transaction_id,
                kind,
                stop.id_tag,
                stop.meter_stop,
                stop.timestamp,
                stop.reason,
                orjson.dumps(data).decode() if data is not None else None,
                received_at,
                orjson.dumps(raw_integers).decode() if raw_integers else None,
            ),
        )
