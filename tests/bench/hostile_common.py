"""Shared plumbing of the hostile-input benchmarks (``flood``, ``auth_storm``,
``ocpp_fuzz``): one ``csms serve`` pinned to core 0 with OCPI off, the generator here on
core 1, latency percentiles, and the server's RSS sampled from /proc.

``BENCH_TREE=/path/to/checkout`` runs that checkout's ``csms serve`` instead (with this
venv's interpreter), to measure another version of the server under the same load.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.bench.procs import OUT, REPO, Proc, free_port, loadavg

ADMIN_TOKEN = "bench-admin-token"


@dataclass(frozen=True)
class Server:
    proc: Proc
    ocpp_url: str
    admin_url: str
    tree: Path


def tree() -> Path:
    return Path(os.environ.get("BENCH_TREE") or REPO)


@contextmanager
def csms(name: str, extra: str = "") -> Iterator[Server]:
    """``csms serve`` on a fresh store under var/bench/, pinned to core 0, stopped after."""
    root = tree()
    ocpp, admin = free_port(), free_port()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{OUT / name}.sqlite3{suffix}").unlink(missing_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    cfg = OUT / f"{name}.toml"
    cfg.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {ocpp}
unknown_chargers = "accept"
ping_interval_s = 0
listen_backlog = 8192

[store]
path = "{OUT / f"{name}.sqlite3"}"

[admin]
host = "127.0.0.1"
port = {admin}
token = "{ADMIN_TOKEN}"

[ocpi]
enabled = false

[log]
level = "info"
format = "json"
{extra}
"""
    )
    env = {"PYTHONPATH": str(root)} if root != REPO else {}
    proc = Proc(name, ["-m", "csms", "serve", "--config", str(cfg)], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 30
        for port in (ocpp, admin):
            while True:
                if proc.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"csms did not start, see {proc.log_path}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        yield Server(proc, f"ws://127.0.0.1:{ocpp}/ocpp", f"http://127.0.0.1:{admin}", root)
    finally:
        proc.stop()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class RssSampler:
    """The server's VmRSS every ``interval`` seconds while running (max and last, MB)."""

    def __init__(self, proc: Proc, interval: float = 0.1) -> None:
        self.proc = proc
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def now_mb(self) -> float:
        return self.proc.rss_kb() / 1024

    async def _run(self) -> None:
        while True:
            self.samples.append(self.now_mb())
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else float("nan")


def log_count(server: Server, needle: str) -> int:
    """How many lines of the server's log contain ``needle``."""
    with server.proc.log_path.open("rb") as f:
        return sum(1 for line in f if needle.encode() in line)


def machine() -> str:
    return f"load average {loadavg()} (2-core machine shared with other work)"
