"""The security commands of the ``csms`` CLI against a running CSMS over TLS (the CLI runs
in-process, in a thread: it blocks)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from csms.cli import main
from csms.system import System
from simulator.chargepoint import SimulatedChargePoint
from tests.e2e.security.conftest import wss_url
from tests.support.certs import Pki
from tests.support.csms import ADMIN_TOKEN, admin_url
from tests.support.waiting import wait_until

_LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


class Cli:
    def __init__(self, app: System, capsys: pytest.CaptureFixture[str]) -> None:
        self.conn = ["--admin-url", admin_url(app), "--admin-token", ADMIN_TOKEN]
        self.capsys = capsys

    async def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, *self.conn])
        out, err = self.capsys.readouterr()
        # The server under test logs to the same stdout (structlog unconfigured).
        out = "".join(x for x in out.splitlines(keepends=True) if not _LOG_LINE.match(x))
        return code, out, err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self.run(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


async def test_security_commands(
    csms_tls: System, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(csms_tls, capsys)
    added = await cli.json("chargers", "add", "CP3", "--security-profile", "3")
    assert added["security_profile"] == 3
    code, _, err = await cli.run("chargers", "add", "CP2", "--security-profile", "2")
    assert code == 1 and "a password is needed" in err

    async with SimulatedChargePoint.connect(
        wss_url(csms_tls), "CP3", heartbeat=False, step_delay_s=0.01, **pki.charger("CP3")
    ) as cp:
        await cp.boot()
        root = str(pki.root.cert_path)
        code, out, _ = await cli.run(
            "install-certificate",
            "CP3",
            "--type",
            "CentralSystemRootCertificate",
            "--certificate",
            root,
        )
        assert code == 0 and "CP3 InstallCertificate: Accepted" in out
        ids = await cli.json(
            "get-installed-certificate-ids", "CP3", "--type", "CentralSystemRootCertificate"
        )
        [data] = ids["certificateHashData"]
        deleted = await cli.json(
            "delete-certificate",
            "CP3",
            "--issuer-name-hash",
            data["issuerNameHash"],
            "--issuer-key-hash",
            data["issuerKeyHash"],
            "--serial",
            data["serialNumber"],
        )
        assert deleted == {"status": "Accepted"}
        fw = await cli.json(
            "signed-update-firmware",
            "CP3",
            "--request-id",
            "9",
            "--location",
            "https://fw.example.com/a.bin",
            "--retrieve-date",
            "2030-01-01T00:00:00Z",
            "--signing-certificate",
            root,
            "--signature",
            "c2ln",
        )
        assert fw == {"status": "Accepted"}
        log = await cli.json(
            "get-log", "CP3", "--request-id", "5", "--location", "https://logs.example.com/"
        )
        assert log["status"] == "Accepted"

        async def stored() -> set[tuple[str, str]]:
            doc = await cli.json("security", "show", "CP3")
            return {(n["action"], n["status"]) for n in doc["notifications"]}

        # The firmware and log status sequences finish before the certificate renewal
        # below makes the charger reconnect (what it sends while away is not replayed).
        await wait_until(
            lambda: _has(stored, {("SignedFirmwareStatusNotification", "Installed")}),
            what="firmware installed",
        )
        await wait_until(
            lambda: _has(stored, {("LogStatusNotification", "Uploaded")}), what="log uploaded"
        )
        first_connection = csms_tls.gateway.connection("CP3")
        trigger = await cli.json(
            "extended-trigger-message", "CP3", "--message", "SignChargePointCertificate"
        )
        assert trigger == {"status": "Accepted"}
        await wait_until(lambda: len(cp.certificates.accepted_chains) == 1, what="new cert")
        # The charger reconnects with the new certificate; talk to it once it is back.
        await wait_until(
            lambda: csms_tls.gateway.connection("CP3") not in (None, first_connection),
            what="CP3 reconnected with its new certificate",
        )
        await cp.security_event("SecurityLogWasCleared")
        events = await cli.json("security-events", "list", "--critical")
        assert [(e["charger_id"], e["type"]) for e in events["security_events"]] == [
            ("CP3", "SecurityLogWasCleared")
        ]
        code, out, _ = await cli.run("security-events", "list")
        assert code == 0 and "SecurityLogWasCleared" in out

        code, out, _ = await cli.run("security", "show", "CP3")
        assert code == 0
        for text in ("security_profile", "signed certificates", "InstallCertificate"):
            assert text in out
        code, _, err = await cli.run("security", "set-profile", "CP3", "2", "--registry-only")
        assert code == 1 and "a password is needed" in err


async def _has(fetch: Any, wanted: set[tuple[str, str]]) -> bool:
    return wanted <= await fetch()
