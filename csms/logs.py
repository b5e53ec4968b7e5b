"""structlog set-up: configured once at start-up, JSON lines unless a person is watching.

Why a redaction processor and not discipline alone: a secret logged once is leaked for
the life of the log archive, so every event passes a filter that blanks any key that
names a secret, wherever it was bound. Token *uids* (RFID ids) are logged masked via
:func:`mask` so operators can still correlate a card without the log holding it whole.

Why JSON lines go through a buffered sink: every Authorize decision emits one
``authorization_decided`` event (a product requirement), and a ``write()`` syscall per
line cost about a quarter of the server's main thread at thousands of decisions a
second. Lines are appended to an in-memory buffer (a memcpy) and written when 64 KB
have gathered, every 100 ms by a small daemon thread, and at exit; warnings and errors
(and everything the stdlib loggers emit) are written at once, so a failure is on disk
before anything else can go wrong. At most ~100 ms of info lines can be lost if the
process is killed with SIGKILL; ``csms serve`` stops on SIGTERM/SIGINT and flushes.
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
import threading
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
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
FLUSH_INTERVAL_S = 0.1
BUFFER_BYTES = 64 * 1024


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


# OCPP payload keys whose value is an idTag (logged masked), and configuration keys whose
# value is a secret (OCPP 1.6 security: AuthorizationKey; any key naming a password or
# secret), as in ChangeConfiguration {"key": ..., "value": ...} and GetConfiguration's
# configurationKey entries.
ID_TAG_KEYS = frozenset({"idTag", "parentIdTag"})
_SECRET_NAME = re.compile(r"(?i)authorizationkey|password|passphrase|secret|token|credential")
# Longest frame text rendered into a log line; the rest is elided (as websockets does).
FRAME_LOG_CHARS = 2000


def _names_secret(key: str) -> bool:
    return key.lower() in SECRET_KEYS or _SECRET_NAME.search(key) is not None


def redact_ocpp(value: Any) -> Any:
    """A copy of an OCPP message (frame array or payload) fit for a log: idTags masked,
    secret-named keys and the value of a secret configuration key redacted."""
    if isinstance(value, dict):
        secret_entry = isinstance(value.get("key"), str) and bool(_SECRET_NAME.search(value["key"]))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in ID_TAG_KEYS and isinstance(item, str):
                out[key] = mask(item)
            elif (secret_entry and key == "value") or _names_secret(str(key)):
                out[key] = REDACTED
            else:
                out[key] = redact_ocpp(item)
        return out
    if isinstance(value, list):
        return [redact_ocpp(item) for item in value]
    return value


def redact_frame_text(data: bytes | str) -> str:
    """A WebSocket data frame's payload as it may be logged: OCPP JSON redacted by
    :func:`redact_ocpp`; anything else (not JSON, a fragment) shown as its size only."""
    try:
        text = orjson.dumps(redact_ocpp(orjson.loads(data))).decode()
    except (orjson.JSONDecodeError, TypeError):
        return "(payload not shown)"
    if len(text) > FRAME_LOG_CHARS:
        half = FRAME_LOG_CHARS // 2
        text = f"{text[:half]}...{text[-half:]}"
    return text


class RedactFrames(logging.Filter):
    """websockets logs every frame it reads or writes at debug level (``< TEXT '...'``),
    payload included: an AuthorizationKey in a ChangeConfiguration, idTags in full. The
    frame is rendered again through :func:`redact_frame_text` before any handler
    formats it, so frame lines get the same redaction as our own events."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            not record.name.startswith("websockets")
            or not isinstance(args, tuple)
            or len(args) != 1
        ):
            return True
        frame = args[0]
        opcode = getattr(frame, "opcode", None)
        data = getattr(frame, "data", None)
        if opcode is None or not isinstance(data, bytes | bytearray | memoryview):
            return True
        name = getattr(opcode, "name", str(opcode))
        if name in ("TEXT", "BINARY", "CONT"):
            shown = redact_frame_text(bytes(data)) if name != "CONT" else "(fragment)"
            fin = "" if getattr(frame, "fin", True) else ", continued"
            record.args = (f"{name} {shown} [{len(data)} bytes{fin}]",)
        return True


