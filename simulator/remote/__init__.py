"""Answers to the CSMS's calls, one module per OCPP 1.6 feature profile.

Handlers never await a CALL of their own (the library's receive loop is serial per
socket: that would deadlock until the timeout). Follow-up work (RemoteStart's Authorize
and StartTransaction, firmware status, Reset's reboot) is spawned from ``@after`` hooks,
which run once the CALLRESULT is on the wire, so the CSMS always sees the answer first.
"""

from __future__ import annotations

from simulator.driver import Driver
from simulator.remote.authorization import LocalAuthorization
from simulator.remote.core import CoreCalls
from simulator.remote.maintenance import Maintenance
from simulator.remote.smart_charging import SmartCharging


def handlers(driver: Driver, *extra: object) -> tuple[object, ...]:
    """Every profile's handler object, for :meth:`Session.answer_with` (``extra``: the
    security extensions' handlers, which need the charger's certificate store)."""
    return (
        CoreCalls(driver),
        LocalAuthorization(driver),
        SmartCharging(driver),
        Maintenance(driver),
        *extra,
    )
