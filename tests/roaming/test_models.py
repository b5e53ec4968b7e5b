"""The OCPI value types: every rejection names its field, and what is valid round-trips.

Why these cases: a partner fixes its payload from our status_message alone, so the
field path in a ValidationError is part of the contract, as are the DateTime rules
(UTC only, no offsets) and the PATCH rules of a Token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import roaming.models
from roaming.models.authorization import AuthorizationInfo
from roaming.models.credentials import Credentials
from roaming.models.datetimes import datetime_str, format_datetime, parse_datetime
from roaming.models.enums import AllowedType, InterfaceRole, WhitelistType
from roaming.models.fields import ValidationError, cistring, enum_value, string
from roaming.models.tokens import Token
from roaming.models.versions import Version, VersionDetails


def token_json(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "EMS",
        "uid": "04A1B2C3",
        "type": "RFID",
        "contract_id": "NL-EMS-C00001",
        "issuer": "Example eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2024-05-01T09:30:00Z",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def field_of(call: Any, *args: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        call(*args)
    return caught.value.field


def test_a_token_round_trips() -> None:
    body = token_json(energy_contract={"supplier_name": "Green"}, language="nl")
    assert Token.from_json(body).to_json() == body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"country_code": "NLD"}, "data[3].country_code"),
        ({"country_code": "N"}, "data[3].country_code"),
        ({"party_id": ""}, "data[3].party_id"),
        ({"party_id": None}, "data[3].party_id"),
        ({"uid": "x" * 37}, "data[3].uid"),
        ({"uid": "üid"}, "data[3].uid"),
        ({"type": "NFC"}, "data[3].type"),
        ({"valid": "yes"}, "data[3].valid"),
        ({"last_updated": "2024-05-01T09:30:00+02:00"}, "data[3].last_updated"),
        ({"language": "nld"}, "data[3].language"),
        ({"energy_contract": {"contract_id": "C1"}}, "data[3].energy_contract.supplier_name"),
    ],
)
def test_a_bad_token_field_is_named_with_its_path(changes: dict[str, Any], field: str) -> None:
    assert field_of(Token.from_json, token_json(**changes), "data[3].") == field


def test_string_checks_say_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="must be a string, got int"):
        cistring(7, "uid", 36)
    with pytest.raises(ValidationError, match="longer than 3 characters"):
        string("abcd", "party_id", 3)
    with pytest.raises(ValidationError, match="must be printable ASCII"):
        cistring("ABC\u00e9", "uid", 36)
    with pytest.raises(ValidationError, match="control characters"):
        string("a\nb", "issuer", 64)
    assert string("Zoë", "issuer", 64) == "Zoë"  # String is UTF-8, CiString is not
    assert enum_value(WhitelistType, "NEVER", "whitelist") is WhitelistType.NEVER
    with pytest.raises(ValidationError, match="must be one of ALWAYS, ALLOWED"):
        enum_value(WhitelistType, "SOMETIMES", "whitelist")


def test_a_patch_needs_last_updated_knows_the_fields_and_clears_nulls() -> None:
    token = Token.from_json(token_json(group_id="G1"))
    assert field_of(token.patched, {"valid": False}) == "last_updated"
    assert field_of(token.patched, {"colour": "red", "last_updated": "2024-05-02T00:00:00Z"}) == (
        "colour"
    )
    patched = token.patched(
        {"valid": False, "group_id": None, "last_updated": "2024-05-02T00:00:00Z"}
    )
    assert (patched.valid, patched.group_id) == (False, None)
    assert field_of(token.patched, {"uid": None, "last_updated": "2024-05-02T00:00:00Z"}) == "uid"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2024-05-01T09:30:00Z", True),
        ("2024-05-01T09:30:00", True),  # no designator: UTC
        ("2024-05-01T09:30:00.123Z", True),
        ("2024-05-01T09:30:00.123456789Z", False),  # longer than 25 characters
        ("2024-05-01T09:30:00+00:00", False),  # OCPI forbids offsets
        ("2024-02-30T09:30:00Z", False),  # not a real date
        ("2024-05-01 09:30:00Z", False),
    ],
)
def test_datetime_rules(text: str, ok: bool) -> None:
    if ok:
        assert datetime_str(text, "last_updated") == text
        assert parse_datetime(text).tzinfo is UTC
    else:
        with pytest.raises(ValidationError):
            datetime_str(text, "last_updated")


def test_datetimes_are_written_in_utc_with_z() -> None:
    moment = datetime(2024, 5, 1, 11, 30, 0, 500000, tzinfo=UTC)
    assert format_datetime(moment) == "2024-05-01T11:30:00Z"
    assert parse_datetime("2024-05-01T11:30:00.5Z") == moment


def test_credentials_need_a_token_a_role_and_no_duplicate_roles() -> None:
    role = {
        "role": "EMSP",
        "party_id": "EMS",
        "country_code": "NL",
        "business_details": {"name": "Example eMSP", "website": "https://emsp.example"},
    }
    body = {"token": "abc", "url": "https://emsp.example/versions", "roles": [role]}
    creds = Credentials.from_json(body)
    assert creds.roles[0].key == "NL-EMS" and creds.to_json() == body
    assert field_of(Credentials.from_json, {**body, "token": "a b"}) == "token"
    assert field_of(Credentials.from_json, {**body, "roles": []}) == "roles"
    assert field_of(Credentials.from_json, {**body, "roles": [role, role]}) == "roles[1]"
    bad_role = {**role, "country_code": "NLD"}
    assert field_of(Credentials.from_json, {**body, "roles": [bad_role]}) == (
        "roles[0].country_code"
    )


def test_version_details_tolerate_a_credentials_endpoint_without_role() -> None:
    details = VersionDetails.from_json(
        {
            "version": "2.2.1",
            "endpoints": [
                {"identifier": "credentials", "url": "https://e.example/credentials"},
                {"identifier": "tokens", "role": "SENDER", "url": "https://e.example/tokens"},
            ],
        }
    )
    tokens = details.find("tokens", InterfaceRole.SENDER)
    assert tokens is not None and tokens.url == "https://e.example/tokens"
    assert details.find("tokens", InterfaceRole.RECEIVER) is None
    bad = [{"version": "2.2.1", "url": "ftp://e.example/"}]
    assert field_of(Version.list_from_json, bad) == "data[0].url"


def test_authorization_info_names_nested_fields() -> None:
    body = {"allowed": "ALLOWED", "token": token_json(), "location": {"location_id": "L1"}}
    info = AuthorizationInfo.from_json(body)
    assert info.allowed is AllowedType.ALLOWED and info.to_json() == body
    nested = {**body, "token": token_json(uid="")}
    assert field_of(AuthorizationInfo.from_json, nested) == "data.token.uid"


def test_the_package_exports_the_shared_vocabulary() -> None:
    for name in roaming.models.__all__:
        assert getattr(roaming.models, name) is not None
    assert roaming.models.Token is Token
