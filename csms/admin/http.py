"""JSON in and out for admin handlers, and the one error type they raise.

Why one :class:`ApiError` instead of aiohttp's HTTP exceptions: every error the API
gives has the same body ``{"error": code, "message": ...}`` so scripts can branch on a
stable ``code`` while people read the ``message``; the middleware in
:mod:`csms.admin.app` renders it in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    """An error answer: HTTP ``status``, a stable snake_case ``code``, a readable ``message``."""

    def __init__(
        self, status: int, code: str, message: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, default=_default),
        status=status,
        content_type="application/json",
    )


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; a missing or malformed body is a 400 that says why."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "malformed_json", "request body is empty; a JSON document is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


async def read_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}`` when ``empty_ok``)."""
    if empty_ok and not (await request.read()).strip():
        return {}
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_body", f"request body must be a JSON object, got {_kind(doc)}")
    return doc


def field(
    doc: Mapping[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """One typed field of a JSON object; wrong type or missing when required is a 400."""
    if name not in doc or doc[name] is None:
        if required:
            raise ApiError(400, "invalid_body", f"field {name!r} is required")
        return default
    value = doc[name]
    if isinstance(value, bool) and kind is not bool:
        raise ApiError(400, "invalid_body", f"field {name!r} must be {_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ApiError(
            400, "invalid_body", f"field {name!r} must be {_name(kind)}, got {_kind(value)}"
        )
    return value


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_query", f"query {name!r} must be an integer, got {raw!r}"
        ) from None


def query_float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_query", f"query {name!r} must be a number, got {raw!r}"
        ) from None
    if value <= 0:
        raise ApiError(400, "invalid_query", f"query {name!r} must be greater than 0")
    return value


def query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    low = raw.lower()
    if low in ("1", "true", "yes"):
        return True
    if low in ("0", "false", "no"):
        return False
    raise ApiError(400, "invalid_query", f"query {name!r} must be true or false, got {raw!r}")


def _name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        dict: "an object",
        list: "an array",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
