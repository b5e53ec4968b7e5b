"""``local_list_chargers`` and ``local_list_entries``: each charger's Local Authorization
List as far as we know it, plus the facts the selection reads from other csms tables.

Why entries are stored and not recomputed: a Differential update is the difference
between what the charger holds and what it should hold; what it holds is what it
accepted from us, which only we can remember (across reconnects and restarts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csms.datetimes import now_millis
from csms.domain.local_lists import Entry, ListState
from csms.domain.tokens import IdTag
from csms.store.db import Database

MODES = ("auto", "on", "off")

_STATE_COLS = (
    "charger_id, mode, supported, max_length, send_max_length, version, charger_version, "
    "size, last_sync_at, last_result, last_detail"
)


def _state(row: Any) -> ListState:
    supported = row["supported"]
    return ListState(
        charger_id=row["charger_id"],
        mode=row["mode"],
        supported=None if supported is None else bool(supported),
        max_length=row["max_length"],
        send_max_length=row["send_max_length"],
        version=row["version"],
        charger_version=row["charger_version"],
        size=row["size"],
        last_sync_at=row["last_sync_at"],
        last_result=row["last_result"],
        last_detail=row["last_detail"],
    )


class LocalListRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _ensure(self, charger_id: str) -> None:
        await self.db.execute(
            "INSERT INTO local_list_chargers (charger_id, updated_at) VALUES (?, ?) "
            "ON CONFLICT (charger_id) DO NOTHING",
            (charger_id, now_millis()),
        )

    async def state(self, charger_id: str) -> ListState:
        row = await self.db.fetchone(
            f"SELECT {_STATE_COLS} FROM local_list_chargers WHERE charger_id = ?", (charger_id,)
        )
        return ListState(charger_id) if row is None else _state(row)

    async def states(self) -> list[ListState]:
        rows = await self.db.fetchall(
            f"SELECT {_STATE_COLS} FROM local_list_chargers ORDER BY charger_id"
        )
        return [_state(r) for r in rows]

    async def set_mode(self, charger_id: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        await self._ensure(charger_id)
        await self.db.execute(
            "UPDATE local_list_chargers SET mode = ?, updated_at = ? WHERE charger_id = ?",
            (mode, now_millis(), charger_id),
        )

    async def record_probe(
        self,
        charger_id: str,
        *,
        supported: bool,
        max_length: int | None,
        send_max_length: int | None,
        charger_version: int | None,
    ) -> None:
        """What the charger said about its list at (re)connect."""
        await self._ensure(charger_id)
        await self.db.execute(
            "UPDATE local_list_chargers SET supported = ?, max_length = ?, send_max_length = ?, "
            "charger_version = ?, updated_at = ? WHERE charger_id = ?",
            (
                1 if supported else 0,
                max_length,
                send_max_length,
                charger_version,
                now_millis(),
                charger_id,
            ),
        )

    async def record_result(self, charger_id: str, result: str, detail: str | None) -> None:
        await self._ensure(charger_id)
        now = now_millis()
        await self.db.execute(
            "UPDATE local_list_chargers SET last_sync_at = ?, last_result = ?, last_detail = ?, "
            "updated_at = ? WHERE charger_id = ?",
            (now, result, detail, now, charger_id),
        )

    async def entries(self, charger_id: str) -> dict[str, Entry]:
        rows = await self.db.fetchall(
            "SELECT id_tag_norm, id_tag, status, expiry_date, parent_id_tag, partner_key "
            "FROM local_list_entries WHERE charger_id = ?",
            (charger_id,),
        )
        return {
            r["id_tag_norm"]: Entry(
                r["id_tag"], r["status"], r["expiry_date"], r["parent_id_tag"], r["partner_key"]
            )
            for r in rows
        }

    async def entry(self, charger_id: str, id_tag_norm: str) -> Entry | None:
        r = await self.db.fetchone(
            "SELECT id_tag, status, expiry_date, parent_id_tag, partner_key "
            "FROM local_list_entries WHERE charger_id = ? AND id_tag_norm = ?",
            (charger_id, id_tag_norm),
        )
        if r is None:
            return None
        return Entry(
            r["id_tag"], r["status"], r["expiry_date"], r["parent_id_tag"], r["partner_key"]
        )

    async def accepted(
        self,
        charger_id: str,
        version: int,
        changes: Sequence[tuple[str, Entry | None]],
        *,
        full: bool,
        size: int,
    ) -> None:
        """The charger accepted a message: its entries changed by ``changes`` (norm, entry
        or None for a removal; after a Full, ``changes`` is the whole list) and it now
        holds ``size`` entries at ``version``. One transaction."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO local_list_chargers (charger_id, updated_at) VALUES (?, ?) "
                "ON CONFLICT (charger_id) DO NOTHING",
                (charger_id, now_millis()),
            )
            if full:
                await tx.execute(
                    "DELETE FROM local_list_entries WHERE charger_id = ?", (charger_id,)
                )
            gone = [(charger_id, n) for n, e in changes if e is None]
            kept = [
                (charger_id, n, e.id_tag, e.status, e.expiry_date, e.parent_id_tag, e.partner_key)
                for n, e in changes
                if e is not None
            ]
            if gone:
                await tx.executemany(
                    "DELETE FROM local_list_entries WHERE charger_id = ? AND id_tag_norm = ?", gone
                )
            if kept:
                await tx.executemany(
                    "INSERT INTO local_list_entries (charger_id, id_tag_norm, id_tag, status, "
                    "expiry_date, parent_id_tag, partner_key) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (charger_id, id_tag_norm) DO UPDATE SET id_tag = excluded.id_tag, "
                    "status = excluded.status, expiry_date = excluded.expiry_date, "
                    "parent_id_tag = excluded.parent_id_tag, partner_key = excluded.partner_key",
                    kept,
                )
            await tx.execute(
                "UPDATE local_list_chargers SET version = ?, charger_version = ?, size = ?, "
                "updated_at = ? WHERE charger_id = ?",
                (version, version, size, now_millis(), charger_id),
            )

    async def own_cards(self) -> list[IdTag]:
        """Own cards that may go into lists: Accepted ones (expiry checked by the caller)."""
        rows = await self.db.fetchall(
            "SELECT id_tag, status, expiry_date, parent_id_tag, created_at, updated_at "
            "FROM id_tags WHERE status = 'Accepted'"
        )
        return [IdTag(**dict(r)) for r in rows]

    async def recent_uses(self, charger_id: str, limit: int) -> dict[str, str]:
        """id_tag_norm -> latest transaction start received at this charger, newest first."""
        rows = await self.db.fetchall(
            "SELECT id_tag_norm, MAX(start_received_at) AS at FROM transactions "
            "WHERE charger_id = ? GROUP BY id_tag_norm ORDER BY at DESC LIMIT ?",
            (charger_id, limit),
        )
        return {r["id_tag_norm"]: r["at"] for r in rows}
