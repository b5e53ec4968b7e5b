"""The containers the sandbox's state is made of: case-insensitive tables and wire records.

Why plain dicts of JSON and not typed models: the sandbox must keep exactly what the
CPO sent (including fields a typed model would drop or normalise), so tests can assert
on the wire values; the few fields it acts on are read by name.

Ids are CiStrings in OCPI 2.2.x, so every table is keyed case-insensitively while
keeping the spelling it was given (:class:`CiMap`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class CiMap(Generic[V]):
    """A mapping with case-insensitive string keys that remembers the original spelling."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, V]] = {}

    def __setitem__(self, key: str, value: V) -> None:
        self._data[key.upper()] = (key, value)

    def __getitem__(self, key: str) -> V:
        return self._data[key.upper()][1]

    def __delitem__(self, key: str) -> None:
        del self._data[key.upper()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.upper() in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return (orig for orig, _ in self._data.values())

    def get(self, key: str, default: Any = None) -> Any:
        hit = self._data.get(key.upper())
        return default if hit is None else hit[1]

    def pop(self, key: str, default: Any = None) -> Any:
        hit = self._data.pop(key.upper(), None)
        return default if hit is None else hit[1]

    def keys(self) -> list[str]:
        return list(self)

    def values(self) -> list[V]:
        return [v for _, v in self._data.values()]

    def items(self) -> list[tuple[str, V]]:
        return list(self._data.values())

    def clear(self) -> None:
        self._data.clear()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received, as tests want to assert on it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    authorization: str | None  # the header value as sent
    token: str | None  # the credentials token it decoded to, if it matched one
    body: Any  # parsed JSON, the raw text if not JSON, None if empty
    received_at: float

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class SentRequest:
    """One call the sandbox made to its peer, with the answer it got."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    http_status: int | None  # None: no answer (connection error, timeout)
    response: Any  # parsed JSON, raw text, or the error string


@dataclass
class TokenRecord:
    """One token the sandbox owns plus how it answers real-time authorization for it."""

    token: dict[str, Any]
    allowed: str = "ALLOWED"

    @property
    def uid(self) -> str:
        return str(self.token["uid"])

    @property
    def type(self) -> str:
        return str(self.token.get("type", "RFID"))


class TokenTable:
    """The eMSP's own tokens, keyed by (uid, type) case-insensitively, in insertion order.

    Insertion order is the Sender list's stable order (oldest first).
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], TokenRecord] = {}

    @staticmethod
    def _key(uid: str, type_: str) -> tuple[str, str]:
        return (uid.upper(), type_.upper())

    def put(self, token: dict[str, Any], allowed: str | None = None) -> TokenRecord:
        key = self._key(str(token["uid"]), str(token.get("type", "RFID")))
        old = self._rows.get(key)
        if allowed is None:
            allowed = default_allowed(token) if old is None else old.allowed
        rec = TokenRecord(dict(token), allowed)
        self._rows[key] = rec
        return rec

    def get(self, uid: str, type_: str = "RFID") -> TokenRecord | None:
        return self._rows.get(self._key(uid, type_))

    def find(self, uid: str) -> TokenRecord | None:
        """The token with this uid of any type (RFID first)."""
        hit = self.get(uid, "RFID")
        if hit is not None:
            return hit
        up = uid.upper()
        return next((r for (u, _), r in self._rows.items() if u == up), None)

    def __getitem__(self, uid: str) -> dict[str, Any]:
        rec = self.find(uid)
        if rec is None:
            raise KeyError(uid)
        return rec.token

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, str) and self.find(uid) is not None

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[TokenRecord]:
        return iter(list(self._rows.values()))

    def records(self) -> list[TokenRecord]:
        return list(self._rows.values())

    def clear(self) -> None:
        self._rows.clear()


def default_allowed(token: dict[str, Any]) -> str:
    """An invalid token answers BLOCKED unless a test says otherwise."""
    return "ALLOWED" if token.get("valid", True) else "BLOCKED"
