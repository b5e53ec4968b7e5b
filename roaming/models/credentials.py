"""The credentials object of the registration handshake, and the roles it lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from roaming.models.enums import Role
from roaming.models.fields import (
    ValidationError,
    enum_value,
    json_list,
    json_object,
    norm,
    party_ids,
    party_key,
    required,
    required_str,
    url_str,
)

_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True, slots=True)
class BusinessDetails:
    name: str
    website: str | None = None
    logo: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, obj: Any, path: str = "business_details") -> BusinessDetails:
        o = json_object(obj, path)
        website = o.get("website")
        logo = o.get("logo")
        return cls(
            name=required_str(o, "name", f"{path}.", 100),
            website=url_str(website, f"{path}.website") if website is not None else None,
            logo=dict(json_object(logo, f"{path}.logo")) if logo is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.website:
            out["website"] = self.website
        if self.logo is not None:
            out["logo"] = self.logo
        return out


@dataclass(frozen=True, slots=True)
class CredentialsRole:
    role: Role
    business_details: BusinessDetails
    party_id: str
    country_code: str

    @property
    def key(self) -> str:
        """Partner key ``NL-EMS``: how operators and config name a party."""
        return party_key(self.country_code, self.party_id)

    @classmethod
    def from_json(cls, obj: Any, path: str = "roles[0]") -> CredentialsRole:
        o = json_object(obj, path)
        p = f"{path}."
        country, party = party_ids(o, p)
        return cls(
            role=enum_value(Role, required(o, "role", p), f"{p}role"),
            business_details=BusinessDetails.from_json(
                required(o, "business_details", p), f"{p}business_details"
            ),
            party_id=party,
            country_code=country,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "business_details": self.business_details.to_json(),
            "party_id": self.party_id,
            "country_code": self.country_code,
        }


@dataclass(frozen=True, slots=True)
class Credentials:
    token: str
    url: str
    roles: tuple[CredentialsRole, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Credentials:
        o = json_object(obj, "credentials")
        token = required(o, "token", "")
        if type(token) is not str or not 0 < len(token) <= 64 or not _TOKEN_CHARS.match(token):
            raise ValidationError("token", "must be 1-64 printable non-whitespace ASCII characters")
        roles_raw = json_list(required(o, "roles", ""), "roles")
        if not roles_raw:
            raise ValidationError("roles", "must list at least one role")
        roles = tuple(CredentialsRole.from_json(r, f"roles[{i}]") for i, r in enumerate(roles_raw))
        seen: set[tuple[str, str, str]] = set()
        for i, r in enumerate(roles):
            ident = (r.role.value, norm(r.party_id), norm(r.country_code))
            if ident in seen:
                raise ValidationError(f"roles[{i}]", "duplicate role/party_id/country_code")
            seen.add(ident)
        return cls(token=token, url=url_str(required(o, "url", ""), "url"), roles=roles)

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "url": self.url, "roles": [r.to_json() for r in self.roles]}
