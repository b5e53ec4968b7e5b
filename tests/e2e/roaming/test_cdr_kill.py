"""Exactly-once CDR delivery across crashes: ``csms serve`` killed with SIGKILL while CDR
POSTs are in flight, again and again, delivers every CDR exactly once.

The parts are real: ``csms serve`` as a child process (config file, SQLite file, fixed
free ports so chargers and the eMSP find it again after each restart), the eMSP sandbox
in this process (CDR POSTs answered after a random delay, so kills land mid-request;
it stores CDRs by id and counts every POST per id), and simulated chargers running
roaming transactions with an eMSP token of whitelist ALWAYS (decided locally, fast).

Each round starts the CSMS on the same store, runs transactions on fresh chargers, and,
once the eMSP holds at least one CDR POST open at a random point of the round, kills
the CSMS. The last round is not killed: it runs its transactions and waits for the
outbox to drain. Then the store is the truth: every stopped roaming transaction has a
CDR row, and the eMSP received exactly one POST for each of them and nothing else.

``CDR_KILL_ROUNDS`` (default 5) and ``CDR_KILL_CHARGERS`` (default 4, two connectors
each) make a longer variant; ``CDR_KILL_SEED`` repeats a run's random kill points (the
seed is in the report line, printed with ``-s`` and shown on failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp.sandbox import EmspSandbox
from tests.support.csms import ADMIN_TOKEN, config_sections, write_config
from tests.support.waiting import scaled, wait_until

REPO = Path(__file__).resolve().parents[3]
ROUNDS = int(os.environ.get("CDR_KILL_ROUNDS", "5"))
CHARGERS = int(os.environ.get("CDR_KILL_CHARGERS", "4"))
LAST_ROUND_TX = 3  # transactions per connector in the round that is not killed


def free_port() -> int:
    """A free port below the kernel's ephemeral range (it starts at 32768 unless tuned),
    so no other test's port-0 listener can take it while the CSMS restarts."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32000")


def charger_id(rnd: int, i: int) -> str:
    return f"K{rnd}-{i}"


def token_uid(rnd: int, i: int, connector: int) -> str:
    return f"KILL{rnd:02d}{i:02d}{connector}"


def locations_toml() -> str:
    """One location; an EVSE for every connector of every charger of every round."""
    out = [
        '[[tariffs]]\nid = "AC-STD"\ncurrency = "EUR"\nenergy_price = 0.40\nvat = 21.0\n',
        '[[locations]]\nid = "LOC-K"\nname = "Kill Depot"\naddress = "Hafenstraat 1"\n'
        'city = "Amsterdam"\npostal_code = "1011AB"\ncountry = "NLD"\nlatitude = "52.37403"\n'
        'longitude = "4.88969"\ntime_zone = "Europe/Amsterdam"\n',
    ]
    for rnd in range(ROUNDS + 1):
        for i in range(CHARGERS):
            for c in (1, 2):
                cp = charger_id(rnd, i)
                out.append(
                    f'[[locations.evses]]\nuid = "{cp}-{c}"\nevse_id = "NL*CPO*E{rnd}{i}*{c}"\n'
                    f'charger_id = "{cp}"\nconnector_id = {c}\nstandard = "IEC_62196_T2"\n'
                    'format = "SOCKET"\npower_type = "AC_3_PHASE"\nmax_voltage = 230\n'
                    'max_amperage = 32\ntariff_ids = ["AC-STD"]\n'
                )
    return "\n".join(out)


