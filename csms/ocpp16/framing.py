"""OCPP-J frames: ``[2, id, action, payload]``, ``[3, id, payload]``, ``[4, id, code, desc, details]``.

Parsing never raises anything but :class:`FrameError`, which carries the CALLERROR to send.
When the unique id cannot be read (not JSON, not an array, id not a string) the answer
uses unique id ``"-1"``: the charger cannot correlate it, but it learns its frame was bad
and the exchange is logged on both sides.

Integers are read exactly. orjson reads an integer literal beyond 64 bits as a float,
which the 1.6 schemas (``"type": "integer"``, draft 4) then refuse as the wrong type,
although the charger sent an integer; a StopTransaction so refused would be lost. Such
a frame (one with a run of 19 or more digits, rare: idTags are at most 20 characters)
is read again with the standard library's parser, which keeps integers exact, so the
value reaches the checks that decide what can be stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from csms.ocpp16 import errors

CALL, CALLRESULT, CALLERROR = 2, 3, 4
UNKNOWN_ID = "-1"


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: Any


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: Any


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: Any


Frame = Call | CallResult | CallError


class FrameError(Exception):
    """A frame we cannot use. ``reply`` is False for broken CALLRESULT/CALLERROR frames:
    OCPP-J never answers a result, so those are only logged (and fail a pending call)."""

    def __init__(self, code: str, description: str, unique_id: str, reply: bool = True) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.unique_id = unique_id
        self.reply = reply


_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")


_NOT_READ = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _all_text_encodable(value: Any) -> bool:
    """No lone surrogate anywhere (the standard library's parser admits ``"\\ud800"``,
    which is not text: orjson refuses it, and every later encode would fail on it)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return False
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return True


def _exactly(raw: str | bytes) -> Any:
    """``raw`` read with exact integers when it may hold a long one; else _NOT_READ."""
    found = (_LONG_DIGITS if isinstance(raw, bytes) else _LONG_DIGITS_TEXT).search(raw)  # type: ignore[arg-type]
    if found is None:
        return _NOT_READ
    try:
        msg = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # e.g. more digits than int() converts
        return _NOT_READ
    return msg if _all_text_encodable(msg) else _NOT_READ


def parse(raw: str | bytes) -> Frame:
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        msg = _exactly(raw)  # orjson refuses integers beyond a double's range
        if msg is _NOT_READ:
            raise FrameError(
                errors.FORMATION_VIOLATION, "frame is not valid JSON", UNKNOWN_ID
            ) from None
    else:
        exact = _exactly(raw)
        if exact is not _NOT_READ:
            msg = exact
    if not isinstance(msg, list) or not msg:
        raise FrameError(
            errors.FORMATION_VIOLATION, "frame must be a non-empty JSON array", UNKNOWN_ID
        )
    kind = msg[0]
    uid = msg[1] if len(msg) > 1 and isinstance(msg[1], str) and msg[1] else None
    if uid is None:
        raise FrameError(
            errors.FORMATION_VIOLATION, "frame must carry a non-empty string unique id", UNKNOWN_ID
        )
    if kind == CALL and type(kind) is int:
        if len(msg) == 3:
            raise FrameError(errors.PROTOCOL_ERROR, "CALL frame is missing its payload", uid)
        if len(msg) != 4:
            raise FrameError(
                errors.FORMATION_VIOLATION, "CALL frame must have exactly 4 elements", uid
            )
        if not isinstance(msg[2], str):
            raise FrameError(errors.FORMATION_VIOLATION, "CALL action must be a string", uid)
        return Call(uid, msg[2], msg[3])
    if kind == CALLRESULT and type(kind) is int:
        if len(msg) != 3:
            raise FrameError(
                errors.FORMATION_VIOLATION,
                "CALLRESULT frame must have 3 elements",
                uid,
                reply=False,
            )
        return CallResult(uid, msg[2])
    if kind == CALLERROR and type(kind) is int:
        if len(msg) not in (4, 5) or not isinstance(msg[2], str) or not isinstance(msg[3], str):
            raise FrameError(
                errors.FORMATION_VIOLATION,
                "CALLERROR frame must be [4, id, code, description, details]",
                uid,
                reply=False,
            )
        return CallError(uid, msg[2], msg[3], msg[4] if len(msg) == 5 else {})
    raise FrameError(
        errors.FORMATION_VIOLATION, f"unknown message type id {kind!r} (expected 2, 3 or 4)", uid
    )


# Frames are built as UTF-8 bytes and sent as text frames: decoding to str only for
# websockets to encode it again cost two copies per message.


def call(unique_id: str, action: str, payload: Any) -> bytes:
    return orjson.dumps([CALL, unique_id, action, payload])


def result(unique_id: str, payload: Any) -> bytes:
    return orjson.dumps([CALLRESULT, unique_id, payload])


class Prepared(bytes):
    """A response payload already validated against its action's schema and encoded.

    Why: a cache-hit Authorize answers the same idTagInfo to every charger presenting
    that card within the same second; validating and encoding it once instead of per
    call removes a schema check with a date-time regex and two dict builds from the
    hot path. Only :func:`csms.ocpp16.schemas.prepare_response` makes these.
    """

    __slots__ = ()


def result_prepared(unique_id: str, payload: Prepared) -> bytes:
    return b"[3," + orjson.dumps(unique_id) + b"," + payload + b"]"


def error(unique_id: str, code: str, description: str, details: Any = None) -> bytes:
    return orjson.dumps([CALLERROR, unique_id, code, description, details or {}])
