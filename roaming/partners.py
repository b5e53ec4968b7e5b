"""A roaming partner as the CPO knows it, and its registration states.

Why ``token_in`` / ``token_out`` instead of TOKEN_A/B/C: which letter a party uses depends
on who initiated the handshake, and libraries keep getting that wrong. What matters is
direction: ``token_in_hash`` authenticates calls *to us* (TOKEN_A while invited, then the
TOKEN_C we issued, or our TOKEN_B when we initiated); ``token_out`` is what *we* send
(their TOKEN_B when they initiated, the TOKEN_C they issued when we did). ``token_out``
is a secret we must present, so it is kept in clear and never logged (``repr`` hides it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from roaming.models import CredentialsRole, Endpoint, InterfaceRole, ModuleID, norm


class PartnerStatus(enum.StrEnum):
    INVITED = "invited"  # TOKEN_A issued (or our TOKEN_B sent), handshake not finished
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"


class TokenKind(enum.StrEnum):
    """Which credentials token ``token_in_hash`` holds: A only opens versions/credentials."""

    A = "A"
    B = "B"
    C = "C"


@dataclass(frozen=True, slots=True)
class Partner:
    id: int
    key: str
    country_code: str
    party_id: str
    status: PartnerStatus
    initiated_by: str  # "them" (we were Responder) | "us" (we POSTed)
    roles: tuple[CredentialsRole, ...] = ()
    token_in_kind: TokenKind | None = None
    token_out: str | None = field(default=None, repr=False)
    auth_encoding: str = "base64"
    versions_url: str | None = None
    version: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    registered_at: str | None = None

    @property
    def registered(self) -> bool:
        return self.status is PartnerStatus.REGISTERED

    def owns(self, country_code: str, party_id: str) -> bool:
        """True if one of the partner's credentials roles is this country_code/party_id."""
        cc, pid = norm(country_code), norm(party_id)
        if not self.roles:
            return cc == norm(self.country_code) and pid == norm(self.party_id)
        return any(norm(r.country_code) == cc and norm(r.party_id) == pid for r in self.roles)

    def owned_parties(self) -> frozenset[tuple[str, str]]:
        parties = {(norm(r.country_code), norm(r.party_id)) for r in self.roles}
        parties.add((norm(self.country_code), norm(self.party_id)))
        return frozenset(parties)

    def endpoint(self, module: str | ModuleID, role: InterfaceRole | None = None) -> str | None:
        for ep in self.endpoints:
            if ep.identifier == module and (role is None or ep.role == role):
                return ep.url
        return None

    def summary(self) -> dict[str, Any]:
        """Operator view (admin API / CLI): never contains a token."""
        return {
            "key": self.key,
            "country_code": self.country_code,
            "party_id": self.party_id,
            "status": self.status.value,
            "initiated_by": self.initiated_by,
            "roles": [r.to_json() for r in self.roles],
            "token_in_kind": self.token_in_kind.value if self.token_in_kind else None,
            "has_token_out": self.token_out is not None,
            "auth_encoding": self.auth_encoding,
            "versions_url": self.versions_url,
            "version": self.version,
            "endpoints": [e.to_json() for e in self.endpoints],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "registered_at": self.registered_at,
        }
