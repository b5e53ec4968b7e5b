"""Benchmark plumbing: pinned subprocesses, their readiness lines, CPU and RSS from /proc.

Why subprocesses pinned to cores: the figures must be the server's alone. On a 2-core box
the server gets core 0 and the load generator (this process) core 1, so neither steals
the other's CPU and the server's CPU time is exactly what /proc/<pid>/stat says it used.
Pinning happens in the child before ``exec`` so every thread it starts later (aiosqlite's
worker, the resolver) inherits the same core.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "var" / "bench"
SERVER_CPU = 0
CLIENT_CPU = 1
_TICK = os.sysconf("SC_CLK_TCK")


def cores() -> int:
    return len(os.sched_getaffinity(0))


def pin_self(cpu: int) -> None:
    """Pin this process (the load generator) to ``cpu`` when the machine has that core."""
    if cpu < os.cpu_count():  # type: ignore[operator]
        os.sched_setaffinity(0, {cpu})


def raise_nofile(want: int = 20_000) -> int:
    """Raise the soft fd limit towards ``want`` (bounded by the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def free_port() -> int:
    """A port free right now (for servers that must know their public URL before binding)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A pinned child process whose stdout+stderr go to a log file under var/bench/."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None = SERVER_CPU,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUT / f"{name}.log"
        self._log = self.log_path.open("wb")
        pin = cpu if cpu is not None and cpu < (os.cpu_count() or 1) else None

        def pre_exec() -> None:
            if pin is not None:
                os.sched_setaffinity(0, {pin})
            raise_nofile()

        self.popen = subprocess.Popen(
            [sys.executable, *argv],
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=pre_exec,
        )
        self.pid = self.popen.pid

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Poll the log until a line matches ``pattern`` (a regex); fail fast if it died."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            for line in text.splitlines():
                m = rx.search(line)
                if m:
                    return m
            if self.popen.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited {self.popen.returncode}:\n{text[-2000:]}")
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.name}: no line matching {pattern!r} within {timeout} s")

    def cpu_seconds(self) -> float:
        """User + system CPU of every thread so far (/proc/<pid>/stat fields 14 and 15)."""
        raw = Path(f"/proc/{self.pid}/stat").read_text()
        fields = raw[raw.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if not self._log.closed:
            self._log.close()


@contextlib.contextmanager
def running(proc_factory: Callable[[], Proc]) -> Iterator[Proc]:
    proc = proc_factory()
    try:
        yield proc
    finally:
        proc.stop()


class CpuMeter:
    """CPU share of a process between ``start()`` and ``stop()`` (1.0 = one full core)."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.cpu0 = 0.0
        self.t0 = 0.0
        self.share = 0.0

    def start(self) -> None:
        self.cpu0, self.t0 = self.proc.cpu_seconds(), time.monotonic()

    def stop(self) -> float:
        dt = time.monotonic() - self.t0
        self.share = (self.proc.cpu_seconds() - self.cpu0) / dt if dt > 0 else 0.0
        return self.share
