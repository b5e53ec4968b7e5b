"""The outbox table (``ocpi_outbox``): queued pushes, their attempts and outcomes.

Why the SQL sits apart from the worker: a push is written by whoever commits the fact
that causes it (inside that fact's transaction, :func:`insert_message`), read in
delivery order by the worker and listed, retried or dropped by the operator; all of
those go through this module. What a delivery means is :mod:`roaming.outbox`'s business.

In flight: ``in_flight_at`` is set, committed, just before an attempt's request leaves
(:meth:`OutboxStore.mark_in_flight`) and cleared in the same statement that records the
attempt's outcome. A message read while it is still set had an attempt with no recorded
outcome (the process died, or was stopped, mid-request), so it is read as ``ambiguous``:
the partner may have acted on it.

Claims: several processes may deliver one outbox (nodes sharing a PostgreSQL database).
A process takes due heads with :meth:`OutboxStore.claim`, which records it in
``claimed_by`` in the same transaction that picks them (on PostgreSQL the picked rows are
locked ``FOR UPDATE SKIP LOCKED``, so two processes claiming at once take different rows;
SQLite has one writer, and one process). A message claimed by a live process is taken by
no other; per-object order needs nothing more, because a claimed message is still
``pending`` and so keeps every later message of its object from being a head. A claim
by a dead process (see :class:`roaming.ports.Claims`) is free, and so is one this
process's id made in an earlier life; if it was in flight, its new taker reads it as
ambiguous like any in-flight message. Recording an outcome is refused when another
process holds the claim (it took the message over from this one, thought dead), so a
late answer cannot undo what the new taker recorded.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from roaming.ports import Claims, SqlDatabase, SqlExecutor
from roaming.store.cdrs import set_emsp_location

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(dt: datetime) -> str:
    """Millisecond UTC stamp: sorts as text, fine enough for sub-second test backoffs."""
    return dt.astimezone(UTC).strftime(_STAMP)[:-4] + "Z"


def parse_stamp(value: str) -> datetime:
    """The aware UTC time of a :func:`stamp`."""
    return datetime.strptime(value, _STAMP).replace(tzinfo=UTC)


# How held pushes are shown and counted (in the table they are ``pending``, whose CHECK
# takes no new value without rebuilding a table other steps add columns to).
WAITING = "waiting"


# A message first in line for its (partner, object) and free to go: not held, and no
# earlier message of the object still pending (held ones included) or dead.
_HEAD = (
    "o.status = 'pending' AND o.held_reason IS NULL AND NOT EXISTS ("
    "SELECT 1 FROM ocpi_outbox p WHERE p.partner_key = o.partner_key"
    " AND p.object_key = o.object_key AND p.status IN ('pending', 'dead') AND p.id < o.id)"
)

# One process in one store unless told otherwise (tests, tools): every other claim is stale.
SINGLE_PROCESS = Claims(node_id="local")

# An outcome may be recorded by the claimer, or on a message nobody claims.
_MINE = "(claimed_by IS NULL OR claimed_by = ?)"


class Status(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    DEAD = "dead"
    EXPANDED = "expanded"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    partner_key: str
    module: str
    method: str
    path: str  # segments after the partner's RECEIVER endpoint URL, "/"-joined, unescaped
    body: dict[str, Any]
    object_key: str
    attempts: int
    ambiguous: bool  # an earlier attempt may have reached the partner (failed or in flight)
    status: str = Status.PENDING
    next_attempt_at: str = ""
    last_error: str | None = None
    created_at: str = ""
    held_reason: str | None = None  # set while the push waits for something (not sent)
    in_flight_at: str | None = None  # an attempt without a recorded outcome began then
    location: str | None = None  # where the partner said it stored the object
    claimed_by: str | None = None  # the process delivering it (pending) or that finished it

    @classmethod
    def from_row(cls, row: Any) -> OutboxMessage:
        return cls(
            id=row["id"],
            partner_key=row["partner_key"],
            module=row["module"],
            method=row["method"],
            path=row["path"],
            body=orjson.loads(row["body"]),
            object_key=row["object_key"],
            attempts=row["attempts"],
            ambiguous=bool(row["ambiguous"]) or row["in_flight_at"] is not None,
            status=row["status"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            held_reason=row["held_reason"],
            in_flight_at=row["in_flight_at"],
            location=row["location"],
            claimed_by=row["claimed_by"],
        )

    def summary(self) -> dict[str, Any]:
        """Operator view (``csms outbox``)."""
        return {
            "id": self.id,
            "partner": self.partner_key,
            "module": self.module,
            "method": self.method,
            "path": self.path,
            "object": self.object_key,
            # A held push is pending in the table but is not being tried: say "waiting".
            "status": WAITING if self.held_reason else self.status,
            "held_reason": self.held_reason,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "in_flight_at": self.in_flight_at,
            "claimed_by": self.claimed_by,
        }


async def insert_message(
    tx: SqlExecutor,
    *,
    partner_key: str,
    module: str,
    method: str,
    path: str,
    body: dict[str, Any],
    object_key: str,
    now: datetime,
    held_reason: str | None = None,
) -> int:
    """One queued push, inside the caller's transaction; returns its id.

    ``held_reason``: the push is kept (listed, never delivered) until released by
    :func:`release_held`; it also blocks later pushes of its object, like any pending one.
    """
    ts = stamp(now)
    return await tx.insert(
        "INSERT INTO ocpi_outbox (partner_key, module, method, path, body, object_key,"
        " next_attempt_at, created_at, held_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            partner_key, module, method, path, orjson.dumps(body).decode(), object_key, ts, ts,
            held_reason,
        ),
    )  # fmt: skip


class OutboxStore:
    """The SQL of the outbox table (shared SQLite connection, see :mod:`roaming.ports`)."""

    def __init__(self, db: SqlDatabase, claims: Claims = SINGLE_PROCESS) -> None:
        self.db = db
        self.claims = claims
        # Free to take: unclaimed, claimed by this process's id (now or in an earlier
        # life: the worker takes no message twice at once), or by a process not alive.
        self._free = f"(o.claimed_by IS NULL OR o.claimed_by = ? OR NOT ({claims.alive_sql}))"

    @property
    def me(self) -> str:
        """This process's id, as its claims name it."""
        return self.claims.node_id

    def _free_params(self) -> tuple[Any, ...]:
        return (self.claims.node_id, *self.claims.alive_params())

    async def claim(self, now: datetime, limit: int) -> list[OutboxMessage]:
        """Take up to ``limit`` due heads that are free (see the module docstring).

        Read and taken inside one transaction: besides excluding other processes, on
        SQLite the store lock keeps us from seeing outbox rows of an OCPP transaction
        that has not committed yet.
        """
        lock = " FOR UPDATE OF o SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        node = self.claims.node_id
        ts = stamp(now)
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT o.* FROM ocpi_outbox o WHERE o.next_attempt_at <= ? AND {_HEAD}"
                f" AND {self._free} ORDER BY o.id LIMIT ?{lock}",
                (ts, *self._free_params(), limit),
            )
            if rows:
                ids = [r["id"] for r in rows]
                await tx.execute(
                    "UPDATE ocpi_outbox SET claimed_by = ?, claimed_at = ?"
                    f" WHERE id IN ({', '.join('?' * len(ids))})",
                    (node, ts, *ids),
                )
        return [replace(OutboxMessage.from_row(r), claimed_by=node) for r in rows]

    async def heads(self, now: datetime, limit: int) -> list[OutboxMessage]:
        """Due messages that are first in line for their (partner, object), claimed or
        not (what the operator would see go next; delivery takes them by :meth:`claim`).

        Read inside a transaction: the CSMS shares one connection, and the store lock keeps
        us from seeing outbox rows of an OCPP transaction that has not committed yet.
        """
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT o.* FROM ocpi_outbox o WHERE o.next_attempt_at <= ? AND {_HEAD}"
                " ORDER BY o.id LIMIT ?",
                (stamp(now), limit),
            )
        return [OutboxMessage.from_row(r) for r in rows]

    async def next_due(self) -> str | None:
        """When the earliest head this process may take (as :meth:`claim` picks them)
        falls due.

        Why heads only: a message behind a dead or held one of its object cannot go, and
        counting its past due time would wake the worker at once, forever; the same for
        a head another live process is delivering.
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT min(o.next_attempt_at) AS t FROM ocpi_outbox o"
                f" WHERE {_HEAD} AND {self._free}",
                self._free_params(),
            )
        return row["t"] if row else None

    async def expand(self, msg: OutboxMessage, partner_keys: Sequence[str], now: datetime) -> None:
        """Replace a broadcast by one copy per partner, keeping its place in line (not
        when another process took the broadcast over meanwhile: it expands it)."""
        async with self.db.transaction() as tx:
            mine = await tx.execute(
                "UPDATE ocpi_outbox SET status = 'expanded', finished_at = ?, last_error = ?"
                f" WHERE id = ? AND status = 'pending' AND {_MINE}",
                (stamp(now), f"sent to {len(partner_keys)} partner(s)", msg.id, self.me),
            )
            if not mine:
                return
            for key in partner_keys:
                await tx.insert(
                    "INSERT INTO ocpi_outbox (partner_key, module, method, path, body,"
                    " object_key, next_attempt_at, created_at)"
                    " SELECT ?, module, method, path, body, object_key, ?, created_at"
                    " FROM ocpi_outbox WHERE id = ?",
                    (key, stamp(now), msg.id),
                )

    async def mark_in_flight(self, msg_id: int, now: datetime) -> bool:
        """Committed before the attempt's request leaves (see the module docstring).

        False when this process no longer holds the claim (another took the message over,
        having found this process dead): then nothing may be sent.
        """
        n = await self.db.execute(
            "UPDATE ocpi_outbox SET in_flight_at = ?"
            " WHERE id = ? AND status = 'pending' AND claimed_by = ?",
            (stamp(now), msg_id, self.me),
        )
        return n > 0

    async def in_flight(self) -> int:
        """Pending messages this process may take whose last attempt has no recorded
        outcome (left by a crash, of this process or of another one that died)."""
        row = await self.db.fetchone(
            "SELECT count(*) AS n FROM ocpi_outbox o"
            f" WHERE o.in_flight_at IS NOT NULL AND o.status = 'pending' AND {self._free}",
            self._free_params(),
        )
        return int(row["n"]) if row else 0

    async def mark_delivered(
        self, msg: OutboxMessage, attempts: int, now: datetime, location: str | None
    ) -> None:
        """Done; a delivered CDR also keeps the URL the eMSP stored it at."""
        async with self.db.transaction() as tx:
            mine = await tx.execute(
                "UPDATE ocpi_outbox SET status = 'delivered', attempts = ?, finished_at = ?,"
                f" location = ?, last_error = NULL, in_flight_at = NULL WHERE id = ? AND {_MINE}",
                (attempts, stamp(now), location, msg.id, self.me),
            )
            if mine and msg.module == "cdrs" and location:
                await set_emsp_location(tx, msg.body.get("id"), location)

    async def mark_finished(
        self, msg_id: int, status: Status, attempts: int, now: datetime, reason: str
    ) -> None:
        """Done without delivery (rejected or skipped); the next message of the object goes."""
        await self.db.execute(
            "UPDATE ocpi_outbox SET status = ?, attempts = ?, finished_at = ?, last_error = ?,"
            f" in_flight_at = NULL WHERE id = ? AND {_MINE}",
            (status.value, attempts, stamp(now), reason, msg_id, self.me),
        )

    async def reschedule(
        self,
        msg_id: int,
        attempts: int,
        next_attempt_at: datetime,
        error: str,
        *,
        ambiguous: bool,
        dead: bool,
    ) -> None:
        """Another attempt later, or ``dead`` (blocking its object) when out of attempts;
        either way back in line, claimed by nobody."""
        await self.db.execute(
            "UPDATE ocpi_outbox SET status = ?, attempts = ?, next_attempt_at = ?,"
            " last_error = ?, ambiguous = CASE WHEN ambiguous = 1 OR ? = 1 THEN 1 ELSE 0 END,"
            f" in_flight_at = NULL, claimed_by = NULL WHERE id = ? AND {_MINE}",
            (
                Status.DEAD.value if dead else Status.PENDING.value,
                attempts,
                stamp(next_attempt_at),
                error,
                1 if ambiguous else 0,
                msg_id,
                self.me,
            ),
        )

    async def waiting(
        self, include_finished: bool = False, limit: int = 200
    ) -> list[OutboxMessage]:
        where = "" if include_finished else "WHERE status IN ('pending', 'dead')"
        rows = await self.db.fetchall(
            f"SELECT * FROM ocpi_outbox {where} ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [OutboxMessage.from_row(r) for r in reversed(rows)]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetchall(
            "SELECT CASE WHEN held_reason IS NULL THEN status ELSE ? END AS status,"
            " count(*) AS n FROM ocpi_outbox GROUP BY 1",
            (WAITING,),
        )
        return {r["status"]: r["n"] for r in rows}

    async def retry(self, msg_id: int, now: datetime | None = None) -> bool:
        """Operator: put a dead/rejected message back in line with a fresh attempt budget
        (a pending one keeps its claim: it may be on its way now)."""
        n = await self.db.execute(
            "UPDATE ocpi_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
            " claimed_by = CASE WHEN status = 'pending' THEN claimed_by END"
            " WHERE id = ? AND status IN ('dead', 'rejected', 'pending')",
            (stamp(now or datetime.now(UTC)), msg_id),
        )
        return n > 0

    async def drop(self, msg_id: int, now: datetime | None = None) -> bool:
        """Operator: give up on a message (it stays in the table, marked dropped)."""
        n = await self.db.execute(
            "UPDATE ocpi_outbox SET status = 'dropped', finished_at = ?"
            " WHERE id = ? AND status IN ('dead', 'pending')",
            (stamp(now or datetime.now(UTC)), msg_id),
        )
        return n > 0

    async def backlog(self) -> list[tuple[str, str, int, str]]:
        """Per partner and open status: message count and the oldest message's
        ``created_at``; what a monitoring scrape shows as depth and age. Status ``held``
        is a pending push waiting for a missing part (e.g. a location), ``pending`` one
        that will be (re)tried, ``dead`` one out of attempts."""
        rows = await self.db.fetchall(
            "SELECT partner_key,"
            " CASE WHEN held_reason IS NOT NULL THEN 'held' ELSE status END AS state,"
            " count(*) AS n, min(created_at) AS oldest"
            " FROM ocpi_outbox WHERE status IN ('pending', 'dead')"
            " GROUP BY partner_key, state"
        )
        return [(r["partner_key"], r["state"], r["n"], r["oldest"]) for r in rows]


# --------------------------------------------------------------------------- held pushes
# Pushes written before everything they need is known (a Session on a connector no EVSE
# maps) are held: listed with their reason, never delivered, completed and released by
# whoever learns the missing part (:meth:`roaming.sessions.SessionService.release_waiting`).


async def held_messages(tx: SqlExecutor, partner_key: str, object_key: str) -> list[OutboxMessage]:
    """The held pushes of one object, in delivery order."""
    rows = await tx.fetchall(
        "SELECT * FROM ocpi_outbox WHERE partner_key = ? AND object_key = ?"
        " AND held_reason IS NOT NULL AND status = 'pending' ORDER BY id",
        (partner_key, object_key),
    )
    return [OutboxMessage.from_row(r) for r in rows]


async def set_held_body(tx: SqlExecutor, msg_id: int, body: dict[str, Any]) -> None:
    """Complete a held push's body (it was written with what was known then)."""
    await tx.execute(
        "UPDATE ocpi_outbox SET body = ? WHERE id = ? AND held_reason IS NOT NULL",
        (orjson.dumps(body).decode(), msg_id),
    )


async def release_held(tx: SqlExecutor, partner_key: str, object_key: str, now: datetime) -> int:
    """Let the held pushes of one object go, due now and in their order; returns how many."""
    return await tx.execute(
        "UPDATE ocpi_outbox SET held_reason = NULL, next_attempt_at = ?"
        " WHERE partner_key = ? AND object_key = ? AND held_reason IS NOT NULL",
        (stamp(now), partner_key, object_key),
    )


async def set_held_reason(tx: SqlExecutor, partner_key: str, object_key: str, reason: str) -> None:
    """Say why the held pushes of one object still wait (what the operator must add)."""
    await tx.execute(
        "UPDATE ocpi_outbox SET held_reason = ?"
        " WHERE partner_key = ? AND object_key = ? AND held_reason IS NOT NULL",
        (reason, partner_key, object_key),
    )
