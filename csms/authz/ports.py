"""The seams the authorization core is reached through and reaches out through.

Why Protocols and not base classes: adapters live in other packages (``csms.store``,
``csms.ocpi``) and in tests, and a structural type lets each implement only what it
serves without importing anything from here at run time.

Contract shared by every outward port: return an answer or raise, the service turns
any exception into "unreachable"/"unknown" and never lets it reach the charger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from csms.authz.model import (
    AuthRequest,
    CachedToken,
    Decision,
    DecisionRecord,
    LocationRefs,
    NeedIO,
    OwnCard,
    RemoteOutcome,
    RemoteQuery,
)


class Authorizer(Protocol):
    """What the OCPP adapter calls for every Authorize and every StartTransaction idTag.

    Two entry points, one decision (h11 style): :meth:`try_now` answers what memory
    alone decides, without a task or an await, and otherwise says :data:`NEED_IO`
    (recording nothing); :meth:`decide` is its continuation, the whole decision with
    I/O. Why: most Authorize calls are cache hits, and answering them inline saves a task
    per call. Neither may raise for an unreachable backend: a fallback is an answer too,
    and :meth:`decide` must return within its own deadline.
    """

    def try_now(self, request: AuthRequest) -> Decision | Literal[NeedIO.NEED_IO]: ...

    async def decide(self, request: AuthRequest) -> Decision: ...


class OwnCards(Protocol):
    """The operator's own cards (``id_tags``), by normalised uid.

    ``held`` answers from memory: the card, ``None`` for a uid that is not an own card,
    or :data:`NEED_IO` when only :meth:`get` can tell. :meth:`reload` follows a write to
    the cards (the admin API calls it).
    """

    def held(self, uid_norm: str) -> OwnCard | Literal[NeedIO.NEED_IO] | None: ...

    async def get(self, uid_norm: str) -> OwnCard | None: ...

    async def reload(self) -> None: ...


class TokenCache(Protocol):
    """Tokens eMSPs pushed or a sync fetched, by normalised uid and OCPI token type.

    Several eMSPs may publish the same uid, hence a sequence. Removed tokens are absent.
    ``peek`` answers from memory without awaiting, or None when only :meth:`lookup`
    (I/O, under the deadline) can.
    """

    def peek(self, uid_norm: str, token_type: str) -> Sequence[CachedToken] | None: ...

    async def lookup(self, uid_norm: str, token_type: str) -> Sequence[CachedToken]: ...


class TokenLearner(Protocol):
    """Keeps a token an eMSP returned in a definite real-time answer (OCPI: "lets the CPO
    learn tokens it didn't have"). Called in the background, never on the answer path.

    ``is_current`` True means :meth:`learn` would write nothing (the held copy is as
    new): the service then starts no background task at all.
    """

    def is_current(self, token: CachedToken) -> bool: ...

    async def learn(self, token: CachedToken) -> None: ...


class RemoteAuthorizer(Protocol):
    """Real-time authorization at the eMSPs (OCPI ``POST {tokens}/{uid}/authorize``)."""

    async def partners(self) -> Sequence[str]:
        """Partner ids (``NL-EMS``) of registered eMSPs with a tokens SENDER endpoint."""
        ...

    async def authorize(self, partner_id: str, query: RemoteQuery) -> RemoteOutcome:
        """One call; ``query.uid`` as the charger presented it. Unreachability is an outcome
        (:class:`~csms.authz.model.Unreachable`), not an exception."""
        ...


class LocationLookup(Protocol):
    """Maps a charger (and connector) to the OCPI location and EVSE uids it publishes.

    ``connector_id`` None or 0 means the whole charger: every EVSE of it. None when the
    charger is not published (the request then goes without LocationReferences).
    """

    async def refs(self, charger_id: str, connector_id: int | None) -> LocationRefs | None: ...


class ActiveTransactions(Protocol):
    """Where a token is charging now: ``(charger_id, connector_id)`` of every transaction
    with this ``id_tag_norm`` whose stop has not been received."""

    async def active_for(self, uid_norm: str) -> Sequence[tuple[str, int]]: ...


class DecisionSink(Protocol):
    """Stores and logs every decision. Must not block: the answer waits on it."""

    def record(self, entry: DecisionRecord) -> None: ...


class Clock(Protocol):
    """Injectable time: ``monotonic`` for deadlines (same base as ``time.monotonic``),
    ``now`` (aware UTC) for expiry dates and records."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class Preauthorizer(Protocol):
    """Takes a decision an eMSP made in a command (START_SESSION, RESERVE_NOW), so the
    charger's Authorize/StartTransaction for that token there is answered from it."""

    def preauthorize(
        self, charger_id: str, uid: str, decision: Decision, ttl_s: float = 900
    ) -> None: ...