def mask(value: str | None) -> str | None:
    """Keep enough of an identifier to correlate, not enough to reuse: ``04A1…E580``."""
    if value is None:
        return None
    if len(value) <= 6:
        return value[:1] + "…"
    return f"{value[:4]}…{value[-2:]}"


# Keys already seen not to name a secret: the check per event is then one set lookup
# per key instead of a lower() and a lookup (bounded, keys are code-defined names).
_SAFE_KEYS: set[str] = set()
_SAFE_KEYS_MAX = 4096


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    safe = _SAFE_KEYS
    for key in event:
        if key in safe:
            continue
        if str(key).lower() in SECRET_KEYS:
            event[key] = REDACTED  # an existing key: the dict's size does not change
        elif len(safe) < _SAFE_KEYS_MAX:
            safe.add(key)
    return event


class _Timestamp:
    """ISO 8601 UTC with microseconds, as structlog's ``TimeStamper(fmt="iso", utc=True)``
    writes it, but formatting the date and time only once per second (a datetime and
    ``isoformat()`` per event cost more than the rest of the stamp)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _: Any, __: str, event: MutableMapping[str, Any]) -> Any:
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            self._second = second
        event["timestamp"] = f"{self._prefix}{micros:06d}Z"
        return event


def merge_contextvars(_: Any, __: str, event: MutableMapping[str, Any]) -> Any:
    """structlog's ``merge_contextvars`` without copying and scanning the whole context:
    only structlog's own variables are read (they are few: ``charge_point_id``,
    ``request_id``...). Falls back to structlog's processor if its registry moves."""
    registry = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    if registry is None:  # pragma: no cover - a structlog without the registry
        return structlog.contextvars.merge_contextvars(_, __, event)  # type: ignore[arg-type]
    prefix_len = structlog.contextvars.STRUCTLOG_KEY_PREFIX_LEN
    for name, var in registry.items():
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event.setdefault(name[prefix_len:], value)
    return event


# ---------------------------------------------------------------------- the sink


class BufferedSink:
    """Whole lines into a buffer; the buffer to the stream when full, on :meth:`flush`
    (the flusher thread, every ``FLUSH_INTERVAL_S``), and at exit.

    Two locks so the hot path never waits for a syscall it did not cause: ``_lock``
    guards the buffer (held for a memcpy), ``_io`` orders the writes (a drain takes
    ``_io`` first, then swaps the buffer out under ``_lock``), so lines reach the stream
    in the order they were logged.
    """

    def __init__(self, stream: Any, limit: int = BUFFER_BYTES) -> None:
        self.stream = stream
        self.limit = limit
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._io = threading.Lock()

    def write(self, line: bytes) -> None:
        with self._lock:
            buf = self._buf
            buf += line
            buf += b"\n"
            if len(buf) < self.limit:
                return
        self.flush()

    def write_now(self, line: bytes) -> None:
        self.write(line)
        self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        with self._io:
            with self._lock:
                data = bytes(self._buf)
                self._buf.clear()
            if not data:
                return
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: nowhere left to write
                pass


_SINKS: dict[int, BufferedSink] = {}  # id(stream) -> sink; one per stream, reused
_sinks_lock = threading.Lock()
_flusher: threading.Thread | None = None


def _sink_for(stream: Any) -> BufferedSink:
    global _flusher
    with _sinks_lock:
        sink = _SINKS.get(id(stream))
        if sink is None or sink.stream is not stream:
            sink = _SINKS[id(stream)] = BufferedSink(stream)
        if _flusher is None:
            _flusher = threading.Thread(target=_flush_forever, name="log-flusher", daemon=True)
            _flusher.start()
            atexit.register(flush)
    return sink


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_S)
        flush()


def flush() -> None:
    """Write every buffered log line now (called at exit; tests may call it)."""
    for sink in list(_SINKS.values()):
        sink.flush()


