"""``charger_events``: everything a charger sent that has no table of its own, verbatim."""

from __future__ import annotations

import orjson

from csms.domain.chargers import ChargerEvent
from csms.store.db import Executor

INSERT_EVENT = (
    "INSERT INTO charger_events (charger_id, action, payload, received_at) VALUES (?, ?, ?, ?)"
)


def event_row(event: ChargerEvent) -> tuple[str, str, str, str]:
    """The ``charger_events`` parameters of ``event`` (the payload as JSON text)."""
    return (event.charger_id, event.action, orjson.dumps(event.payload).decode(), event.received_at)


class ChargerEventRepo:
    @staticmethod
    async def add(ex: Executor, event: ChargerEvent) -> int:
        return await ex.insert(INSERT_EVENT, event_row(event))
