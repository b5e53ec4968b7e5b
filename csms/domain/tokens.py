"""The local token table's entries (the authorizer's own cards)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IdTag:
    """A local idTag; ``id_tag`` keeps the spelling it was added with."""

    id_tag: str
    status: str
    expiry_date: str | None
    parent_id_tag: str | None
    created_at: str
    updated_at: str
