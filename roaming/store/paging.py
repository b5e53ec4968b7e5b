"""The ``WHERE`` of a Sender GET list: the caller's own rows, by ``last_updated``.

Why one helper: Locations, Tariffs, Sessions and CDRs filter the same way, and
``last_updated`` is stored as ``YYYY-MM-DDTHH:MM:SSZ``, so the request's dates are
brought to that shape before they are compared as text.
"""

from __future__ import annotations

from typing import Any

from roaming.models import format_datetime, parse_datetime


def last_updated_filter(
    date_from: str | None, date_to: str | None, *, partner_key: str | None = None
) -> tuple[str, tuple[Any, ...]]:
    """``(where clause or "", params)``; ``partner_key`` keeps one partner's rows."""
    clauses: list[str] = []
    params: list[Any] = []
    if partner_key is not None:
        clauses.append("upper(partner_key) = upper(?)")
        params.append(partner_key)
    if date_from:
        clauses.append("last_updated >= ?")
        params.append(format_datetime(parse_datetime(date_from)))
    if date_to:
        clauses.append("last_updated < ?")
        params.append(format_datetime(parse_datetime(date_to)))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(params)