class _SinkLogger:
    """The wrapped logger of JSON output: info and debug are buffered, warnings and
    errors written at once. The method names are those structlog calls by level."""

    __slots__ = ("_sink", "name")

    def __init__(self, name: str | None, sink: BufferedSink) -> None:
        self.name = name
        self._sink = sink

    def msg(self, message: bytes) -> None:
        self._sink.write(message)

    def urgent(self, message: bytes) -> None:
        self._sink.write_now(message)

    debug = info = log = msg
    warning = warn = error = err = critical = fatal = exception = failure = urgent


class _SinkHandler(logging.Handler):
    """The stdlib loggers' records (websockets, aiohttp... mostly warnings) into the same
    sink, written at once and in order with our own events."""

    def __init__(self, sink: BufferedSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "replace")
        except Exception:
            self.handleError(record)
            return
        self.sink.write_now(line)


class HotEvent:
    """One frequent info event (``authorization_decided``, one per decision), emitted by
    running the configured processors directly into the JSON sink.

    Why: structlog's per-call machinery (lazy proxy, bound-logger method, context copy,
    result dispatch) cost about as much as the processors themselves. The same
    processors run in the same order, so the line is byte-for-byte what ``log.info``
    would write. Whenever the JSON sink is not what structlog is configured with
    (console output, a level above info, ``structlog.testing.capture_logs`` which edits
    the processor list in place), the call goes through structlog as usual.
    """

    __slots__ = ("_log", "event", "name")

    def __init__(self, name: str, event: str) -> None:
        self.name = name
        self.event = event
        self._log = structlog.get_logger(name)

    def __call__(self, **fields: Any) -> None:
        fast = _fast
        if (
            fast is None
            or fast.chain[-1] is not fast.renderer
            or len(fast.chain) != fast.size
            or "exc_info" in fields
        ):
            self._log.info(self.event, **fields)
            return
        # The chain configure() built, step by step (a test pins the output to log.info's):
        fields["event"] = self.event
        if "logger" not in fields:  # add_logger_name
            fields["logger"] = self.name
        merge_contextvars(None, "info", fields)
        fields["level"] = "info"  # add_log_level
        fast.stamp(None, "info", fields)
        redact(None, "info", fields)
        # format_exc_info: nothing to do without exc_info; the renderer:
        fast.sink.write(_orjson_dumps(fields))


class _Fast:
    """What :class:`HotEvent` needs of the JSON configuration (None when not active)."""

    __slots__ = ("chain", "renderer", "sink", "size", "stamp")

    def __init__(self, chain: list[Any], sink: BufferedSink) -> None:
        expected = [add_logger_name, merge_contextvars, structlog.stdlib.add_log_level]
        if chain[:3] != expected or chain[4] is not redact or not isinstance(chain[3], _Timestamp):
            raise ValueError("HotEvent mirrors configure()'s processor chain; keep them in step")
        self.chain = chain
        self.renderer = chain[-1]
        self.size = len(chain)
        self.sink = sink
        self.stamp: _Timestamp = chain[3]


_fast: _Fast | None = None


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
    into the buffered sink): the stdlib ``ProcessorFormatter`` route costs ~70 µs an
    event, which on the Authorize hot path (one ``authorization_decided`` per decision)
    capped a core at ~7,000 decisions/s. The libraries' stdlib records still pass the
    same processors (redaction included) through ``ProcessorFormatter``.
    """
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        merge_contextvars,
        structlog.stdlib.add_log_level,
        _Timestamp(),
        redact,
    ]
    handler: logging.Handler
    if json_out:
        renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        sink = _sink_for(sys.stderr.buffer)

        def factory(*args: Any) -> Any:
            return _SinkLogger(args[0] if args else None, sink)

        handler = _SinkHandler(sink)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

        def factory(*args: Any) -> Any:
            return _NamedPrintLogger(args[0] if args else None, sys.stderr)

        handler = logging.StreamHandler(sys.stderr)

    global _fast
    chain: list[Any] = [
        add_logger_name,
        *shared,
        structlog.processors.format_exc_info,
        renderer,
    ]
    _fast = _Fast(chain, sink) if json_out and _LEVELS[level] <= logging.INFO else None
    structlog.configure(
        processors=chain,
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
    handler.addFilter(RedactFrames())
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
