"""structlog set-up: configured once at start-up, JSON lines unless a person is watching.

Why a redaction processor and not discipline alone: a secret logged once is leaked for
the life of the log archive, so every event passes a filter that blanks any key that
names a secret, wherever it was bound. Token *uids* (RFID ids) are logged masked via
:func:`mask` so operators can still correlate a card without the log holding it whole.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
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


# "Authorization: Basic abc", "Bearer abc", "Token abc" wherever a library prints them
# (websockets logs handshake headers at debug level).
_CREDENTIALS = re.compile(r"(?i)\b(basic|bearer|token)(\s+)[A-Za-z0-9._~+/=-]{4,}")


class ScrubCredentials(logging.Filter):
    """Blank credentials inside third-party log messages before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: leave the record alone
            return True
        scrubbed = _CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


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


class _NamedBytesLogger(structlog.BytesLogger):
    """structlog's fast byte logger, remembering the name it was asked for."""

    def __init__(self, name: str | None, file: Any) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLogger(structlog.PrintLogger):
    def __init__(self, name: str | None, file: Any) -> None:
        super().__init__(file)
        self.name = name


def add_logger_name(
    logger: Any, _: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    name = getattr(logger, "name", None)
    if name and "logger" not in event:
        event["logger"] = name
    return event


def _orjson_dumps(obj: Any, **_: Any) -> bytes:
    return orjson.dumps(obj, default=str)


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog and the stdlib loggers (websockets, aiohttp, ocpp) to one renderer.

    Our own events take structlog's native path (filtering bound logger, orjson, bytes
    straight to stderr): the stdlib ``ProcessorFormatter`` route costs ~70 µs an event,
    which on the Authorize hot path (one ``authorization_decided`` per decision) capped
    a core at ~7,000 decisions/s. The libraries' stdlib records still pass the same
    processors (redaction included) through ``ProcessorFormatter``.
    """
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    if json_out:
        renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        stderr_bytes = sys.stderr.buffer

        def factory(*args: Any) -> Any:
            return _NamedBytesLogger(args[0] if args else None, stderr_bytes)

    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

        def factory(*args: Any) -> Any:
            return _NamedPrintLogger(args[0] if args else None, sys.stderr)

    structlog.configure(
        processors=[
            add_logger_name,
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=factory,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=True,
    )
    stdlib_renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_out
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, stdlib_renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubCredentials())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The libraries are chatty at debug and log every frame; keep them at warning unless asked.
    lib_level = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("websockets", "aiohttp", "ocpp", "asyncio"):
        logging.getLogger(name).setLevel(lib_level)
    # aiosqlite's debug records carry every SQL statement *with its parameters*, which
    # include credentials tokens: never let them through, whatever the level.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def get(name: str = "csms") -> Any:
    return structlog.get_logger(name)
