"""Connector status lifecycle of OCPP 1.6 (§4.9) as a table; pure, no I/O.

Why we only warn about an illegal transition instead of refusing it: a StatusNotification
reports what already happened at the charger. Refusing it would lose the newest truth;
logging it points operators at firmware that skips states (and gives tests a handle).
"""

from __future__ import annotations

CONNECTOR_STATUSES = frozenset(
    {
        "Available",
        "Preparing",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Finishing",
        "Reserved",
        "Unavailable",
        "Faulted",
    }
)

# The whole charge point (connector 0) reports only these.
CHARGER_STATUSES = frozenset({"Available", "Unavailable", "Faulted"})

_CHARGING = {"Charging", "SuspendedEV", "SuspendedEVSE"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "Available": frozenset({"Preparing", "Reserved", "Unavailable", "Faulted"} | _CHARGING),
    "Preparing": frozenset({"Available", "Finishing", "Faulted"} | _CHARGING),
    "Charging": frozenset(
        {"Available", "SuspendedEV", "SuspendedEVSE", "Finishing", "Unavailable", "Faulted"}
    ),
    "SuspendedEV": frozenset(
        {"Available", "Charging", "SuspendedEVSE", "Finishing", "Unavailable", "Faulted"}
    ),
    "SuspendedEVSE": frozenset(
        {"Available", "Charging", "SuspendedEV", "Finishing", "Unavailable", "Faulted"}
    ),
    "Finishing": frozenset({"Available", "Preparing", "Unavailable", "Faulted"}),
    "Reserved": frozenset({"Available", "Preparing", "Unavailable", "Faulted"}),
    "Unavailable": frozenset({"Available", "Preparing", "Faulted"} | _CHARGING),
    "Faulted": frozenset(
        {"Available", "Preparing", "Finishing", "Reserved", "Unavailable"} | _CHARGING
    ),
}


def transition_problem(previous: str | None, new: str, connector_id: int) -> str | None:
    """Why ``previous -> new`` is not an OCPP 1.6 transition, or None when it is (a first
    report and a repeated status are always fine)."""
    if connector_id == 0 and new not in CHARGER_STATUSES:
        return f"connector 0 cannot be {new}"
    if previous is None or previous == new:
        return None
    allowed = TRANSITIONS.get(previous)
    if allowed is None or new not in allowed:
        return f"{previous} -> {new} is not an OCPP 1.6 transition"
    return None
