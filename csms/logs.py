"""structlog set-up: configured once at start-up, JSON lines unless a person is watching.

Why a redaction processor and not discipline alone: a secret logged once is leaked for
the life of the log archive, so every event passes a filter that blanks any key that
names a secret, wherever it was bound. Token *uids* (RFID ids) are logged masked via
:func:`mask` so operators can still correlate a card without the log holding it whole.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "authorization",
        "secret",
        "token_a",
        "token_b",
        "token_c",
        "token_in",
        "token_out",
        "credentials",
        "admin_token",
        "pw",
    }
)
REDACTED = "[redacted]"


def mask(value: str | None) -> str | None:
    """Keep enough of an identifier to correlate, not enough to reuse: ``04A1…E580``."""
    if value is None:
        return None
    if len(value) <= 6:
        return value[:1] + "…"
    return f"{value[:4]}…{value[-2:]}"


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = REDACTED
    return event


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog and the stdlib loggers (websockets, aiohttp, ocpp) to one renderer."""
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_out
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The libraries are chatty at debug and log every frame; keep them at warning unless asked.
    lib_level = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("websockets", "aiohttp", "ocpp", "aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(lib_level)


def get(name: str = "csms") -> Any:
    return structlog.get_logger(name)
