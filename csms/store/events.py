"""``charger_events``: everything a charger sent that has no table of its own, verbatim."""

from __future__ import annotations

from typing import Any

import orjson

from csms.store.db import Database, Executor


class ChargerEventRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def add(ex: Executor, charger_id: str, action: str, payload: Any, at: str) -> int:
        return await ex.insert(
            "INSERT INTO charger_events (charger_id, action, payload, received_at) VALUES (?, ?, ?, ?)",
            (charger_id, action, orjson.dumps(payload).decode(), at),
        )

    async def list(
        self, charger_id: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM charger_events WHERE 1=1", []
        if charger_id is not None:
            sql += " AND charger_id = ?"
            params.append(charger_id)
        if action is not None:
            sql += " AND action = ?"
            params.append(action)
        rows = await self.db.fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        out = []
        for r in rows:
            d = dict(r)
            d["payload"] = orjson.loads(d["payload"])
            out.append(d)
        return out
