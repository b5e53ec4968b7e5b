"""OCPI 2.2.1 value types: enums, frozen dataclasses, JSON in and out.

The shared vocabulary of roaming, the CSMS wiring and the simulator, hence one import
path for all of it; within roaming, prefer the submodule that holds a name:

* :mod:`~roaming.models.fields`: ``ValidationError`` and the field checks (why checks
  are hand-written is there); every parse failure names the dotted path of the culprit
  and the envelope layer turns it into OCPI status 2001.
* :mod:`~roaming.models.datetimes`: the OCPI DateTime rules.
* :mod:`~roaming.models.enums`: roles, module ids, token and whitelist types.
* :mod:`~roaming.models.credentials`, :mod:`~roaming.models.versions`: the handshake.
* :mod:`~roaming.models.tokens`, :mod:`~roaming.models.authorization`: tokens and the
  real-time authorization answer.
"""

from roaming.models.authorization import AuthorizationInfo, DisplayText, LocationReferences
from roaming.models.credentials import BusinessDetails, Credentials, CredentialsRole
from roaming.models.datetimes import datetime_str, format_datetime, now_str, parse_datetime
from roaming.models.enums import (
    AllowedType,
    InterfaceRole,
    ModuleID,
    ProfileType,
    Role,
    TokenType,
    WhitelistType,
)
from roaming.models.fields import (
    ValidationError,
    boolean,
    cistring,
    enum_value,
    norm,
    party_key,
    required,
    required_ci,
    required_str,
    string,
    url_str,
)
from roaming.models.tokens import TOKEN_FIELDS, EnergyContract, Token
from roaming.models.versions import VERSION, Endpoint, Version, VersionDetails

__all__ = [
    "TOKEN_FIELDS",
    "VERSION",
    "AllowedType",
    "AuthorizationInfo",
    "BusinessDetails",
    "Credentials",
    "CredentialsRole",
    "DisplayText",
    "Endpoint",
    "EnergyContract",
    "InterfaceRole",
    "LocationReferences",
    "ModuleID",
    "ProfileType",
    "Role",
    "Token",
    "TokenType",
    "ValidationError",
    "Version",
    "VersionDetails",
    "WhitelistType",
    "boolean",
    "cistring",
    "datetime_str",
    "enum_value",
    "format_datetime",
    "norm",
    "now_str",
    "parse_datetime",
    "party_key",
    "required",
    "required_ci",
    "required_str",
    "string",
    "url_str",
]
