"""The servers under test and the eMSP, each a pinned subprocess started from its CLI.

Why only through the CLI: the CSMS may be another checkout (a baseline); ``csms serve
--config`` and the config keys below are what every checkout shares. Even the
pre-registered chargers go in with plain SQL on a store the server itself created.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.authorize.settings import (
    ADMIN_TOKEN,
    CHARGER_IDS,
    DEADLINE_S,
    EMSP,
    HIT_TAGS,
    LOG_LEVEL,
    OWN_TAGS,
    REM_TAGS,
)
from tests.bench.authorize.trees import Tree
from tests.bench.procs import CLIENT_CPU, OUT, Proc, free_port


@dataclass(frozen=True)
class Ports:
    """Where one ``csms serve`` listens (chosen up front: OCPI needs its public URL)."""

    ocpp: int
    admin: int
    ocpi: int

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp}/ocpp"


def start_echo() -> tuple[Proc, str]:
    proc = Proc("echo", ["-m", "simulator.cli", "echo-server", "--port", "0"])
    return proc, proc.wait_for(r"listening on (ws://\S+)").group(1)


def start_fast_echo() -> tuple[Proc, str]:
    proc = Proc("echo-fast", ["-m", "tests.bench.fast_echo", "--port", "0"])
    return proc, proc.wait_for(r"listening on (ws://\S+)").group(1)


def start_remote_echo(control: str) -> tuple[Proc, str]:
    """The remote path's floor (:mod:`tests.bench.remote_echo`) asking the eMSP whose
    control API is ``control``, at the endpoint the CSMS's authorize calls go to."""
    with urllib.request.urlopen(f"{control}/control/state", timeout=10) as resp:
        hot = json.loads(resp.read())["hot_base"]
    argv = ["-m", "tests.bench.remote_echo", "--emsp", f"{hot}/ocpi/2.2.1/tokens"]
    proc = Proc("remote-echo", argv)
    return proc, proc.wait_for(r"listening on (ws://\S+)").group(1)


def start_naive() -> tuple[Proc, str]:
    argv = ["-m", "tests.bench.naive_csms", "--port", "0"]
    proc = Proc("naive", [*argv, "--log-file", str(OUT / "naive-frames.log")])
    return proc, proc.wait_for(r"listening on (ws://\S+)").group(1)


def write_config(name: str, ports: Ports, extra: str = "") -> Path:
    """``extra``: more TOML for this server only (sections a baseline may not know)."""
    path = OUT / f"{name}.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {ports.ocpp}
unknown_chargers = "accept"
ping_interval_s = 0
listen_backlog = 16384
call_timeout_s = 10.0

[store]
path = "{OUT / f"{name}.sqlite3"}"

[admin]
host = "127.0.0.1"
port = {ports.admin}
token = "{ADMIN_TOKEN}"

[ocpi]
host = "127.0.0.1"
port = {ports.ocpi}
public_base_url = "http://127.0.0.1:{ports.ocpi}"
connection_limit_per_partner = 2000
token_sync_interval_s = 86400.0
allow_private_partner_urls = true

[authz]
authorize_deadline_s = {DEADLINE_S}

[log]
level = "{LOG_LEVEL}"
format = "json"
{extra}"""
    )
    return path


def remove_store(name: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{OUT / name}.sqlite3{suffix}").unlink(missing_ok=True)


def start_csms(tree: Tree, name: str, extra: str = "") -> tuple[Proc, Ports]:
    """``tree``'s ``csms serve`` on the store ``var/bench/<name>.sqlite3``; ready once all
    three ports listen (log-level independent)."""
    ports = Ports(free_port(), free_port(), free_port())
    cfg = write_config(name, ports, extra)
    argv = ["-m", "csms", "serve", "--config", str(cfg)]
    proc = Proc(name, argv, cwd=tree.root, env=tree.env(), python=tree.python)
    deadline = time.monotonic() + 30
    pending = [ports.ocpp, ports.admin, ports.ocpi]
    while pending:
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"csms did not start, see {proc.log_path}")
        try:
            socket.create_connection(("127.0.0.1", pending[0]), timeout=1).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.05)
    return proc, ports


def store_template(tree: Tree, chargers: int) -> Path:
    """A store in ``tree``'s own schema with ``chargers`` known chargers and the own
    cards :data:`OWN_TAGS`, to be copied
    (:func:`fresh_store`) so that a step measures connecting rather than
    auto-registration writes: ``tree``'s server creates the file (its migrations) and
    stops, then the chargers are inserted."""
    name = f"store-{tree.label}-{chargers}"
    remove_store(name)
    proc, _ = start_csms(tree, name)
    proc.stop()
    now = datetime.now(UTC).isoformat()
    rows = [(CHARGER_IDS.format(n=n), "Accepted", now) for n in range(1, chargers + 1)]
    path = OUT / f"{name}.sqlite3"
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                "INSERT INTO chargers (id, registration_status, created_at) VALUES (?, ?, ?)",
                rows,
            )
            # The operator's own cards, as `csms tokens add` stores them (no expiry).
            db.executemany(
                "INSERT INTO id_tags (id_tag_norm, id_tag, status, created_at, updated_at)"
                " VALUES (?, ?, 'Accepted', ?, ?)",
                [(t.upper(), t, now, now) for t in OWN_TAGS],
            )
    finally:
        db.close()
    return path


def fresh_store(template: Path, name: str) -> None:
    """``var/bench/<name>.sqlite3`` as a copy of ``template``."""
    remove_store(name)
    shutil.copyfile(template, OUT / f"{name}.sqlite3")


def admin_post(ports: Ports, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{ports.admin}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def start_emsp(ports: Ports, name: str) -> tuple[Proc, str]:
    """The eMSP (lean or sandbox, see EMSP) registers with the CSMS at ``ports`` via the
    credentials handshake and pushes its tokens; returns it and its control URL."""
    tokens = OUT / "emsp-tokens.csv"
    lines = ["uid,type,whitelist"]
    lines += [f"{t},RFID,ALWAYS" for t in HIT_TAGS]
    lines += [f"{t},RFID,NEVER" for t in REM_TAGS]
    tokens.write_text("\n".join(lines) + "\n")
    invite = admin_post(ports, "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"})
    register = [
        "--tokens",
        str(tokens),
        f"--register-with={invite['versions_url']}",
        f"--token-a={invite['token_a']}",  # a token may start with '-'
    ]
    if EMSP == "lean":
        argv = ["-m", "tests.bench.lean_emsp", *register]
    else:
        serve = ["-m", "simulator.emsp.cli", "serve", "--port", "0", "--control-port", "0"]
        argv = [*serve, "--quiet", *register, "--push-tokens"]
    proc = Proc(name, argv, cpu=CLIENT_CPU)
    control = proc.wait_for(r"control API: (http://\S+)/control/state").group(1)
    m = proc.wait_for(r"pushed (\d+) tokens, (\d+) accepted", timeout=60)
    if m.group(1) != m.group(2) or int(m.group(1)) != len(HIT_TAGS) + len(REM_TAGS):
        proc.stop()
        raise RuntimeError(f"eMSP token push incomplete: {m.group(0)}")
    return proc, control


def emsp_behaviour(control: str, mode: str, delay_ms: int = 0, *, nagle: bool = False) -> None:
    req = urllib.request.Request(
        f"{control}/control/behaviour",
        data=json.dumps({"mode": mode, "delay_ms": delay_ms, "nagle": nagle}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
