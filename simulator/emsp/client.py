"""Outgoing OCPI calls of the sandbox: one place that adds auth, ids and routing headers.

Why it never raises on HTTP errors: the sandbox is a test instrument; a test wants to
see the 401 or the 2001 the CPO answered, so every call returns an :class:`OcpiReply`
(with ``http_status=None`` when no answer came at all) and records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from simulator.emsp.tables import SentRequest
from simulator.emsp.wire import dumps, encode_token, new_request_id


@dataclass(frozen=True)
class OcpiReply:
    http_status: int | None
    body: Any  # parsed JSON, raw text, or the error string when http_status is None
    headers: dict[str, str]

    @property
    def status_code(self) -> int | None:
        return self.body.get("status_code") if isinstance(self.body, dict) else None

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def ok(self) -> bool:
        return self.http_status is not None and self.http_status < 300 and self.status_code == 1000


class OcpiClient:
    """Wraps one aiohttp session; ``sent`` is the shared log of outgoing calls."""

    def __init__(self, sent: list[SentRequest], timeout_s: float = 10.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.sent = sent
        self.auth_encoding = "base64"

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=256)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        url: str,
        *,
        token: str | None,
        body: Any = None,
        routing: dict[str, str] | None = None,
        correlation_id: str | None = None,
        encoding: str | None = None,
    ) -> OcpiReply:
        headers = {
            "X-Request-ID": new_request_id(),
            "X-Correlation-ID": correlation_id or new_request_id(),
        }
        if token is not None:
            headers["Authorization"] = encode_token(token, encoding or self.auth_encoding)
        if routing:
            headers.update(routing)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = dumps(body)
        session = await self._get_session()
        status: int | None = None
        parsed: Any
        resp_headers: dict[str, str] = {}
        try:
            async with session.request(method, url, data=data, headers=headers) as resp:
                status = resp.status
                resp_headers = dict(resp.headers)
                raw = await resp.read()
            try:
                parsed = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                parsed = raw.decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            parsed = f"{type(exc).__name__}: {exc}"
        log_headers = {k: v for k, v in headers.items() if k != "Authorization"}
        self.sent.append(SentRequest(method, url, log_headers, body, status, parsed))
        return OcpiReply(status, parsed, resp_headers)
