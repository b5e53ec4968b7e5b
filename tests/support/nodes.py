"""Several real ``csms serve`` processes on one PostgreSQL database.

Why child processes and not Systems in the test's loop: a node's death must be a real
SIGKILL (no shutdown code, sockets reset by the kernel, advisory locks released by the
database), and each node must have its own event loop and its own pool, as in
production. Ports are fixed before the first start so that a node restarted later is
found at the same URLs by chargers and partners.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.csms import ADMIN_TOKEN, config_sections, write_config
from tests.support.serve_process import drain
from tests.support.waiting import scaled, wait_until

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 unless tuned), so no other
    test's port-0 listener takes it while a node is down."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32000")


@dataclass
class Node:
    """One ``csms serve`` child; :meth:`start` again after :meth:`kill` or :meth:`stop`."""

    name: str
    home: Path
    config_file: Path
    ocpp_port: int
    admin_port: int
    ocpi_port: int
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    lines: list[bytes] = field(default_factory=list)
    _drains: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return f"node-{self.name}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def ocpi_url(self) -> str:
        return f"http://127.0.0.1:{self.ocpi_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        assert not self.running, f"{self.name} is running"
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms", "serve", "--config", str(self.config_file),
            cwd=self.home, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._drains = [
            asyncio.create_task(drain(self.proc.stdout, self.lines)),
            asyncio.create_task(drain(self.proc.stderr, self.lines)),
        ]
        started = len(self.events("listening"))
        await wait_until(
            lambda: self._listening(started), timeout=30, what=f"{self.name} to listen"
        )

    def _listening(self, before: int) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            tail = b"".join(self.lines[-30:]).decode(errors="replace")
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")
        return len(self.events("listening")) > before

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log events called ``name``, in order."""
        found = []
        for line in list(self.lines):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                found.append(event)
        return found

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs; whatever was in flight stays in flight."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self._reaped()

    async def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(scaled(20)):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
        await self._reaped()

    async def _reaped(self) -> None:
        assert self.proc is not None
        async with asyncio.timeout(scaled(10)):
            await self.proc.wait()
        for task in self._drains:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def admin(self, method: str, path: str, body: Any = None, *, ok: bool = True) -> Any:
        """One admin API request; the JSON answer (asserted 2xx unless ``ok`` is False)."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, self.admin_url + path, json=body) as resp,
        ):
            text = await resp.text()
            if ok:
                assert resp.status < 300, (self.name, method, path, resp.status, text)
            try:
                return json.loads(text)
            except ValueError:
                return text


def _node_sections(
    home: Path, store_url: str, node: Node, ocpi: bool, config: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {
        "server": {"port": node.ocpp_port, "unknown_chargers": "accept"},
        "store": {"url": store_url, "pool_size": 6},
        "admin": {"port": node.admin_port},
        "ocpi": {
            "enabled": ocpi,
            "port": node.ocpi_port,
            "public_base_url": node.ocpi_url,
            "country_code": "NL",
            "party_id": "CPO",
            "http_timeout_s": 2.0,
        },
        "cluster": {"node_id": node.node_id, "heartbeat_s": 0.5, "lease_s": 3.0},
        "log": {"level": "info", "format": "json"},
    }
    for name, values in config.items():
        sections.setdefault(name, {}).update(values)
    return config_sections(home, **sections)


@contextlib.asynccontextmanager
async def csms_nodes(
    tmp_path: Path,
    store_url: str,
    count: int,
    *,
    ocpi: bool = False,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[list[Node]]:
    """``count`` nodes named a, b, c… on ``store_url``, started one after the other
    (the first applies the migrations); every node is stopped (or reaped) on exit.

    ``config`` adds or overrides config sections for every node (e.g. ``ocpi_cpo``);
    ``env`` adds environment variables (``CSMS__…`` overrides) for every node.
    """
    base_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
    base_env.update(env or {})
    nodes: list[Node] = []
    for i in range(count):
        name = "abcdefgh"[i]
        home = tmp_path / f"node-{name}"
        home.mkdir(parents=True, exist_ok=True)
        node = Node(
            name=name,
            home=home,
            config_file=home / "csms.toml",
            ocpp_port=free_port(),
            admin_port=free_port(),
            ocpi_port=free_port(),
            env=dict(base_env),
        )
        write_config(node.config_file, _node_sections(home, store_url, node, ocpi, config or {}))
        nodes.append(node)
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            if node.running:
                await node.stop()
