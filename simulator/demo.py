"""``make demo``: the CSMS, the eMSP sandbox and a simulated charger, end to end, in a minute.

Starts ``python -m csms serve`` as a subprocess (temporary SQLite store, free ports on
127.0.0.1, short authorize deadline), starts the eMSP sandbox in this process, has the
CSMS register with the sandbox (``csms partners register``), pushes the sandbox's
tokens, then drives one charge point through four authorizations:

* ``CACHE-1``  whitelist ALWAYS, pushed  -> decided from the CSMS's token cache
* ``RT-1``     whitelist NEVER           -> real-time authorize at the sandbox
* ``OFF-1``    whitelist ALLOWED_OFFLINE -> sandbox hangs, the deadline fallback allows it
* ``BLK-1``    whitelist NEVER, BLOCKED  -> the sandbox's rejection reaches the charger

and charges with ``RT-1`` so the Session and the CDR arrive at the sandbox carrying the
sandbox's own ``authorization_reference``. It prints one table of decisions (from
``csms authorizations list --json``) and a line per expectation.

Why a subprocess for the CSMS and not an in-process app: the demo should show the product
as an operator runs it (CLI, env overrides, separate process), and the simulator package
may not import ``csms``. The CSMS runs in its own process group, killed in ``finally``.

Exit codes: 0 every expectation met, 1 something expected is missing, 3 a CSMS feature the
demo needs is not there (the message names it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from simulator.chargepoint import SimulatedChargePoint
from simulator.emsp import EmspSandbox

ADMIN_TOKEN = "demo-admin-token"
CP_ID = "DEMO-CP1"
LOCATION_ID = "LOC-DEMO"
EVSE_UID = "EVSE-DEMO-1"
DEADLINE_S = 1.0
EXIT_MISSING_FEATURE = 3

LOCATIONS_TOML = f"""
[[tariffs]]
id = "TAR-DEMO"
currency = "EUR"
energy_price = 0.30
vat = 21.0

[[locations]]
id = "{LOCATION_ID}"
name = "Demo Depot"
address = "Demo Street 1"
city = "Amsterdam"
postal_code = "1011AA"
country = "NLD"
latitude = "52.37403"
longitude = "4.88969"
time_zone = "Europe/Amsterdam"

