"""OCPI wire details the sandbox needs on both sides: envelope, auth header, time, URLs.

Why our own and not ``roaming``: the sandbox is the *other* party in end-to-end tests,
so it must not share the CPO's interpretation of the wire format. If both sides used
the same helper, a bug in it would cancel out and every test would still pass.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

VERSION = "2.2.1"
VERSIONS_PATH = "/ocpi/versions"
DETAILS_PATH = f"/ocpi/{VERSION}"
CREDENTIALS_PATH_SUFFIX = f"/ocpi/{VERSION}/credentials"
MODULE_BASE = f"/ocpi/emsp/{VERSION}"

# The OCPI status codes every handler answers with (OCPI status codes); the 3xxx codes
# a handshake fails with live with the handshake (registration.py).
OK = 1000
CLIENT_ERROR = 2000
INVALID_PARAMS = 2001
UNKNOWN_TOKEN = 2004
SERVER_ERROR = 3000


def now() -> datetime:
    return datetime.now(UTC)


def fmt_time(moment: datetime) -> str:
    """OCPI DateTime: UTC with ``Z``, no offset, no microseconds (string(25))."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return fmt_time(now())


_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z)?$")


def parse_time(value: str) -> datetime:
    """Lenient OCPI DateTime parse: ``Z`` or none (naive = UTC), any fraction digits.

    Raises ValueError for offsets like ``+00:00``, which OCPI forbids.
    """
    m = _TIME_RE.match(value.strip())
    if not m:
        raise ValueError(f"not an OCPI DateTime: {value!r}")
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    if m.group(2):
        frac = m.group(2)[1:7].ljust(6, "0")
        base = base.replace(microsecond=int(frac))
    return base


def encode_token(token: str, encoding: str = "base64") -> str:
    """The Authorization header value for a credentials token (Base64 in OCPI 2.2.1)."""
    if encoding == "raw":
        return f"Token {token}"
    return "Token " + base64.b64encode(token.encode()).decode()


def header_token_candidates(header: str | None) -> list[str]:
    """What the caller may have meant: the raw value first, then its Base64 decoding.

    Peers differ (2.1.1 style raw vs 2.2.1 Base64), so both are tried; the decoded form
    is stripped of trailing whitespace because the spec examples encode a newline.
    """
    if not header:
        return []
    parts = header.strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "token":
        return []
    value = parts[1].strip()
    out = [value]
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8").rstrip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return out
    if decoded and decoded != value:
        out.append(decoded)
    return out


def new_credentials_token(prefix: str) -> str:
    """A fresh credentials token from the unreserved URL alphabet, so it needs no escaping anywhere."""
    return f"{prefix}-{uuid.uuid4()}"


def join_url(base: str, *segments: str) -> str:
    """Join with exactly one ``/`` and percent-encode each id segment (an id may hold characters a path cannot)."""
    url = base.rstrip("/")
    for seg in segments:
        url += "/" + quote(seg, safe="")
    return url


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def envelope(
    data: Any = None, status_code: int = OK, message: str | None = None, *, with_data: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if with_data and data is not None:
        body["data"] = data
    body["status_code"] = status_code
    body["status_message"] = message or ("OK" if status_code == OK else "error")
    body["timestamp"] = now_iso()
    return body


def reply(
    data: Any = None,
    status_code: int = OK,
    message: str | None = None,
    *,
    http_status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An enveloped JSON response; request-id echo is added by the middleware."""
    return web.Response(
        body=dumps(envelope(data, status_code, message)),
        status=http_status,
        content_type="application/json",
        headers=headers,
    )


def new_request_id() -> str:
    return str(uuid.uuid4())
