"""The charge point's configuration key table (OCPP 1.6 section 9, Core profile and a few more).

Why a table with a read-only flag: ChangeConfiguration must answer ``Rejected`` for a
read-only key and ``NotSupported`` for an unknown one, and GetConfiguration must list
``unknownKey`` for names we do not hold; all three answers come from the same table.
Values are kept as strings because that is how they travel on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PROFILES = (
    "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
)


@dataclass
class Key:
    value: str
    readonly: bool = False
    kind: type = str  # what a new value must parse as: int, bool or str


class ConfigTable:
    """Key -> :class:`Key`; ``set`` returns the OCPP ChangeConfiguration status."""

    def __init__(
        self,
        connectors: int,
        heartbeat_s: int = 300,
        meter_s: int = 60,
        *,
        local_list_max_length: int = 1000,
        send_local_list_max_length: int = 100,
        feature_profiles: str = DEFAULT_PROFILES,
    ) -> None:
        self.keys: dict[str, Key] = {
            "AllowOfflineTxForUnknownId": Key("false", kind=bool),
            "AuthorizationCacheEnabled": Key("true", kind=bool),
            "AuthorizeRemoteTxRequests": Key("true", kind=bool),
            "ClockAlignedDataInterval": Key("0", kind=int),
            "ConnectionTimeOut": Key("60", kind=int),
            "GetConfigurationMaxKeys": Key("50", readonly=True, kind=int),
            "HeartbeatInterval": Key(str(heartbeat_s), kind=int),
            "LocalAuthListEnabled": Key("true", kind=bool),
            "LocalAuthListMaxLength": Key(str(local_list_max_length), readonly=True, kind=int),
            "LocalAuthorizeOffline": Key("true", kind=bool),
            "LocalPreAuthorize": Key("false", kind=bool),
            "MeterValuesAlignedData": Key("Energy.Active.Import.Register"),
            "MeterValuesSampledData": Key("Energy.Active.Import.Register,Power.Active.Import"),
            "MeterValueSampleInterval": Key(str(meter_s), kind=int),
            "NumberOfConnectors": Key(str(connectors), readonly=True, kind=int),
            "ResetRetries": Key("1", kind=int),
            "SendLocalListMaxLength": Key(str(send_local_list_max_length), readonly=True, kind=int),
            "StopTransactionOnEVSideDisconnect": Key("true", kind=bool),
            "StopTransactionOnInvalidId": Key("true", kind=bool),
            "StopTxnSampledData": Key("Energy.Active.Import.Register"),
            "SupportedFeatureProfiles": Key(feature_profiles, readonly=True),
            "TransactionMessageAttempts": Key("3", kind=int),
            "TransactionMessageRetryInterval": Key("10", kind=int),
            "UnlockConnectorOnEVSideDisconnect": Key("true", kind=bool),
            "ChargeProfileMaxStackLevel": Key("10", readonly=True, kind=int),
            "ChargingScheduleAllowedChargingRateUnit": Key("Current,Power", readonly=True),
            "ChargingScheduleMaxPeriods": Key("24", readonly=True, kind=int),
            "MaxChargingProfilesInstalled": Key("10", readonly=True, kind=int),
            "ReserveConnectorZeroSupported": Key("false", readonly=True, kind=bool),
            # OCPP 1.6 security whitepaper: the profile only goes up over OCPP.
            "SecurityProfile": Key("0", kind=int),
            "CpoName": Key(""),
        }

    def get(self, name: str) -> str | None:
        key = self.keys.get(name)
        return None if key is None else key.value

    def get_int(self, name: str, default: int) -> int:
        try:
            return int(self.get(name) or default)
        except ValueError:
            return default

    def supports(self, profile: str) -> bool:
        """``SupportedFeatureProfiles`` names ``profile``."""
        profiles = (self.get("SupportedFeatureProfiles") or "").split(",")
        return profile.lower() in (p.strip().lower() for p in profiles)

    def get_bool(self, name: str, default: bool) -> bool:
        value = self.get(name)
        return default if value is None else value.strip().lower() == "true"

    def set(self, name: str, value: str) -> str:
        """``Accepted``, ``Rejected`` (read-only or bad value) or ``NotSupported`` (unknown)."""
        key = self.keys.get(name)
        if key is None:
            return "NotSupported"
        if key.readonly or not _parses(key.kind, value):
            return "Rejected"
        if name == "SecurityProfile" and not int(key.value) < int(value) <= 3:
            return "Rejected"
        key.value = value.strip().lower() if key.kind is bool else value
        return "Accepted"

    def describe(self, names: list[str] | None) -> tuple[list[dict], list[str]]:
        """GetConfiguration's ``configurationKey`` list and ``unknownKey`` list."""
        wanted = names if names else list(self.keys)
        known = [
            {"key": n, "readonly": self.keys[n].readonly, "value": self.keys[n].value}
            for n in wanted
            if n in self.keys
        ]
        unknown = [n for n in wanted if n not in self.keys]
        return known, unknown


def _parses(kind: type, value: str) -> bool:
    if kind is int:
        try:
            return int(value) >= 0
        except ValueError:
            return False
    if kind is bool:
        return value.strip().lower() in ("true", "false")
    return True
