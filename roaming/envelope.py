"""The OCPI response envelope, status codes, and the ONE roaming error table.

Why one table: every handler raises a typed :class:`OcpiError` (or lets a
:class:`~roaming.models.ValidationError` escape) and :func:`error_response` alone decides
the HTTP status and OCPI status code, so "bad field → 2001", "unknown token → 401" and
"not registered → 405" cannot drift apart between modules.

Error tree::

    OcpiError(status_code, message, http_status)
    ├── BadRequestBody        400 / 2001  body is not JSON (or not an object)
    ├── InvalidParameters     200 / 2001  valid JSON with a bad field (field named)
    ├── NotEnoughInformation  200 / 2002
    ├── Unauthorized          401 / 2000  missing / unknown / wrong-kind token
    ├── NotFound              404 / 2000|2003|2004
    ├── MethodNotAllowed      405 / 2000
    ├── ClientApiUnusable     200 / 3001  our calls to the partner failed (registration)
    ├── UnsupportedVersion    200 / 3002
    └── NoMatchingEndpoints   200 / 3003

Anything else becomes HTTP 500 / 3000 with a generic message; details go to the log only.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson
from aiohttp import web

from roaming.models.datetimes import now_str
from roaming.models.fields import ValidationError


class StatusCode(enum.IntEnum):
    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003
    HUB_ERROR = 4000
    HUB_UNKNOWN_RECEIVER = 4001
    HUB_TIMEOUT = 4002
    HUB_CONNECTION_PROBLEM = 4003


class OcpiError(Exception):
    """A refusal that has a defined OCPI answer."""

    status_code: int = StatusCode.CLIENT_ERROR
    http_status: int = 200

    def __init__(
        self, message: str, *, status_code: int | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if http_status is not None:
            self.http_status = http_status


class BadRequestBody(OcpiError):
    """The body is not JSON, or not a JSON object: HTTP 400, as the spec asks."""

    status_code = StatusCode.INVALID_PARAMETERS
    http_status = 400


class InvalidParameters(OcpiError):
    """Valid JSON with a bad field or query parameter; the message names it."""

    status_code = StatusCode.INVALID_PARAMETERS


class NotEnoughInformation(OcpiError):
    status_code = StatusCode.NOT_ENOUGH_INFORMATION


class Unauthorized(OcpiError):
    """A missing, unknown or wrong-kind token: never a reason to say more."""

    http_status = 401


class NotFound(OcpiError):
    """An unknown object; raisers pick 2003 (location) or 2004 (token) where OCPI has one."""

    http_status = 404


class MethodNotAllowed(OcpiError):
    """Not allowed in the partner's registration state (e.g. POST when registered)."""

    http_status = 405


class ClientApiUnusable(OcpiError):
    """Our calls to the partner's versions or details failed during registration."""

    status_code = StatusCode.CLIENT_API_UNUSABLE


class UnsupportedVersion(OcpiError):
    status_code = StatusCode.UNSUPPORTED_VERSION


class NoMatchingEndpoints(OcpiError):
    """The partner's version details lack an endpoint we need."""

    status_code = StatusCode.NO_MATCHING_ENDPOINTS


def envelope(
    data: Any = None,
    status_code: int = StatusCode.SUCCESS,
    status_message: str | None = None,
    *,
    include_data: bool = True,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_data and data is not None:
        out["data"] = data
    out["status_code"] = int(status_code)
    if status_message:
        out["status_message"] = status_message
    out["timestamp"] = now_str()
    return out


def json_response(
    body: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def ok(data: Any = None, *, status: int = 200, message: str | None = None) -> web.Response:
    """A success envelope; ``data`` omitted when None (push responses, d2 note)."""
    return json_response(envelope(data, StatusCode.SUCCESS, message), status=status)


def error_response(exc: BaseException) -> tuple[web.Response, bool]:
    """Map an exception to its envelope response; the bool says "unexpected, log it"."""
    if isinstance(exc, OcpiError):
        body = envelope(None, exc.status_code, exc.message)
        return json_response(body, status=exc.http_status), False
    if isinstance(exc, ValidationError):
        body = envelope(None, StatusCode.INVALID_PARAMETERS, str(exc))
        return json_response(body, status=200), False
    if isinstance(exc, web.HTTPException):
        code = StatusCode.CLIENT_ERROR if exc.status < 500 else StatusCode.SERVER_ERROR
        body = envelope(None, code, exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response(body, status=exc.status, headers=headers), exc.status >= 500
    body = envelope(None, StatusCode.SERVER_ERROR, "internal server error")
    return json_response(body, status=500), True


# Where the content-coding middleware (roaming.app) leaves a body it decoded.
DECODED_BODY: web.RequestKey[bytes] = web.RequestKey("ocpi_decoded_body", bytes)


async def read_body(request: web.Request) -> bytes:
    """The request body, content codings undone (see :mod:`roaming.content_coding`)."""
    decoded = request.get(DECODED_BODY)
    return decoded if decoded is not None else await request.read()


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; a body that is not JSON is HTTP 400 / 2001."""
    raw = await read_body(request)
    if not raw:
        raise BadRequestBody("request body is empty; a JSON body is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestBody(f"request body is not valid JSON: {exc}") from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequestBody("request body must be a JSON object")
    return body
