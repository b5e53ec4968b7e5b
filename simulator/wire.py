"""What every simulated charger puts on the wire before and around OCPP-J frames.

Why one module: the full charge point, the load generator and the scenario runner all
connect the same way (subprotocol, URL with the id appended, Basic auth) and stamp the
same OCPP-J date-times; the simulator may not import ``csms.datetimes``, so these few
helpers are its own, kept here once.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from websockets.typing import Subprotocol

SUBPROTOCOL = Subprotocol("ocpp1.6")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """OCPP-J date-time: UTC, millisecond precision, ``Z`` suffix."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utc_now())


def shifted(iso_ts: str | None = None, seconds: float = 0.0) -> str:
    """``now`` (or ``iso_ts``) shifted by ``seconds``: historical timestamps for offline replay."""
    base = utc_now() if iso_ts is None else datetime.fromisoformat(iso_ts.replace("Z", "+00:00"))
    return iso(base + timedelta(seconds=seconds))


def basic_auth(cp_id: str, password: str) -> str:
    token = base64.b64encode(f"{cp_id}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def charger_url(base_url: str, cp_id: str) -> str:
    """``ws://host:port/ocpp`` + ``CP1`` -> ``ws://host:port/ocpp/CP1`` (id percent-encoded)."""
    return f"{base_url.rstrip('/')}/{quote(cp_id, safe='')}"
