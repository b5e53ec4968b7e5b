"""Value types of an authorization decision: facts in, a frozen :class:`Decision` out."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """One OCPP Authorize, or the idTag of one StartTransaction."""

    charger_id: str
    uid: str
    trigger: str = "Authorize"  # "Authorize" | "StartTransaction"
    connector_id: int | None = None
    token_type: str = "RFID"

    @property
    def uid_norm(self) -> str:
        return normalise(self.uid)


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
