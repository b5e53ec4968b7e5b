"""Switchable misbehaviour of the sandbox, changed while it runs.

Why a separate object: the fault cases are the point of the sandbox (the CPO's deadline,
fallback and retry code is only exercised by a peer that hangs, drops, or lies), and
tests, the control endpoint and the CLI must all flip the same switches.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum


class AuthorizeMode(StrEnum):
    NORMAL = "normal"  # answer from the token table
    DELAY = "delay"  # answer normally after delay_ms
    HANG = "hang"  # never answer until released (release() or mode change)
    HTTP_500 = "http500"  # HTTP 500 with a plain-text body
    MALFORMED = "malformed"  # HTTP 200, body that is not JSON
    NON_ENVELOPE = "non_envelope"  # HTTP 200, JSON without the OCPI envelope
    DROP = "drop"  # close the socket without answering
    UNKNOWN = "unknown"  # every token unknown: HTTP 404 + 2004


class DownMode(StrEnum):
    UP = "up"
    HTTP_503 = "503"  # every OCPI request answered 503 (plain text)
    REFUSE = "refuse"  # the OCPI listener is closed: connections are refused


@dataclass(frozen=True)
class AuthorizeBehaviour:
    mode: AuthorizeMode = AuthorizeMode.NORMAL
    delay_ms: int = 0


class Behaviour:
    """The current switches; ``per_uid`` overrides the global authorize behaviour."""

    def __init__(self) -> None:
        self.authorize = AuthorizeBehaviour()
        self.per_uid: dict[str, AuthorizeBehaviour] = {}
        self.down = DownMode.UP
        self.fail_tokens_page: int | None = None  # 1-based page number answered HTTP 500
        self.fail_tokens_page_times: int | None = None  # None: every time
        # CDR POSTs take a random 0..cdr_delay_ms, half before storing and half after, so
        # a CPO stopped at any moment may have a POST out that was, or was not, stored.
        self.cdr_delay_ms = 0
        self._release = asyncio.Event()

    def set_authorize(
        self, mode: AuthorizeMode | str, delay_ms: int = 0, uid: str | None = None
    ) -> None:
        b = AuthorizeBehaviour(AuthorizeMode(mode), int(delay_ms))
        if b.delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if uid is None:
            self.authorize = b
            self.per_uid.clear()
        else:
            self.per_uid[uid.upper()] = b
        if b.mode != AuthorizeMode.HANG:
            self.release()

    def fail_page(self, page: int | None, times: int | None = None) -> None:
        """Answer HTTP 500 for the 1-based token list page ``page`` (None: stop failing)."""
        self.fail_tokens_page = page
        self.fail_tokens_page_times = times

    def for_uid(self, uid: str) -> AuthorizeBehaviour:
        return self.per_uid.get(uid.upper(), self.authorize)

    def release(self) -> None:
        """Let every hung request go on (they then answer normally)."""
        self._release.set()
        self._release = asyncio.Event()

    async def wait_released(self) -> None:
        await self._release.wait()

    def describe(self) -> dict[str, object]:
        return {
            "authorize": {"mode": str(self.authorize.mode), "delay_ms": self.authorize.delay_ms},
            "per_uid": {
                k: {"mode": str(v.mode), "delay_ms": v.delay_ms} for k, v in self.per_uid.items()
            },
            "down": str(self.down),
            "fail_tokens_page": self.fail_tokens_page,
            "cdr_delay_ms": self.cdr_delay_ms,
        }
