"""OCPI 2.2.1 value types: enums, frozen dataclasses, JSON in and out.

Why hand-written checks instead of a schema library: every rejection must name the
offending field (``token.uid: longer than 36 characters``) so a partner can fix its
payload from the status_message alone, and token sync parses a million objects per
run, so each check is a couple of plain comparisons.

Errors: every parse failure raises :class:`ValidationError` with ``field`` set to the
dotted path of the culprit; the envelope layer turns it into OCPI status 2001.

Case: CiString ids keep their original spelling on the object; lookups use the
``*_norm`` (upper-cased) value, see :func:`norm`.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

VERSION = "2.2.1"


class ValidationError(ValueError):
    """An OCPI object or parameter that does not conform; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def norm(value: str) -> str:
    """Lookup key of a CiString (country_code, party_id, uid, ids)."""
    return value.upper()


class Role(enum.StrEnum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class InterfaceRole(enum.StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class ModuleID(enum.StrEnum):
    CDRS = "cdrs"
    CHARGING_PROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUB_CLIENT_INFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


class TokenType(enum.StrEnum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(enum.StrEnum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class AllowedType(enum.StrEnum):
    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class ProfileType(enum.StrEnum):
    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


# --------------------------------------------------------------------------- field checks

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z?$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


def _req(obj: Mapping[str, Any], key: str, path: str) -> Any:
    try:
        value = obj[key]
    except KeyError:
        raise ValidationError(f"{path}{key}", "required field missing") from None
    if value is None:
        raise ValidationError(f"{path}{key}", "required field is null")
    return value


def cistring(value: Any, name: str, max_len: int) -> str:
    """Case-insensitive printable ASCII of at most ``max_len`` characters."""
    if type(value) is not str:
        raise ValidationError(name, f"must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(name, f"longer than {max_len} characters")
    if not value.isascii() or not value.isprintable():
        raise ValidationError(name, "must be printable ASCII")
    return value


def string(value: Any, name: str, max_len: int) -> str:
    """Case-sensitive printable UTF-8 of at most ``max_len`` characters."""
    if type(value) is not str:
        raise ValidationError(name, f"must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(name, f"longer than {max_len} characters")
    if not value.isprintable():
        raise ValidationError(name, "must not contain control characters")
    return value


def boolean(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ValidationError(name, f"must be true or false, got {value!r}")
    return value


def enum_value(cls: type[enum.StrEnum], value: Any, name: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ValidationError(name, f"must be one of {allowed}, got {value!r}") from None


def datetime_str(value: Any, name: str) -> str:
    """An OCPI DateTime: UTC, ``Z`` or no designator, optional fraction; no offsets."""
    if type(value) is not str or len(value) > 25 or not _DATETIME.match(value):
        raise ValidationError(
            name, f"must be an OCPI DateTime like 2024-05-01T09:30:00Z, got {value!r}"
        )
    try:
        parse_datetime(value)
    except ValueError:
        raise ValidationError(name, f"not a real date/time: {value!r}") from None
    return value


def parse_datetime(value: str) -> datetime:
    """Lenient parse of an OCPI DateTime (naive means UTC)."""
    text = value[:-1] if value.endswith("Z") else value
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]:0<6}"
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC)


def format_datetime(dt: datetime) -> str:
    """``2024-05-01T09:30:00Z`` (seconds precision; OCPI forbids ``+00:00``)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_now_cache: tuple[int, str] = (0, "")


def now_str() -> str:
    """The current time as an OCPI DateTime (seconds precision).

    Formatted once per second: every OCPI answer carries a timestamp, and strftime
    was a visible share of a token PUT.
    """
    global _now_cache
    second = int(time.time())
    if _now_cache[0] != second:
        _now_cache = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _now_cache[1]


def url_str(value: Any, name: str) -> str:
    text = string(value, name, 255)
    if not (text.startswith("http://") or text.startswith("https://")):
        raise ValidationError(name, "must be an http(s) URL")
    return text


def _obj(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(name, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError(name, f"must be a list, got {type(value).__name__}")
    return value


def _opt(obj: Mapping[str, Any], key: str) -> Any:
    return obj.get(key)


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True, slots=True)
class BusinessDetails:
    name: str
    website: str | None = None
    logo: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, obj: Any, path: str = "business_details") -> BusinessDetails:
        o = _obj(obj, path)
        website = _opt(o, "website")
        logo = _opt(o, "logo")
        return cls(
            name=string(_req(o, "name", f"{path}."), f"{path}.name", 100),
            website=url_str(website, f"{path}.website") if website is not None else None,
            logo=dict(_obj(logo, f"{path}.logo")) if logo is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.website:
            out["website"] = self.website
        if self.logo is not None:
            out["logo"] = self.logo
        return out


@dataclass(frozen=True, slots=True)
class CredentialsRole:
    role: Role
    business_details: BusinessDetails
    party_id: str
    country_code: str

    @property
    def key(self) -> str:
        """Partner key ``NL-EMS``: how operators and config name a party."""
        return party_key(self.country_code, self.party_id)

    @classmethod
    def from_json(cls, obj: Any, path: str = "roles[0]") -> CredentialsRole:
        o = _obj(obj, path)
        p = f"{path}."
        country = cistring(_req(o, "country_code", p), f"{p}country_code", 2)
        if len(country) != 2:
            raise ValidationError(f"{p}country_code", "must be 2 characters")
        party = cistring(_req(o, "party_id", p), f"{p}party_id", 3)
        if not party:
            raise ValidationError(f"{p}party_id", "must not be empty")
        return cls(
            role=enum_value(Role, _req(o, "role", p), f"{p}role"),
            business_details=BusinessDetails.from_json(
                _req(o, "business_details", p), f"{p}business_details"
            ),
            party_id=party,
            country_code=country,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "business_details": self.business_details.to_json(),
            "party_id": self.party_id,
            "country_code": self.country_code,
        }


def party_key(country_code: str, party_id: str) -> str:
    return f"{norm(country_code)}-{norm(party_id)}"


@dataclass(frozen=True, slots=True)
class Credentials:
    token: str
    url: str
    roles: tuple[CredentialsRole, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Credentials:
        o = _obj(obj, "credentials")
        token = _req(o, "token", "")
        if type(token) is not str or not 0 < len(token) <= 64 or not _TOKEN_CHARS.match(token):
            raise ValidationError("token", "must be 1-64 printable non-whitespace ASCII characters")
        roles_raw = _list(_req(o, "roles", ""), "roles")
        if not roles_raw:
            raise ValidationError("roles", "must list at least one role")
        roles = tuple(CredentialsRole.from_json(r, f"roles[{i}]") for i, r in enumerate(roles_raw))
        seen: set[tuple[str, str, str]] = set()
        for i, r in enumerate(roles):
            ident = (r.role.value, norm(r.party_id), norm(r.country_code))
            if ident in seen:
                raise ValidationError(f"roles[{i}]", "duplicate role/party_id/country_code")
            seen.add(ident)
        return cls(token=token, url=url_str(_req(o, "url", ""), "url"), roles=roles)

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "url": self.url, "roles": [r.to_json() for r in self.roles]}


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True, slots=True)
class Version:
    version: str
    url: str

    @classmethod
    def list_from_json(cls, data: Any) -> list[Version]:
        items = _list(data, "data")
        out = []
        for i, item in enumerate(items):
            o = _obj(item, f"data[{i}]")
            out.append(
                cls(
                    version=string(_req(o, "version", f"data[{i}]."), f"data[{i}].version", 10),
                    url=url_str(_req(o, "url", f"data[{i}]."), f"data[{i}].url"),
                )
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "url": self.url}


@dataclass(frozen=True, slots=True)
class Endpoint:
    identifier: str
    role: InterfaceRole
    url: str

    @classmethod
    def from_json(cls, obj: Any, path: str) -> Endpoint:
        o = _obj(obj, path)
        p = f"{path}."
        ident = string(_req(o, "identifier", p), f"{p}identifier", 40)
        role_raw = o.get("role")
        # 'credentials' role has no meaning; tolerate it missing there only.
        if role_raw is None and ident == ModuleID.CREDENTIALS:
            role = InterfaceRole.SENDER
        else:
            role = enum_value(InterfaceRole, _req(o, "role", p), f"{p}role")
        return cls(identifier=ident, role=role, url=url_str(_req(o, "url", p), f"{p}url"))

    def to_json(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "role": self.role.value, "url": self.url}


@dataclass(frozen=True, slots=True)
class VersionDetails:
    version: str
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def from_json(cls, data: Any) -> VersionDetails:
        o = _obj(data, "data")
        eps = _list(_req(o, "endpoints", "data."), "data.endpoints")
        return cls(
            version=string(_req(o, "version", "data."), "data.version", 10),
            endpoints=tuple(
                Endpoint.from_json(e, f"data.endpoints[{i}]") for i, e in enumerate(eps)
            ),
        )

    def find(self, identifier: str, role: InterfaceRole | None = None) -> Endpoint | None:
        for ep in self.endpoints:
            if ep.identifier == identifier and (role is None or ep.role == role):
                return ep
        return None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "endpoints": [e.to_json() for e in self.endpoints]}


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class EnergyContract:
    supplier_name: str
    contract_id: str | None = None

    @classmethod
    def from_json(cls, obj: Any, path: str = "energy_contract") -> EnergyContract:
        o = _obj(obj, path)
        cid = o.get("contract_id")
        return cls(
            supplier_name=string(_req(o, "supplier_name", f"{path}."), f"{path}.supplier_name", 64),
            contract_id=string(cid, f"{path}.contract_id", 64) if cid is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"supplier_name": self.supplier_name}
        if self.contract_id is not None:
            out["contract_id"] = self.contract_id
        return out


TOKEN_FIELDS = (
    "country_code",
    "party_id",
    "uid",
    "type",
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "valid",
    "whitelist",
    "language",
    "default_profile_type",
    "energy_contract",
    "last_updated",
)


@dataclass(frozen=True, slots=True)
class Token:
    country_code: str
    party_id: str
    uid: str
    type: TokenType
    contract_id: str
    issuer: str
    valid: bool
    whitelist: WhitelistType
    last_updated: str
    visual_number: str | None = None
    group_id: str | None = None
    language: str | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None

    @classmethod
    def from_json(cls, obj: Any, path: str = "") -> Token:
        """Parse a complete Token (PUT body, list item, AuthorizationInfo.token)."""
        # Unknown fields are tolerated (forward compatibility) and not stored.
        o = _obj(obj, path.rstrip(".") or "token")
        return cls._build(o, path)

    @classmethod
    def _build(cls, o: Mapping[str, Any], p: str) -> Token:
        country = cistring(_req(o, "country_code", p), f"{p}country_code", 2)
        if len(country) != 2:
            raise ValidationError(f"{p}country_code", "must be 2 characters")
        party = cistring(_req(o, "party_id", p), f"{p}party_id", 3)
        if not party:
            raise ValidationError(f"{p}party_id", "must not be empty")
        uid = cistring(_req(o, "uid", p), f"{p}uid", 36)
        if not uid:
            raise ValidationError(f"{p}uid", "must not be empty")
        vn = o.get("visual_number")
        gid = o.get("group_id")
        lang = o.get("language")
        dpt = o.get("default_profile_type")
        ec = o.get("energy_contract")
        if lang is not None:
            lang = string(lang, f"{p}language", 2)
            if len(lang) != 2:
                raise ValidationError(f"{p}language", "must be a 2-letter ISO 639-1 code")
        return cls(
            country_code=country,
            party_id=party,
            uid=uid,
            type=enum_value(TokenType, _req(o, "type", p), f"{p}type"),
            contract_id=cistring(_req(o, "contract_id", p), f"{p}contract_id", 36),
            issuer=string(_req(o, "issuer", p), f"{p}issuer", 64),
            valid=boolean(_req(o, "valid", p), f"{p}valid"),
            whitelist=enum_value(WhitelistType, _req(o, "whitelist", p), f"{p}whitelist"),
            last_updated=datetime_str(_req(o, "last_updated", p), f"{p}last_updated"),
            visual_number=string(vn, f"{p}visual_number", 64) if vn is not None else None,
            group_id=cistring(gid, f"{p}group_id", 36) if gid is not None else None,
            language=lang,
            default_profile_type=(
                enum_value(ProfileType, dpt, f"{p}default_profile_type")
                if dpt is not None
                else None
            ),
            energy_contract=(
                EnergyContract.from_json(ec, f"{p}energy_contract") if ec is not None else None
            ),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": self.uid,
            "type": self.type.value,
            "contract_id": self.contract_id,
        }
        if self.visual_number is not None:
            out["visual_number"] = self.visual_number
        out["issuer"] = self.issuer
        if self.group_id is not None:
            out["group_id"] = self.group_id
        out["valid"] = self.valid
        out["whitelist"] = self.whitelist.value
        if self.language is not None:
            out["language"] = self.language
        if self.default_profile_type is not None:
            out["default_profile_type"] = self.default_profile_type.value
        if self.energy_contract is not None:
            out["energy_contract"] = self.energy_contract.to_json()
        out["last_updated"] = self.last_updated
        return out

    def patched(self, patch: Any) -> Token:
        """This token with a PATCH body applied; ``last_updated`` is mandatory in a PATCH."""
        o = _obj(patch, "body")
        if "last_updated" not in o:
            raise ValidationError("last_updated", "required in every PATCH")
        for key in o:
            if key not in _TOKEN_FIELD_SET:
                raise ValidationError(key, "not a Token field")
        merged = self.to_json()
        merged.update(o)
        # Optional fields explicitly set to null in a PATCH are cleared.
        merged = {k: v for k, v in merged.items() if v is not None or k in _REQUIRED_TOKEN}
        return Token._build(merged, "")


_TOKEN_FIELD_SET = frozenset(TOKEN_FIELDS)
_REQUIRED_TOKEN = frozenset(
    {
        "country_code",
        "party_id",
        "uid",
        "type",
        "contract_id",
        "issuer",
        "valid",
        "whitelist",
        "last_updated",
    }
)


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str

    @classmethod
    def from_json(cls, obj: Any, path: str = "info") -> DisplayText:
        o = _obj(obj, path)
        return cls(
            language=string(_req(o, "language", f"{path}."), f"{path}.language", 2),
            text=string(_req(o, "text", f"{path}."), f"{path}.text", 512),
        )

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language, "text": self.text}


@dataclass(frozen=True, slots=True)
class LocationReferences:
    location_id: str
    evse_uids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, path: str = "location") -> LocationReferences:
        o = _obj(obj, path)
        uids = o.get("evse_uids") or []
        return cls(
            location_id=cistring(_req(o, "location_id", f"{path}."), f"{path}.location_id", 36),
            evse_uids=tuple(
                cistring(u, f"{path}.evse_uids[{i}]", 36)
                for i, u in enumerate(_list(uids, f"{path}.evse_uids"))
            ),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location_id": self.location_id}
        if self.evse_uids:
            out["evse_uids"] = list(self.evse_uids)
        return out


@dataclass(frozen=True, slots=True)
class AuthorizationInfo:
    allowed: AllowedType
    token: Token
    location: LocationReferences | None = None
    authorization_reference: str | None = None
    info: DisplayText | None = None

    @classmethod
    def from_json(cls, obj: Any) -> AuthorizationInfo:
        o = _obj(obj, "data")
        loc = o.get("location")
        ref = o.get("authorization_reference")
        info = o.get("info")
        return cls(
            allowed=enum_value(AllowedType, _req(o, "allowed", "data."), "data.allowed"),
            token=Token.from_json(_req(o, "token", "data."), "data.token."),
            location=LocationReferences.from_json(loc, "data.location")
            if loc is not None
            else None,
            authorization_reference=(
                cistring(ref, "data.authorization_reference", 36) if ref is not None else None
            ),
            info=DisplayText.from_json(info, "data.info") if info is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allowed": self.allowed.value, "token": self.token.to_json()}
        if self.location is not None:
            out["location"] = self.location.to_json()
        if self.authorization_reference is not None:
            out["authorization_reference"] = self.authorization_reference
        if self.info is not None:
            out["info"] = self.info.to_json()
        return out


@dataclass(frozen=True, slots=True)
class TokenKey:
    """The identity of a token at a CPO: owner, upper-cased uid, type."""

    country_code_norm: str
    party_id_norm: str
    uid_norm: str
    type: TokenType = field(default=TokenType.RFID)

    @classmethod
    def of(cls, token: Token) -> TokenKey:
        return cls(norm(token.country_code), norm(token.party_id), norm(token.uid), token.type)


def is_credentials_token(value: str) -> bool:
    """Printable non-whitespace ASCII, at most 64 characters (OCPI credentials token)."""
    return 0 < len(value) <= 64 and bool(_TOKEN_CHARS.match(value))


def printable_ascii(value: str) -> bool:
    return bool(_PRINTABLE_ASCII.match(value))
