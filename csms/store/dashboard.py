"""Read-only queries the web dashboard needs beyond the repositories' own.

Why fingerprints: the dashboard's live updates ask, about once a second per open page,
"did anything this page shows change?". Each fingerprint is one cheap aggregate query
(counts and maxima over indexed or small tables); the page is re-rendered only when it
moves, so an idle dashboard costs a few microseconds of SQLite per tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from csms.store.db import Executor

ENERGY_REGISTER = "Energy.Active.Import.Register"


@dataclass(frozen=True, slots=True)
class DecisionCount:
    source: str
    status: str
    count: int


async def active_transaction_count(db: Executor) -> int:
    row = await db.fetchone("SELECT count(*) FROM transactions WHERE stop_received_at IS NULL")
    return int(row[0]) if row else 0


async def charger_count(db: Executor) -> int:
    row = await db.fetchone("SELECT count(*) FROM chargers")
    return int(row[0]) if row else 0


async def decisions_since(db: Executor, since: str) -> list[DecisionCount]:
    """Decisions per (source, status) decided at or after ``since`` (a millis stamp).

    The decision log has no index on ``decided_at`` (it is append-only, see migration
    0005), but ids grow with decision time, so the first id of the window is found by a
    binary search over the primary key (a few dozen point reads) and only the window is
    counted.
    """
    first = await first_id_since(db, since)
    if first is None:
        return []
    rows = await db.fetchall(
        "SELECT source, status, count(*) FROM authorizations WHERE id >= ?"
        " GROUP BY source, status ORDER BY source, status",
        (first,),
    )
    return [DecisionCount(r[0], r[1], int(r[2])) for r in rows]


async def first_id_since(db: Executor, since: str) -> int | None:
    """The smallest decision id with ``decided_at >= since`` (None: no such decision)."""
    row = await db.fetchone("SELECT min(id), max(id) FROM authorizations")
    if row is None or row[1] is None:
        return None
    lo, hi = int(row[0]), int(row[1])
    last = await db.fetchone("SELECT decided_at FROM authorizations WHERE id = ?", (hi,))
    if last is None or last[0] < since:
        return None
    # P(x) = "the first decision with id >= x was decided at or after since" is monotone
    # in x (ids may have gaps) and P(hi) holds: find the smallest x with P(x).
    probe_sql = "SELECT id, decided_at FROM authorizations WHERE id >= ? ORDER BY id LIMIT 1"
    found = hi
    while lo < hi:
        mid = (lo + hi) // 2
        probe = await db.fetchone(probe_sql, (mid,))
        assert probe is not None  # the row ``hi`` exists
        if probe[1] >= since:
            hi, found = mid, int(probe[0])
        else:
            lo = mid + 1
    return found


async def latest_energy_readings(
    db: Executor, transaction_ids: Sequence[int]
) -> dict[int, tuple[str, str | None]]:
    """The newest total import register reading (value, unit) of each transaction.

    Running transactions have no ``meter_stop`` yet; this is what their energy so far is
    computed from (:mod:`csms.admin.dashboard.views`).
    """
    if not transaction_ids:
        return {}
    marks = ", ".join("?" for _ in transaction_ids)
    rows = await db.fetchall(
        "SELECT m.transaction_id, m.value, m.unit FROM meter_values m WHERE m.id IN ("
        " SELECT max(id) FROM meter_values WHERE transaction_id IN (" + marks + ")"
        " AND coalesce(measurand, ?) = ? AND phase IS NULL GROUP BY transaction_id)",
        (*transaction_ids, ENERGY_REGISTER, ENERGY_REGISTER),
    )
    return {int(r[0]): (r[1], r[2]) for r in rows}


async def chargers_fingerprint(db: Executor) -> tuple[Any, ...]:
    """Moves when a charger is added, removed, boots, beats or reports a connector status."""
    row = await db.fetchone(
        "SELECT (SELECT count(*) FROM chargers), (SELECT max(last_heartbeat_at) FROM chargers),"
        " (SELECT max(last_boot_at) FROM chargers),"
        " (SELECT max(coalesce(last_connected_at, '')) || max(coalesce(last_disconnected_at, ''))"
        "  FROM chargers),"
        " (SELECT count(*) FROM connectors), (SELECT max(received_at) FROM connectors)"
    )
    return tuple(row) if row else ()


async def transactions_fingerprint(db: Executor) -> tuple[Any, ...]:
    """Moves when a transaction starts or stops or a meter value arrives."""
    row = await db.fetchone(
        "SELECT (SELECT max(id) FROM transactions),"
        " (SELECT count(*) FROM transactions WHERE stop_received_at IS NULL),"
        " (SELECT max(id) FROM meter_values)"
    )
    return tuple(row) if row else ()


async def authorizations_fingerprint(db: Executor) -> tuple[Any, ...]:
    row = await db.fetchone("SELECT max(id) FROM authorizations")
    return tuple(row) if row else ()
