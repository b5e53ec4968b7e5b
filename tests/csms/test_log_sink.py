"""The buffered JSON log sink (csms/logs.py): nothing lost, order kept, warnings at once.

Each case runs a small real Python process writing to a real pipe, because the sink's
whole point is *when* bytes reach the file descriptor (the exit flush and the daemon
flusher exist only in a process of their own).
"""

from __future__ import annotations

import select
import subprocess
import sys

import orjson
import structlog

from csms import logs

PRELUDE = """
import sys, time, structlog
from csms import logs
logs.configure("info", "json")
log = logs.get("t")
hot = logs.HotEvent("t", "hot_event")
structlog.contextvars.bind_contextvars(charge_point_id="CP1")
"""


def run(body: str, timeout: float = 20) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-c", PRELUDE + body],
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return [orjson.loads(line) for line in out.stderr.splitlines()]


def test_every_line_reaches_the_stream_in_order_at_exit() -> None:
    lines = run(
        "for i in range(5000):\n"
        "    log.info('plain', n=i) if i % 2 else hot(n=i, uid=logs.mask('04A1B2C3D4'))\n"
    )
    assert [e["n"] for e in lines] == list(range(5000))
    assert {e["event"] for e in lines} == {"plain", "hot_event"}


def test_hot_event_writes_what_log_info_writes() -> None:
    lines = run(
        "hot(source='cache', password='s3cret', n=1)\nlog.info('hot_event', source='cache', password='s3cret', n=1)\n"
    )
    a, b = lines
    assert a.pop("timestamp") and b.pop("timestamp")
    assert a == b
    assert list(a) == list(b)  # same key order, i.e. the same processors in the same order
    assert a["password"] == logs.REDACTED
    assert a["charge_point_id"] == "CP1" and a["level"] == "info" and a["logger"] == "t"


def test_warning_is_written_at_once_and_info_within_the_flush_interval() -> None:
    # The child logs "later" when told to on stdin, then blocks on stdin until killed: the
    # line can only reach stderr through the daemon flusher, never through the exit.
    body = (
        "log.info('before')\n"
        "log.warning('alarm')\n"
        "sys.stdout.write('go\\n'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
        "log.info('later')\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + body],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # no read-ahead: select() below sees exactly what the child wrote
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"go\n"
        # The warning was flushed by the call itself, with the info line before it.
        first, second = proc.stderr.readline(), proc.stderr.readline()
        assert orjson.loads(first)["event"] == "before"
        assert orjson.loads(second)["event"] == "alarm"
        proc.stdin.write(b"next\n")
        proc.stdin.flush()
        # Flushed by the daemon flusher within its interval, well inside 4 s.
        ready, _, _ = select.select([proc.stderr], [], [], 4.0)
        assert ready, "the info line was not flushed while the process ran"
        third = proc.stderr.readline()
        assert orjson.loads(third)["event"] == "later"
        assert proc.poll() is None  # the child is still running: not flushed by exiting
    finally:
        proc.kill()
        proc.communicate()  # reaps the child and closes its pipes


def test_capture_logs_still_sees_hot_events() -> None:
    hot = logs.HotEvent("csms.test", "hot_captured")
    with structlog.testing.capture_logs() as captured:
        hot(source="cache", uid="04A1…E5")
    assert captured == [
        {"source": "cache", "uid": "04A1…E5", "event": "hot_captured", "log_level": "info"}
    ]


def test_redact_blanks_secret_keys_in_any_case_after_the_key_was_seen() -> None:
    first = logs.redact(None, "info", {"Token": "abc", "n": 1})
    again = logs.redact(None, "info", {"Token": "abc", "n": 1})
    assert first == again == {"Token": logs.REDACTED, "n": 1}
