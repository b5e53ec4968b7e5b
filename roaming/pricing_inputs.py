"""What a Session's pricing needs from the store's world: its tariff and its time zone.

Why apart from :mod:`roaming.sessions`: both are read from operator data that may be
wrong (a stored tariff that no longer validates, a location without a real IANA zone),
and a StopTransaction must never fail over it. Each problem is logged with a hint, and
the charge is completed without a price (or priced in UTC) rather than refused.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from roaming.costing import Tariff
from roaming.models import ValidationError
from roaming.store.locations import EvseRef
from roaming.tariffs import tariff_from_json

log = structlog.get_logger("roaming.sessions")


def tariff_of(body: dict[str, Any] | None, transaction_id: int) -> Tariff | None:
    """The stored tariff as costing input; a body that no longer validates prices nothing
    (and says so) rather than failing the charger's StopTransaction."""
    if body is None:
        return None
    try:
        return tariff_from_json(body)
    except ValidationError as exc:
        log.error(
            "ocpi.tariff_invalid",
            tariff_id=body.get("id"),
            transaction_id=transaction_id,
            error=str(exc),
        )
        return None


def zone_of(ref: EvseRef | None, transaction_id: int) -> tzinfo:
    """The Location's time zone (tariff times of day are local); UTC, loudly, if unknown."""
    name = ref.location.get("time_zone") if ref is not None else None
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if ref is not None:
        log.error(
            "ocpi.location_time_zone_unknown",
            location_id=ref.location_id,
            time_zone=name,
            transaction_id=transaction_id,
            hint="set an IANA time_zone like Europe/Amsterdam on the location",
        )
    return UTC