@dataclass
class Csms:
    """``csms serve`` as a child process on fixed ports, restartable on the same store."""

    tmp_path: Path
    ocpp_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    ocpi_port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def store(self) -> Path:
        return self.tmp_path / "csms.sqlite3"

    @property
    def log(self) -> Path:
        return self.tmp_path / "csms.log"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    def write_config(self) -> Path:
        loc_file = self.tmp_path / "locations.toml"
        loc_file.write_text(locations_toml())
        sections = config_sections(
            self.tmp_path,
            server={"port": self.ocpp_port, "unknown_chargers": "accept"},
            admin={"port": self.admin_port},
            ocpi={
                "enabled": True,
                "port": self.ocpi_port,
                "public_base_url": f"http://127.0.0.1:{self.ocpi_port}",
                "country_code": "NL",
                "party_id": "CPO",
                "http_timeout_s": 2.0,
            },
            ocpi_cpo={
                "locations_file": str(loc_file),
                "outbox_retry_initial_s": 0.05,
                "outbox_retry_max_s": 0.2,
                "outbox_poll_interval_s": 0.1,
                "session_update_interval_s": 0.001,
            },
            log={"level": "info", "format": "json"},
        )
        return write_config(self.tmp_path / "csms.toml", sections)

    async def start(self) -> None:
        assert self.proc is None or self.proc.returncode is not None
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS__")}
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "csms", "serve", "--config", str(self.tmp_path / "csms.toml"),
                cwd=self.tmp_path, env=env, stdout=log, stderr=log,
            )  # fmt: skip
        self.starts += 1
        await wait_until(self._ready, timeout=30, interval=0.05, what="csms serve to listen")

    async def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(f"csms serve exited with {self.proc.returncode}; see {self.log}")
        try:
            await self.outbox()
        except (aiohttp.ClientError, OSError):
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight stays in flight."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def reaped(self) -> None:
        assert self.proc is not None
        async with asyncio.timeout(scaled(10)):
            await self.proc.wait()

    async def terminate(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(scaled(10)):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, self.admin_url + path, json=body) as resp,
        ):
            assert resp.status < 300, (resp.status, await resp.text())
            return await resp.json()

    async def outbox(self) -> dict[str, int]:
        return dict((await self.admin("GET", "/api/outbox"))["counts"])


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Csms]:
    csms = Csms(tmp_path)
    csms.write_config()
    try:
        yield csms
    finally:
        if csms.proc is not None and csms.proc.returncode is None:
            csms.proc.kill()
            await csms.proc.wait()


@dataclass
class Traffic:
    """What the chargers saw: the transactions whose stop the CSMS answered."""

    stopped: set[int] = field(default_factory=set)


async def run_charger(csms: Csms, rnd: int, i: int, traffic: Traffic, rounds: int | None) -> None:
    """Transactions on both connectors, ``rounds`` each, or (None) until the CSMS is killed:
    then the link fails and the charger ends quietly. A stop counts as answered only when
    the charger was online to send it and the call returned."""
    try:
        async with SimulatedChargePoint.connect(
            csms.ocpp_url,
            charger_id(rnd, i),
            heartbeat=False,
            step_delay_s=0,
            meter_interval_s=3600,
            response_timeout=5.0,
            open_timeout=5.0,
        ) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            n = 0
            while rounds is None or n < rounds:
                n += 1
                for c in (1, 2):
                    start = await cp.start_transaction(
                        c, token_uid(rnd, i, c), meter_start=0, move_status=False, meter_loop=False
                    )
                    if not start:
                        return  # offline: queued, never replayed (this charger is done)
                    assert start["idTagInfo"]["status"] == "Accepted", start
                    tid = int(start["transactionId"])
                    online = cp.connected
                    await cp.stop_transaction(c, meter_stop=1000 + n, move_status=False)
                    if online:
                        traffic.stopped.add(tid)
    except AssertionError:
        raise
    except Exception:
        if rounds is not None:
            raise  # the round that is not killed must run clean


