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


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: ours, unbuffered output, then ``extra``."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}


class Proc:
    """A pinned child process whose stdout+stderr go to a log file under var/bench/.

    ``python`` and ``cwd`` choose the checkout the child runs: the benchmark measures
    another checkout's ``csms serve`` with that checkout's own interpreter (its venv).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None = SERVER_CPU,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        python: str = sys.executable,
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
            [python, *argv],
            cwd=cwd,
            env=child_env(env),
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


def core_steal() -> dict[int, float]:
    """Seconds stolen so far from each of the two pinned cores (``/proc/stat``)."""
    out: dict[int, float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, _, rest = line.partition(" ")
        if (
            name.startswith("cpu")
            and name[3:].isdigit()
            and int(name[3:]) in (SERVER_CPU, CLIENT_CPU)
        ):
            fields = rest.split()
            out[int(name[3:])] = int(fields[7]) / _TICK if len(fields) > 7 else 0.0
    return out


def steal_share(before: dict[int, float], wall_s: float) -> float:
    """The largest share of ``wall_s`` that either pinned core lost since ``before``."""
    after = core_steal()
    return max(((after[c] - before.get(c, 0.0)) / max(wall_s, 1e-9) for c in after), default=0.0)


def steal_seconds() -> float:
    """CPU time the hypervisor gave other guests while ours wanted it (all cores): the
    noise a load average inside this VM cannot see."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / _TICK if len(fields) > 8 else 0.0


def loadavg() -> str:
    """Other tenants' load: the machine is shared, and every figure depends on it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
