"""Connector status lifecycle of OCPP 1.6 (§4.9) as a table; pure, standard library only.

Why one table for both ends: the CSMS checks the statuses chargers report against it and
the simulator refuses to produce a sequence it forbids, so the two can never disagree
about what a real charger may do. That is also why this module imports nothing: the
simulator (which speaks only the wire protocols) is allowed to share exactly this one.

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


def may_move(previous: str, new: str) -> bool:
    """Whether a connector in ``previous`` may next report ``new`` (staying put is fine)."""
    return new == previous or new in TRANSITIONS.get(previous, frozenset())


def transition_problem(previous: str | None, new: str, connector_id: int) -> str | None:
    """Why ``previous -> new`` is not an OCPP 1.6 transition, or None when it is (a first
    report and a repeated status are always fine)."""
    if connector_id == 0 and new not in CHARGER_STATUSES:
        return f"connector 0 cannot be {new}"
    if previous is None or previous == new:
        return None
    if not may_move(previous, new):
        return f"{previous} -> {new} is not an OCPP 1.6 transition"
    return None
