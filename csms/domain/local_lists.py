"""Local Authorization List records: a list entry and a charger's list state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a charger's list. ``partner_key`` None means an own card."""

    id_tag: str
    status: str = "Accepted"
    expiry_date: str | None = None
    parent_id_tag: str | None = None
    partner_key: str | None = None

    @property
    def norm(self) -> str:
        return self.id_tag.upper()

    def info(self) -> dict[str, Any]:
        """The ``idTagInfo`` this entry is sent with (camelCase, as on the wire)."""
        info: dict[str, Any] = {"status": self.status}
        if self.expiry_date:
            info["expiryDate"] = self.expiry_date
        if self.parent_id_tag:
            info["parentIdTag"] = self.parent_id_tag
        return info


@dataclass(frozen=True, slots=True)
class ListState:
    """What we know of one charger's list; ``version`` is the last one it accepted from us.

    ``mode``: ``auto`` (lists when the charger supports them), ``on`` or ``off`` (operator
    override). ``supported`` None means not read from the charger yet.
    """

    charger_id: str
    mode: str = "auto"
    supported: bool | None = None
    max_length: int | None = None
    send_max_length: int | None = None
    version: int = 0
    charger_version: int | None = None
    size: int = 0
    last_sync_at: str | None = None
    last_result: str | None = None
    last_detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "charger_id": self.charger_id,
            "mode": self.mode,
            "supported": self.supported,
            "max_length": self.max_length,
            "send_max_length": self.send_max_length,
            "version": self.version,
            "charger_version": self.charger_version,
            "size": self.size,
            "last_sync_at": self.last_sync_at,
            "last_result": self.last_result,
            "last_detail": self.last_detail,
        }
