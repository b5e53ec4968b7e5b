"""What roaming needs from the outside: a SQL database and the stores built on it.

Why Protocols: roaming must never import csms, yet it keeps its tables in the CSMS's
single SQLite connection (one writer, one file to back up). The CSMS ``Database`` fits
:class:`SqlDatabase` structurally, so the wiring passes it in and roaming stays free of
csms imports; the PostgreSQL adapter fits it the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from roaming.models import Token
from roaming.partners import Partner


class SqlExecutor(Protocol):
    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``: which form of a schema step to apply."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


class SqlDatabase(SqlExecutor, Protocol):
    def transaction(self) -> AbstractAsyncContextManager[SqlExecutor]: ...


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as the CPO holds it, with the partner that owns it (its key, e.g. NL-EMS)."""

    partner_key: str
    token: Token
    removed: bool
    received_at: str

    # Convenience accessors for the authorization service.
    @property
    def country_code(self) -> str:
        return self.token.country_code

    @property
    def party_id(self) -> str:
        return self.token.party_id

    @property
    def uid(self) -> str:
        return self.token.uid

    @property
    def type(self) -> str:
        return self.token.type.value

    @property
    def contract_id(self) -> str:
        return self.token.contract_id

    @property
    def group_id(self) -> str | None:
        return self.token.group_id

    @property
    def valid(self) -> bool:
        return self.token.valid

    @property
    def whitelist(self) -> str:
        return self.token.whitelist.value

    @property
    def language(self) -> str | None:
        return self.token.language

    @property
    def last_updated(self) -> str:
        return self.token.last_updated


@dataclass(frozen=True, slots=True)
class SyncRun:
    id: int
    partner_key: str
    kind: str  # "full" | "incremental"
    status: str  # "running" | "complete" | "failed"
    started_at: str
    finished_at: str | None
    date_from: str | None
    pages: int
    tokens_seen: int
    tokens_invalid: int
    tokens_removed: int
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partner": self.partner_key,
            "kind": self.kind,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "date_from": self.date_from,
            "pages": self.pages,
            "tokens_seen": self.tokens_seen,
            "tokens_invalid": self.tokens_invalid,
            "tokens_removed": self.tokens_removed,
            "error": self.error,
        }


class JobLock(Protocol):
    """Jobs that must run on one process at a time when several share the database (a
    partner's token sync): ``async with lock.exclusive(name) as mine``; ``mine`` False
    means another process runs job ``name`` now, and the caller skips its run."""

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]: ...


class LocalJobLock:
    """The one process on its database: a job is exclusive within the process only."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        return self._hold(name)

    @asynccontextmanager
    async def _hold(self, name: str) -> AsyncIterator[bool]:
        if name in self._held:
            yield False
            return
        self._held.add(name)
        try:
            yield True
        finally:
            self._held.discard(name)


class PartnerDirectory(Protocol):
    """The partners a push is routed to (the outbox transport reads only these)."""

    async def partner_by_key(self, key: str) -> Partner | None: ...
    async def list_partners(self) -> list[Partner]: ...


__all__ = [
    "AsyncIterator",
    "Claims",
    "JobLock",
    "LocalJobLock",
    "PartnerDirectory",
    "SqlDatabase",
    "SqlExecutor",
    "StoredToken",
    "SyncRun",
]


# --------------------------------------------------------------------------- claims


def _no_params() -> Sequence[Any]:
    return ()


@dataclass(frozen=True, slots=True)
class Claims:
    """Who takes outbox messages here, and when another taker no longer counts.

    Why passed in: several processes may deliver one outbox (nodes sharing a PostgreSQL
    database). Which of them is alive is the cluster's knowledge (its node table and
    leases), and roaming never imports the CSMS, so the wiring hands over this process's
    id and the liveness rule as a SQL predicate; the store puts it into the one statement
    that picks and takes the heads, so the choice and the check see the same data.

    ``alive_sql`` is true when the process named by ``o.claimed_by`` is alive now; it may
    use ``?`` placeholders, whose values ``alive_params`` gives at each claim (the time
    now, read from the process's clock). The default, no other process is alive, is the
    single-process store: whatever another id claimed was left by an earlier process.
    """

    node_id: str
    alive_sql: str = "1 = 0"
    alive_params: Callable[[], Sequence[Any]] = field(default=_no_params)
