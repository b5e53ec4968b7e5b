"""The OCPI Token: parsed whole (PUT, list item, inside an AuthorizationInfo) or patched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from roaming.models.datetimes import datetime_str
from roaming.models.enums import ProfileType, TokenType, WhitelistType
from roaming.models.fields import (
    ValidationError,
    boolean,
    cistring,
    enum_value,
    json_object,
    party_ids,
    required,
    required_ci,
    required_str,
    string,
)


@dataclass(frozen=True, slots=True)
class EnergyContract:
    supplier_name: str
    contract_id: str | None = None

    @classmethod
    def from_json(cls, obj: Any, path: str = "energy_contract") -> EnergyContract:
        o = json_object(obj, path)
        cid = o.get("contract_id")
        return cls(
            supplier_name=required_str(o, "supplier_name", f"{path}.", 64),
            contract_id=string(cid, f"{path}.contract_id", 64) if cid is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"supplier_name": self.supplier_name}
        if self.contract_id is not None:
            out["contract_id"] = self.contract_id
        return out


TOKEN_FIELDS = (
    "country_code",
    "party_id",
    "uid",
    "type",
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "valid",
    "whitelist",
    "language",
    "default_profile_type",
    "energy_contract",
    "last_updated",
)


@dataclass(frozen=True, slots=True)
class Token:
    country_code: str
    party_id: str
    uid: str
    type: TokenType
    contract_id: str
    issuer: str
    valid: bool
    whitelist: WhitelistType
    last_updated: str
    visual_number: str | None = None
    group_id: str | None = None
    language: str | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None

    @classmethod
    def from_json(cls, obj: Any, path: str = "") -> Token:
        """Parse a complete Token (PUT body, list item, AuthorizationInfo.token)."""
        # Unknown fields are tolerated (forward compatibility) and not stored.
        o = json_object(obj, path.rstrip(".") or "token")
        return cls._build(o, path)

    @classmethod
    def _build(cls, o: Mapping[str, Any], p: str) -> Token:
        country, party = party_ids(o, p)
        uid = required_ci(o, "uid", p, 36)
        vn = o.get("visual_number")
        gid = o.get("group_id")
        lang = o.get("language")
        dpt = o.get("default_profile_type")
        ec = o.get("energy_contract")
        if lang is not None:
            lang = string(lang, f"{p}language", 2)
            if len(lang) != 2:
                raise ValidationError(f"{p}language", "must be a 2-letter ISO 639-1 code")
        return cls(
            country_code=country,
            party_id=party,
            uid=uid,
            type=enum_value(TokenType, required(o, "type", p), f"{p}type"),
            contract_id=required_ci(o, "contract_id", p, 36),
            issuer=required_str(o, "issuer", p, 64),
            valid=boolean(required(o, "valid", p), f"{p}valid"),
            whitelist=enum_value(WhitelistType, required(o, "whitelist", p), f"{p}whitelist"),
            last_updated=datetime_str(required(o, "last_updated", p), f"{p}last_updated"),
            visual_number=string(vn, f"{p}visual_number", 64) if vn is not None else None,
            group_id=cistring(gid, f"{p}group_id", 36) if gid is not None else None,
            language=lang,
            default_profile_type=(
                enum_value(ProfileType, dpt, f"{p}default_profile_type")
                if dpt is not None
                else None
            ),
            energy_contract=(
                EnergyContract.from_json(ec, f"{p}energy_contract") if ec is not None else None
            ),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": self.uid,
            "type": self.type.value,
            "contract_id": self.contract_id,
        }
        if self.visual_number is not None:
            out["visual_number"] = self.visual_number
        out["issuer"] = self.issuer
        if self.group_id is not None:
            out["group_id"] = self.group_id
        out["valid"] = self.valid
        out["whitelist"] = self.whitelist.value
        if self.language is not None:
            out["language"] = self.language
        if self.default_profile_type is not None:
            out["default_profile_type"] = self.default_profile_type.value
        if self.energy_contract is not None:
            out["energy_contract"] = self.energy_contract.to_json()
        out["last_updated"] = self.last_updated
        return out

    def patched(self, patch: Any) -> Token:
        """This token with a PATCH body applied; ``last_updated`` is mandatory in a PATCH."""
        o = json_object(patch, "body")
        if "last_updated" not in o:
            raise ValidationError("last_updated", "required in every PATCH")
        for key in o:
            if key not in _TOKEN_FIELD_SET:
                raise ValidationError(key, "not a Token field")
        merged = self.to_json()
        merged.update(o)
        # Optional fields explicitly set to null in a PATCH are cleared.
        merged = {k: v for k, v in merged.items() if v is not None or k in _REQUIRED_TOKEN}
        return Token._build(merged, "")


_TOKEN_FIELD_SET = frozenset(TOKEN_FIELDS)
_REQUIRED_TOKEN = frozenset(
    {
        "country_code",
        "party_id",
        "uid",
        "type",
        "contract_id",
        "issuer",
        "valid",
        "whitelist",
        "last_updated",
    }
)
