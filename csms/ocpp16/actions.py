"""Which OCPP 1.6 actions exist, and in which direction we accept them."""

from __future__ import annotations

# Charge point -> central system: the messages we handle.
CHARGER_INITIATED = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # The OCPP 1.6 security extensions (csms.ocpp16.security).
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)

# Central system -> charge point: what ChargerGateway.call() sends.
CSMS_INITIATED = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        # The OCPP 1.6 security extensions.
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)

# The CSMS-initiated security calls whose outcome is stored (csms.store.security).
SECURITY_CALLS = frozenset(
    {
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)

# Every action of OCPP 1.6 (all feature profiles). A charger sending one of these that is
# not in CHARGER_INITIATED gets NotSupported; anything else gets NotImplemented.
ALL_OCPP16 = CHARGER_INITIATED | CSMS_INITIATED

# Handlers that may await something slow (the Authorizer, a vendor handler) run in their
# own task so they never hold a connection's read loop.
SLOW = frozenset({"Authorize", "StartTransaction", "StopTransaction", "DataTransfer"})

# What a charger whose registration is Pending or Rejected may still send: the messages
# a TriggerMessage can ask for that do not touch transactions or authorization, and the
# security reports (a tamper alarm from a Pending charger must be heard too).
ALLOWED_BEFORE_ACCEPTED = frozenset(
    {
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
        "SecurityEventNotification",
        "SignedFirmwareStatusNotification",
        "LogStatusNotification",
    }
)
