"""``csms-sim --register`` against a CSMS that rejects unknown ids, ``--ca-file`` against
a TLS CSMS, and the load progress line; real subprocesses against the real CSMS."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from csms.store.chargers import ChargerRepo
from csms.store.id_tags import IdTagRepo
from simulator.load.cli import progress_text
from tests.support.csms import ADMIN_TOKEN, admin_url, ocpp_url, running_csms

TAG = "REGTAG1"


async def csms_sim(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_register_puts_the_ids_in_the_registry_before_connecting(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    async with running_csms(tmp_path) as app:  # unknown_chargers = reject
        await IdTagRepo(app.db).add(TAG)
        url = ocpp_url(app)
        code, _, err = await csms_sim("run", "--url", url, "--id", "CP-NEW", "--id-tag", TAG)
        assert code == 1 and "404" in err  # what a newcomer met before --register
        code, out, err = await csms_sim(
            "run", "--url", url, "--id", "CP-NEW", "--id-tag", TAG, "--password",
            "reg-password-0123456789", "--register", "--admin-url", admin_url(app),
            "--admin-token-file", str(token_file),
        )  # fmt: skip
        assert code == 0, err
        assert out.rstrip().endswith("ok")
        assert "registered 1 charger(s)" in err
        charger = await ChargerRepo(app.db).get("CP-NEW")
        assert charger is not None
        # Again: already registered is fine; the password it was given is required.
        code, _, err = await csms_sim(
            "run", "--url", url, "--id", "CP-NEW", "--id-tag", TAG, "--password",
            "reg-password-0123456789", "--register", "--admin-url", admin_url(app),
            "--admin-token", ADMIN_TOKEN,
        )  # fmt: skip
        assert code == 0 and "1 already registered" in err
        code, _, err = await csms_sim(
            "run", "--url", url, "--id", "CP-X", "--register", "--admin-url", admin_url(app),
            "--admin-token", "wrong",
        )  # fmt: skip
        assert code == 1 and "HTTP 401" in err


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.fail("needs the openssl CLI (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "1", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_ca_file_lets_the_simulator_verify_a_private_tls_csms(
    tmp_path: Path, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    async with running_csms(
        tmp_path, server={"tls_cert": str(cert), "tls_key": str(key), "unknown_chargers": "accept"}
    ) as app:
        await IdTagRepo(app.db).add(TAG)
        wss = f"wss://127.0.0.1:{app.ocpp_port}/ocpp"
        code, _, err = await csms_sim("run", "--url", wss, "--id", "CP-TLS", "--id-tag", TAG)
        assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in err
        code, out, err = await csms_sim(
            "run", "--url", wss, "--id", "CP-TLS", "--id-tag", TAG, "--ca-file", str(cert)
        )
        assert code == 0, err
        assert out.rstrip().endswith("ok")
        code, _, err = await csms_sim(
            "load", "--url", wss, "--ca-file", str(cert), "--chargers", "2", "--calls", "40",
            "--mix", "Heartbeat", "--id-tags", TAG, "--progress",
        )  # fmt: skip
        assert code == 0, err
        # The progress line ends at the total, with the percentage.
        assert "40/40 calls (100.0%)" in err and "done" in err


def test_progress_text_shows_total_percentage_and_eta() -> None:
    line = progress_text(done=2500, total=10000, errors=3, elapsed=2.0)
    assert "2,500/10,000 calls" in line and "( 25.0%)" in line
    assert "1,250 calls/s" in line and "3 errors" in line
    assert "ETA 6 s" in line  # 7,500 left at 1,250/s
    assert progress_text(0, 100, 0, 0.0).endswith("ETA ?")
    assert progress_text(100, 100, 0, 1.0).endswith("done")
