"""Charge points and their connectors: the registry entry, a boot, a status report and
the verbatim event log entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class ChargerIdentity:
    """What a charge point says about itself at boot (make, serials, firmware, SIM, meter);
    every boot sends vendor and model, a charger that never booted has none of them."""

    vendor: str | None
    model: str | None
    serial_number: str | None
    charge_box_serial: str | None
    firmware_version: str | None
    iccid: str | None
    imsi: str | None
    meter_type: str | None
    meter_serial: str | None


@dataclass(frozen=True, slots=True)
class Charger(ChargerIdentity):
    """A registered charge point (``has_password``: HTTP Basic auth is required of it)."""

    id: str
    registration_status: str
    has_password: bool
    created_at: str
    last_boot_at: str | None
    last_heartbeat_at: str | None
    last_connected_at: str | None
    last_disconnected_at: str | None
    firmware_status: str | None
    diagnostics_status: str | None
    security_profile: int | None  # registered OCPP security profile; None: not declared


class HandshakeFacts(NamedTuple):
    """What the handshake needs of a registered charger: its registration, password hash
    (None: no Basic auth) and registered security profile (None: not declared)."""

    registration_status: str
    password_hash: str | None
    security_profile: int | None = None


@dataclass(frozen=True, slots=True)
class BootInfo(ChargerIdentity):
    """What a BootNotification says about the charger.

    ``message`` is the notification as sent: the event log keeps every boot verbatim
    (an opaque JSON document, never read field by field).
    """

    message: Any


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What one StatusNotification says (``status_timestamp``: the charger's clock, as
    sent, or None)."""

    connector_id: int
    status: str
    error_code: str
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    status_timestamp: str | None


@dataclass(frozen=True, slots=True)
class ConnectorStatus(StatusReport):
    """A connector's latest report, with its charger and when we received it."""

    charger_id: str
    received_at: str


@dataclass(frozen=True, slots=True)
class ChargerEvent:
    """A message with no table of its own (DataTransfer, firmware and diagnostics status),
    kept verbatim: ``payload`` is an opaque JSON document."""

    charger_id: str
    action: str
    payload: Any
    received_at: str
