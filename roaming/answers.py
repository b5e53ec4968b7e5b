"""What a partner's HTTP answer means: an :class:`OcpiResponse`, or a typed error.

Why one function: the line between "unreachable" (fallback applies), "rejected" (a
definite answer) and "invalid" (a broken partner) is drawn here for every call and
both HTTP stacks, so it cannot differ between modules (see :mod:`roaming.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from roaming.envelope import StatusCode
from roaming.errors import ErrorKind, InvalidResponse, PartnerRejected, PartnerUnreachable
from roaming.transport import Answer, Call


@dataclass(frozen=True, slots=True)
class OcpiResponse:
    http_status: int
    status_code: int
    status_message: str | None
    data: Any
    headers: Mapping[str, str]
    body: dict[str, Any]


def read_answer(call: Call, answer: Answer, allow_statuses: frozenset[int]) -> OcpiResponse:
    """The envelope of an OCPI success (1xxx), or the error the answer amounts to.

    ``allow_statuses`` lists HTTP statuses returned as-is instead of raising (e.g. 404
    for authorize); their body may then be anything, ``body`` is ``{}`` if not an envelope.
    """
    method, status = call.method, answer.status
    body: Any
    try:
        body = orjson.loads(answer.body) if answer.body else None
    except orjson.JSONDecodeError:
        body = None
    envelope_ok = (
        isinstance(body, dict)
        and isinstance(body.get("status_code"), int)
        and not isinstance(body.get("status_code"), bool)
    )
    code = body["status_code"] if envelope_ok else None
    message = body.get("status_message") if envelope_ok else None
    if status in allow_statuses:
        return OcpiResponse(
            status,
            code or 0,
            message,
            body.get("data") if envelope_ok else None,
            answer.headers,
            body if envelope_ok else {},
        )
    if status >= 500:
        raise PartnerUnreachable(
            f"{method} answered HTTP {status}" + (f" ({code}: {message})" if code else ""),
            kind=ErrorKind.SERVER_ERROR,
            partner=call.key,
            url=call.url,
        )
    if code in (StatusCode.HUB_TIMEOUT, StatusCode.HUB_CONNECTION_PROBLEM):
        raise PartnerUnreachable(
            f"hub reports the receiver unreachable ({code}: {message})",
            kind=ErrorKind.SERVER_ERROR,
            partner=call.key,
            url=call.url,
        )
    if status >= 300:
        raise PartnerRejected(
            f"{method} answered HTTP {status}" + (f" ({code}: {message})" if code else ""),
            http_status=status,
            status_code=code,
            partner=call.key,
            url=call.url,
        )
    if not envelope_ok:
        raise InvalidResponse(
            f"{method} answered HTTP {status} without an OCPI envelope",
            partner=call.key,
            url=call.url,
        )
    assert code is not None  # envelope_ok
    if not 1000 <= code < 2000:
        raise PartnerRejected(
            f"{method} answered OCPI status {code}: {message or ''}".rstrip(": "),
            http_status=status,
            status_code=code,
            partner=call.key,
            url=call.url,
        )
    return OcpiResponse(status, code, message, body.get("data"), answer.headers, body)
