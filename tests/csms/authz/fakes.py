"""Controllable stand-ins for the service's ports (the service layer only; the
end-to-end tests use real sockets)."""

from __future__ import annotations

import asyncio
import time
from collections import namedtuple
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from csms.authz.model import (
    CachedToken,
    DecisionRecord,
    LocationRefs,
    RemoteOutcome,
    RemoteQuery,
    Whitelist,
)
from csms.store.authorizations import COLUMNS, row_of


def tok(
    uid: str = "04A1B2C3",
    whitelist: Whitelist = Whitelist.NEVER,
    valid: bool = True,
    party: str = "EMS",
    country: str = "NL",
    group_id: str | None = None,
) -> CachedToken:
    return CachedToken(
        country_code=country,
        party_id=party,
        uid=uid,
        token_type="RFID",
        contract_id=f"{country}-{party}-C1",
        valid=valid,
        whitelist=whitelist,
        group_id=group_id,
        last_updated="2024-05-01T00:00:00Z",
    )


class FakeClock:
    """Real monotonic time (asyncio timeouts run on it) shifted by ``skew``."""

    def __init__(self) -> None:
        self.skew = 0.0
        self.wall = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return time.monotonic() + self.skew

    def now(self) -> datetime:
        return self.wall


class FakeCache:
    def __init__(self, *tokens: CachedToken) -> None:
        self.tokens = list(tokens)
        self.lookups = 0
        self.fail: Exception | None = None
        self.learned: list[CachedToken] = []

    def peek(self, uid_norm: str, token_type: str) -> Sequence[CachedToken] | None:
        return None  # nothing in memory: every lookup is I/O

    def is_current(self, token: CachedToken) -> bool:
        return False

    async def lookup(self, uid_norm: str, token_type: str) -> Sequence[CachedToken]:
        self.lookups += 1
        if self.fail:
            raise self.fail
        return [t for t in self.tokens if t.uid_norm == uid_norm and t.token_type == token_type]

    async def learn(self, token: CachedToken) -> None:
        self.learned.append(token)


Behaviour = Callable[[str, LocationRefs | None], Awaitable[RemoteOutcome]]


class FakeRemote:
    """Per-partner scripted behaviour; records calls and cancellations."""

    def __init__(self, **behaviours: Behaviour) -> None:
        self.behaviours = {k.replace("_", "-"): v for k, v in behaviours.items()}
        self.calls: list[tuple[str, str, LocationRefs | None, float]] = []
        self.cancelled: list[str] = []

    async def partners(self) -> Sequence[str]:
        return list(self.behaviours)

    async def authorize(self, partner_id: str, query: RemoteQuery) -> RemoteOutcome:
        self.calls.append((partner_id, query.uid, query.location, query.deadline_s))
        try:
            return await self.behaviours[partner_id](query.uid, query.location)
        except asyncio.CancelledError:
            self.cancelled.append(partner_id)
            raise


class FakeLocations:
    async def refs(self, charger_id: str, connector_id: int | None) -> LocationRefs | None:
        if charger_id == "UNPUBLISHED":
            return None
        evses = (
            (f"{charger_id}-{connector_id}",)
            if connector_id
            else (f"{charger_id}-1", f"{charger_id}-2")
        )
        return LocationRefs(f"LOC-{charger_id}", evses)


class FakeTransactions:
    def __init__(self) -> None:
        self.active: dict[str, list[tuple[str, int]]] = {}

    async def active_for(self, uid_norm: str) -> Sequence[tuple[str, int]]:
        return self.active.get(uid_norm, [])


# A stored row, readable by column name (``entry.source == "cache"``).
Row = namedtuple("Row", COLUMNS)  # type: ignore[misc]


class ListSink:
    """Keeps each record and the row the decision log would store for it."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []
        self.entries: list[Row] = []

    def record(self, entry: DecisionRecord) -> None:
        self.records.append(entry)
        self.entries.append(Row(*row_of(entry)))