[[locations.evses]]
uid = "{EVSE_UID}"
evse_id = "NL*CPO*EDEMO*1"
charger_id = "{CP_ID}"
connector_id = 1
standard = "IEC_62196_T2"
format = "SOCKET"
power_type = "AC_3_PHASE"
max_voltage = 230
max_amperage = 32
tariff_ids = ["TAR-DEMO"]
capabilities = ["RFID_READER", "REMOTE_START_STOP_CAPABLE"]
"""


class MissingFeature(Exception):
    """The CSMS lacks something the demo needs (a CLI command, an OCPI module)."""


def free_ports(n: int) -> list[int]:
    """Ports free right now; the CSMS binds them a moment later (fine on a dev machine)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Demo:
    def __init__(self, workdir: Path, say: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.say = say
        self.ocpp_port, self.admin_port, self.ocpi_port = free_ports(3)
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = workdir / "csms.log"
        self.checks: list[tuple[str, bool, str]] = []
        self.missing: list[str] = []  # CSMS features not there (exit 3, not a failure)

    # ------------------------------------------------------------------ CSMS process

    def csms_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CSMS")}
        locations = self.workdir / "locations.toml"
        locations.write_text(LOCATIONS_TOML, encoding="utf-8")
        env.update(
            {
                "CSMS__SERVER__HOST": "127.0.0.1",
                "CSMS__SERVER__PORT": str(self.ocpp_port),
                "CSMS__SERVER__UNKNOWN_CHARGERS": "accept",
                "CSMS__STORE__PATH": str(self.workdir / "csms.sqlite3"),
                "CSMS__ADMIN__HOST": "127.0.0.1",
                "CSMS__ADMIN__PORT": str(self.admin_port),
                "CSMS__ADMIN__TOKEN": ADMIN_TOKEN,
                "CSMS__OCPI__ENABLED": "true",
                "CSMS__OCPI__HOST": "127.0.0.1",
                "CSMS__OCPI__PORT": str(self.ocpi_port),
                "CSMS__OCPI__PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ocpi_port}",
                "CSMS__OCPI__COUNTRY_CODE": "NL",
                "CSMS__OCPI__PARTY_ID": "CPO",
                "CSMS__OCPI__ALLOW_PRIVATE_PARTNER_URLS": "true",  # the sandbox is on 127.0.0.1
                "CSMS__OCPI_CPO__LOCATIONS_FILE": str(locations),
                "CSMS__OCPI_CPO__OUTBOX_POLL_INTERVAL_S": "0.2",
                "CSMS__OCPI_CPO__OUTBOX_RETRY_INITIAL_S": "0.2",
                "CSMS__AUTHZ__AUTHORIZE_DEADLINE_S": str(DEADLINE_S),
                "CSMS__LOG__LEVEL": "info",
                "CSMS__LOG__FORMAT": "json",
            }
        )
        return env

    async def start_csms(self) -> None:
        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms", "serve",
            env=self.csms_env(), stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        log.close()
        # Ready when it logs "listening" (JSON lines); that event names every bound port.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"csms serve exited with {self.proc.returncode}")
            event = _find_event(self.log_path, "listening")
            if event is not None:
                if not event.get("ocpi_port"):
                    raise MissingFeature("csms serve starts no OCPI server (ocpi_port is null)")
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("csms serve did not report 'listening' within 20 s")

    async def stop_csms(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def cli(self, *args: str) -> str:
        """Run ``python -m csms <args>`` against the admin API; returns stdout."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms", *args,
            "--admin-url", f"http://127.0.0.1:{self.admin_port}", "--admin-token", ADMIN_TOKEN,
            env=self.csms_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        text, errs = out.decode(), err.decode()
        if proc.returncode == 2 and "invalid choice" in errs:
            raise MissingFeature(f"`csms {' '.join(args[:2])}`: {errs.strip().splitlines()[-1]}")
        if proc.returncode != 0:
            raise RuntimeError(f"csms {' '.join(args)} failed ({proc.returncode}): {errs.strip()}")
        return text

    # ------------------------------------------------------------------ scenario

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))
        self.say(f"  [{'ok' if ok else 'MISSING'}] {name}" + (f" - {detail}" if detail else ""))

    async def run(self) -> int:
        async with EmspSandbox.start(
            country_code="NL", party_id="EMS", business_name="Demo eMSP", control_port=None,
            seed=2024,
        ) as emsp:  # fmt: skip
            emsp.add_token("CACHE-1", whitelist="ALWAYS")
            emsp.add_token("RT-1", whitelist="NEVER")
            emsp.add_token("OFF-1", whitelist="ALLOWED_OFFLINE")
            emsp.add_token("BLK-1", whitelist="NEVER", allowed="BLOCKED")
            self.say(f"eMSP sandbox NL-EMS at {emsp.versions_url}")
            await self.start_csms()
            self.say(
                f"CSMS up: OCPP ws://127.0.0.1:{self.ocpp_port}/ocpp, "
                f"OCPI http://127.0.0.1:{self.ocpi_port}/ocpi/versions, store in {self.workdir}"
            )
            await self.cli(
                "partners", "register", "--versions-url", emsp.versions_url,
                "--token-a", emsp.issue_token_a(),
            )  # fmt: skip
            self.check(
                "CSMS registered with the sandbox (credentials handshake)", emsp.peer.registered
            )
            if not emsp.peer.registered:
                return 1
            if emsp.peer.endpoint("tokens", "RECEIVER") is None:
                raise MissingFeature("the CSMS publishes no tokens RECEIVER endpoint")
            replies = await emsp.push_tokens()
            pushed = sum(r.ok for r in replies)
            self.check("sandbox pushed its 4 tokens to the CSMS", pushed == 4, f"{pushed} accepted")
            await self.charge_point(emsp)
            await self.report(emsp)
        failed = [c for c in self.checks if not c[1]]
        self.say("")
        if failed:
            self.say(f"demo FAILED: {len(failed)} expected outcome(s) missing")
            return 1
        if self.missing:
            self.say("MISSING CSMS FEATURE: " + "; ".join(self.missing))
            return EXIT_MISSING_FEATURE
        self.say("demo OK: every expected outcome seen")
        return 0

    async def charge_point(self, emsp: EmspSandbox) -> None:
        url = f"ws://127.0.0.1:{self.ocpp_port}/ocpp"
        async with SimulatedChargePoint.connect(url, CP_ID, heartbeat=False) as cp:
            boot = await cp.boot(announce=True)
            self.check(
                "charge point booted", boot.get("status") == "Accepted", str(boot.get("status"))
            )
            self.say("")
            self.say("authorizations at the charger:")
            results: dict[str, str] = {}
            for uid in ("CACHE-1", "RT-1"):
                results[uid] = await self.authorize(cp, uid)
            emsp.set_authorize_behaviour("hang")
            results["OFF-1"] = await self.authorize(cp, "OFF-1")
            emsp.set_authorize_behaviour("normal")
            results["BLK-1"] = await self.authorize(cp, "BLK-1")
            self.check("CACHE-1 accepted", results["CACHE-1"] == "Accepted", results["CACHE-1"])
            self.check("RT-1 accepted", results["RT-1"] == "Accepted", results["RT-1"])
            self.check(
                "OFF-1 accepted by the deadline fallback",
                results["OFF-1"] == "Accepted",
                results["OFF-1"],
            )
            self.check("BLK-1 rejected", results["BLK-1"] == "Blocked", results["BLK-1"])
            self.check(
                "CACHE-1 decided without asking the sandbox",
                emsp.authorize_counts.get("CACHE-1", 0) == 0,
                f"{emsp.authorize_counts.get('CACHE-1', 0)} authorize calls",
            )

            self.say("")
            self.say("charging with RT-1 on connector 1:")
            start = await cp.start_transaction(1, "RT-1", meter_start=1000, meter_loop=False)
            status = (start.get("idTagInfo") or {}).get("status")
            self.check("StartTransaction accepted", status == "Accepted", str(status))
            await cp.send_meter_values(1, energy_wh=4000, power_w=11000)
            await cp.stop_transaction(1, meter_stop=7400, reason="Local")

            ref = next(reversed(emsp.references_for("RT-1")), None)
            self.say(f"  sandbox issued authorization_reference {ref}")
            absent = [m for m in ("sessions", "cdrs") if emsp.peer.endpoint(m, "SENDER") is None]
            if absent:
                self.missing.append(f"the CSMS publishes no {'/'.join(absent)} module (OCPI)")
                self.say(f"  (skipped: CSMS has no {'/'.join(absent)} module yet)")
                return
            with contextlib.suppress(TimeoutError):
                await emsp.wait_until(lambda: _cdr_for(emsp, "RT-1") is not None, timeout=15)
            session = _session_for(emsp, "RT-1")
            cdr = _cdr_for(emsp, "RT-1")
            s_ref = session.get("authorization_reference") if session else None
            c_ref = cdr.get("authorization_reference") if cdr else None
            self.say(f"  Session at the sandbox: {session.get('id') if session else None} "
                     f"status={session.get('status') if session else None} reference={s_ref}")  # fmt: skip
            self.say(f"  CDR at the sandbox:     {cdr.get('id') if cdr else None} "
                     f"kWh={cdr.get('total_energy') if cdr else None} reference={c_ref}")  # fmt: skip
            self.check(
                "Session carries the sandbox's authorization_reference",
                ref is not None and s_ref == ref,
            )
            self.check(
                "CDR carries the sandbox's authorization_reference",
                ref is not None and c_ref == ref,
            )
            self.check(
                "CDR delivered exactly once",
                not emsp.cdr_duplicates,
                str(emsp.cdr_duplicates or ""),
            )
            self.check(
                "sandbox saw no OCPI protocol violations",
                not emsp.violations,
                "; ".join(emsp.violations[:3]),
            )

    async def authorize(self, cp: SimulatedChargePoint, uid: str) -> str:
        t0 = time.monotonic()
        resp = await cp.authorize(uid)
        status = str((resp.get("idTagInfo") or {}).get("status"))
        self.say(f"  Authorize {uid:<8} -> {status:<9} ({(time.monotonic() - t0) * 1000:.0f} ms)")
        return status

    async def report(self, emsp: EmspSandbox) -> None:
        data = json.loads(await self.cli("authorizations", "list", "--json", "--limit", "50"))
        rows = data.get("authorizations", data) if isinstance(data, dict) else data
        rows = [r for r in rows if r.get("trigger", "authorize").lower() == "authorize"]
        rows.reverse()  # oldest first
        self.say("")
        self.say("decisions recorded by the CSMS (csms authorizations list):")
        cols = [
            "uid",
            "source",
            "allowed",
            "status",
            "authorization_reference",
            "latency_ms",
            "reason",
        ]
        table = [[_cell(r.get(c))[:60] for c in cols] for r in rows]
        widths = (
            [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(cols)]
            if table
            else [len(c) for c in cols]
        )
        self.say("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
        for row in table:
            self.say(
                "  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            )
        by_uid = {str(r.get("uid", "")).upper(): r for r in rows}
        expect = {
            "CACHE-1": ("cache", "Accepted"),
            "RT-1": ("remote", "Accepted"),
            "OFF-1": ("fallback", "Accepted"),
            "BLK-1": ("remote", "Blocked"),
        }
        self.say("")
        for uid, (source, status) in expect.items():
            r = by_uid.get(uid, {})
            got = (str(r.get("source")), str(r.get("status")))
            self.check(
                f"decision table: {uid} {source}/{status}", got == (source, status), "/".join(got)
            )
        ref = next(reversed(emsp.references_for("RT-1")), None)
        got_ref = by_uid.get("RT-1", {}).get("authorization_reference")
        self.check(
            "decision table keeps RT-1's reference exactly",
            ref is not None and got_ref == ref,
            str(got_ref),
        )


def _find_event(path: Path, name: str) -> dict[str, Any] | None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == name:
            return event
    return None


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}"
    return str(v)


def _session_for(emsp: EmspSandbox, uid: str) -> dict[str, Any] | None:
    for s in emsp.sessions.values():
        if str((s.get("cdr_token") or {}).get("uid", "")).upper() == uid.upper():
            return s
    return None


def _cdr_for(emsp: EmspSandbox, uid: str) -> dict[str, Any] | None:
    for c in emsp.cdrs.values():
        if str((c.get("cdr_token") or {}).get("uid", "")).upper() == uid.upper():
            return c
    return None


async def main_async(say: Callable[[str], None] = print) -> int:
    # Our own library logs (sandbox, simulator) would drown the story; warnings only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="csms-demo-") as tmp:
        demo = Demo(Path(tmp), say)
        try:
            return await asyncio.wait_for(demo.run(), 55)
        except MissingFeature as exc:
            say(f"MISSING CSMS FEATURE: {exc}")
            return EXIT_MISSING_FEATURE
        except (RuntimeError, TimeoutError, OSError) as exc:
            say(f"demo FAILED: {type(exc).__name__}: {exc}")
            if demo.log_path.exists():
                tail = demo.log_path.read_text(errors="replace").splitlines()[-15:]
                say("last CSMS log lines:\n  " + "\n  ".join(tail))
            return 1
        finally:
            await demo.stop_csms()


def main() -> int:
    return asyncio.run(main_async(lambda line: print(line, flush=True)))


if __name__ == "__main__":
    sys.exit(main())
