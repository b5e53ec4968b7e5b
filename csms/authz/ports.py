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
from typing import Protocol

from csms.authz.model import (
    AuthRequest,
    CachedToken,
    Decision,
    DecisionRecord,
    LocationRefs,
    RemoteOutcome,
)


class Authorizer(Protocol):
    """What the OCPP adapter calls for every Authorize and every StartTransaction idTag.

    Implementations must return within their own deadline and never raise for an
    unreachable backend: a fallback :class:`Decision` is an answer too.
    """

    async def authorize(self, request: AuthRequest) -> Decision: ...


class TokenCache(Protocol):
    """Tokens eMSPs pushed or a sync fetched, by normalised uid and OCPI token type.

    Several eMSPs may publish the same uid, hence a sequence. Removed tokens are absent.
    """

    async def lookup(self, uid_norm: str, token_type: str) -> Sequence[CachedToken]: ...


class MemoryTokenCache(TokenCache, Protocol):
    """A TokenCache that can also answer from memory without awaiting (optional).

    ``peek`` returns None when it cannot answer without I/O; the service then calls
    :meth:`lookup` under the deadline.
    """

    def peek(self, uid_norm: str, token_type: str) -> Sequence[CachedToken] | None: ...


class TokenLearner(Protocol):
    """Keeps a token an eMSP returned in a definite real-time answer (OCPI: "lets the CPO
    learn tokens it didn't have"). Called in the background, never on the answer path."""

    async def learn(self, token: CachedToken) -> None: ...


class MemoryTokenLearner(TokenLearner, Protocol):
    """A TokenLearner that can tell from memory that a token is already known (optional).

    ``is_current`` True means :meth:`learn` would write nothing (the held copy is as
    new); the service then starts no background task at all.
    """

    def is_current(self, token: CachedToken) -> bool: ...


class RemoteAuthorizer(Protocol):
    """Real-time authorization at the eMSPs (OCPI ``POST {tokens}/{uid}/authorize``)."""

    async def partners(self) -> Sequence[str]:
        """Partner ids (``NL-EMS``) of registered eMSPs with a tokens SENDER endpoint."""
        ...

    async def authorize(
        self,
        partner_id: str,
        uid: str,
        token_type: str,
        location: LocationRefs | None,
        deadline_s: float,
    ) -> RemoteOutcome:
        """One call; ``uid`` as the charger presented it. Unreachability is an outcome
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
