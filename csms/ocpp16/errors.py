"""Errors of the OCPP 1.6J adapter, both directions.

Tree::

    OcppError                      -- answered to a charger as CALLERROR (code, description)
    GatewayError                   -- a CSMS-initiated call did not produce a valid result
    ├── ChargerNotConnected(charger_id)
    ├── CallTimeout(charger_id, action, timeout)
    ├── CallErrorReceived(charger_id, action, code, description, details)
    ├── InvalidCallPayload(action, message)          -- our own request fails the schema
    └── InvalidCallResult(charger_id, action, message)  -- the charger's answer fails it

Why typed errors with data: callers (admin API, OCPI commands) map each case to their
own status without parsing messages, and a CALLERROR is never turned into a silent None.
"""

from __future__ import annotations

from typing import Any

# OCPP-J 1.6 error codes, spelled exactly as the 1.6 specification spells them.
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"

ERROR_CODES = frozenset(
    {
        NOT_IMPLEMENTED,
        NOT_SUPPORTED,
        INTERNAL_ERROR,
        PROTOCOL_ERROR,
        SECURITY_ERROR,
        FORMATION_VIOLATION,
        PROPERTY_CONSTRAINT_VIOLATION,
        OCCURENCE_CONSTRAINT_VIOLATION,
        TYPE_CONSTRAINT_VIOLATION,
        GENERIC_ERROR,
    }
)


class OcppError(Exception):
    """Something a charger sent that we answer with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


class GatewayError(Exception):
    """Base of every failure of :meth:`csms.ocpp16.gateway.ChargerGateway.call`."""


class ChargerNotConnected(GatewayError):
    def __init__(self, charger_id: str) -> None:
        super().__init__(f"charger {charger_id!r} is not connected")
        self.charger_id = charger_id


class CallTimeout(GatewayError):
    def __init__(self, charger_id: str, action: str, timeout: float) -> None:
        super().__init__(f"{action} to {charger_id!r} got no answer within {timeout:g} s")
        self.charger_id = charger_id
        self.action = action
        self.timeout = timeout


class CallErrorReceived(GatewayError):
    def __init__(
        self,
        charger_id: str,
        action: str,
        code: str,
        description: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{action} to {charger_id!r} answered CALLERROR {code}: {description}")
        self.charger_id = charger_id
        self.action = action
        self.code = code
        self.description = description
        self.details = details or {}


class InvalidCallPayload(GatewayError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action} request is invalid: {message}")
        self.action = action
        self.message = message


class InvalidCallResult(GatewayError):
    def __init__(self, charger_id: str, action: str, message: str) -> None:
        super().__init__(f"{action} result from {charger_id!r} is invalid: {message}")
        self.charger_id = charger_id
        self.action = action
        self.message = message
