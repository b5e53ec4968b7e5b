"""Field checks every OCPI object is parsed with, and the error they raise.

Why hand-written checks instead of a schema library: every rejection must name the
offending field (``token.uid: longer than 36 characters``) so a partner can fix its
payload from the status_message alone, and token sync parses a million objects per
run, so each check is a couple of plain comparisons.

Case: CiString ids keep their original spelling on the object; lookups use the
``*_norm`` (upper-cased) value, see :func:`norm`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

E = TypeVar("E", bound=enum.StrEnum)


class ValidationError(ValueError):
    """An OCPI object or parameter that does not conform; ``field`` names it.

    The envelope layer turns it into OCPI status 2001 with the message as is.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def norm(value: str) -> str:
    """Lookup key of a CiString (country_code, party_id, uid, ids)."""
    return value.upper()


def party_key(country_code: str, party_id: str) -> str:
    """Partner key ``NL-EMS``: how operators and config name a party."""
    return f"{norm(country_code)}-{norm(party_id)}"


def required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    """``obj[key]``, present and not null; ``path`` prefixes the field name."""
    try:
        value = obj[key]
    except KeyError:
        raise ValidationError(f"{path}{key}", "required field missing") from None
    if value is None:
        raise ValidationError(f"{path}{key}", "required field is null")
    return value


def json_object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(name, f"must be an object, got {type(value).__name__}")
    return value


def json_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError(name, f"must be a list, got {type(value).__name__}")
    return value


def _bounded(value: Any, name: str, max_len: int) -> str:
    if type(value) is not str:
        raise ValidationError(name, f"must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(name, f"longer than {max_len} characters")
    return value


def cistring(value: Any, name: str, max_len: int) -> str:
    """Case-insensitive printable ASCII of at most ``max_len`` characters."""
    text = _bounded(value, name, max_len)
    if not text.isascii() or not text.isprintable():
        raise ValidationError(name, "must be printable ASCII")
    return text


def string(value: Any, name: str, max_len: int) -> str:
    """Case-sensitive printable UTF-8 of at most ``max_len`` characters."""
    text = _bounded(value, name, max_len)
    if not text.isprintable():
        raise ValidationError(name, "must not contain control characters")
    return text


def filled(text: str, name: str) -> str:
    """A required string that is present must also say something: ``""`` (or only
    spaces) for a required field is as unusable as a missing one, so it is 2001 too."""
    if not text.strip():
        raise ValidationError(name, "required field is empty")
    return text


def required_ci(obj: Mapping[str, Any], key: str, path: str, max_len: int) -> str:
    """A required, non-empty CiString field ``obj[key]`` (``path`` prefixes the name)."""
    return filled(cistring(required(obj, key, path), f"{path}{key}", max_len), f"{path}{key}")


def required_str(obj: Mapping[str, Any], key: str, path: str, max_len: int) -> str:
    """A required, non-empty string field ``obj[key]`` (``path`` prefixes the name)."""
    return filled(string(required(obj, key, path), f"{path}{key}", max_len), f"{path}{key}")


def boolean(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ValidationError(name, f"must be true or false, got {value!r}")
    return value


def enum_value(cls: type[E], value: Any, name: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ValidationError(name, f"must be one of {allowed}, got {value!r}") from None


def url_str(value: Any, name: str) -> str:
    text = string(value, name, 255)
    if not (text.startswith("http://") or text.startswith("https://")):
        raise ValidationError(name, "must be an http(s) URL")
    return text


def party_ids(obj: Mapping[str, Any], path: str) -> tuple[str, str]:
    """(country_code, party_id) of an object that names its owning party."""
    country = cistring(required(obj, "country_code", path), f"{path}country_code", 2)
    if len(country) != 2:
        raise ValidationError(f"{path}country_code", "must be 2 characters")
    party = cistring(required(obj, "party_id", path), f"{path}party_id", 3)
    if not party:
        raise ValidationError(f"{path}party_id", "must not be empty")
    return country, party
