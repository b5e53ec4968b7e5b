"""OCPI DateTime: the strict check on input, the lenient parse, the one output format.

Why its own rules (and not the CSMS's date-time module): roaming never imports the
CSMS, and OCPI is stricter than ISO 8601: UTC only, ``Z`` or no designator, never an
offset like ``+00:00``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from roaming.models.fields import ValidationError

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z?$")


def datetime_str(value: Any, name: str) -> str:
    """An OCPI DateTime: UTC, ``Z`` or no designator, optional fraction; no offsets."""
    if type(value) is not str or len(value) > 25 or not _DATETIME.match(value):
        raise ValidationError(
            name, f"must be an OCPI DateTime like 2024-05-01T09:30:00Z, got {value!r}"
        )
    try:
        parse_datetime(value)
    except ValueError:
        raise ValidationError(name, f"not a real date/time: {value!r}") from None
    return value


def parse_datetime(value: str) -> datetime:
    """Lenient parse of an OCPI DateTime (naive means UTC)."""
    text = value[:-1] if value.endswith("Z") else value
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]:0<6}"
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC)


def format_datetime(dt: datetime) -> str:
    """``2024-05-01T09:30:00Z`` (seconds precision; OCPI forbids ``+00:00``)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_now_cache: tuple[int, str] = (0, "")


def now_str() -> str:
    """The current time as an OCPI DateTime (seconds precision).

    Formatted once per second: every OCPI answer carries a timestamp, and strftime
    was a visible share of a token PUT.
    """
    global _now_cache
    second = int(time.time())
    if _now_cache[0] != second:
        _now_cache = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _now_cache[1]
