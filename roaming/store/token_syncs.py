"""Token sync runs: the ``ocpi_token_syncs`` table.

Why runs write tokens here and not through the caller: a page of tokens and the run's
progress are committed together, and a complete full run sweeps the tokens it did not
see in the same transaction that marks it complete; the token rows themselves are
written by :class:`~roaming.store.tokens.TokenStore`, which also tells the listeners.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from roaming.models import Token, now_str
from roaming.ports import SqlDatabase, SyncRun
from roaming.store.tokens import TokenStore


def _sync_from_row(row: Any) -> SyncRun:
    return SyncRun(
        id=row["id"],
        partner_key=row["key"],
        kind=row["kind"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        date_from=row["date_from"],
        pages=row["pages"],
        tokens_seen=row["tokens_seen"],
        tokens_invalid=row["tokens_invalid"],
        tokens_removed=row["tokens_removed"],
        error=row["error"],
    )


class TokenSyncStore:
    """Runs of a token pull from an eMSP: started, paged, finished or failed."""

    def __init__(self, db: SqlDatabase, tokens: TokenStore) -> None:
        self.db = db
        self.tokens = tokens

    async def start_sync(
        self, partner_id: int, kind: str, date_from: str | None
    ) -> tuple[int, str]:
        started = now_str()
        run_id = await self.db.insert(
            "INSERT INTO ocpi_token_syncs (partner_id, kind, status, started_at, date_from) "
            "VALUES (?, ?, 'running', ?, ?)",
            (partner_id, kind, started, date_from),
        )
        return run_id, started

    async def sync_page(
        self, partner_id: int, run_id: int, tokens: Sequence[Token], invalid: int, generation: int
    ) -> None:
        """One page: tokens upserted and run progress bumped, atomically."""
        async with self.db.transaction() as tx:
            uids = await self.tokens.write_sync_page(tx, partner_id, tokens, generation)
            await tx.execute(
                "UPDATE ocpi_token_syncs SET pages = pages + 1, tokens_seen = tokens_seen + ?, "
                "tokens_invalid = tokens_invalid + ? WHERE id = ?",
                (len(tokens), invalid, run_id),
            )
        if tokens:
            self.tokens.listeners.notify(uids)

    async def finish_sync(
        self, partner_id: int, run_id: int, started_at: str, *, sweep: bool
    ) -> int:
        """Mark the run complete; after a full run, sweep tokens it did not see."""
        removed = 0
        async with self.db.transaction() as tx:
            if sweep:
                removed = await self.tokens.sweep(tx, partner_id, run_id)
            await tx.execute(
                "UPDATE ocpi_token_syncs SET status = 'complete', finished_at = ?, "
                "tokens_removed = ? WHERE id = ?",
                (now_str(), removed, run_id),
            )
        if removed:
            self.tokens.listeners.notify(None)
        return removed

    async def note_sync(self, run_id: int, note: str) -> None:
        await self.db.execute(
            "UPDATE ocpi_token_syncs SET error = ? WHERE id = ?", (note[:500], run_id)
        )

    async def fail_sync(self, run_id: int, error: str) -> None:
        await self.db.execute(
            "UPDATE ocpi_token_syncs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
            (now_str(), error[:500], run_id),
        )

    async def sync_runs(self, partner_id: int, limit: int = 10) -> list[SyncRun]:
        rows = await self.db.fetchall(
            "SELECT s.*, p.key AS key FROM ocpi_token_syncs s JOIN ocpi_partners p "
            "ON p.id = s.partner_id WHERE s.partner_id = ? ORDER BY s.id DESC LIMIT ?",
            (partner_id, limit),
        )
        return [_sync_from_row(r) for r in rows]

    async def last_complete_sync(self, partner_id: int) -> SyncRun | None:
        row = await self.db.fetchone(
            "SELECT s.*, p.key AS key FROM ocpi_token_syncs s JOIN ocpi_partners p "
            "ON p.id = s.partner_id WHERE s.partner_id = ? AND s.status = 'complete' "
            "ORDER BY s.id DESC LIMIT 1",
            (partner_id,),
        )
        return _sync_from_row(row) if row else None

    async def fail_stale_runs(self, partner_id: int | None = None) -> None:
        """Runs left 'running' by a crash are failed at start-up (they removed nothing);
        ``partner_id``: that partner's only."""
        sql = (
            "UPDATE ocpi_token_syncs SET status = 'failed', finished_at = ?, "
            "error = 'interrupted (process stopped)' WHERE status = 'running'"
        )
        if partner_id is None:
            await self.db.execute(sql, (now_str(),))
        else:
            await self.db.execute(sql + " AND partner_id = ?", (now_str(), partner_id))

    async def run_counts(self) -> list[tuple[str, str, str, int]]:
        """Finished runs per partner key, kind and status (complete, failed): counters
        that only grow, for monitoring."""
        rows = await self.db.fetchall(
            "SELECT p.key AS key, s.kind AS kind, s.status AS status, count(*) AS n"
            " FROM ocpi_token_syncs s JOIN ocpi_partners p ON p.id = s.partner_id"
            " WHERE s.status IN ('complete', 'failed') GROUP BY p.key, s.kind, s.status"
        )
        return [(r["key"], r["kind"], r["status"], r["n"]) for r in rows]