def store_truth(path: Path) -> tuple[set[int], dict[str, int]]:
    """(stopped roaming transactions, CDR id -> transaction) as the store holds them."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        stopped = {
            r[0]
            for r in db.execute(
                "SELECT id FROM transactions"
                " WHERE stop_received_at IS NOT NULL AND partner_id IS NOT NULL"
            )
        }
        cdrs = {r[0]: r[1] for r in db.execute("SELECT id, transaction_id FROM ocpi_cdrs")}
    return stopped, cdrs


async def test_every_cdr_arrives_exactly_once_across_sigkills(tmp_path: Path) -> None:
    seed = int(os.environ.get("CDR_KILL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    async with (
        EmspSandbox.start(country_code="NL", party_id="EMS", control_port=None) as emsp,
        serving(tmp_path) as csms,
    ):
        emsp.behaviour.cdr_delay_ms = 80
        for rnd in range(ROUNDS + 1):
            for i in range(CHARGERS):
                for c in (1, 2):
                    emsp.add_token(token_uid(rnd, i, c), whitelist="ALWAYS")
        await csms.start()
        invite = await csms.admin(
            "POST", "/api/partners/invite", {"country_code": "NL", "party_id": "EMS"}
        )
        await emsp.register_with(invite["versions_url"], invite["token_a"])
        assert all(r.status_code == 1000 for r in await emsp.push_tokens())

        traffic = Traffic()
        open_at_kill: list[int] = []
        for rnd in range(ROUNDS):
            posts_before = len(emsp.cdr_posts)
            wanted = posts_before + rng.randint(2, 10 * CHARGERS)
            chargers = [
                asyncio.create_task(run_charger(csms, rnd, i, traffic, None))
                for i in range(CHARGERS)
            ]
            # A random point of the round at which the eMSP holds a CDR POST open.
            await emsp.wait_until(
                lambda w=wanted: len(emsp.cdr_posts) >= w and emsp.state.cdr_posts_open > 0,
                timeout=scaled(20),
            )
            csms.kill()  # no await since the check: the POST is still open at the eMSP
            open_at_kill.append(emsp.state.cdr_posts_open)
            await csms.reaped()
            async with asyncio.timeout(scaled(15)):
                await asyncio.gather(*chargers)
            await csms.start()

        final = [
            asyncio.create_task(run_charger(csms, ROUNDS, i, traffic, LAST_ROUND_TX))
            for i in range(CHARGERS)
        ]
        async with asyncio.timeout(scaled(30)):
            await asyncio.gather(*final)

        async def drained() -> bool:
            counts = await csms.outbox()
            return not counts.get("pending") and not counts.get("dead")

        await wait_until(drained, timeout=30, interval=0.1, what="the outbox to drain")
        counts = await csms.outbox()
        await csms.terminate()

        stopped, cdr_rows = store_truth(csms.store)
        posts = emsp.cdr_post_counts
        duplicates = sum(posts[cid] - 1 for cid in posts)
        missing = [cid for cid in cdr_rows if cid not in emsp.cdrs]
        strangers = [cid for cid in emsp.cdrs if cid not in cdr_rows]
        report = (
            f"seed={seed} kills={ROUNDS} open_at_kill={open_at_kill} stopped={len(stopped)}"
            f" cdrs_in_store={len(cdr_rows)} cdrs_at_emsp={len(emsp.cdrs)}"
            f" posts={len(emsp.cdr_posts)} duplicates={duplicates} missing={len(missing)}"
        )
        print(report)

        assert all(n > 0 for n in open_at_kill) and len(open_at_kill) == ROUNDS, report
        # Every kill left a CDR in flight; every restart found it marked and said so.
        restarts = csms.log.read_text().count('"outbox.in_flight_at_start"')
        assert restarts == ROUNDS, (restarts, report)
        assert traffic.stopped <= stopped, "a stop the charger saw answered is not stored"
        assert set(cdr_rows.values()) == stopped, report  # one CDR row per stopped tx
        assert duplicates == 0 and not missing and not strangers, report
        assert len(emsp.cdr_posts) == len(emsp.cdrs) == len(stopped), report
        assert "rejected" not in counts and "dead" not in counts, counts
        # Sessions: each arrived, its PUT first, and ended COMPLETED.
        first_method: dict[str, str] = {}
        for req in emsp.requests_to("/sessions/"):
            first_method.setdefault(req.path.rsplit("/", 1)[-1].upper(), req.method)
        assert set(first_method.values()) == {"PUT"}, first_method
        assert len(emsp.sessions) >= len(stopped), report
        completed = [s for s in (emsp.sessions.get(k) for k in emsp.sessions) if s]
        assert sum(s["status"] == "COMPLETED" for s in completed) == len(stopped), report
        assert not emsp.violations, emsp.violations
