"""The versions list and the version details: where a partner's modules live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roaming.models.enums import InterfaceRole, ModuleID
from roaming.models.fields import (
    enum_value,
    json_list,
    json_object,
    required,
    required_str,
    url_str,
)

VERSION = "2.2.1"


@dataclass(frozen=True, slots=True)
class Version:
    version: str
    url: str

    @classmethod
    def list_from_json(cls, data: Any) -> list[Version]:
        items = json_list(data, "data")
        out = []
        for i, item in enumerate(items):
            o = json_object(item, f"data[{i}]")
            p = f"data[{i}]."
            out.append(
                cls(
                    version=required_str(o, "version", p, 10),
                    url=url_str(required(o, "url", p), f"{p}url"),
                )
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "url": self.url}


@dataclass(frozen=True, slots=True)
class Endpoint:
    identifier: str
    role: InterfaceRole
    url: str

    @classmethod
    def from_json(cls, obj: Any, path: str) -> Endpoint:
        o = json_object(obj, path)
        p = f"{path}."
        ident = required_str(o, "identifier", p, 40)
        role_raw = o.get("role")
        # 'credentials' role has no meaning; tolerate it missing there only.
        if role_raw is None and ident == ModuleID.CREDENTIALS:
            role = InterfaceRole.SENDER
        else:
            role = enum_value(InterfaceRole, required(o, "role", p), f"{p}role")
        return cls(identifier=ident, role=role, url=url_str(required(o, "url", p), f"{p}url"))

    def to_json(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "role": self.role.value, "url": self.url}


@dataclass(frozen=True, slots=True)
class VersionDetails:
    version: str
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def from_json(cls, data: Any) -> VersionDetails:
        o = json_object(data, "data")
        eps = json_list(required(o, "endpoints", "data."), "data.endpoints")
        return cls(
            version=required_str(o, "version", "data.", 10),
            endpoints=tuple(
                Endpoint.from_json(e, f"data.endpoints[{i}]") for i, e in enumerate(eps)
            ),
        )

    def find(self, identifier: str, role: InterfaceRole | None = None) -> Endpoint | None:
        for ep in self.endpoints:
            if ep.identifier == identifier and (role is None or ep.role == role):
                return ep
        return None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "endpoints": [e.to_json() for e in self.endpoints]}
