"""Records of the OCPP 1.6 security extensions: security events, the security calls we
made with their outcomes, the chargers' status reports and the certificates we signed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A SecurityEventNotification as received (``timestamp``: the charger's clock)."""

    charger_id: str
    type: str
    timestamp: str
    tech_info: str | None
    critical: bool
    received_at: str


@dataclass(frozen=True, slots=True)
class SecurityCall:
    """A CSMS-initiated security call and how it ended (``request``/``response``: JSON
    text; ``error``: why there is no response)."""

    charger_id: str
    action: str
    request: str
    response: str | None
    error: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class SecurityNotification:
    """A SignedFirmwareStatusNotification or LogStatusNotification."""

    charger_id: str
    action: str
    status: str
    request_id: int | None
    received_at: str


@dataclass(frozen=True, slots=True)
class SignedCertificate:
    """A charge point certificate we signed (``serial``: hex, as in the certificate)."""

    charger_id: str
    serial: str
    subject: str
    not_after: str
    issued_at: str
