"""Value types of an authorization decision: facts in, a frozen :class:`Decision` out."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple


def normalise(uid: str) -> str:
    """The lookup key of a case-insensitive token uid / idTag (OCPI CiString, OCPP CiString20)."""
    return uid.upper()


class AuthStatus(enum.StrEnum):
    """OCPP 1.6 ``idTagInfo.status``."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class Whitelist(enum.StrEnum):
    """OCPI ``WhitelistType``."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class Allowed(enum.StrEnum):
    """OCPI ``AllowedType`` of an AuthorizationInfo."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class Source(enum.StrEnum):
    """Where a decision came from; stored and logged with it."""

    LOCAL = "local"  # the CSMS's own id_tags table (no roaming)
    CACHE = "cache"  # a token an eMSP pushed or that a sync fetched
    REMOTE = "remote"  # a definite real-time answer from the eMSP
    FALLBACK = "fallback"  # the eMSP was unreachable: the documented fallback rule decided
    REUSED = "reused"  # a StartTransaction reusing a recent Authorize of the same token
    COMMAND = "command"  # pre-authorized by an OCPI command (START_SESSION / RESERVE_NOW)


class AuthMethod(enum.StrEnum):
    """OCPI ``AuthMethod`` recorded on the transaction, Session and CDR."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class NeedIO(enum.Enum):
    """Sentinel type (h11 style) of :data:`NEED_IO`."""

    NEED_IO = "NEED_IO"


# What ``Authorizer.try_now`` answers when memory alone cannot decide: await ``decide``.
NEED_IO: Final = NeedIO.NEED_IO


class _RequestFields(NamedTuple):
    charger_id: str
    uid: str
    trigger: str  # "Authorize" | "StartTransaction" | "StopTransaction"
    connector_id: int | None
    token_type: str
    # ``time.monotonic()`` when the CALL arrived; the deadline counts from here so that
    # queueing before the authorizer is reached is charged against it too.
    received_at: float | None
    uid_norm: str  # normalise(uid): read several times per decision, computed once
    # A StartTransaction whose timestamp is before the charger's current connection
    # opened: the charger started it offline (from its local list or cache) and
    # replays it now. Always False for other triggers.
    started_offline: bool


_new_tuple = tuple.__new__


class AuthRequest(_RequestFields):
    """One OCPP Authorize, or the idTag of one StartTransaction / StopTransaction.

    Why a named tuple: it is immutable and builds in one call on the Authorize hot path
    (a frozen dataclass cost twice as much); ``uid_norm`` is derived here, once.
    """

    __slots__ = ()

    def __new__(
        cls,
        charger_id: str,
        uid: str,
        trigger: str = "Authorize",
        connector_id: int | None = None,
        token_type: str = "RFID",
        received_at: float | None = None,
        started_offline: bool = False,
    ) -> AuthRequest:
        fields = (
            charger_id,
            uid,
            trigger,
            connector_id,
            token_type,
            received_at,
            uid.upper(),
            started_offline,
        )
        return _new_tuple(cls, fields)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one :class:`AuthRequest`, with everything the transaction must keep."""

    status: AuthStatus
    source: Source
    reason: str = ""
    partner_id: str | None = None
    token_type: str | None = None
    token_country_code: str | None = None
    token_party_id: str | None = None
    contract_id: str | None = None
    token_uid: str | None = None  # the eMSP's spelling of the uid (OCPI CdrToken.uid)
    allowed: Allowed | None = None
    authorization_reference: str | None = None
    parent_id_tag: str | None = None
    display_text: str | None = None
    expiry_date: str | None = None
    auth_method: AuthMethod | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status is AuthStatus.ACCEPTED


class UnreachableKind(enum.StrEnum):
    """Why a real-time call gave no answer; every kind leads to the fallback rule."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_ERROR = "server_error"  # HTTP 5xx, or a hub's 4002/4003
    MALFORMED = "malformed"  # not JSON, not an OCPI envelope, or not an AuthorizationInfo
    NO_ENDPOINT = "no_endpoint"  # the partner is not registered / has no tokens SENDER
    ERROR = "error"  # anything else that went wrong on our side of the call


@dataclass(frozen=True, slots=True)
class CachedToken:
    """A token an eMSP pushed to us or that a sync fetched (OCPI ``Token``, the fields we use)."""

    country_code: str
    party_id: str
    uid: str
    token_type: str
    contract_id: str
    valid: bool
    whitelist: Whitelist
    group_id: str | None = None
    issuer: str = ""
    visual_number: str | None = None
    language: str | None = None
    last_updated: str = ""
    # The registered partner that published it (a hub may publish other parties' tokens);
    # empty means the owner itself.
    partner_key: str = ""
    # The adapter's own object (e.g. the full OCPI Token), opaque to the core.
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def partner_id(self) -> str:
        """The partner key (``[partners.<COUNTRY>-<PARTY>]``) to call about this token."""
        return self.partner_key or f"{self.country_code.upper()}-{self.party_id.upper()}"

    @property
    def uid_norm(self) -> str:
        return normalise(self.uid)


class LocationRefs(NamedTuple):
    """OCPI ``LocationReferences`` of the charger (and connector) asking."""

    location_id: str
    evse_uids: tuple[str, ...] = ()


class RemoteQuery(NamedTuple):
    """What one real-time call asks an eMSP: the token as the charger presented it, where
    it was presented, and how long the answer may take."""

    uid: str
    token_type: str
    location: LocationRefs | None
    deadline_s: float


@dataclass(frozen=True, slots=True)
class RemoteVerdict:
    """A definite real-time answer: the eMSP knows the token (``AuthorizationInfo``)."""

    partner_id: str
    allowed: Allowed
    token: CachedToken | None = None
    authorization_reference: str | None = None
    display_text: str | None = None
    location: LocationRefs | None = None


@dataclass(frozen=True, slots=True)
class TokenUnknown:
    """A definite real-time answer: the eMSP does not know the token (HTTP 404 / 2004)."""

    partner_id: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No answer from the eMSP (never a definite one): the fallback rule decides."""

    partner_id: str
    kind: UnreachableKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RemoteRefused:
    """The eMSP answered, but not with a verdict: 401/403, 2001/2002 or another 4xx.

    Why this is not "unreachable": a refusal is a configuration or protocol problem
    between the parties, and letting the driver charge for free until someone notices
    would turn every misconfiguration into an open charger.
    """

    partner_id: str
    detail: str = ""


RemoteOutcome = RemoteVerdict | TokenUnknown | Unreachable | RemoteRefused


@dataclass(frozen=True, slots=True)
class FallbackRules:
    """What to do with a cached token when its eMSP is unreachable (per partner)."""

    allowed_offline_accept: bool = True
    allowed_accept: bool = True


@dataclass(frozen=True, slots=True)
class OwnCard:
    """One of the operator's own cards (the ``id_tags`` table), as the policy reads it."""

    id_tag: str
    status: AuthStatus  # never ConcurrentTx
    expiry: datetime | None = None  # the card's own expiry (aware UTC), if any
    parent_id_tag: str | None = None


class DecisionRecord(NamedTuple):
    """What was decided, for which request, when and how fast: one per answered request.

    The store adapter maps it onto its row (``csms.store.authorizations``); a named
    tuple because one is built per decision on the hot path.
    """

    request: AuthRequest
    decision: Decision
    decided_at: datetime  # aware UTC
    latency_ms: float
