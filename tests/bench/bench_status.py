"""StatusNotification cost (``python -m tests.bench status``): server CPU per message.

Why its own benchmark: an idle charger's traffic is a Heartbeat every 300 s and a
StatusNotification a minute, so at 15,000 chargers StatusNotifications are 250 of the
300 messages a second and decide the idle CPU share. Two loads, each against a fresh
``csms serve`` (``make run``'s configuration: OCPI on, JSON logs, SQLite) pinned to core 0,
the generator (bare WebSocket clients, :mod:`tests.bench.rawws`) on core 1:

* **trickle**: 250 chargers, each one StatusNotification a second on its own phase
  (the rate 15,000 idle chargers send), 10 s;
* **saturated**: 50 chargers, each sending the next report as soon as one is answered,
  100 each.

Figure: the server process's CPU (``/proc/<pid>/stat``) over the load divided by the
messages, and its share of a core. With ``BENCH_BASELINE=<checkout>`` the same loads run
against that checkout's code (its tree first on ``PYTHONPATH``) in the same run, each
load alternating which side goes first. Figures go to the console and
``var/bench/status.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench import rawws
from tests.bench.procs import CLIENT_CPU, OUT, Proc, free_port, pin_self

REPORT = b'{"connectorId":1,"errorCode":"NoError","status":"Available"}'
BOOT = b'{"chargePointVendor":"bench","chargePointModel":"status"}'


def _config(home: Path, port: int) -> Path:
    path = home / "csms.toml"
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\nunknown_chargers = "accept"\n'
        f'[store]\nurl = "sqlite:///{home}/csms.sqlite3"\n'
        f'[admin]\nport = {free_port()}\ntoken = "bench"\n'
        f'[ocpi]\nenabled = true\nhost = "127.0.0.1"\nport = {free_port()}\n'
        '[local_lists]\nenabled = false\n[log]\nformat = "json"\n'
    )
    return path


async def _load(
    server: Proc, port: int, chargers: int, each: int, period_s: float
) -> tuple[int, float, float]:
    """(messages, server CPU seconds, wall seconds) of the reports alone (connects and
    boots are done before the window opens)."""
    clients = [await rawws.connect("127.0.0.1", port, f"/ocpp/ST{i:05d}") for i in range(chargers)]
    try:
        for c in clients:
            await c.call("BootNotification", BOOT)
        await asyncio.sleep(1.0)  # the boots' writes and log lines settle
        cpu0, t0 = server.cpu_seconds(), time.monotonic()

        async def one(i: int, c: rawws.RawCharger) -> None:
            start = time.monotonic() + period_s * i / chargers
            for k in range(each):
                if period_s:
                    await asyncio.sleep(max(0.0, start + k * period_s - time.monotonic()))
                await c.call("StatusNotification", REPORT)

        await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
        return chargers * each, server.cpu_seconds() - cpu0, time.monotonic() - t0
    finally:
        for c in clients:
            c.close()


async def _measure(tree: Path | None, name: str, chargers: int, each: int, period: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp), free_port()
        env = {"PYTHONPATH": str(tree)} if tree is not None else None
        server = Proc(f"status-{name}", ["-m", "csms", "serve", "--config", str(_config(home, port))],
                      env=env, cwd=home)  # fmt: skip
        try:
            server.wait_for(r'"event":"listening"')
            messages, cpu, wall = await _load(server, port, chargers, each, period)
        finally:
            server.stop()
    return {
        "messages": messages,
        "per_s": round(messages / wall),
        "cpu_us_per_msg": round(1e6 * cpu / messages),
        "core_share_pct": round(100 * cpu / wall, 1),
    }


LOADS = {"trickle": (250, 10, 1.0), "saturated": (50, 100, 0.0)}


def main() -> None:
    pin_self(CLIENT_CPU)
    baseline = os.environ.get("BENCH_BASELINE")
    sides: list[tuple[str, Path | None]] = [("current", None)]
    if baseline:
        sides.append(("baseline", Path(baseline).resolve()))
    results: dict[str, dict[str, Any]] = {}
    for n, (load, (chargers, each, period)) in enumerate(LOADS.items()):
        order = sides if n % 2 == 0 else sides[::-1]
        for side, tree in order:
            r = asyncio.run(_measure(tree, f"{side}-{load}", chargers, each, period))
            results.setdefault(load, {})[side] = r
            print(
                f"status {load:9} {side:8}: {r['messages']} msgs, {r['per_s']}/s, "
                f"{r['cpu_us_per_msg']} µs CPU/msg, {r['core_share_pct']}% of a core",
                flush=True,
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "status.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
