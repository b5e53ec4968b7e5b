"""The answer of real-time authorization (AuthorizationInfo) and what it refers to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roaming.models.enums import AllowedType
from roaming.models.fields import (
    cistring,
    enum_value,
    json_list,
    json_object,
    required,
    required_ci,
    required_str,
)
from roaming.models.tokens import Token


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str

    @classmethod
    def from_json(cls, obj: Any, path: str = "info") -> DisplayText:
        o = json_object(obj, path)
        return cls(
            language=required_str(o, "language", f"{path}.", 2),
            text=required_str(o, "text", f"{path}.", 512),
        )

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language, "text": self.text}


@dataclass(frozen=True, slots=True)
class LocationReferences:
    location_id: str
    evse_uids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, path: str = "location") -> LocationReferences:
        o = json_object(obj, path)
        uids = o.get("evse_uids") or []
        return cls(
            location_id=required_ci(o, "location_id", f"{path}.", 36),
            evse_uids=tuple(
                cistring(u, f"{path}.evse_uids[{i}]", 36)
                for i, u in enumerate(json_list(uids, f"{path}.evse_uids"))
            ),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location_id": self.location_id}
        if self.evse_uids:
            out["evse_uids"] = list(self.evse_uids)
        return out


@dataclass(frozen=True, slots=True)
class AuthorizationInfo:
    allowed: AllowedType
    token: Token
    location: LocationReferences | None = None
    authorization_reference: str | None = None
    info: DisplayText | None = None

    @classmethod
    def from_json(cls, obj: Any) -> AuthorizationInfo:
        o = json_object(obj, "data")
        loc = o.get("location")
        ref = o.get("authorization_reference")
        info = o.get("info")
        return cls(
            allowed=enum_value(AllowedType, required(o, "allowed", "data."), "data.allowed"),
            token=Token.from_json(required(o, "token", "data."), "data.token."),
            location=LocationReferences.from_json(loc, "data.location")
            if loc is not None
            else None,
            authorization_reference=(
                cistring(ref, "data.authorization_reference", 36) if ref is not None else None
            ),
            info=DisplayText.from_json(info, "data.info") if info is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allowed": self.allowed.value, "token": self.token.to_json()}
        if self.location is not None:
            out["location"] = self.location.to_json()
        if self.authorization_reference is not None:
            out["authorization_reference"] = self.authorization_reference
        if self.info is not None:
            out["info"] = self.info.to_json()
        return out
